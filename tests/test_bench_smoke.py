"""The session benchmarks still run (smallest setting), so they cannot rot between measurements.

Nothing here is timed: a benchmark's numbers are read by people, in its own
runs; this only checks that each one completes and prints its table.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize(
    ("script", "header"),
    [
        ("bench_sessions.py", "## Sessions: messages per second"),
        ("bench_multiplex.py", "WebSockets to one origin"),
    ],
)
def test_benchmark_runs(script: str, header: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert header in result.stdout
    assert "mint" in result.stdout
