"""The DESIGN.md flow, step by step, against echo servers this script starts itself.

Run it with ``./dev demo``.  It runs the flow twice: over HTTP/1.1 against the
``websockets`` package's server, then over HTTP/2 (RFC 8441 extended CONNECT,
h2c) against hypercorn.  Both servers listen on 127.0.0.1 on ports the OS
picks, in background threads of this demo: the threads belong to the demo's
servers, not to mint, which starts none.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from websockets.asyncio.server import ServerConnection, serve

from mint import http, websocket
from mint.websocket import Close, Ping, Pong, Text


@contextmanager
def echo_server() -> Iterator[int]:
    """Start a websockets echo server in a thread; yield its port."""
    ready = threading.Event()
    port_box: list[int] = []
    stop: list[asyncio.Future[None]] = []
    loop = asyncio.new_event_loop()

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async def main() -> None:
        async with serve(echo, "127.0.0.1", 0, compression=None) as server:
            port_box.append(server.sockets[0].getsockname()[1])
            stop.append(loop.create_future())
            ready.set()
            await stop[0]

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield port_box[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set_result, None)
        thread.join(10)


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A WebSocket echo as an ASGI app, for hypercorn."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send(
            {"type": "websocket.send", "bytes": message.get("bytes"), "text": message.get("text")}
        )


@contextmanager
def hypercorn_server() -> Iterator[int]:
    """Start hypercorn (HTTP/1.1 and h2c, RFC 8441 WebSockets) in a thread; yield its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]
    config.loglevel = "WARNING"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(
            hypercorn_serve(asgi_echo, config, shutdown_trigger=stop.wait, mode="asgi")  # type: ignore[arg-type]
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def step(text: str) -> None:
    print(f"-> {text}", flush=True)


def run(port: int, protocols: tuple[str, ...]) -> None:
    step(f'conn = http.connect("http", "127.0.0.1", {port}, protocols={protocols})')
    conn = http.connect("http", "127.0.0.1", port, protocols=protocols)
    print(f"   connected over {conn.version}")
    http2 = conn.version == "HTTP/2"
    if http2:
        print(
            f"   server SETTINGS arrived; extended CONNECT enabled: {conn.extended_connect_enabled}"
        )

    step('ref = websocket.upgrade("ws", conn, "/", [])')
    ref = websocket.upgrade("ws", conn, "/", [])

    step(f"conn.recv(timeout=5) until the {'2xx' if http2 else '101'} and its headers are in")
    status: int | None = None
    headers: list[tuple[str, str]] = []
    early: list[bytes] = []  # WebSocket bytes that came in the same read as the 101
    while not headers:
        for event in conn.recv(timeout=5):
            match event:
                case http.Status(ref=r, status=code) if r == ref:
                    status = code
                case http.Headers(ref=r, headers=resp_headers) if r == ref:
                    headers = resp_headers
                case http.Data(ref=r, data=data) if r == ref:
                    early.append(data)
    print(f"   status {status}, headers {headers}")
    assert status is not None

    step("ws = websocket.new(conn, ref, status, resp_headers)")
    ws = websocket.new(conn, ref, status, headers)
    received = [frame for data in early for frame in ws.decode(data)]

    step('conn.stream_request_body(ref, ws.encode(Text("hello world")))')
    conn.stream_request_body(ref, ws.encode(Text("hello world")))
    step("conn.stream_request_body(ref, ws.encode(Ping(b'are you there?')))")
    conn.stream_request_body(ref, ws.encode(Ping(b"are you there?")))

    step("conn.recv(timeout=5) and ws.decode(data) until the echo and the pong are back")
    while len(received) < 2:
        for event in conn.recv(timeout=5):
            if isinstance(event, http.Data) and event.ref == ref:
                received.extend(ws.decode(event.data))
    print(f"   decoded {received}")
    assert Text("hello world") in received
    assert Pong(b"are you there?") in received

    # On HTTP/2, END_STREAM rides with the Close: the stream's orderly half-close.
    step(f"conn.stream_request_body(ref, ws.encode(Close(1000, 'bye')), end_stream={http2})")
    conn.stream_request_body(ref, ws.encode(Close(1000, "bye")), end_stream=http2)
    while not ws.closed:
        for event in conn.recv(timeout=5):
            if isinstance(event, http.Data) and event.ref == ref:
                for frame in ws.decode(event.data):
                    print(f"   decoded {frame}")
    print(f"   closed cleanly: close_sent={ws.close_sent}, close_received={ws.close_received}")
    conn.close()


def main() -> None:
    with echo_server() as port:
        print(f"== HTTP/1.1: echo server (websockets) listening on 127.0.0.1:{port}")
        run(port, ("http1",))
    with hypercorn_server() as port:
        print(f"\n== HTTP/2: echo server (hypercorn, h2c) listening on 127.0.0.1:{port}")
        run(port, ("http2",))
    print("\ndemo finished: the same flow over HTTP/1.1 and HTTP/2")


if __name__ == "__main__":
    main()
