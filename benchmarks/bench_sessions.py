"""The session layer (``mint.client``) against other Python WebSocket clients, one run.

    python benchmarks/bench_sessions.py            # 5 rounds
    python benchmarks/bench_sessions.py -r 9       # more rounds
    python benchmarks/bench_sessions.py --quick    # a smoke run (tiny workloads, 1 round)

Every client talks to the same echo server: picows's server (compiled, so the
server is not what is measured), in a child process pinned to the client's CPU,
over HTTP/1.1 on 127.0.0.1, no compression anywhere.  Workloads, per client:

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Message = str | bytes
SMALL = "x" * 32
BIG = bytes(range(256)) * 4096  # 1 MiB


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
    cross-CPU wake-ups, which on a VM vary by far more than the clients differ."""
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
    def __init__(self, url: str) -> None:
        from mint import client

        self.ws = client.connect(url, compression=False, ping_interval=None, max_size=None)

    def send(self, message: Message) -> None:
        self.ws.send(message)

    def recv(self) -> Message:
        return self.ws.recv()

    def close(self) -> None:
        self.ws.close()


class WebsocketsSync(BlockingClient):
    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, compression=None, max_size=None, ping_interval=None)

    def send(self, message: Message) -> None:
        self.ws.send(message)

    def recv(self) -> Message:
        return self.ws.recv()

    def close(self) -> None:
        self.ws.close()


class WebsocketClient(BlockingClient):
    """websocket-client (the ``websocket`` module)."""

    def __init__(self, url: str) -> None:
        import websocket

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
    async def send(self, message: Message) -> None:
        raise NotImplementedError

    async def recv(self) -> Message:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class MintAsync(AsyncClient):
    async def open(self, url: str) -> MintAsync:
        from mint.client import aio

        self.ws = await aio.connect(url, compression=False, ping_interval=None, max_size=None)
        return self

    async def send(self, message: Message) -> None:
        await self.ws.send(message)

    async def recv(self) -> Message:
        return await self.ws.recv()

    async def close(self) -> None:
        await self.ws.close()


class WebsocketsAsync(AsyncClient):
    async def open(self, url: str) -> WebsocketsAsync:
        from websockets.asyncio.client import connect

        self.ws = await connect(url, compression=None, max_size=None, ping_interval=None)
        return self

    async def send(self, message: Message) -> None:
        await self.ws.send(message)

    async def recv(self) -> Message:
        return await self.ws.recv()

    async def close(self) -> None:
        await self.ws.close()


class Aiohttp(AsyncClient):
    async def open(self, url: str) -> Aiohttp:
        import aiohttp

        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(url, max_msg_size=0, autoping=True)
        return self

    async def send(self, message: Message) -> None:
        if isinstance(message, str):
            await self.ws.send_str(message)
        else:
            await self.ws.send_bytes(message)

    async def recv(self) -> Message:
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
        self.transport, _ = await picows.ws_connect(Listener, url, max_frame_size=64 * 2**20)
        return self

    async def send(self, message: Message) -> None:
        if isinstance(message, str):
            self.transport.send(self.msg_types.TEXT, message.encode())
        else:
            self.transport.send(self.msg_types.BINARY, message)

    async def recv(self) -> Message:
        return await self.queue.get()

    async def close(self) -> None:
        self.transport.send_close()
        self.transport.disconnect()
        await self.transport.wait_disconnected()


BLOCKING: dict[str, Callable[[str], BlockingClient]] = {
    "mint session (blocking)": MintBlocking,
    "websockets sync": WebsocketsSync,
    "websocket-client": WebsocketClient,
}
ASYNCIO: dict[str, Callable[[], AsyncClient]] = {
    "mint session (asyncio)": MintAsync,
    "websockets asyncio": WebsocketsAsync,
    "aiohttp": Aiohttp,
    "picows": Picows,
}


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


def measure(name: str, url: str, workload: Workload) -> float:
    """Messages per second for one client on one workload (connecting not timed)."""
    if name in BLOCKING:
        blocking = BLOCKING[name](url)
        started = time.perf_counter()
        run_blocking(blocking, workload)
        elapsed = time.perf_counter() - started
        blocking.close()
        return workload.count / elapsed

    async def main() -> float:
        client = await ASYNCIO[name]().open(url)  # type: ignore[attr-defined]
        started = time.perf_counter()
        await run_async(client, workload)
        elapsed = time.perf_counter() - started
        await client.close()
        return float(workload.count / elapsed)

    return asyncio.run(main())


def workloads(quick: bool) -> list[Workload]:
    scale = 50 if quick else 1
    return [
        Workload("round trips, 32 B", SMALL, 5_000 // scale, pipelined=False),
        Workload("pipelined, 32 B", SMALL, 20_000 // scale, pipelined=True),
        Workload("1 MiB echoes", BIG, max(2, 32 // scale), pipelined=False),
    ]


TARGETS = [
    ("mint session (blocking)", "websockets sync"),
    ("mint session (asyncio)", "websockets asyncio"),
]
INFO = [
    ("mint session (asyncio)", "aiohttp"),
    ("mint session (asyncio)", "picows"),
    ("mint session (blocking)", "picows"),
]


def report(
    results: dict[tuple[str, str], list[float]], names: list[str], work: list[Workload]
) -> str:
    medians = {key: statistics.median(values) for key, values in results.items()}
    lines = ["| client | " + " | ".join(w.name for w in work) + " |"]
    lines.append("|---" * (len(work) + 1) + "|")
    for name in names:
        cells = [f"{medians[(name, w.name)]:,.0f}/s" for w in work]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| ratio (above 1: mint faster) | " + " | ".join(w.name for w in work) + " |")
    lines.append("|---" * (len(work) + 1) + "|")
    for mint, peer in TARGETS + INFO:
        cells = [f"{medians[(mint, w.name)] / medians[(peer, w.name)]:.2f}x" for w in work]
        target = " (target >= 1)" if (mint, peer) in TARGETS else ""
        lines.append(f"| {mint} / {peer}{target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny workloads, one round")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _pin(0)
        _serve()
        return
    _pin(0)
    rounds = 1 if args.quick else args.rounds
    work = workloads(args.quick)
    names = list(BLOCKING) + list(ASYNCIO)
    results: dict[tuple[str, str], list[float]] = {}
    with echo_server() as port:
        url = f"ws://127.0.0.1:{port}/echo"
        for workload in work:
            for name in names:  # warm-up, not counted
                measure(
                    name, url, Workload(workload.name, workload.message, 10, workload.pipelined)
                )
            for round_ in range(rounds):
                for name in names:
                    rate = measure(name, url, workload)
                    results.setdefault((name, workload.name), []).append(rate)
                print(f"{workload.name}: round {round_ + 1}/{rounds}", file=sys.stderr)
    print(f"## Sessions: messages per second, median of {rounds} round(s)\n")
    print(report(results, names, work))


if __name__ == "__main__":
    main()
