"""bench_sessions.py and bench_multiplex.py still run, at their smallest (``--quick``).

Nothing is timed here: the numbers are read by people, in full runs.  This only
checks that each benchmark completes and prints its table, so that neither rots
between measurements.
"""

from __future__ import annotations

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
    ],
)
def test_quick_run(script: str, headers: tuple[str, ...]) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for header in headers:
        assert header in result.stdout, result.stdout
    assert "mint" in result.stdout
