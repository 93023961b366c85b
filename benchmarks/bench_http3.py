"""Client CPU per WebSocket message over HTTP/3, against HTTP/2 and HTTP/1.1 (TLS all three).

Run ``python benchmarks/bench_http3.py`` (``--quick`` for a short run).  The
echo servers run in child processes (hypercorn for HTTP/1.1 and HTTP/2,
the tests' aioquic server for HTTP/3), so the CPU time measured
(``getrusage`` of this process) is the client's alone.  The client is mint's
blocking shell, written as a user would: ``upgrade``/``new``, then
``stream_request_body`` and ``recv`` + ``decode`` per echoed message.

The result is a table of microseconds of client CPU per message, per
transport and message size, and the HTTP/3 rows as ratios of the HTTP/2
and HTTP/1.1 ones.  HTTP/3 runs twice: with 1200-byte QUIC packets (what
every path carries, mint's default) and with 16 KiB ones (loopback only,
``http3_max_datagram_size``), which shows how much of the cost is per packet.

Expect HTTP/3 to cost more: QUIC's packets, ACKs, encryption framing and
loss recovery all run in Python in aioquic, where TCP's run in the kernel
and TLS's records in OpenSSL.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from _echo_server import echo_server  # noqa: E402

from mint import http, websocket  # noqa: E402
from mint.http import Data, Headers, Status  # noqa: E402
from mint.websocket import Binary, Frame  # noqa: E402

SIZES = {"32 B": 32, "16 KiB": 16 * 2**10, "1 MiB": 2**20}
H3_WIDE = "HTTP/3, 16 KiB packets"
TRANSPORTS = ("HTTP/1.1 TLS", "HTTP/2 TLS", "HTTP/3", H3_WIDE)
#: QUIC packet sizes: the 1200 bytes any path carries, and what loopback takes.
DATAGRAM_SIZES = {"HTTP/3": 1200, H3_WIDE: 16384}
_READY_TIMEOUT = 20.0


@dataclass(frozen=True)
class Files:
    ca: str
    combined: str  # key and chain in one file, for hypercorn
    cert: str
    key: str


@contextmanager
def certificate_files() -> Iterator[Files]:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    with tempfile.TemporaryDirectory(prefix="mint-bench-h3-") as folder:
        files = Files(*(os.path.join(folder, n) for n in ("ca", "both", "cert", "key")))
        ca.cert_pem.write_to_path(files.ca)
        leaf.private_key_and_cert_chain_pem.write_to_path(files.combined)
        leaf.cert_chain_pems[0].write_to_path(files.cert)
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(files.cert, append=True)
        leaf.private_key_pem.write_to_path(files.key)
        yield files


@contextmanager
def h3_server(files: Files, datagram_size: int) -> Iterator[int]:
    """The tests' aioquic echo in a child process (this file with ``--serve-h3``)."""
    command = [sys.executable, __file__, "--serve-h3", files.cert, files.key, str(datagram_size)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the HTTP/3 echo server failed to start (said {line!r})")
        yield int(line)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def _serve_h3(cert: str, key: str, datagram_size: str) -> None:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from servers.h3_server import h3_echo_server

    with h3_echo_server(cert, key, max_datagram_size=int(datagram_size)) as server:
        print(server.port, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(transport: str, port: int, ca: str, size: int, count: int) -> float:
    """Client CPU seconds per echoed message of ``size`` bytes."""
    protocols = ("http3",) if transport in DATAGRAM_SIZES else ("http1",)
    if transport == "HTTP/2 TLS":
        protocols = ("http2",)
    conn = http.connect(
        "https",
        "127.0.0.1",
        port,
        protocols=protocols,
        cafile=ca,
        http3_max_datagram_size=DATAGRAM_SIZES.get(transport, 1200),
    )
    try:
        ref = websocket.upgrade("wss", conn, "/", [])
        status: int | None = None
        headers: list[tuple[str, str]] | None = None
        while headers is None:
            for event in conn.recv(10):
                if isinstance(event, Status):
                    status = event.status
                elif isinstance(event, Headers):
                    headers = event.headers
        assert status is not None
        ws = websocket.new(conn, ref, status, headers)
        payload = os.urandom(size)

        def round_trip() -> None:
            conn.stream_request_body(ref, ws.encode(Binary(payload)))
            frames: list[Frame] = []
            while not frames:
                for event in conn.recv(30):
                    if isinstance(event, Data):
                        frames.extend(ws.decode(event.data))
            assert frames == [Binary(payload)]

        for _ in range(max(2, count // 10)):  # warm up (windows, congestion window, caches)
            round_trip()
        started = _cpu()
        for _ in range(count):
            round_trip()
        return (_cpu() - started) / count
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few messages: checks it runs")
    parser.add_argument(
        "--serve-h3", nargs=3, metavar=("CERT", "KEY", "SIZE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_h3:
        _serve_h3(*args.serve_h3)
        return
    counts = {"32 B": 2000, "16 KiB": 1000, "1 MiB": 40}
    if args.quick:
        counts = {name: 5 for name in counts}
    results: dict[tuple[str, str], float] = {}
    with ExitStack() as stack:
        files = stack.enter_context(certificate_files())
        tls_port = stack.enter_context(echo_server(files.combined))
        ports = {"HTTP/1.1 TLS": tls_port, "HTTP/2 TLS": tls_port}
        for transport, size in DATAGRAM_SIZES.items():
            ports[transport] = stack.enter_context(h3_server(files, size))
        for name, size in SIZES.items():
            for transport in TRANSPORTS:
                started = time.monotonic()
                results[transport, name] = measure(
                    transport, ports[transport], files.ca, size, counts[name]
                )
                wall = time.monotonic() - started
                print(f"  measured {transport} {name} in {wall:.1f} s", file=sys.stderr)
    print("## Client CPU per echoed message (µs), mint's blocking shell, loopback TLS\n")
    ratios = " | HTTP/3 ÷ HTTP/2 | HTTP/3 ÷ HTTP/1.1 | 16 KiB packets ÷ HTTP/2 |"
    print("| message | " + " | ".join(TRANSPORTS) + ratios)
    print("|---" * (len(TRANSPORTS) + 4) + "|")
    for name in SIZES:
        cells = [f"{results[t, name] * 1e6:,.0f}" for t in TRANSPORTS]
        h3 = results["HTTP/3", name]
        h2 = results["HTTP/2 TLS", name]
        h1 = results["HTTP/1.1 TLS", name]
        wide = results[H3_WIDE, name]
        print(
            f"| {name} | " + " | ".join(cells) + f" | {h3 / h2:.1f}x | {h3 / h1:.1f}x"
            f" | {wide / h2:.1f}x |"
        )


if __name__ == "__main__":
    main()
