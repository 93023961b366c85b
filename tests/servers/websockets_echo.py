"""Real peers for the WebSocket tests: a ``websockets`` echo server and a scripted raw server.

Both run in a background thread of the test process on 127.0.0.1, port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response


@dataclass
class RunningServer:
    host: str
    port: int
    #: what the server saw: request headers of each handshake, messages, close codes
    handshakes: list[Headers]
    close_codes: list[int | None]


async def _echo(connection: ServerConnection) -> None:
    with contextlib.suppress(Exception):
        async for message in connection:
            await connection.send(message)


def _forbid(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.startswith("/forbidden"):
        return connection.respond(403, "go away\n")
    return None


@contextlib.contextmanager
def websockets_echo_server(
    *, ssl_context: ssl.SSLContext | None = None, **serve_options: Any
) -> Iterator[RunningServer]:
    """Serve an echo WebSocket at every path; ``/forbidden`` answers 403."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    state: dict[str, Any] = {}
    handshakes: list[Headers] = []
    close_codes: list[int | None] = []

    async def handler(connection: ServerConnection) -> None:
        handshakes.append(connection.request.headers if connection.request else Headers())
        await _echo(connection)
        close_codes.append(connection.close_code)

    serve_options.setdefault("compression", None)
    serve_options.setdefault("max_size", 2**25)

    async def main() -> None:
        async with serve(
            handler, "127.0.0.1", 0, ssl=ssl_context, process_request=_forbid, **serve_options
        ) as server:
            state["port"] = server.sockets[0].getsockname()[1]
            state["stop"] = loop.create_future()
            ready.set()
            await state["stop"]

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the websockets server did not start"
    try:
        yield RunningServer("127.0.0.1", state["port"], handshakes, close_codes)
    finally:
        loop.call_soon_threadsafe(state["stop"].set_result, None)
        thread.join(10)


@contextlib.contextmanager
def scripted_server(script: Callable[[socket.socket], None]) -> Iterator[int]:
    """Accept one connection and run ``script`` on it; yield the port.

    For answers no real server gives: a wrong accept key, a 101 glued to the
    first frames in one segment.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    errors: list[BaseException] = []

    def serve_one() -> None:
        try:
            connection, _ = listener.accept()
            connection.settimeout(10)
            with connection:
                script(connection)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        thread.join(10)
        listener.close()
    if errors:
        raise errors[0]


def read_request_head(connection: socket.socket) -> dict[str, str]:
    """Read an HTTP/1.1 request head; return its headers with lowercase names."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            raise ConnectionError("client closed before the end of the request head")
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")[1:]
    return {
        name.strip().lower(): value.strip()
        for name, value in (line.split(":", 1) for line in lines)
    }
