"""mint.websocket: WebSockets over an HTTP/1.1 or HTTP/2 ``mint.http`` connection.

The flow is Mint.WebSocket's: ``upgrade`` sends the handshake request on a
connection the caller owns and returns its ref; the caller receives the
response with ``conn.recv`` (or ``conn.stream``) and hands status and headers
to ``new``, which checks them and returns a ``WebSocket``: a sans-I/O codec
whose ``encode`` output the caller writes with ``conn.stream_request_body``
and whose ``decode`` takes the ``Data`` events' bytes.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Protocol

from mint.errors import ProtocolError, UpgradeFailureError, WebSocketError
from mint.http.events import STREAM, Body, Ref
from mint.websocket.codec import WebSocket
from mint.websocket.extensions.base import Extension
from mint.websocket.frames import Binary, Close, Frame, Ping, Pong, Text
from mint.websocket.handshake import UpgradeRequest, build_request, check_response

DEFAULT_MAX_FRAME_SIZE = 64 * 2**20
DEFAULT_MAX_MESSAGE_SIZE = 64 * 2**20


class UpgradableConnection(Protocol):
    """What ``upgrade`` needs: a ``mint.http`` Connection, or a bare HTTP core."""

    @property
    def version(self) -> str: ...

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: Body = None,
        *,
        protocol: str | None = None,
    ) -> Ref: ...


# What each pending upgrade offered, until ``new`` reads it.  Keyed weakly by
# ref so an upgrade whose answer is never handed to ``new`` leaves nothing
# behind once the caller drops the ref.
_pending: weakref.WeakKeyDictionary[Ref, UpgradeRequest] = weakref.WeakKeyDictionary()

_SCHEMES = {"ws": "http", "wss": "https"}


def upgrade(
    scheme: str,
    conn: UpgradableConnection,
    path: str,
    headers: Iterable[tuple[str, str]] = (),
    *,
    subprotocols: Sequence[str] = (),
    extensions: Sequence[Extension] = (),
) -> Ref:
    """Send the WebSocket handshake request on ``conn`` and return its ref.

    On HTTP/1.1 this is a GET with ``Upgrade: websocket``; on HTTP/2 and HTTP/3 an
    extended CONNECT (RFC 8441, RFC 9220), which needs the server to have announced
    SETTINGS_ENABLE_CONNECT_PROTOCOL = 1: ``mint.http.connect`` waits for the
    server's SETTINGS before returning, so the answer here is never a guess.
    """
    if scheme not in _SCHEMES:
        raise WebSocketError(f"scheme must be 'ws' or 'wss', not {scheme!r}", reason="bad_scheme")
    conn_scheme = getattr(conn, "scheme", None)
    if conn_scheme is not None and conn_scheme != _SCHEMES[scheme]:
        raise WebSocketError(
            f"a {scheme}:// WebSocket needs an {_SCHEMES[scheme]} connection, "
            f"but this connection is {conn_scheme}",
            reason="bad_scheme",
        )
    if not isinstance(path, str) or not path.startswith("/"):
        raise WebSocketError(
            f"path must be a str starting with '/', not {path!r}", reason="bad_path"
        )
    # HTTP/3 (RFC 9220) carries WebSockets exactly as HTTP/2 does (RFC 8441):
    # extended CONNECT, any 2xx, no key/accept.
    http2 = conn.version in ("HTTP/2", "HTTP/3")
    if http2 and not getattr(conn, "extended_connect_enabled", False):
        raise WebSocketError(
            f"the {conn.version} server did not enable extended CONNECT "
            "(SETTINGS_ENABLE_CONNECT_PROTOCOL), so it cannot carry WebSockets; "
            "connect with protocols=('http1',) instead",
            reason="extended_connect_disabled",
        )
    request = build_request(
        http2=http2, headers=headers, subprotocols=subprotocols, extensions=extensions
    )
    if http2:
        ref = conn.request("CONNECT", path, request.headers, STREAM, protocol="websocket")
    else:
        ref = conn.request("GET", path, request.headers, None)
    _pending[ref] = request
    return ref


def new(
    conn: object,
    ref: Ref,
    status: int,
    headers: Sequence[tuple[str, str]],
    *,
    max_frame_size: int | None = DEFAULT_MAX_FRAME_SIZE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    fragments: bool = False,
) -> WebSocket:
    """Check the server's answer to ``upgrade`` and return the WebSocket codec.

    Raises ``UpgradeFailureError`` (with status and headers) when the server
    refused, and ``WebSocketError`` when it claimed success but broke the
    handshake: a wrong accept key, an unoffered subprotocol or extension.
    ``conn`` is taken for symmetry with Mint's API; the ref names the request.
    """
    request = _pending.pop(ref, None)
    if request is None:
        raise WebSocketError(
            f"{ref!r} is not a pending WebSocket upgrade (was it returned by upgrade(), "
            "and not already passed to new()?)",
            reason="unknown_ref",
        )
    result = check_response(request, status, headers)
    return WebSocket(
        extensions=result.extensions,
        subprotocol=result.subprotocol,
        max_frame_size=max_frame_size,
        max_message_size=max_message_size,
        fragments=fragments,
    )


__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "Binary",
    "Close",
    "Frame",
    "Ping",
    "Pong",
    "ProtocolError",
    "Text",
    "UpgradeFailureError",
    "WebSocket",
    "WebSocketError",
    "new",
    "upgrade",
]
