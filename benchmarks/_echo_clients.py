"""One echo session per client library, all behind the same two calls.

Each session opens one WebSocket to the echo server and then does nothing but
``echo(message)``: send one message, block until it is back, check it.  The
checks are an equality test, the same for every client, so a client that
lost or mangled data cannot look fast.
"""

from __future__ import annotations

import ssl
from collections import deque
from typing import Any, Protocol

from mint import http, websocket
from mint.websocket import Binary, Frame, Text

HOST = "127.0.0.1"
TIMEOUT = 10.0

Message = str | bytes


class EchoSession(Protocol):
    """An open WebSocket to the echo server."""

    def echo(self, message: Message) -> None: ...

    def close(self) -> None: ...


class EchoMismatch(RuntimeError):
    """The server sent back something other than what was sent."""


def _check(sent: Message, received: object) -> None:
    if received != sent:
        shown = received if not isinstance(received, str | bytes) else received[:40]
        raise EchoMismatch(f"echo mismatch: got {type(received).__name__} {shown!r}")


# -- mint ----------------------------------------------------------------------------


class MintSession:
    """mint's blocking shell, driven exactly as DESIGN.md's flow shows."""

    def __init__(self, port: int, *, tls: bool, http2: bool, ca_file: str | None) -> None:
        self.conn = http.connect(
            "https" if tls else "http",
            HOST,
            port,
            protocols=("http2",) if http2 else ("http1",),
            timeout=TIMEOUT,
            cafile=ca_file if tls else None,
        )
        expected = "HTTP/2" if http2 else "HTTP/1.1"
        if self.conn.version != expected:
            raise RuntimeError(f"mint negotiated {self.conn.version}, wanted {expected}")
        self.ref = websocket.upgrade("wss" if tls else "ws", self.conn, "/echo")
        status: int | None = None
        headers: list[tuple[str, str]] | None = None
        early: list[bytes] = []
        while headers is None:
            for event in self.conn.recv(timeout=TIMEOUT):
                if isinstance(event, http.Status) and event.ref == self.ref:
                    status = event.status
                elif isinstance(event, http.Headers) and event.ref == self.ref:
                    headers = event.headers
                elif isinstance(event, http.Data) and event.ref == self.ref:
                    early.append(event.data)
        assert status is not None
        self.ws = websocket.new(self.conn, self.ref, status, headers)
        self._received: deque[Frame] = deque()
        for data in early:
            self._received.extend(self.ws.decode(data))

    def echo(self, message: Message) -> None:
        frame = Text(message) if isinstance(message, str) else Binary(message)
        conn, ref, ws, received = self.conn, self.ref, self.ws, self._received
        conn.stream_request_body(ref, ws.encode(frame))
        while not received:
            for event in conn.recv(timeout=TIMEOUT):
                if isinstance(event, http.Data) and event.ref == ref:
                    received.extend(ws.decode(event.data))
        echoed = received.popleft()
        if not isinstance(echoed, Text | Binary):
            raise EchoMismatch(f"expected the echo, got {echoed!r}")
        _check(message, echoed.data)

    def close(self) -> None:
        self.conn.close()


# -- niquests ------------------------------------------------------------------------


class NiquestsSession:
    """niquests' WebSocket extension: ``wss://`` (HTTP/1.1) or ``wss+rfc8441://`` (HTTP/2)."""

    def __init__(self, port: int, *, http2: bool, ca_file: str) -> None:
        import niquests

        self.session = niquests.Session(
            disable_http1=http2,
            disable_http2=not http2,
            disable_http3=True,
            revocation_configuration=None,
            timeout=TIMEOUT,
        )
        scheme = "wss+rfc8441" if http2 else "wss"
        response = self.session.get(f"{scheme}://{HOST}:{port}/echo", verify=ca_file)
        expected = 20 if http2 else 11
        if response.status_code not in (101, 200) or response.http_version != expected:
            raise RuntimeError(
                f"niquests got status {response.status_code} over HTTP "
                f"{response.http_version}, wanted HTTP {expected}"
            )
        extension: Any = response.extension
        if extension is None:
            raise RuntimeError("niquests did not start its WebSocket extension")
        self.extension = extension
        self.response = response

    def echo(self, message: Message) -> None:
        self.extension.send_payload(message)
        _check(message, self.extension.next_payload())

    def close(self) -> None:
        self.extension.close()
        self.session.close()


# -- websockets ----------------------------------------------------------------------


class WebsocketsSession:
    """The websockets package's sync client (HTTP/1.1 only), no compression."""

    def __init__(self, port: int, *, tls: bool, ca_file: str | None) -> None:
        from websockets.sync.client import connect

        context: ssl.SSLContext | None = None
        if tls:
            context = ssl.create_default_context(cafile=ca_file)
        scheme = "wss" if tls else "ws"
        self.client = connect(
            f"{scheme}://{HOST}:{port}/echo",
            ssl=context,
            compression=None,
            max_size=None,
            open_timeout=TIMEOUT,
        )

    def echo(self, message: Message) -> None:
        self.client.send(message)
        _check(message, self.client.recv(timeout=TIMEOUT))

    def close(self) -> None:
        self.client.close()
