"""End-to-end WebSocket echo over loopback: mint against niquests, websockets and bare clients.

Run ``python benchmarks/bench_e2e.py`` (``--help`` for options, ``--quick`` for a
short run).  hypercorn serves the echo in child processes, so the CPU time
measured here is the client's alone.  See ``benchmarks/README.md`` for what is
measured and how to read it.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from _bare_clients import BareHTTP1Session, BareHTTP2Session
from _echo_clients import (
    EchoSession,
    Message,
    MintSession,
    NiquestsSession,
    WebsocketsSession,
)
from _echo_server import Certificates, certificates, echo_server

H1 = "HTTP/1.1 ws://"
H1_TLS = "HTTP/1.1 TLS"
H2C = "HTTP/2 h2c"
H2_TLS = "HTTP/2 TLS"
#: HTTP/2 against hypercorns whose HTTP/2 receive windows are 16 MiB (see _echo_server).
H2C_WIDE = "HTTP/2 h2c, server window 16 MiB"
H2_TLS_WIDE = "HTTP/2 TLS, server window 16 MiB"
WIDE_WINDOW = 16 * 2**20
TRANSPORTS = (H1, H1_TLS, H2C, H2_TLS, H2C_WIDE, H2_TLS_WIDE)
HTTP1_TRANSPORTS = (H1, H1_TLS)
TLS_TRANSPORTS = (H1_TLS, H2_TLS, H2_TLS_WIDE)
WIDE_TRANSPORTS = (H2C_WIDE, H2_TLS_WIDE)
# A client's HTTP/2 rows are compared with its HTTP/1.1 row of the same security.
HTTP1_TWIN = {H2C: H1, H2_TLS: H1_TLS, H2C_WIDE: H1, H2_TLS_WIDE: H1_TLS}
PROFILE_NAMES = {
    "h1": H1,
    "h1-tls": H1_TLS,
    "h2c": H2C,
    "h2-tls": H2_TLS,
    "h2c-wide": H2C_WIDE,
    "h2-tls-wide": H2_TLS_WIDE,
}

#: The no-library clients of _bare_clients: what the exchange costs with no protocol work.
BARE = "bare"
CLIENTS = ("mint", BARE, "niquests", "websockets")

SMALL_SIZE = 32
LARGE_SIZE = 2**20
HTTP2_CPU_TARGET = 2.0


@dataclass(frozen=True)
class Servers:
    """The running echo servers: cleartext (h1 + h2c) and TLS (ALPN h2 / http/1.1), each
    with hypercorn's own HTTP/2 windows and with 16 MiB ones."""

    plain_port: int
    tls_port: int
    wide_port: int
    wide_tls_port: int
    certs: Certificates

    def port(self, transport: str) -> int:
        """The server a client on ``transport`` talks to."""
        tls = transport in TLS_TRANSPORTS
        if transport in WIDE_TRANSPORTS:
            return self.wide_tls_port if tls else self.wide_port
        return self.tls_port if tls else self.plain_port


@dataclass(frozen=True)
class Target:
    """One client library over one transport."""

    client: str
    transport: str
    open: Callable[[Servers], EchoSession]


def _targets() -> list[Target]:
    def mint(transport: str) -> Target:
        tls = transport in TLS_TRANSPORTS
        http2 = transport not in HTTP1_TRANSPORTS

        def open_session(servers: Servers) -> EchoSession:
            ca_file = servers.certs.ca_file if tls else None
            return MintSession(servers.port(transport), tls=tls, http2=http2, ca_file=ca_file)

        return Target("mint", transport, open_session)

    def bare(transport: str) -> Target:
        tls = transport in TLS_TRANSPORTS
        session = BareHTTP1Session if transport in HTTP1_TRANSPORTS else BareHTTP2Session

        def open_session(servers: Servers) -> EchoSession:
            ca_file = servers.certs.ca_file if tls else None
            return session(servers.port(transport), ca_file=ca_file)

        return Target(BARE, transport, open_session)

    return [
        *(mint(transport) for transport in TRANSPORTS),
        *(bare(transport) for transport in TRANSPORTS),
        Target(
            "niquests",
            H1_TLS,
            lambda s: NiquestsSession(s.tls_port, http2=False, ca_file=s.certs.ca_file),
        ),
        Target(
            "niquests",
            H2_TLS,
            lambda s: NiquestsSession(s.tls_port, http2=True, ca_file=s.certs.ca_file),
        ),
        Target(
            "websockets",
            H1,
            lambda s: WebsocketsSession(s.plain_port, tls=False, ca_file=None),
        ),
        Target(
            "websockets",
            H1_TLS,
            lambda s: WebsocketsSession(s.tls_port, tls=True, ca_file=s.certs.ca_file),
        ),
    ]


@dataclass(frozen=True)
class Workload:
    """Sequential round trips of one message, after a warm-up on the same connection."""

    name: str
    message: Message
    count: int
    warmup: int


def _workloads(small_count: int, large_count: int) -> list[Workload]:
    small = "x" * SMALL_SIZE
    large = bytes(range(256)) * (LARGE_SIZE // 256)
    workloads = [
        Workload(f"{small_count:,} x 32 B text", small, small_count, max(small_count // 20, 50)),
        Workload(f"{large_count:,} x 1 MiB binary", large, large_count, 4),
    ]
    return [workload for workload in workloads if workload.count > 0]  # 0 skips a workload


@dataclass
class Result:
    """All rounds of one target on one workload: seconds of wall and of client CPU."""

    target: Target
    workload: Workload
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    #: Voluntary context switches: how often the client slept, waiting on the server.
    sleeps: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)

    @property
    def sleeps_per_message(self) -> float:
        return statistics.median(self.sleeps) / self.workload.count

    def per_message_us(self, seconds: float) -> float:
        return seconds / self.workload.count * 1e6


@contextmanager
def running_servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        certs = stack.enter_context(certificates())
        plain_port = stack.enter_context(echo_server())
        tls_port = stack.enter_context(echo_server(certs.server_pem))
        wide_port = stack.enter_context(echo_server(window=WIDE_WINDOW))
        wide_tls_port = stack.enter_context(echo_server(certs.server_pem, window=WIDE_WINDOW))
        yield Servers(
            plain_port=plain_port,
            tls_port=tls_port,
            wide_port=wide_port,
            wide_tls_port=wide_tls_port,
            certs=certs,
        )


def measure_once(target: Target, workload: Workload, servers: Servers) -> tuple[float, float, int]:
    """Open a session, warm it up, and time ``workload.count`` round trips.

    Returns wall seconds, client CPU seconds and the times the client slept.
    """
    session = target.open(servers)
    try:
        echo, message = session.echo, workload.message
        for _ in range(workload.warmup):
            echo(message)
        gc.collect()
        switches_start = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(workload.count):
            echo(message)
        cpu_end, wall_end = time.process_time(), time.perf_counter()
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switches_start
    finally:
        session.close()
    return wall_end - wall_start, cpu_end - cpu_start, switches


def run(
    targets: Sequence[Target], workloads: Sequence[Workload], rounds: int, servers: Servers
) -> list[Result]:
    """Every round runs every target once, in an order rotated per round."""
    results: list[Result] = []
    for workload in workloads:
        batch = [Result(target, workload) for target in targets]
        results.extend(batch)
        for round_index in range(rounds):
            shift = round_index % len(batch)
            for result in batch[shift:] + batch[:shift]:
                if result.error is not None:
                    continue
                label = f"{result.target.client} {result.target.transport} {workload.name}"
                _progress(f"round {round_index + 1}/{rounds}: {label}")
                try:
                    wall, cpu, sleeps = measure_once(result.target, workload, servers)
                except Exception as exc:
                    result.error = f"{type(exc).__name__}: {exc}"[:100]
                    _progress(f"  failed: {result.error}")
                    continue
                result.walls.append(wall)
                result.cpus.append(cpu)
                result.sleeps.append(sleeps)
    return results


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- report ----------------------------------------------------------------------------


def _find(results: Sequence[Result], client: str, transport: str, workload: Workload) -> Result:
    for result in results:
        if (result.target.client, result.target.transport, result.workload) == (
            client,
            transport,
            workload,
        ):
            return result
    raise KeyError((client, transport, workload.name))


def _ratio(numerator: Result, denominator: Result) -> float | None:
    if numerator.error or denominator.error or not numerator.cpus or not denominator.cpus:
        return None
    return numerator.cpu / denominator.cpu


def http2_ratio(results: Sequence[Result], result: Result) -> float | None:
    """HTTP/2 CPU per message over HTTP/1.1 (same security), mint's or the bare client's."""
    twin = HTTP1_TWIN.get(result.target.transport)
    client = result.target.client
    if client not in ("mint", BARE) or twin is None:
        return None
    return _ratio(result, _find(results, client, twin, result.workload))


def mint_ratio(results: Sequence[Result], result: Result) -> float | None:
    """Another client's CPU per message over mint's on the same transport."""
    if result.target.client == "mint":
        return None
    return _ratio(result, _find(results, "mint", result.target.transport, result.workload))


def _cell(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.2f}x"


def table(results: Sequence[Result]) -> str:
    lines = [
        "| client | transport | workload | wall s total | wall µs/msg | client CPU µs/msg "
        "| sleeps/msg | CPU HTTP/2 ÷ HTTP/1.1 (same client) | CPU ÷ mint (same transport) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = {transport: index for index, transport in enumerate(TRANSPORTS)}
    clients = {client: index for index, client in enumerate(CLIENTS)}
    workloads = list(dict.fromkeys(result.workload for result in results))
    ordered = sorted(
        results,
        key=lambda r: (
            workloads.index(r.workload),
            order[r.target.transport],
            clients[r.target.client],
        ),
    )
    for result in ordered:
        head = f"| {result.target.client} | {result.target.transport} | {result.workload.name} |"
        if result.error is not None or not result.cpus:
            lines.append(f"{head} failed: {result.error} | | | | | |")
            continue
        lines.append(
            f"{head} {result.wall:.3f} | {result.per_message_us(result.wall):,.1f} "
            f"| {result.per_message_us(result.cpu):,.1f} | {result.sleeps_per_message:,.1f} "
            f"| {_cell(http2_ratio(results, result))} | {_cell(mint_ratio(results, result))} |"
        )
    return "\n".join(lines)


def verdicts(results: Sequence[Result]) -> list[str]:
    """The issue's two targets, checked row by row, each HTTP/2 one beside the bare clients'."""
    lines: list[str] = []
    for result in results:
        label = f"{result.target.client} {result.target.transport}, {result.workload.name}"
        h2 = http2_ratio(results, result) if result.target.client == "mint" else None
        if h2 is not None:
            ok = "met" if h2 <= HTTP2_CPU_TARGET else "MISSED"
            bare = http2_ratio(
                results, _find(results, BARE, result.target.transport, result.workload)
            )
            floor = "" if bare is None else f"; bare clients, no protocol work: {bare:.2f}x"
            lines.append(f"- {label}: HTTP/2 ÷ HTTP/1.1 CPU = {h2:.2f}x (target ≤ 2x): {ok}{floor}")
        other = mint_ratio(results, result)
        if result.target.client == "niquests":
            if other is None:
                lines.append(f"- {label}: no comparison ({result.error or 'no data'})")
            else:
                ok = "met" if other > 1 else "MISSED"
                lines.append(f"- {label}: niquests ÷ mint CPU = {other:.2f}x (target > 1): {ok}")
    return lines


def above_bare(results: Sequence[Result]) -> list[str]:
    """What mint spends over the bare client on each transport: its own share of the cost.

    The bare clients (``_bare_clients``) do the same exchange with no protocol
    work and as few sleeps as the server allows, so what HTTP/2 costs them
    over HTTP/1.1 is what the server's windows and framing cost any client.
    mint's own work is the rest.
    """
    lines: list[str] = []
    for result in results:
        twin_transport = HTTP1_TWIN.get(result.target.transport)
        if result.target.client != "mint" or twin_transport is None:
            continue
        rows = (
            result,
            _find(results, BARE, result.target.transport, result.workload),
            _find(results, "mint", twin_transport, result.workload),
            _find(results, BARE, twin_transport, result.workload),
        )
        if any(row.error or not row.cpus for row in rows):
            continue
        mint_us, bare_us, mint_twin_us, bare_twin_us = (row.per_message_us(row.cpu) for row in rows)
        lines.append(
            f"- {result.target.transport}, {result.workload.name}: mint {mint_us - bare_us:+,.1f} "
            f"µs/msg over the bare client ({twin_transport}: {mint_twin_us - bare_twin_us:+,.1f}); "
            f"HTTP/2 over HTTP/1.1 costs the bare clients {bare_us - bare_twin_us:+,.1f} µs/msg"
        )
    return lines


# -- profiling -------------------------------------------------------------------------


def profile(transport: str, workload: Workload, servers: Servers, top: int) -> str:
    """cProfile over mint's echo loop (after warm-up), timed in client CPU, not wall.

    A wall-clock profile would show the blocking ``recv`` (waiting on the
    server) as the top cost; CPU time shows what the client itself spends.
    """
    target = next(t for t in _targets() if t.client == "mint" and t.transport == transport)
    session = target.open(servers)
    try:
        for _ in range(workload.warmup):
            session.echo(workload.message)
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(workload.count):
            session.echo(workload.message)
        profiler.disable()
    finally:
        session.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    for key in ("cumulative", "tottime"):
        out.write(f"\n### mint {transport}, {workload.name}: top {top} by {key}\n")
        stats.sort_stats(key).print_stats(top)
    return out.getvalue()


# -- command line ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-r", "--rounds", type=int, default=3, help="rounds per target (3)")
    parser.add_argument("--small", type=int, default=10_000, help="32 B round trips (10,000)")
    parser.add_argument("--large", type=int, default=64, help="1 MiB round trips (64)")
    parser.add_argument(
        "--quick", action="store_true", help="1 round, 2,000 small and 16 large round trips"
    )
    parser.add_argument(
        "--client",
        action="append",
        choices=("mint", "niquests", "websockets"),
        help="only these clients (repeatable; mint and the bare clients are always kept)",
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILE_NAMES),
        action="append",
        help="instead of the table: cProfile mint's loop over this transport (repeatable)",
    )
    parser.add_argument("--top", type=int, default=25, help="profile rows to show (25)")
    args = parser.parse_args(argv)
    rounds, small, large = args.rounds, args.small, args.large
    if args.quick:
        rounds, small, large = 1, 2_000, 16
    workloads = _workloads(small, large)

    with running_servers() as servers:
        if args.profile:
            for name in args.profile:
                for workload in workloads:
                    print(profile(PROFILE_NAMES[name], workload, servers, args.top))
            return
        clients = {"mint", BARE, *(args.client or ("niquests", "websockets"))}
        targets = [t for t in _targets() if t.client in clients]
        started = time.perf_counter()
        results = run(targets, workloads, rounds, servers)
        _progress(f"done in {time.perf_counter() - started:.0f} s")

    print(
        f"Python {sys.version.split()[0]}, median of {rounds} round(s); "
        "client CPU = time.process_time() of this process (servers run in other processes)\n"
    )
    print(table(results))
    print()
    print("\n".join(verdicts(results)))
    print(
        "\nmint's own share: its CPU over the bare clients' (_bare_clients.py: the same "
        "exchange with no protocol work, as few sleeps as the server allows):"
    )
    print("\n".join(above_bare(results)))


if __name__ == "__main__":
    main()
