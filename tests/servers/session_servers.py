"""Peers for the session layer's tests (``mint.client``): an ASGI app and a ``websockets`` server.

Both speak the same small protocol on their WebSockets, so one test runs the
same way over HTTP/1.1 and HTTP/2:

* every text and binary message is echoed back, except:
* text ``close`` -> the server closes with 1000 "bye" (a normal close it starts);
* text ``go N S`` (any path of the ``websockets`` server, ``/flood`` of the
  ASGI app) -> N binary messages of S bytes are sent without waiting for
  anything, each starting with its index as a 4-byte big-endian number
  (see ``flood_message``).

The ASGI app (``SessionApp``, for hypercorn) also answers every HTTP request
with 200 ``hello``, refuses the WebSocket path ``/forbidden`` with 403, and
records the client address of every request and WebSocket it served, so a
test can tell how many TCP connections the client really opened.

``websockets_server`` runs the ``websockets`` package on a port of the
caller's choice (0, or the port of a server that just stopped, to test
reconnecting) and can drop its connections without a closing handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import trustme
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from mint.websocket.handshake import accept_for

from .hypercorn_app import lifespan
from .websockets_echo import read_request_head

Scope = dict[str, Any]
ASGIMessage = dict[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]


def flood_message(index: int, size: int) -> bytes:
    """Message ``index`` of a flood of ``size``-byte messages."""
    return struct.pack("!I", index) + bytes([index % 256]) * (size - 4)


class SessionApp:
    """The ASGI app; ``clients`` holds ``scope["client"]`` of everything it served."""

    def __init__(self) -> None:
        self.clients: list[tuple[str, int]] = []

    def client_ports(self) -> set[int]:
        return {port for _, port in self.clients}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        client = scope.get("client")
        if client is not None:
            self.clients.append((client[0], client[1]))
        if scope["type"] == "http":
            body = b"hello"
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", str(len(body)).encode()),
                        (b"x-http-version", scope.get("http_version", "").encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if scope["path"] == "/forbidden":
            await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b"forbidden"})
            return
        accept: ASGIMessage = {"type": "websocket.accept"}
        if scope.get("subprotocols"):
            accept["subprotocol"] = scope["subprotocols"][0]
        await send(accept)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text == "close":
                await send({"type": "websocket.close", "code": 1000, "reason": "bye"})
                return
            if text is not None and text.startswith("go ") and scope["path"] == "/flood":
                count, size = (int(part) for part in text.split()[1:])
                for index in range(count):
                    await send({"type": "websocket.send", "bytes": flood_message(index, size)})
            elif message.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
            else:
                await send({"type": "websocket.send", "text": text or ""})


class WebsocketsServer:
    """A running ``websockets`` server; ``remote_ports`` lists the client port of each session."""

    def __init__(self, port: int, loop: asyncio.AbstractEventLoop, server: Server) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.remote_ports: list[int] = []
        self._loop = loop
        self._server = server

    def drop_connections(self) -> None:
        """Abort every open connection (no Close frame, no FIN handshake) and stop listening."""

        async def drop() -> None:
            self._server.close(close_connections=False)
            for connection in list(self._server.connections):
                connection.transport.abort()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(10)


def _forbid(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.startswith("/forbidden"):
        return connection.respond(403, "forbidden\n")
    return None


@contextlib.contextmanager
def websockets_server(
    *, port: int = 0, ssl_context: ssl.SSLContext | None = None, **serve_options: Any
) -> Iterator[WebsocketsServer]:
    """Serve the protocol above on 127.0.0.1:``port`` (SO_REUSEADDR, as asyncio binds).

    ``/forbidden`` answers 403; ``serve_options`` go to ``websockets.serve``
    (compression is off unless asked for).
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: dict[str, asyncio.Future[None]] = {}
    running: list[WebsocketsServer] = []
    failure: list[BaseException] = []

    async def handler(connection: ServerConnection) -> None:
        running[0].remote_ports.append(connection.remote_address[1])
        with contextlib.suppress(Exception):
            async for message in connection:
                if message == "close":
                    await connection.close(1000, "bye")
                    return
                if isinstance(message, str) and message.startswith("go "):
                    count, size = (int(part) for part in message.split()[1:])
                    for index in range(count):
                        await connection.send(flood_message(index, size))
                else:
                    await connection.send(message)

    async def main() -> None:
        try:
            server = await serve(handler, "127.0.0.1", port, ssl=ssl_context, **serve_options)
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        async with server:
            running.append(WebsocketsServer(server.sockets[0].getsockname()[1], loop, server))
            stop["future"] = loop.create_future()
            ready.set()
            await stop["future"]

    serve_options.setdefault("compression", None)
    serve_options.setdefault("process_request", _forbid)
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the websockets server did not start"
    if failure:
        thread.join(10)
        raise failure[0]
    try:
        yield running[0]
    finally:
        loop.call_soon_threadsafe(stop["future"].set_result, None)
        thread.join(10)
        loop.close()


def write_tls_files(cert: trustme.LeafCert, folder: Path) -> tuple[str, str]:
    """The certificate chain and key as PEM files, for hypercorn's ``certfile``/``keyfile``."""
    chain, key = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(chain))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(chain), append=True)
    cert.private_key_pem.write_to_path(str(key))
    return str(chain), str(key)


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    """A fresh server-side TLS context, for servers that set their own ALPN on it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


# -- scripted HTTP/1.1 peers (with ``websockets_echo.scripted_server``) ------------------------


def accept_websocket(connection: socket.socket, first_frames: bytes = b"") -> None:
    """Read the client's upgrade request and answer 101, with ``first_frames`` in the same write."""
    key = read_request_head(connection)["sec-websocket-key"]
    connection.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_for(key).encode() + b"\r\n\r\n" + first_frames
    )


def read_until_eof(connection: socket.socket) -> bytes:
    """Everything the client sends until it closes (or resets) the connection."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := connection.recv(65536):
            received += chunk
    return received


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, unmasked payload) of each whole masked client frame in ``data``."""
    frames = []
    pos = 0
    while pos + 2 <= len(data):
        opcode, length = data[pos] & 0x0F, data[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        if pos + 4 + length > len(data):
            break
        mask, payload = data[pos : pos + 4], data[pos + 4 : pos + 4 + length]
        frames.append((opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))))
        pos += 4 + length
    return frames


def close_code_of(payload: bytes) -> int | None:
    """The code in a Close frame's payload (None when it carries none)."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


__all__ = [
    "SessionApp",
    "WebsocketsServer",
    "accept_websocket",
    "client_frames",
    "close_code_of",
    "flood_message",
    "read_until_eof",
    "server_context",
    "websockets_server",
    "write_tls_files",
]
