"""Autobahn|Testsuite conformance: mint's client against the real fuzzing server.

Sections 1-10 (framing, pings, reserved bits, opcodes, fragmentation, UTF-8,
close handling, big messages) and 12-13 (permessage-deflate), over HTTP/1.1
directly, over HTTP/2 through the RFC 8441 relay and over HTTP/3 through the
RFC 9220 relay (``tests/autobahn/relay_h3.py``, aioquic).  The bar is every case
passing; each run leaves its HTML/JSON report under ``reports/autobahn/``.

The fuzzing server needs Python 2.7: these tests install it with
``tools/setup_autobahn.sh`` on first use and skip only when no Python 2.7
exists at all.  ``MINT_AUTOBAHN_CASES="1.*,5.1"`` narrows the cases for a
quick local run; by default every case of the section runs.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.autobahn.fuzzing import REPO_ROOT, find_wstest, read_summaries
from tests.autobahn.run import parse_cases, run_suite

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


def _run(wstest: Path, transport: str, sections: str, cases: list[str], compress: bool) -> str:
    """Run one fuzzing-server session; return its report, raising if a case failed."""
    result = run_suite(
        transport=transport,
        cases=_cases(cases),
        label=f"{transport} sections {sections}",
        compress=compress,
        outdir=REPO_ROOT / "reports" / "autobahn" / f"{transport}-{sections}",
        wstest=wstest,
    )
    report = result.report()
    print(report)
    assert result.passed, report
    return report


def _run_both(wstest: Path, sections: str, cases: list[str], compress: bool) -> None:
    """HTTP/1.1 and HTTP/2 side by side, each with its own fuzzing server.

    The Python 2 fuzzing server is single-threaded and is what takes the time
    (the compression sections run for minutes); two of them use both cores of
    a CI machine and halve the wall time.  Each run has its own port, relay and
    report folder, and the client only waits on its sockets, so the threads
    share nothing but the interpreter.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(_run, wstest, transport, sections, cases, compress)
            for transport in ("http1", "http2")
        ]
        failures = [str(run.exception()) for run in runs if run.exception() is not None]
    assert not failures, "\n\n".join(failures)


def test_sections_1_to_10_over_http1_and_http2(wstest: Path) -> None:
    _run_both(wstest, "1-10", SECTIONS_1_TO_10, compress=False)


def test_compression_sections_12_and_13_over_http1_and_http2(wstest: Path) -> None:
    _run_both(wstest, "12-13", SECTIONS_12_AND_13, compress=True)


# HTTP/3 on its own, not beside the others: its client and its relay both run
# aioquic in this process, in Python, and would slow the other runs' clients
# through the GIL while the fuzzing server times them.


def test_sections_1_to_10_over_http3(wstest: Path) -> None:
    _run(wstest, "http3", "1-10", SECTIONS_1_TO_10, compress=False)


#: Sections 12 and 13 over HTTP/3 as CI runs them: the first six cases of every group (every
#: compression setting, messages up to 8 KiB).  The whole sections take about 22 minutes
#: there, nearly all of it aioquic's QUIC in Python; MINT_AUTOBAHN_HTTP3_FULL=1 runs them.
HTTP3_COMPRESSION_SAMPLE = [
    f"{section}.{group}.{case}"
    for section, groups in ((12, 5), (13, 7))
    for group in range(1, groups + 1)
    for case in range(1, 7)
]


def test_compression_sections_12_and_13_over_http3(wstest: Path) -> None:
    full = os.environ.get("MINT_AUTOBAHN_HTTP3_FULL") == "1"
    cases = SECTIONS_12_AND_13 if full else HTTP3_COMPRESSION_SAMPLE
    _run(wstest, "http3", "12-13", cases, compress=True)


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
