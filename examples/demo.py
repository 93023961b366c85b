"""The DESIGN.md flow, step by step, against an echo server this script starts itself.

Run it with ``./dev demo``.  The server is the ``websockets`` package's, on
127.0.0.1 and a port the OS picks, in a background thread of this demo (the
thread belongs to the demo's server, not to mint: mint starts none).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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


def step(text: str) -> None:
    print(f"-> {text}", flush=True)


def run(port: int) -> None:
    step(f'conn = http.connect("http", "127.0.0.1", {port})')
    conn = http.connect("http", "127.0.0.1", port)
    print(f"   connected over {conn.version}")

    step('ref = websocket.upgrade("ws", conn, "/", [])')
    ref = websocket.upgrade("ws", conn, "/", [])

    step("conn.recv(timeout=5) until the 101 and its headers are in")
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

    step("conn.stream_request_body(ref, ws.encode(Close(1000, 'bye'))) and wait for the reply")
    conn.stream_request_body(ref, ws.encode(Close(1000, "bye")))
    while not ws.closed:
        for event in conn.recv(timeout=5):
            if isinstance(event, http.Data) and event.ref == ref:
                for frame in ws.decode(event.data):
                    print(f"   decoded {frame}")
    print(f"   closed cleanly: close_sent={ws.close_sent}, close_received={ws.close_received}")
    conn.close()


def main() -> None:
    with echo_server() as port:
        print(f"echo server (websockets) listening on 127.0.0.1:{port}")
        run(port)
    print("demo finished")


if __name__ == "__main__":
    main()
