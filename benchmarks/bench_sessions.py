"""The session layer (``mint.client``) against other Python WebSocket clients, one run.

    python benchmarks/bench_sessions.py            # 5 rounds
    python benchmarks/bench_sessions.py -r 9       # more rounds
    python benchmarks/bench_sessions.py --quick    # a smoke run (tiny workloads, 1 round)
    python benchmarks/bench_sessions.py --no-h2c   # the headline table only

The headline: every client talks to the same echo server, picows's server
(compiled, so the server is not what is measured), in a child process pinned
to the client's CPU, over HTTP/1.1 on 127.0.0.1, no compression anywhere.
Workloads, per client:

* round trips: 32-byte text messages, one at a time (send, wait for the echo);
* pipelined: 20,000 32-byte messages sent while the echoes are received
  (a sender thread or task beside the receiver: with bounded receive queues,
  sending everything before reading anything deadlocks any client);
* 1 MiB: binary echoes of 1 MiB, one at a time.

Rounds alternate the clients (mint, websockets, aiohttp, ... then again) so
that drift hits all alike; the tables show the median messages per second and
the ratios the targets are stated in: mint's blocking session over
websockets' sync client, mint's asyncio session over websockets' asyncio
client (above 1: mint is faster).

A second, smaller table runs mint over h2c (HTTP/2 with prior knowledge,
RFC 8441) against hypercorn, the repository's HTTP/2 echo server
(``_echo_server.py``, HTTP/2 receive windows widened to 16 MiB so a 1 MiB
upload waits for no WINDOW_UPDATE), beside mint and websockets over HTTP/1.1
to the same server.  hypercorn is written in Python and shares the CPU, so
that table says what HTTP/2 costs mint on one server, not how fast clients are.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

Message = str | bytes
SMALL = "x" * 32
BIG = bytes(range(256)) * 4096  # 1 MiB
#: hypercorn's HTTP/2 receive windows in the h2c table (see ``_echo_server._widen_http2_windows``).
H2C_WINDOW = 16 * 2**20


# -- the server (child process) ------------------------------------------------------------


def _serve() -> None:
    import picows

    class Echo(picows.WSListener):
        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            if frame.msg_type == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            elif frame.msg_type == picows.WSMsgType.PING:
                transport.send_pong(frame.get_payload_as_bytes())
            elif frame.msg_type in (picows.WSMsgType.TEXT, picows.WSMsgType.BINARY):
                transport.send(frame.msg_type, frame.get_payload_as_memoryview())

    async def main() -> None:
        server = await picows.ws_create_server(
            lambda request: Echo(), "127.0.0.1", 0, max_frame_size=64 * 2**20
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _pin(cpu: int) -> None:
    """Client and server on the same CPU: a round trip is then two context switches, not two
    cross-CPU wake-ups, which on a VM vary by far more than the clients differ.

    Children inherit the mask, so hypercorn (started after this) is pinned too."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {cpu})


@contextmanager
def echo_server() -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the echo server did not start (said {line!r})")
        yield int(line)
    finally:
        process.terminate()
        process.wait(10)


# -- the clients ---------------------------------------------------------------------------


class BlockingClient:
    """send / recv / close over one WebSocket, blocking."""

    def send(self, message: Message) -> None:
        raise NotImplementedError

    def recv(self) -> Message:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class MintBlocking(BlockingClient):
    def __init__(self, url: str, *, http2: bool = False) -> None:
        from mint import client

        self.ws = client.connect(
            url, http2=http2, compression=False, ping_interval=None, max_size=None
        )
        expected = "HTTP/2" if http2 else "HTTP/1.1"
        if self.ws.connection.version != expected:
            raise RuntimeError(f"mint spoke {self.ws.connection.version}, wanted {expected}")

    def send(self, message: Message) -> None:
        self.ws.send(message)

    def recv(self) -> Message:
        return self.ws.recv()

    def close(self) -> None:
        self.ws.close()


class WebsocketsSync(BlockingClient):
    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        # legacy=True: connect() returns the connection (websockets 17.1 warns otherwise).
        self.ws = connect(url, compression=None, max_size=None, ping_interval=None, legacy=True)

    def send(self, message: Message) -> None:
        self.ws.send(message)

    def recv(self) -> Message:
        return self.ws.recv()

    def close(self) -> None:
        self.ws.close()


class WebsocketClient(BlockingClient):
    """websocket-client (the ``websocket`` module); it has no compression."""

    def __init__(self, url: str) -> None:
        import websocket

        # enable_multithread: a lock around sends, for the pipelined sender thread.
        self.ws = websocket.create_connection(url, enable_multithread=True)

    def send(self, message: Message) -> None:
        if isinstance(message, str):
            self.ws.send(message)
        else:
            self.ws.send_binary(message)

    def recv(self) -> Message:
        received: Message = self.ws.recv()
        return received

    def close(self) -> None:
        self.ws.close()


class AsyncClient:
    """``send`` and ``recv`` return the library's own awaitable where it has one (a plain
    method, not a coroutine of the harness's around the library's), so that a round trip
    costs each client what its users pay, without a layer of ours."""

    def send(self, message: Message) -> Awaitable[None]:
        raise NotImplementedError

    def recv(self) -> Awaitable[Message]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class MintAsync(AsyncClient):
    def __init__(self, *, http2: bool = False) -> None:
        self.http2 = http2

    async def open(self, url: str) -> MintAsync:
        from mint.client import aio

        self.ws = await aio.connect(
            url, http2=self.http2, compression=False, ping_interval=None, max_size=None
        )
        expected = "HTTP/2" if self.http2 else "HTTP/1.1"
        if self.ws.connection.version != expected:
            raise RuntimeError(f"mint spoke {self.ws.connection.version}, wanted {expected}")
        return self

    def send(self, message: Message) -> Awaitable[None]:
        return self.ws.send(message)

    def recv(self) -> Awaitable[Message]:
        return self.ws.recv()

    async def close(self) -> None:
        await self.ws.close()


class WebsocketsAsync(AsyncClient):
    async def open(self, url: str) -> WebsocketsAsync:
        from websockets.asyncio.client import connect

        self.ws = await connect(url, compression=None, max_size=None, ping_interval=None)
        return self

    def send(self, message: Message) -> Awaitable[None]:
        return self.ws.send(message)

    def recv(self) -> Awaitable[Message]:
        return self.ws.recv()

    async def close(self) -> None:
        await self.ws.close()


class Aiohttp(AsyncClient):
    async def open(self, url: str) -> Aiohttp:
        import aiohttp

        self.session = aiohttp.ClientSession()
        # compress=0 (no permessage-deflate) and heartbeat=None are aiohttp's defaults.
        self.ws = await self.session.ws_connect(url, max_msg_size=0, compress=0)
        return self

    def send(self, message: Message) -> Awaitable[None]:
        if isinstance(message, str):
            return self.ws.send_str(message)
        return self.ws.send_bytes(message)

    async def recv(self) -> Message:  # aiohttp answers a WSMessage: its data is taken here
        received = await self.ws.receive()
        data: Message = received.data
        return data

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


class Picows(AsyncClient):
    """picows is callback-based: its listener feeds a queue the benchmark reads."""

    async def open(self, url: str) -> Picows:
        import picows

        queue: asyncio.Queue[Message] = asyncio.Queue()
        self.queue = queue

        class Listener(picows.WSListener):
            def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
                if frame.msg_type == picows.WSMsgType.TEXT:
                    queue.put_nowait(frame.get_payload_as_utf8_text())
                elif frame.msg_type == picows.WSMsgType.BINARY:
                    queue.put_nowait(frame.get_payload_as_bytes())

        self.msg_types = picows.WSMsgType
        self.sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.set_result(None)
        self.transport, _ = await picows.ws_connect(Listener, url, max_frame_size=64 * 2**20)
        return self

    def send(self, message: Message) -> Awaitable[None]:
        if isinstance(message, str):
            self.transport.send(self.msg_types.TEXT, message.encode())
        else:
            self.transport.send(self.msg_types.BINARY, message)
        return self.sent  # picows sends without waiting: an awaitable already done

    def recv(self) -> Awaitable[Message]:
        return self.queue.get()

    async def close(self) -> None:
        self.transport.send_close()
        self.transport.disconnect()
        await self.transport.wait_disconnected()


@dataclass(frozen=True)
class Contender:
    """A row: a client opened one way or the other (blocking or asyncio)."""

    name: str
    blocking: Callable[[str], BlockingClient] | None = None
    asyncio: Callable[[str], Awaitable[AsyncClient]] | None = None


MINT_BLOCKING = "mint session (blocking)"
MINT_ASYNC = "mint session (asyncio)"
WS_SYNC = "websockets sync"
WS_ASYNC = "websockets asyncio"

FLOOR_BLOCKING = "floor: bare socket (blocking)"
FLOOR_ASYNC = "floor: bare protocol (asyncio)"
CODEC_FLOOR_ASYNC = "floor: mint's codec alone (asyncio)"


def _floor_blocking(url: str) -> BlockingClient:
    from _floor_clients import FloorBlocking

    client: BlockingClient = FloorBlocking(url)  # type: ignore[assignment]
    return client


async def _codec_floor_async(url: str) -> AsyncClient:
    from _floor_clients import CodecFloorAsync

    client: AsyncClient = await CodecFloorAsync().open(url)  # type: ignore[assignment]
    return client


async def _floor_async(url: str) -> AsyncClient:
    from _floor_clients import FloorAsync

    client: AsyncClient = await FloorAsync().open(url)  # type: ignore[assignment]
    return client


HEADLINE = [
    Contender(MINT_BLOCKING, blocking=MintBlocking),
    Contender(WS_SYNC, blocking=WebsocketsSync),
    Contender("websocket-client", blocking=WebsocketClient),
    Contender(MINT_ASYNC, asyncio=lambda url: MintAsync().open(url)),
    Contender(WS_ASYNC, asyncio=lambda url: WebsocketsAsync().open(url)),
    Contender("aiohttp", asyncio=lambda url: Aiohttp().open(url)),
    Contender("picows", asyncio=lambda url: Picows().open(url)),
    Contender(FLOOR_BLOCKING, blocking=_floor_blocking),
    Contender(FLOOR_ASYNC, asyncio=_floor_async),
    Contender(CODEC_FLOOR_ASYNC, asyncio=_codec_floor_async),
]
H2C_BLOCKING = "mint blocking, h2c"
H2C_ASYNC = "mint asyncio, h2c"
H1_BLOCKING = "mint blocking, HTTP/1.1"
H1_ASYNC = "mint asyncio, HTTP/1.1"
H2C = [
    Contender(H2C_BLOCKING, blocking=lambda url: MintBlocking(url, http2=True)),
    Contender(H1_BLOCKING, blocking=MintBlocking),
    Contender(WS_SYNC, blocking=WebsocketsSync),
    Contender(H2C_ASYNC, asyncio=lambda url: MintAsync(http2=True).open(url)),
    Contender(H1_ASYNC, asyncio=lambda url: MintAsync().open(url)),
    Contender(WS_ASYNC, asyncio=lambda url: WebsocketsAsync().open(url)),
]


# -- workloads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    message: Message
    count: int
    pipelined: bool


def _check(sent: Message, received: Message) -> None:
    if received != sent:
        raise RuntimeError(f"echo mismatch: {type(received).__name__} of {len(received)}")


def run_blocking(client: BlockingClient, workload: Workload) -> None:
    message, count = workload.message, workload.count
    if not workload.pipelined:
        for _ in range(count):
            client.send(message)
            _check(message, client.recv())
        return

    def send_all() -> None:
        for _ in range(count):
            client.send(message)

    sender = threading.Thread(target=send_all)
    sender.start()
    for _ in range(count):
        _check(message, client.recv())
    sender.join()


async def run_async(client: AsyncClient, workload: Workload) -> None:
    message, count = workload.message, workload.count
    if not workload.pipelined:
        for _ in range(count):
            await client.send(message)
            _check(message, await client.recv())
        return

    async def send_all() -> None:
        for _ in range(count):
            await client.send(message)

    async def receive_all() -> None:
        for _ in range(count):
            _check(message, await client.recv())

    await asyncio.gather(send_all(), receive_all())


@dataclass(frozen=True)
class Sample:
    """One client on one workload: wall-clock messages per second, client CPU per message."""

    rate: float
    cpu_us: float


def measure(contender: Contender, url: str, workload: Workload) -> Sample:
    """One client on one workload (connecting not timed).

    The CPU is the client process's (every thread), so the server's never counts.
    """
    if contender.blocking is not None:
        blocking = contender.blocking(url)
        cpu, started = time.process_time(), time.perf_counter()
        run_blocking(blocking, workload)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        blocking.close()
        return Sample(workload.count / elapsed, cpu * 1e6 / workload.count)

    opener = contender.asyncio
    assert opener is not None

    async def main() -> Sample:
        client = await opener(url)
        cpu, started = time.process_time(), time.perf_counter()
        await run_async(client, workload)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await client.close()
        return Sample(workload.count / elapsed, cpu * 1e6 / workload.count)

    return asyncio.run(main())


def workloads(quick: bool, counts: tuple[int, int, int]) -> list[Workload]:
    scale = 50 if quick else 1
    small, pipelined, big = counts
    return [
        Workload("round trips, 32 B", SMALL, max(10, small // scale), pipelined=False),
        Workload("pipelined, 32 B", SMALL, max(10, pipelined // scale), pipelined=True),
        Workload("1 MiB echoes", BIG, max(2, big // scale), pipelined=False),
    ]


Results = dict[tuple[str, str], list[Sample]]


def run_table(contenders: list[Contender], url: str, work: list[Workload], rounds: int) -> Results:
    """Every workload: a warm-up per client, then ``rounds`` rounds alternating the clients."""
    results: Results = {}
    for workload in work:
        for contender in contenders:  # warm-up, not counted
            measure(contender, url, replace(workload, count=min(10, workload.count)))
        for round_ in range(rounds):
            for contender in contenders:
                sample = measure(contender, url, workload)
                results.setdefault((contender.name, workload.name), []).append(sample)
            print(f"{workload.name}: round {round_ + 1}/{rounds}", file=sys.stderr)
    return results


def report(
    results: Results,
    names: list[str],
    work: list[Workload],
    ratios: list[tuple[str, str, str]],
    *,
    by_cpu: bool = False,
) -> str:
    """Medians per client, then the ``ratios`` (mint, peer, note); above 1: mint does better.

    Ratios are of messages per second, or (``by_cpu``) of the peer's client CPU
    per message over mint's.
    """
    rate = {k: statistics.median(s.rate for s in v) for k, v in results.items()}
    cpu = {k: statistics.median(s.cpu_us for s in v) for k, v in results.items()}
    header = " | ".join(f"{w.name} ({w.count:,})" for w in work)
    lines = [f"| client | {header} |", "|---" + "|---:" * len(work) + "|"]
    for name in names:
        cells = [f"{rate[(name, w.name)]:,.0f}/s, CPU {cpu[(name, w.name)]:,.1f} µs" for w in work]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    what = "client CPU, peer ÷ mint" if by_cpu else "messages per second, mint ÷ peer"
    lines.append(
        f"| ratio ({what}; above 1: mint better) | " + " | ".join(w.name for w in work) + " |"
    )
    lines.append("|---" + "|---:" * len(work) + "|")
    for mint, peer, note in ratios:
        if by_cpu:
            cells = [f"{cpu[(peer, w.name)] / cpu[(mint, w.name)]:.2f}x" for w in work]
            label = f"{peer}{note} ÷ {mint}"
        else:
            cells = [f"{rate[(mint, w.name)] / rate[(peer, w.name)]:.2f}x" for w in work]
            label = f"{mint} ÷ {peer}{note}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


HEADLINE_RATIOS = [
    (MINT_BLOCKING, WS_SYNC, " (target >= 1)"),
    (MINT_ASYNC, WS_ASYNC, " (target >= 1)"),
    (MINT_ASYNC, "aiohttp", ""),
    (MINT_ASYNC, "picows", ""),
    (MINT_BLOCKING, "picows", ""),
    # What any Python client of each shape can reach (``_floor_clients``), and mint beside it.
    (FLOOR_BLOCKING, "picows", ""),
    (FLOOR_ASYNC, "picows", ""),
    (MINT_BLOCKING, FLOOR_BLOCKING, ""),
    (MINT_ASYNC, FLOOR_ASYNC, ""),
    # mint's codec with nothing around it: the most the asyncio session could reach.
    (CODEC_FLOOR_ASYNC, "picows", ""),
    (CODEC_FLOOR_ASYNC, "aiohttp", ""),
    (MINT_ASYNC, CODEC_FLOOR_ASYNC, ""),
]
H2C_RATIOS = [  # client CPU per message: the peer's over mint's over h2c
    (H2C_BLOCKING, H1_BLOCKING, ""),
    (H2C_ASYNC, H1_ASYNC, ""),
    (H2C_BLOCKING, WS_SYNC, " (HTTP/1.1)"),
    (H2C_ASYNC, WS_ASYNC, " (HTTP/1.1)"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-r", "--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny workloads, one round")
    parser.add_argument("--no-h2c", action="store_true", help="skip the h2c table (hypercorn)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _pin(0)
    if args.serve:
        _serve()
        return
    rounds = 1 if args.quick else args.rounds
    work = workloads(args.quick, (5_000, 20_000, 32))
    with echo_server() as port:
        results = run_table(HEADLINE, f"ws://127.0.0.1:{port}/echo", work, rounds)
    print(f"## Sessions: messages per second, median of {rounds} round(s)\n")
    print(
        "picows's echo server, HTTP/1.1, no compression, client and server on one CPU;"
        " cells: messages per second, client CPU per message.\n"
    )
    print(report(results, [c.name for c in HEADLINE], work, HEADLINE_RATIOS))
    sys.stdout.flush()
    if args.no_h2c:
        return

    from _echo_server import echo_server as hypercorn_server

    work = workloads(args.quick, (1_000, 5_000, 8))
    with hypercorn_server(window=H2C_WINDOW) as port:
        results = run_table(H2C, f"ws://127.0.0.1:{port}/echo", work, rounds)
    print(f"\n## h2c: mint over HTTP/2 against hypercorn, median of {rounds} round(s)\n")
    print(
        "hypercorn (Python) is most of each round trip, so the ratios compare client CPU"
        " per message (messages per second mostly measure the server).\n"
    )
    print(report(results, [c.name for c in H2C], work, H2C_RATIOS, by_cpu=True))


if __name__ == "__main__":
    main()
