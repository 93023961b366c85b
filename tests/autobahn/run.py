"""Run Autobahn cases against mint over one transport and report the verdicts.

    python -m tests.autobahn.run --transport http1 --cases "1.*,2.*"
    python -m tests.autobahn.run --transport http2 --cases "12.*,13.*" --compress
    python -m tests.autobahn.run --transport http3 --cases "1.*,9.*"

Starts the fuzzing server (and, for HTTP/2 or HTTP/3, a relay in front of it), runs
the mint client over every selected case, stops everything, prints the
one-line summary and the failing cases, and exits 0 only when every case
passed.  ``tests/test_autobahn.py`` calls ``run_suite`` the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.autobahn.client import AutobahnClient
from tests.autobahn.fuzzing import (
    REPO_ROOT,
    AgentSummary,
    FuzzingServer,
    FuzzingServerError,
    find_wstest,
    read_summaries,
)
from tests.autobahn.relay import H2WebSocketRelay

TRANSPORTS = ("http1", "http2", "http3")


@dataclass(frozen=True)
class SuiteRun:
    """What one run produced: the server's verdicts and the client's own view."""

    summary: AgentSummary
    case_count: int
    client_notes: dict[int, str]
    wall_seconds: float
    outdir: Path

    @property
    def passed(self) -> bool:
        return self.summary.passed and len(self.summary.results) == self.case_count

    def report(self) -> str:
        lines = [self.summary.report()]
        if len(self.summary.results) != self.case_count:
            lines.append(
                f"  MISSING: the server offered {self.case_count} cases,"
                f" the report holds {len(self.summary.results)}"
            )
        lines += [f"  client note, case #{n}: {note}" for n, note in self.client_notes.items()]
        lines.append(f"  wall time {self.wall_seconds:.1f} s; report in {self.outdir}")
        return "\n".join(lines)


def default_outdir(transport: str, label: str) -> Path:
    return REPO_ROOT / "reports" / "autobahn" / f"{transport}-{label}"


@contextlib.contextmanager
def _endpoint(server: FuzzingServer, transport: str) -> Iterator[tuple[str, int, str | None]]:
    """Where the client connects (and the CA to trust): the fuzzing server, or a relay."""
    if transport == "http2":
        with H2WebSocketRelay(server.host, server.port) as relay:
            yield relay.host, relay.port, None
    elif transport == "http3":
        # Imported here: the HTTP/3 relay needs aioquic, the other transports do not.
        from tests.autobahn.relay_h3 import H3WebSocketRelay

        with H3WebSocketRelay(server.host, server.port) as quic_relay:
            yield quic_relay.host, quic_relay.port, quic_relay.cafile
    else:
        yield server.host, server.port, None


def run_suite(
    *,
    transport: str,
    cases: list[str],
    label: str,
    compress: bool = False,
    outdir: Path | None = None,
    wstest: Path | None = None,
) -> SuiteRun:
    """Run ``cases`` (suite patterns like "1.*") over ``transport`` and summarize."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
    wstest = wstest or find_wstest()
    if wstest is None:
        raise FuzzingServerError("no Python 2.7 found: cannot run the fuzzing server")
    outdir = outdir or default_outdir(transport, label)
    agent = f"mint-{transport}{'-deflate' if compress else ''}"
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(FuzzingServer(wstest=wstest, outdir=outdir, cases=cases))
        host, port, cafile = stack.enter_context(_endpoint(server, transport))
        client = AutobahnClient(
            host=host,
            port=port,
            agent=agent,
            transport=transport,
            compress=compress,
            cafile=cafile,
        )
        count = client.run_all()
    wall = time.monotonic() - started
    summaries = [s for s in read_summaries(outdir, f"autobahn {label}") if s.agent == agent]
    if not summaries:
        raise FuzzingServerError(f"the report in {outdir} has no results for agent {agent}")
    return SuiteRun(
        summary=summaries[0],
        case_count=count,
        client_notes=dict(client.notes),
        wall_seconds=wall,
        outdir=outdir,
    )


def parse_cases(text: str) -> list[str]:
    return [case.strip() for case in text.split(",") if case.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.autobahn.run", description=__doc__)
    parser.add_argument("--transport", choices=TRANSPORTS, default="http1")
    parser.add_argument("--cases", default="*", help='comma-separated patterns, e.g. "1.*,2.*"')
    parser.add_argument("--compress", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--label", help="names the run in the summary and the report folder")
    parser.add_argument("--outdir", type=Path, help="report folder (default reports/autobahn/)")
    args = parser.parse_args(argv)
    cases = parse_cases(args.cases)
    label = args.label or f"{args.transport} {args.cases}"
    outdir = args.outdir or default_outdir(
        args.transport, (args.label or args.cases).replace("*", "x").replace(",", "_")
    )
    try:
        result = run_suite(
            transport=args.transport,
            cases=cases,
            label=label,
            compress=args.compress,
            outdir=outdir,
        )
    except FuzzingServerError as exc:
        print(f"autobahn: {exc}", file=sys.stderr)
        return 2
    print(result.report())
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
