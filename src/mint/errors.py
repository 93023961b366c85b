"""The exception hierarchy: one base so callers can catch everything mint raises.

Mint (Elixir) returns ``{:error, conn, reason}``; in Python we raise.  Each
exception carries a machine-readable ``reason`` (a short snake_case string, like
Mint's atoms) next to a human-readable message, so callers can branch on the
reason without parsing text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mint.websocket.frames import Frame


class MintError(Exception):
    """Base of every exception mint raises on purpose."""

    def __init__(self, message: str, *, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


class TransportError(MintError):
    """The socket or TLS layer failed: refused, timed out, closed, bad certificate."""


class ProxyError(TransportError):
    """A proxy did not open the tunnel to the target: refused, failed, or not a proxy at all.

    ``reason`` says how: ``"proxy_auth_required"`` (HTTP 407),
    ``"proxy_refused"`` (any other non-2xx answer to CONNECT),
    ``"socks_auth_required"`` / ``"socks_auth_failed"``, ``"socks_<failure>"``
    for a SOCKS5 reply code (``"socks_connection_refused"``,
    ``"socks_host_unreachable"``, ...), ``"proxy_closed"`` (it hung up before
    answering) and ``"proxy_protocol"`` (its answer made no sense).
    ``status`` is the HTTP status of the proxy's answer and ``reply_code`` the
    SOCKS5 reply code, each ``None`` when there was none.  A subclass of
    ``TransportError`` because, to the caller, the way to the server failed.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        status: int | None = None,
        reply_code: int | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.status = status
        self.reply_code = reply_code


class HTTPError(MintError):
    """The HTTP peer (or the caller) broke the HTTP protocol, or a stream was refused."""


class WebSocketError(MintError):
    """The WebSocket layer refused something: a handshake, a negotiation, a misuse."""


class UpgradeFailureError(WebSocketError):
    """The server answered the upgrade with something other than 101 (HTTP/1.1) or 2xx (HTTP/2).

    The status and headers are kept so the caller can act on them (a redirect,
    an authentication challenge, a rate limit).
    """

    def __init__(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        super().__init__(
            f"the server refused the WebSocket upgrade with status {status}",
            reason="upgrade_failure",
        )
        self.status = status
        self.headers = list(headers)


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455 (or a negotiated extension's rules) while we decoded its bytes.

    ``close_code`` is the code to send in the Close frame that should follow
    (1002 protocol error, 1007 invalid payload, 1009 too big).  ``frames`` holds
    every frame decoded from the same input before the fault: nothing that was
    received intact is lost, so a client may still process or echo it.
    """

    def __init__(
        self,
        message: str,
        *,
        close_code: int,
        frames: Sequence[Frame] = (),
        reason: str = "protocol_error",
    ) -> None:
        super().__init__(message, reason=reason)
        self.close_code = close_code
        self.frames: list[Frame] = list(frames)


class ConnectionClosed(WebSocketError):
    """A session (``mint.client``) is closed: nothing more can be sent or received on it.

    ``close_code`` and ``close_reason`` are what the server's Close frame said
    (1005 when it carried no code, 1006 when no Close frame arrived at all).
    Two subclasses tell a finished conversation from a broken one, so a loop
    can end quietly on the first and report or reconnect on the second.
    """

    def __init__(
        self, message: str, *, close_code: int, close_reason: str = "", reason: str
    ) -> None:
        super().__init__(message, reason=reason)
        self.close_code = close_code
        self.close_reason = close_reason


class ConnectionClosedOK(ConnectionClosed):
    """The closing handshake completed with 1000 (normal), 1001 (going away) or no code."""


class ConnectionClosedError(ConnectionClosed):
    """The session ended abnormally: a protocol error, a lost connection, an unanswered ping."""


__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HTTPError",
    "MintError",
    "ProtocolError",
    "ProxyError",
    "TransportError",
    "UpgradeFailureError",
    "WebSocketError",
]
