"""The echo server the documentation's examples talk to: an ASGI app for hypercorn.

Run it on the two ports the examples use, plain TCP (HTTP/1.1 and h2c) and
TLS (HTTP/1.1 and HTTP/2 by ALPN, RFC 8441 WebSockets on both)::

    pip install hypercorn trustme
    python -m trustme          # server.pem, server.key, and client.pem: the CA
    cp client.pem ca.pem
    hypercorn --certfile server.pem --keyfile server.key \\
        --bind localhost:8766 --insecure-bind localhost:8765 echo_server:app

Every WebSocket message is echoed back; the text ``close`` makes the server
close with 1000 "bye".  Every HTTP request gets 200 ``hello``.
tests/test_docs.py serves this same app to run the examples.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)


async def websocket(scope: Message, receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    accept: Message = {"type": "websocket.accept"}
    if scope.get("subprotocols"):
        accept["subprotocol"] = scope["subprotocols"][0]  # take the first one offered
    await send(accept)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 1000, "reason": "bye"})
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message.get("text") or ""})
