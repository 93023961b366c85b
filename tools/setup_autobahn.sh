#!/usr/bin/env bash
# Install the Autobahn|Testsuite fuzzing server into .venv-autobahn (repo root).
#
# The suite (autobahntestsuite 25.10.1) runs on Python 2.7 only, so it lives in
# its own virtualenv, apart from the Python 3 project.  Idempotent: a complete
# install is reused.  When no working Python 2.7 exists, it says so, creates
# nothing and exits 0, so callers (the autobahn tests) can decide to skip.
# A failed install exits non-zero.
#
# Python 2.7 is looked up in order: $MINT_PYTHON27, python2.7 on PATH,
# $(pyenv root)/versions/2.7*/bin/python.  Each candidate must actually run
# (a pyenv shim for a version that is not selected fails, and is skipped).
set -euo pipefail

SUITE_VERSION="25.10.1"
VIRTUALENV_VERSION="20.15.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv-autobahn"
wstest="${venv}/bin/wstest"
stamp="${venv}/.autobahntestsuite-${SUITE_VERSION}"

if [[ -x "${wstest}" && -f "${stamp}" ]]; then
    echo "${wstest}"
    exit 0
fi

is_python27() {
    [[ -n "$1" && -x "$1" ]] || return 1
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' >/dev/null 2>&1
}

find_python27() {
    local candidate
    if [[ -n "${MINT_PYTHON27:-}" ]] && is_python27 "${MINT_PYTHON27}"; then
        echo "${MINT_PYTHON27}"
        return 0
    fi
    candidate="$(command -v python2.7 2>/dev/null || true)"
    if is_python27 "${candidate}"; then
        echo "${candidate}"
        return 0
    fi
    if command -v pyenv >/dev/null 2>&1; then
        local root
        root="$(pyenv root 2>/dev/null || true)"
        if [[ -n "${root}" ]]; then
            for candidate in "${root}"/versions/2.7*/bin/python; do
                if is_python27 "${candidate}"; then
                    echo "${candidate}"
                    return 0
                fi
            done
        fi
    fi
    return 1
}

if ! python27="$(find_python27)"; then
    echo "no Python 2.7 found (set MINT_PYTHON27, put python2.7 on PATH, or install one with pyenv)"
    exit 0
fi

echo "using Python 2.7 at ${python27}" >&2
# A half-made virtualenv from an interrupted run is rebuilt from scratch.
rm -rf "${venv}"
"${python27}" -m pip --disable-pip-version-check -q install "virtualenv==${VIRTUALENV_VERSION}" >&2
"${python27}" -m virtualenv -q "${venv}" >&2
"${venv}/bin/pip" --disable-pip-version-check -q install "autobahntestsuite==${SUITE_VERSION}" >&2
"${wstest}" --help >/dev/null
touch "${stamp}"
echo "${wstest}"
