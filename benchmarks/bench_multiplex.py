"""1,000 WebSockets to one origin: one HTTP/2 connection (mint) against 1,000 HTTP/1.1 ones.

    python benchmarks/bench_multiplex.py              # 1,000 WebSockets, 3 rounds
    python benchmarks/bench_multiplex.py -n 200 -r 1  # smaller
    python benchmarks/bench_multiplex.py --quick      # a smoke run

Each contender runs in a fresh child process (so memory numbers never mix):
it opens N WebSockets at once to one hypercorn server (asyncio for everyone),
exchanges one message on each, checks it, and reports the wall time, its own
CPU time, and the growth of its resident memory (RSS, psutil, after a
``gc.collect()`` as before the baseline) with all N still open.  The server
(hypercorn, h2c and HTTP/1.1 on one port, in its own process) is the same for
all; for the time column it is often the bottleneck (client CPU well under
the wall time says so), which the memory column does not depend on.

Contenders: mint's asyncio ``Client`` over one HTTP/2 connection (RFC 8441),
the same over N HTTP/1.1 connections, ``websockets`` and ``aiohttp`` (N
HTTP/1.1 connections each).  The target: mint over HTTP/2 uses less memory
per WebSocket than any HTTP/1.1 client.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

CONTENDERS = ["mint, one HTTP/2 connection", "mint, HTTP/1.1", "websockets", "aiohttp"]


# -- the server ----------------------------------------------------------------------------------


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send(
            {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        )


def _serve() -> None:
    import functools
    import socket

    import priority.priority
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    # hypercorn announces h2_max_concurrent_streams but caps its scheduler at
    # the priority library's default of 1,000 streams; lift that cap.
    roomy = functools.partial(priority.priority.PriorityTree, maximum_streams=100_000)
    priority.PriorityTree = roomy  # type: ignore[attr-defined,assignment]
    _raise_file_limit()
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    print(listener.getsockname()[1], flush=True)
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]
    config.h2_max_concurrent_streams = 100_000
    config.backlog = 4096
    config.accesslog = None
    config.errorlog = None
    asyncio.run(serve(_echo, config))  # type: ignore[arg-type]


@contextmanager
def server() -> Iterator[int]:
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
            raise RuntimeError(f"the server did not start (said {line!r})")
        time.sleep(0.5)  # hypercorn takes the socket over
        yield int(line)
    finally:
        process.terminate()
        process.wait(10)


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the contenders (each in a child process) -----------------------------------------------


async def _mint(url: str, count: int, http2: bool, hold: Callable[[], Awaitable[None]]) -> None:
    from mint.client import aio

    async with aio.Client(http2=http2, connect_timeout=60) as c:
        sessions = await asyncio.gather(
            *(
                c.connect(url, compression=False, ping_interval=None, open_timeout=60)
                for _ in range(count)
            )
        )

        async def one(i: int, ws: aio.Session) -> None:
            await ws.send(f"message {i}")
            if await ws.recv(60) != f"message {i}":
                raise RuntimeError("echo mismatch")

        await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sessions)))
        if http2 and len(c.connections()) != 1:
            raise RuntimeError(f"{len(c.connections())} connections, wanted 1")
        await hold()
        await asyncio.gather(*(ws.close() for ws in sessions))


async def _websockets(url: str, count: int, hold: Callable[[], Awaitable[None]]) -> None:
    from websockets.asyncio.client import connect

    connections = await asyncio.gather(
        *(connect(url, compression=None, ping_interval=None, open_timeout=60) for _ in range(count))
    )

    async def one(i: int, ws: Any) -> None:
        await ws.send(f"message {i}")
        if await ws.recv() != f"message {i}":
            raise RuntimeError("echo mismatch")

    await asyncio.gather(*(one(i, ws) for i, ws in enumerate(connections)))
    await hold()
    await asyncio.gather(*(ws.close() for ws in connections))


async def _aiohttp(url: str, count: int, hold: Callable[[], Awaitable[None]]) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        connections = await asyncio.gather(*(session.ws_connect(url) for _ in range(count)))

        async def one(i: int, ws: Any) -> None:
            await ws.send_str(f"message {i}")
            if (await ws.receive()).data != f"message {i}":
                raise RuntimeError("echo mismatch")

        await asyncio.gather(*(one(i, ws) for i, ws in enumerate(connections)))
        await hold()
        await asyncio.gather(*(ws.close() for ws in connections))


def _contend(name: str, port: int, count: int) -> None:
    import psutil  # type: ignore[import-untyped]

    _raise_file_limit()
    process = psutil.Process()
    url = f"ws://127.0.0.1:{port}/echo"
    # Import what the contender needs before the baseline, so code is not counted as data.
    import aiohttp  # noqa: F401
    import websockets.asyncio.client  # noqa: F401

    import mint.client.aio  # noqa: F401

    measured: dict[str, float] = {}

    async def hold() -> None:
        measured["seconds"] = time.perf_counter() - started
        measured["cpu"] = time.process_time() - cpu_started
        gc.collect()  # as before the baseline: count what is alive, not garbage in waiting
        measured["rss"] = process.memory_info().rss - baseline

    async def main() -> None:
        if name == "mint, one HTTP/2 connection":
            await _mint(url, count, True, hold)
        elif name == "mint, HTTP/1.1":
            await _mint(url, count, False, hold)
        elif name == "websockets":
            await _websockets(url, count, hold)
        else:
            await _aiohttp(url, count, hold)

    gc.collect()
    baseline = process.memory_info().rss
    started, cpu_started = time.perf_counter(), time.process_time()
    asyncio.run(main())
    print(json.dumps(measured), flush=True)


def measure(name: str, port: int, count: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--contend", name, str(port), str(count)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed: {result.stderr[-2000:]}")
    measured: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=1000)
    parser.add_argument("-r", "--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="50 WebSockets, one round")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--contend", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve()
        return
    if args.contend:
        name, port, count = args.contend
        _contend(name, int(port), int(count))
        return
    count, rounds = (50, 1) if args.quick else (args.count, args.rounds)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
    with server() as port:
        for round_ in range(rounds):
            for name in CONTENDERS:
                results[name].append(measure(name, port, count))
            print(f"round {round_ + 1}/{rounds}", file=sys.stderr)
    per_ws = {
        name: statistics.median(r["rss"] for r in runs) / count for name, runs in results.items()
    }
    print(f"## {count} WebSockets to one origin, median of {rounds} round(s)\n")
    print("| client | time | client CPU | client RSS growth | per WebSocket | mint HTTP/2 ÷ this |")
    print("|---|---:|---:|---:|---:|---:|")
    ours = per_ws[CONTENDERS[0]]
    for name, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        rss = statistics.median(r["rss"] for r in runs)
        ratio = ours / per_ws[name] if per_ws[name] > 0 else float("nan")
        print(
            f"| {name} | {seconds:.2f} s | {cpu:.2f} s | {rss / 2**20:.1f} MiB | "
            f"{per_ws[name] / 1024:.1f} KiB | {ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
