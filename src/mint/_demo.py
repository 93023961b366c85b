"""mint's two layers, against echo servers this module starts itself.

Run it with ``python -m mint demo`` (or ``mint demo``, or ``./dev demo``);
it needs the ``demo`` extra (hypercorn and websockets), which is why it
lives in the package, importable once installed, but is imported only when
asked for.  First the session layer (``mint.client``): two WebSocket
sessions and a plain request sharing one HTTP/2 connection (RFC 8441, h2c)
to hypercorn.  Then the process-less layer underneath, step by step: over
HTTP/1.1 against the ``websockets`` package's server, then over HTTP/2
against hypercorn.  Both servers listen on 127.0.0.1 on ports the OS picks,
in background threads of this demo: the threads belong to the demo's
servers, not to mint, which starts none.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, cast

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from hypercorn.typing import Framework
from websockets.asyncio.server import ServerConnection, serve

from mint import client, http, websocket
from mint.websocket import Close, Ping, Pong, Text


def serve_in_thread(loop: asyncio.AbstractEventLoop, serving: Coroutine[Any, Any, None]) -> None:
    """Run a server's coroutine on its own loop (a thread's target), then close that loop."""
    try:
        loop.run_until_complete(serving)
    finally:
        # Closed here, in its thread, once the server stopped.  A loop left open
        # is closed by the garbage collector instead, which may have finalized
        # the loop's own wake-up socket first: "Exception ignored in
        # BaseEventLoop.__del__ ... Invalid file descriptor: -1" at exit.
        loop.close()


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

    thread = threading.Thread(target=serve_in_thread, args=(loop, main()), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the echo server did not start")
    try:
        yield port_box[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set_result, None)
        thread.join(10)


async def asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A WebSocket echo as an ASGI app, for hypercorn; plain requests get 200 "hello"."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})
        return
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
    app = cast(Framework, asgi_echo)
    serving = hypercorn_serve(app, config, shutdown_trigger=stop.wait, mode="asgi")
    thread = threading.Thread(target=serve_in_thread, args=(loop, serving), daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def step(text: str) -> None:
    print(f"-> {text}", flush=True)


def sessions(port: int) -> None:
    step("with client.Client(http2=True) as c:  # one pooled connection per origin")
    with client.Client(http2=True) as c:
        step(f'a = c.connect("ws://127.0.0.1:{port}/a"); b = c.connect(".../b")')
        a = c.connect(f"ws://127.0.0.1:{port}/a")
        b = c.connect(f"ws://127.0.0.1:{port}/b")
        print(f"   a over {a.http_version}, b over {b.http_version}")
        step('a.send("hello from a"); b.send(b"bytes from b"); a.recv(timeout=5); b.recv(...)')
        a.send("hello from a")
        b.send(b"bytes from b")
        print(f"   a got {a.recv(timeout=5)!r}, b got {b.recv(timeout=5)!r}")
        step(f'r = c.request("GET", "http://127.0.0.1:{port}/status")')
        r = c.request("GET", f"http://127.0.0.1:{port}/status")
        print(f"   {r.status} {r.body!r} over {r.http_version}")
        shared = a.connection is b.connection and len(c.connections()) == 1
        print(f"   a, b and the request shared one HTTP/2 connection: {shared}")
        step("a.ping()")
        print(f"   pong after {a.ping() * 1000:.2f} ms")
        step("a.close(); b.close()  # the closing handshake on each stream")
        a.close()
        b.close()
        print(f"   close codes: a {a.close_code}, b {b.close_code}")


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


def main() -> int:
    """Run the demo; the exit status (an assertion in a step fails it with a traceback)."""
    with hypercorn_server() as port:
        print(f"== Sessions (mint.client): hypercorn, h2c, listening on 127.0.0.1:{port}")
        sessions(port)
    print("\n== The process-less layer underneath (mint.http, mint.websocket)")
    with echo_server() as port:
        print(f"== HTTP/1.1: echo server (websockets) listening on 127.0.0.1:{port}")
        run(port, ("http1",))
    with hypercorn_server() as port:
        print(f"\n== HTTP/2: echo server (hypercorn, h2c) listening on 127.0.0.1:{port}")
        run(port, ("http2",))
    print("\ndemo finished: sessions over one HTTP/2 connection, then the core flow over both")
    return 0


__all__ = ["main"]
