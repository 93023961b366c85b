"""Autobahn|Testsuite conformance: mint's client against the real fuzzing server.

Sections 1-10 (framing, pings, reserved bits, opcodes, fragmentation, UTF-8,
close handling, big messages) and 12-13 (permessage-deflate), over HTTP/1.1
directly, over HTTP/2 through the RFC 8441 relay and over HTTP/3 through the
RFC 9220 relay (``tests/autobahn/relay_h3.py``, aioquic), every case of every
section on all three.  The bar is every case passing; each run leaves its
HTML/JSON report under ``reports/autobahn/``.

The fuzzing server needs Python 2.7: these tests install it with
``tools/setup_autobahn.sh`` on first use and skip only when no Python 2.7
exists at all.  ``MINT_AUTOBAHN_CASES="1.*,5.1"`` narrows the cases for a
quick local run; by default every case of the section runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.autobahn.fuzzing import REPO_ROOT, find_wstest, read_summaries
from tests.autobahn.run import parse_cases

pytestmark = pytest.mark.autobahn

SECTIONS_1_TO_10 = [f"{section}.*" for section in range(1, 11)]
SECTIONS_12_AND_13 = ["12.*", "13.*"]


@pytest.fixture(scope="module")
def wstest() -> Path:
    path = find_wstest()
    if path is None and os.environ.get("MINT_REQUIRE_AUTOBAHN"):
        pytest.fail("MINT_REQUIRE_AUTOBAHN is set but the Autobahn fuzzing server is not installed")
    if path is None:
        pytest.skip(
            "Autobahn needs Python 2.7: .venv-autobahn/bin/wstest is missing and no Python 2.7"
            " was found (set MINT_PYTHON27, or install 2.7 with pyenv)"
        )
    return path


def _cases(default: list[str]) -> list[str]:
    override = os.environ.get("MINT_AUTOBAHN_CASES", "").strip()
    return parse_cases(override) if override else default


#: One run of sections 12-13 takes about 18 minutes per transport in CI; a stuck
#: run ends the test long before CI's own limit.
RUN_TIMEOUT = 60 * 60.0


def _run_concurrently(wstest: Path, sections: str, cases: list[str], compress: bool) -> None:
    """Run the cases over HTTP/1.1, HTTP/2 and HTTP/3 at once, one process each.

    Each run is a client and its own single-threaded Python 2 fuzzing server
    answering each other in turn, so one run keeps about one core busy; three
    side by side fill a two-core CI machine (sections 12-13: about 28 minutes
    for the three, 40 one after the other).  Processes, not threads: the HTTP/3
    client and its relay run aioquic in Python and would take the GIL from the
    other clients.  Every run has its own ports, relay and report folder.
    """
    runs: dict[str, subprocess.Popen[str]] = {}
    for transport in ("http1", "http2", "http3"):
        command = [
            sys.executable,
            "-m",
            "tests.autobahn.run",
            f"--transport={transport}",
            f"--cases={','.join(_cases(cases))}",
            f"--label={transport} sections {sections}",
            f"--outdir={REPO_ROOT / 'reports' / 'autobahn' / f'{transport}-{sections}'}",
        ]
        if compress:
            command.append("--compress")
        runs[transport] = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, "MINT_WSTEST": str(wstest)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    reports: list[str] = []
    failures: list[str] = []
    try:
        for transport, process in runs.items():
            output, _ = process.communicate(timeout=RUN_TIMEOUT)
            report = f"== {transport}, exit status {process.returncode}\n{output.strip()}"
            reports.append(report)
            if process.returncode != 0:
                failures.append(report)
    finally:
        for process in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    print("\n".join(reports))
    assert not failures, "\n\n".join(failures)


def test_sections_1_to_10_over_http1_http2_and_http3(wstest: Path) -> None:
    _run_concurrently(wstest, "1-10", SECTIONS_1_TO_10, compress=False)


def test_compression_sections_12_and_13_over_http1_http2_and_http3(wstest: Path) -> None:
    _run_concurrently(wstest, "12-13", SECTIONS_12_AND_13, compress=True)


def test_summary_counts_verdicts_and_explains_failures(tmp_path: Path) -> None:
    """The summary reads index.json as the suite writes it (no fuzzing server needed)."""

    def entry(behavior: str, close: str, report: str) -> dict[str, object]:
        return {
            "behavior": behavior,
            "behaviorClose": close,
            "duration": 3,
            "remoteCloseCode": 1000,
            "reportfile": report,
        }

    index = {
        "agent": {
            "9.10.1": entry("OK", "OK", "a.json"),
            "9.2.1": entry("OK", "OK", "b.json"),
            "7.1.6": entry("INFORMATIONAL", "INFORMATIONAL", "c.json"),
            "6.4.3": entry("NON-STRICT", "OK", "d.json"),
            "5.1": entry("OK", "FAILED", "e.json"),
        }
    }
    (tmp_path / "index.json").write_text(json.dumps(index))
    (tmp_path / "d.json").write_text(
        json.dumps(
            {
                "behavior": "NON-STRICT",
                "result": "Actual events match at least one expected.",
                "resultClose": "Connection was properly closed",
                "received": [["timeout", "A"], ["timeout", "B"]],
                "expected": {"OK": [["timeout", "A"]]},
            }
        )
    )
    (summary,) = read_summaries(tmp_path, "autobahn test")
    assert [r.case_id for r in summary.results] == ["5.1", "6.4.3", "7.1.6", "9.2.1", "9.10.1"]
    assert summary.line().startswith(
        "autobahn test: 5 cases, 3 OK, 1 INFORMATIONAL, 1 NON-STRICT, 0 FAILED, 0 UNIMPLEMENTED"
    )
    assert [r.case_id for r in summary.failures] == ["5.1", "6.4.3"]
    assert not summary.passed
    report = summary.report()
    assert 'expected_OK=[["timeout", "A"]]' in report
    assert "5.1: behavior=OK close=FAILED" in report
