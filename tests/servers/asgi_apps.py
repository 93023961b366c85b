"""ASGI apps for the session tests (blocking and asyncio), served by hypercorn.

* ``ClientRecorder(app)`` wraps any ASGI app and records ``scope["client"]``
  of every WebSocket and HTTP scope it passes on, so a test can tell how many
  TCP connections the server really saw (one address per connection).
* ``SinkApp`` accepts WebSockets that take every message without answering,
  except the text ``count``, answered with the number of bytes received so far
  on that WebSocket.  While the client sends, such a server writes nothing:
  only its WINDOW_UPDATEs tell the client its bytes were taken, which is what
  a send held back by HTTP/2 flow control has to notice.
* ``FlakyApp(failures)`` refuses its first ``failures`` WebSocket handshakes
  with 503 (a server starting up, say), then accepts and echoes: what a
  reconnecting client must retry.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from .hypercorn_app import echo_messages, lifespan

Scope = dict[str, Any]
ASGIMessage = dict[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ClientRecorder:
    """``app`` unchanged, with the client address of each scope written down."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        #: (scope type, client host, client port), in the order the scopes started.
        self.scopes: list[tuple[str, str, int]] = []

    def clients(self, kind: str | None = None) -> set[tuple[str, int]]:
        """The distinct client addresses of the scopes of ``kind`` ("websocket", "http", all)."""
        return {(host, port) for k, host, port in self.scopes if kind is None or k == kind}

    def count(self, kind: str) -> int:
        return sum(1 for k, _, _ in self.scopes if k == kind)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("websocket", "http") and client is not None:
            self.scopes.append((scope["type"], client[0], client[1]))
        await self._app(scope, receive, send)


class SinkApp:
    """WebSockets that swallow what they get; text ``count`` asks for the byte total."""

    def __init__(self) -> None:
        #: Bytes received per WebSocket path (text counted as UTF-8).
        self.received: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
        if scope["type"] != "websocket" or (await receive())["type"] != "websocket.connect":
            return
        path = scope["path"]
        await send({"type": "websocket.accept"})
        self.received[path] = 0
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text == "count":
                await send({"type": "websocket.send", "text": str(self.received[path])})
            elif text is not None:
                self.received[path] += len(text.encode())
            else:
                self.received[path] += len(message.get("bytes") or b"")


class FlakyApp:
    """503 for the first ``failures`` WebSocket handshakes, then an echo."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
        if scope["type"] != "websocket" or (await receive())["type"] != "websocket.connect":
            return
        self.attempts += 1
        if self.attempts <= self.failures:
            await send({"type": "websocket.http.response.start", "status": 503, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b"starting up"})
            return
        await send({"type": "websocket.accept"})
        await echo_messages(receive, send)


class RequestHeadersApp:
    """Accepts WebSockets, sends the request headers as one JSON text message, then echoes.

    What a client put in its handshake (``-H`` on the command line, say) as
    the server saw it, over either HTTP version: a JSON list of
    ``[name, value]`` pairs, names in lower case as ASGI gives them.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
        if scope["type"] != "websocket" or (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        headers = [
            [name.decode("latin-1"), value.decode("latin-1")] for name, value in scope["headers"]
        ]
        await send({"type": "websocket.send", "text": json.dumps(headers)})
        await echo_messages(receive, send)


__all__ = ["ClientRecorder", "FlakyApp", "RequestHeadersApp", "SinkApp"]
