"""A small ASGI app for integration tests: HTTP endpoints and a WebSocket echo.

Routes:

* ``GET /``            -> 200 ``hello``; ``x-http-version`` says which HTTP version served it
* ``GET /bytes/N``     -> 200 with N bytes of a repeating 0..255 pattern (``pattern(N)``)
* ``POST /echo``       -> 200 streaming the request body back chunk by chunk as it arrives
  (so a large upload and its echo flow at the same time: a flow-control test, not a buffer)
* WebSocket ``/forbidden`` -> refused with 403 before accepting (ASGI
  ``websocket.http.response`` extension, which hypercorn supports)
* WebSocket on any other path -> accepted (first offered subprotocol chosen, if any),
  every text and binary message echoed back until the client closes
* anything else -> 404
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_CHUNK = 64 * 1024


def pattern(size: int) -> bytes:
    """The body ``GET /bytes/N`` answers, so tests can compare byte for byte."""
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    method, path = scope["method"], scope["path"]
    version = scope.get("http_version", "")
    if method == "GET" and path == "/":
        await _respond(send, 200, b"hello", version)
    elif method == "GET" and path.startswith("/bytes/") and path[7:].isdigit():
        size = int(path[7:])
        body = pattern(size)
        await _start(send, 200, version, [(b"content-length", str(size).encode())])
        for start in range(0, size, _CHUNK):
            await send(
                {
                    "type": "http.response.body",
                    "body": body[start : start + _CHUNK],
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif method == "POST" and path == "/echo":
        await _start(send, 200, version, [])
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = bool(message.get("more_body", False))
            await send(
                {"type": "http.response.body", "body": message.get("body", b""), "more_body": more}
            )
    else:
        await _respond(send, 404, b"not found", version)


async def _start(send: Send, status: int, version: str, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"x-http-version", version.encode()), *headers],
        }
    )


async def _respond(send: Send, status: int, body: bytes, version: str) -> None:
    await _start(send, status, version, [(b"content-length", str(len(body)).encode())])
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    connect = await receive()
    if connect["type"] != "websocket.connect":
        return
    if scope["path"] == "/forbidden":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"forbidden"})
        return
    subprotocols = scope.get("subprotocols") or []
    accept: Message = {"type": "websocket.accept"}
    if subprotocols:
        accept["subprotocol"] = subprotocols[0]
    await send(accept)
    await echo_messages(receive, send)


async def echo_messages(receive: Receive, send: Send) -> None:
    """Send every text and binary message of an accepted ASGI WebSocket back, until it ends."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message.get("text") or ""})


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer ASGI's lifespan messages (hypercorn sends them) until shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
