"""The contract between the sans-I/O HTTP cores and the I/O shells.

A core (``HTTP1Core`` over h11, ``HTTP2Core`` over h2) never touches a socket.
The shell (blocking ``Connection``, or the asyncio one) feeds it the bytes it
read with ``receive_data`` and writes out whatever ``data_to_send`` returns
after every call.  Keeping the seam this narrow is what lets one core serve
every I/O model, and lets tests drive a core with hand-built bytes.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from mint.errors import HTTPError
from mint.http.events import Body, Chunk, Event, Ref


class HTTPCore(abc.ABC):
    """One HTTP connection's protocol state, free of I/O."""

    #: "HTTP/1.1" or "HTTP/2"
    version: str

    @abc.abstractmethod
    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: Body = None,
        *,
        protocol: str | None = None,
    ) -> Ref:
        """Start a request and return its ref.

        ``body`` is the whole body, ``None`` for none, or ``STREAM`` to send it
        with ``stream_request_body``.  ``protocol`` sets HTTP/2's ``:protocol``
        pseudo-header (RFC 8441 extended CONNECT); HTTP/1.1 refuses it.
        """

    @abc.abstractmethod
    def stream_request_body(self, ref: Ref, chunk: Chunk, *, end_stream: bool = False) -> None:
        """Queue ``chunk`` (bytes, or ``EOF`` to end the body) on a streamed request.

        On an upgraded HTTP/1.1 request, or an extended CONNECT stream, this is
        how tunnel bytes (WebSocket frames) are written.  ``end_stream=True``
        sends ``chunk`` and ends the body in one go: on HTTP/2 the END_STREAM
        flag rides on the last DATA frame instead of an empty frame of its own,
        which is how a WebSocket's Close should leave (RFC 8441 section 5: END_STREAM is the
        tunnel's orderly half-close).
        """

    def send_body(self, ref: Ref, chunk: Chunk, *, end_stream: bool = False) -> bytes:
        """``stream_request_body``, then ``data_to_send``: the bytes to write now.

        For a shell that writes after every chunk, as a WebSocket session
        does per message: one call instead of two, and a core may hand the
        chunk back as it came when nothing of its own goes first.
        """
        self.stream_request_body(ref, chunk, end_stream=end_stream)
        return self.data_to_send()

    @abc.abstractmethod
    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes read from the peer; ``b""`` means the peer closed the connection."""

    @abc.abstractmethod
    def data_to_send(self) -> bytes:
        """Bytes the shell must write to the peer now (possibly empty)."""

    def buffers_to_send(self) -> list[bytes | memoryview]:
        """``data_to_send``'s bytes as the pieces the core holds them in, uncopied.

        For shells that can write several buffers in one system call
        (``socket.sendmsg``): a 1 MiB WebSocket message over HTTP/2 is 64 DATA
        frames, and joining their headers and payloads into one ``bytes``
        first would copy the whole message once more.  Writing the pieces in
        order is the same as writing ``data_to_send()``; either call empties
        the queue.
        """
        data = self.data_to_send()
        return [data] if data else []

    @abc.abstractmethod
    def close(self) -> None:
        """Stop using the connection (HTTP/2 queues a GOAWAY to send)."""

    @property
    @abc.abstractmethod
    def open(self) -> bool:
        """False once the connection was closed by either side or failed."""


def check_extended_connect(
    method: str, *, settings_received: bool, enabled: bool, rfc: str
) -> None:
    """Refuse an extended CONNECT (``protocol=``) the server has not allowed, or not yet.

    HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220) share the rule: the method is
    CONNECT, and the server's SETTINGS must have arrived with
    SETTINGS_ENABLE_CONNECT_PROTOCOL = 1.
    """
    if method != "CONNECT":
        raise HTTPError(f"protocol= needs method CONNECT ({rfc})", reason="invalid_request")
    if not settings_received:
        raise HTTPError(
            "the server's SETTINGS have not arrived yet: keep receiving, then retry",
            reason="settings_pending",
        )
    if not enabled:
        raise HTTPError(
            "the server did not enable extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)",
            reason="extended_connect_disabled",
        )
