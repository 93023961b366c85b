"""The benchmarks still run, at their smallest (``--quick``).

Nothing is timed here: the numbers are read by people, in full runs.  This only
checks that each benchmark completes and prints its table, so that neither rots
between measurements.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
#: A --quick run takes a few seconds; this bound is for a loaded machine.
TIMEOUT = 120


@pytest.mark.parametrize(
    ("script", "headers"),
    [
        (
            "bench_sessions.py",
            ("## Sessions: messages per second", "## h2c: mint over HTTP/2"),
        ),
        (
            "bench_multiplex.py",
            ("WebSockets to one origin", "| client | time |"),
        ),
        (
            "bench_http3.py",
            ("## Client CPU per echoed message", "HTTP/3 ÷ HTTP/2"),
        ),
    ],
)
def test_quick_run(script: str, headers: tuple[str, ...]) -> None:
    stdout = run_quick(script)
    for header in headers:
        assert header in stdout, stdout
    assert "mint" in stdout


def run_quick(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=None if env is None else {**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


CODEC_LIBRARIES = ("mint", "websockets", "wsproto", "aiohttp", "picows")
CODEC_WORKLOADS = (
    "decode-small",
    "decode-large",
    "decode-fragmented",
    "encode-small",
    "encode-large",
)


def test_codec_quick_run() -> None:
    """Every workload runs (its results checked inside) and every library has a column."""
    stdout = run_quick("bench_codec.py")
    header = next(line for line in stdout.splitlines() if line.startswith("| workload"))
    for library in CODEC_LIBRARIES:
        assert f"| {library} (ms) |" in header, header
    for name in ("x 32 B text", "1 MiB binary", "fragments + ping", "text from str"):
        assert name in stdout, stdout


def test_codec_quick_json_pure_python() -> None:
    """The same under MINT_NO_SPEEDUPS=1, as JSON; a subset with -w is honoured."""
    stdout = run_quick(
        "bench_codec.py",
        "--json",
        *(arg for key in CODEC_WORKLOADS[1:] for arg in ("-w", key)),
        env={"MINT_NO_SPEEDUPS": "1"},
    )
    document = json.loads(stdout)
    assert document["versions"]["mint C accelerator"] == "no"
    assert [result["workload"] for result in document["results"]] == list(CODEC_WORKLOADS[1:])
    for result in document["results"]:
        assert set(result["median_ms"]) == set(CODEC_LIBRARIES)
        assert all(value is not None for value in result["median_ms"].values()), result


def test_deflate_quick_run() -> None:
    """Both levels, encode and decode; a library that cannot run says why."""
    stdout = run_quick("bench_deflate.py")
    for level in (6, 1):
        assert f"### encode, level {level}" in stdout, stdout
        assert f"### decode, level {level}" in stdout, stdout
    rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    for library in ("zlib floor", *CODEC_LIBRARIES):
        assert sum(row.startswith(f"| {library} |") for row in rows) >= 4, library
    assert "n/a (picows): picows has no permessage-deflate" in stdout
    assert "n/a (aiohttp)" in stdout and "n/a (wsproto)" in stdout


def test_instructions_quick_run() -> None:
    """valgrind counts a few round trips of mint's asyncio session: a plausible positive count.

    valgrind is a Debian package (``./dev test`` installs it as root); without it this skips
    with the reason, except in CI, where it must run.
    """
    if shutil.which("valgrind") is None:
        reason = "valgrind is not installed (./dev test installs the Debian package as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true, so this must run")
        pytest.skip(reason)
    stdout = run_quick("bench_instructions.py")
    row = next(line for line in stdout.splitlines() if line.startswith("| mint session"))
    count = int(row.split("|")[2].strip().replace(",", ""))
    assert 10_000 < count < 1_000_000, row  # a round trip costs tens of thousands
