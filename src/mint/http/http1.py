"""HTTP/1.1 client connection state over h11, free of I/O.

h11 parses and frames; this module maps its events onto mint's (``Status``,
``Headers``, ``Data``, ``Done``, ``Error``) and adds the two things a WebSocket
client needs that h11 leaves to its caller: turning a ``101 Switching
Protocols`` answer into a raw byte tunnel *without* losing the bytes that
arrived behind the 101 in the same read, and turning every h11 failure into a
``mint.errors`` exception carried by an ``Error`` event.

One request at a time: h11 does not pipeline, and queueing requests inside the
core would hide head-of-line blocking from the caller.  A ``request()`` while a
response is still in flight therefore raises ``HTTPError(reason=
"request_in_flight")``; callers wanting concurrency use HTTP/2 or more
connections.  Sequential requests reuse the connection (keep-alive) as long as
the server allows it.
"""

from __future__ import annotations

from collections.abc import Sequence

import h11

from mint.errors import HTTPError, MintError, TransportError
from mint.http.core import HTTPCore
from mint.http.events import (
    EOF,
    STREAM,
    Body,
    Chunk,
    Data,
    Done,
    Error,
    Event,
    Headers,
    Ref,
    Status,
)

# RFC 9110 8.6: a user agent should announce an empty body for methods whose
# body has meaning, so servers waiting for a length do not hang.
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _decode_headers(raw: Sequence[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in raw]


def _encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    encoded = []
    for header in headers:
        try:
            name, value = header
            encoded.append((name.encode("ascii"), value.encode("latin-1")))
        except (UnicodeEncodeError, AttributeError, TypeError, ValueError) as exc:
            raise HTTPError(
                f"header {header!r} cannot be sent: headers are (name, value) pairs of str,"
                " names ASCII and values latin-1",
                reason="invalid_request",
            ) from exc
    return encoded


class HTTP1Core(HTTPCore):
    """One HTTP/1.1 client connection: a request at a time, then maybe a tunnel.

    ``authority`` is the ``Host`` header value added to requests that lack one
    (``"example.com"``, or ``"example.com:8080"`` for a non-default port).
    """

    version = "HTTP/1.1"

    def __init__(self, authority: str) -> None:
        self._authority = authority
        self._h11 = h11.Connection(our_role=h11.CLIENT)
        #: Bytes to write, in order; kept as the caller's own objects, so that a
        #: large tunnel write goes to the socket without being copied here.
        self._outgoing: list[bytes] = []
        # The request currently using the connection; None when idle.
        self._ref: Ref | None = None
        self._response_done = False
        self._body_streaming = False
        # Set once a 101 made the connection a raw tunnel for that ref.
        self._tunnel_ref: Ref | None = None
        self._tunnel_write_closed = False
        # Why the connection can no longer be used, or None while it can.
        self._dead: MintError | None = None
        self._closed_by_us = False
        self._eof = False
        #: The tunnel's ref while received bytes pass through it (``passes_through``),
        #: else None.  Read-only; an attribute for a shell that asks per read (the
        #: asyncio ``recv_tunnel``), kept up to date by ``_tunnel_changed``.
        self.passing: Ref | None = None
        # The tunnel's ref while frames may go out as they are (``send_body``), likewise.
        self._writable: Ref | None = None

    # -- public contract -------------------------------------------------

    @property
    def open(self) -> bool:
        return self._dead is None

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: Body = None,
        *,
        protocol: str | None = None,
    ) -> Ref:
        self._check_alive()
        if protocol is not None:
            raise HTTPError(
                f"protocol={protocol!r} asks for extended CONNECT (RFC 8441), which needs HTTP/2;"
                " connect with protocols=('http2',) or use an HTTP/1.1 Upgrade request",
                reason="extended_connect_needs_http2",
            )
        if self._tunnel_ref is not None:
            raise HTTPError(
                "this connection was upgraded (101) into a tunnel: it carries no more requests",
                reason="upgraded",
            )
        if self._ref is not None:
            raise HTTPError(
                "another request is still in flight on this HTTP/1.1 connection (h11 does not"
                " pipeline): read its response to Done (and end a streamed body with EOF) first,"
                " or open another connection",
                reason="request_in_flight",
            )
        if body is not None and body is not STREAM and not isinstance(body, bytes):
            raise HTTPError(
                f"body must be bytes, None or STREAM, not {type(body).__name__}",
                reason="invalid_request",
            )
        if not isinstance(method, str) or not isinstance(path, str):
            raise HTTPError("method and path must be str", reason="invalid_request")
        all_headers = self._complete_headers(method, _encode_headers(headers), body)
        try:
            event = h11.Request(method=method, target=path, headers=all_headers)
        except (h11.LocalProtocolError, UnicodeError, TypeError) as exc:
            raise HTTPError(f"invalid request: {exc}", reason="invalid_request") from exc

        ref = Ref()
        self._send(event)
        self._ref = ref
        self._response_done = False
        self._body_streaming = body is STREAM
        if isinstance(body, bytes):
            if body:
                self._send(h11.Data(data=body))
            self._send(h11.EndOfMessage())
        elif body is None:
            self._send(h11.EndOfMessage())
        return ref

    def stream_request_body(self, ref: Ref, chunk: Chunk, *, end_stream: bool = False) -> None:
        data = self.send_body(ref, chunk, end_stream=end_stream)
        if data:
            self._outgoing.append(data)  # for ``data_to_send``, as queued bytes are

    def send_body(self, ref: Ref, chunk: Chunk, *, end_stream: bool = False) -> bytes:
        if ref is self._writable and ref is not None and type(chunk) is bytes and not end_stream:
            # A WebSocket's frame on an open tunnel: every check ``_write_body``,
            # ``_check_alive`` and ``_write_tunnel`` would make has passed (this
            # runs per message; ``_tunnel_changed`` keeps them in step).  Handed
            # back as it came when nothing queued must go first.
            if not self._outgoing:
                return chunk
            self._outgoing.append(chunk)
            return self.data_to_send()
        self._write_body(ref, chunk)
        if end_stream and chunk is not EOF:
            self._write_body(ref, EOF)
        return self.data_to_send()

    def _write_body(self, ref: Ref, chunk: Chunk) -> None:
        self._check_alive()
        if ref is self._tunnel_ref and ref is not None:
            self._write_tunnel(chunk)
            return
        if ref is not self._ref:
            raise HTTPError(
                f"{ref!r} is not a request in flight on this connection", reason="unknown_ref"
            )
        if not self._body_streaming:
            raise HTTPError(
                f"{ref!r} has no body left to stream: pass body=STREAM to request() to stream one",
                reason="not_streaming",
            )
        if chunk is EOF:
            self._send(h11.EndOfMessage())
            self._body_streaming = False
            self._finish_cycle_if_done()
        elif isinstance(chunk, bytes):
            if chunk:
                self._send(h11.Data(data=chunk))
        else:
            raise HTTPError(f"chunk must be bytes or EOF, not {chunk!r}", reason="invalid_request")

    def receive_data(self, data: bytes) -> list[Event]:
        if self._closed_by_us:
            raise HTTPError("the connection was closed with close()", reason="closed")
        if self._tunnel_ref is not None and not self._eof:
            return self._receive_tunnel(self._tunnel_ref, data)
        if self._dead is not None:
            if not data:  # the close that follows "Connection: close", or a repeated EOF
                self._eof = True
                self._tunnel_changed()
                return []
            raise HTTPError(
                f"bytes arrived on a connection that can no longer be used: {self._dead}",
                reason=self._dead.reason,
            )
        if not data:
            self._eof = True
            self._tunnel_changed()
        self._h11.receive_data(data)
        events: list[Event] = []
        try:
            self._drain_h11(events)
        except h11.RemoteProtocolError as exc:
            self._fail_on_receive(events, exc)
        return events

    def passes_through(self, ref: Ref) -> bool:
        """Whether bytes received now would come back as ``[Data(ref, data)]`` and change nothing.

        True while ``ref``'s tunnel is open on both sides.  A shell may then
        hand the tunnel's bytes straight to their owner without building the
        event (``AsyncConnection.recv_tunnel``): per WebSocket message, the
        event and the calls around it cost as much as decoding the frame.
        """
        return ref is self.passing and ref is not None

    def _tunnel_changed(self) -> None:
        """After the tunnel opened, or one of its ends or ours came: the shortcuts follow."""
        tunnel = self._tunnel_ref
        if tunnel is None or self._eof or self._closed_by_us:
            self.passing = self._writable = None
        else:
            self.passing = tunnel
            self._writable = None if self._tunnel_write_closed else tunnel

    def data_to_send(self) -> bytes:
        """Bytes to write now.

        Still answers (empty) after ``close()``, so shells need no special case.
        """
        outgoing = self._outgoing
        if len(outgoing) == 1:
            return outgoing.pop()
        out = b"".join(outgoing)
        outgoing.clear()
        return out

    def buffers_to_send(self) -> list[bytes | memoryview]:
        outgoing: list[bytes | memoryview] = list(self._outgoing)
        self._outgoing.clear()
        return outgoing

    def close(self) -> None:
        self._closed_by_us = True
        self._tunnel_changed()
        self._outgoing.clear()
        if self._dead is None:
            self._dead = HTTPError("the connection was closed with close()", reason="closed")

    # -- sending ---------------------------------------------------------

    def _complete_headers(
        self, method: str, headers: list[tuple[bytes, bytes]], body: Body
    ) -> list[tuple[bytes, bytes]]:
        names = {name.lower() for name, _ in headers}
        extra: list[tuple[str, str]] = []
        if b"host" not in names:
            extra.append(("host", self._authority))
        if b"content-length" not in names and b"transfer-encoding" not in names:
            if isinstance(body, bytes):
                extra.append(("content-length", str(len(body))))
            elif body is STREAM:
                extra.append(("transfer-encoding", "chunked"))
            elif method.upper() in _METHODS_WITH_BODY:
                extra.append(("content-length", "0"))
        return _encode_headers(extra) + headers

    def _send(self, event: h11.Event) -> None:
        try:
            data = self._h11.send(event)
        except h11.LocalProtocolError as exc:
            error = HTTPError(
                f"cannot send {type(event).__name__}: {exc}", reason="invalid_request"
            )
            self._dead = error
            raise error from exc
        if data:
            self._outgoing.append(data)

    def _write_tunnel(self, chunk: Chunk) -> None:
        if self._tunnel_write_closed:
            raise HTTPError("the tunnel's sending side was already ended with EOF", reason="closed")
        if chunk is EOF:
            self._tunnel_write_closed = True
            self._tunnel_changed()
        elif isinstance(chunk, bytes):
            self._outgoing.append(chunk)
        else:
            raise HTTPError(f"chunk must be bytes or EOF, not {chunk!r}", reason="invalid_request")

    # -- receiving -------------------------------------------------------

    def _drain_h11(self, events: list[Event]) -> None:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    self._switch_protocols(event, events)
                    return
                continue  # 100 Continue, 103 Early Hints: nothing for the caller
            if isinstance(event, h11.ConnectionClosed):
                self._dead = TransportError("the server closed the connection", reason="closed")
                return
            ref = self._ref
            if ref is None:  # h11 refuses responses without a request; belt and braces
                raise h11.RemoteProtocolError("response without a request")
            if isinstance(event, h11.Response):
                events.append(Status(ref, event.status_code))
                events.append(Headers(ref, _decode_headers(event.headers)))
            elif isinstance(event, h11.Data):
                events.append(Data(ref, bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                if event.headers:
                    # Trailers: a second Headers event, as Mint does.
                    events.append(Headers(ref, _decode_headers(event.headers)))
                events.append(Done(ref))
                self._response_done = True
                self._finish_cycle_if_done()

    def _switch_protocols(self, event: h11.InformationalResponse, events: list[Event]) -> None:
        ref = self._ref
        if ref is None or self._h11.their_state is not h11.SWITCHED_PROTOCOL:
            raise h11.RemoteProtocolError("101 Switching Protocols for a request without Upgrade")
        events.append(Status(ref, 101))
        events.append(Headers(ref, _decode_headers(event.headers)))
        leftover, closed = self._h11.trailing_data
        self._tunnel_ref = ref
        self._tunnel_changed()
        self._response_done = True
        self._body_streaming = False
        if leftover:
            events.append(Data(ref, leftover))
        if closed:
            events.extend(self._receive_tunnel(ref, b""))

    def _receive_tunnel(self, ref: Ref, data: bytes) -> list[Event]:
        if data:
            return [Data(ref, data)]
        self._eof = True
        self._tunnel_changed()
        self._dead = TransportError("the server closed the tunnel", reason="closed")
        return [Done(ref)]

    def _finish_cycle_if_done(self) -> None:
        if not self._response_done or self._body_streaming or self._tunnel_ref is not None:
            return
        self._ref = None
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
        else:
            # "Connection: close" or an HTTP/1.0 server: no keep-alive.
            self._dead = HTTPError(
                "the server ended keep-alive on this connection; open a new one", reason="closed"
            )

    def _fail_on_receive(self, events: list[Event], exc: h11.RemoteProtocolError) -> None:
        error: MintError
        if self._eof:
            error = TransportError(
                "the server closed the connection before the response was complete",
                reason="closed",
            )
        else:
            error = HTTPError(f"the server broke HTTP/1.1: {exc}", reason="protocol_error")
        error.__cause__ = exc
        self._dead = error
        ref = self._ref
        if ref is not None and not self._response_done:
            events.append(Error(ref, error))
        self._ref = None

    def _check_alive(self) -> None:
        if self._closed_by_us:
            raise HTTPError("the connection was closed with close()", reason="closed")
        if self._dead is not None and self._tunnel_ref is None:
            raise HTTPError(
                f"the connection can no longer be used: {self._dead}", reason=self._dead.reason
            )
        if self._tunnel_ref is not None and self._eof:
            raise TransportError("the server closed the tunnel", reason="closed")


__all__ = ["HTTP1Core"]
