"""What a session or a client was asked for: URLs, options and the reconnect schedule.

Kept apart from the shells so the blocking and asyncio layers read the same
options the same way, and so a bad argument fails before any I/O.
"""

from __future__ import annotations

import base64
import os
import random
import ssl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypedDict, cast
from urllib.parse import unquote, urlsplit

from mint.client.altsvc import HTTP3Preference, check_preference
from mint.errors import WebSocketError
from mint.websocket.extensions import Extension, PerMessageDeflate

HTTP2Preference: TypeAlias = bool | Literal["auto"]

DEFAULT_MAX_SIZE = 16 * 2**20
"""The largest message a session accepts unless told otherwise (1009 closes beyond it)."""

_DEFAULT_PORTS = {"ws": 80, "wss": 443, "http": 80, "https": 443}
_TRANSPORT_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


@dataclass(frozen=True, slots=True)
class Target:
    """One parsed URL: where to connect, and what to ask for once connected."""

    scheme: str  # as given: ws, wss, http or https
    host: str
    port: int
    path: str  # path and query, never empty
    #: ("Authorization", "Basic ...") when the URL carried user:password@
    authorization: tuple[str, str] | None = None

    @property
    def http_scheme(self) -> str:
        """``http`` or ``https``: the connection this target needs."""
        return _TRANSPORT_SCHEMES[self.scheme]

    @property
    def websocket_scheme(self) -> str:
        return "wss" if self.http_scheme == "https" else "ws"

    @property
    def origin(self) -> tuple[str, str, int]:
        """The pool key: requests and sessions to one origin share connections."""
        return (self.http_scheme, self.host, self.port)


def parse_url(url: str, *, websocket: bool) -> Target:
    """Split ``url`` and check it fits a WebSocket (ws/wss) or a request (http/https)."""
    if not isinstance(url, str):
        raise WebSocketError(f"url must be a str, not {url!r}", reason="bad_url")
    parts = urlsplit(url)
    allowed = ("ws", "wss") if websocket else ("http", "https")
    if parts.scheme not in allowed:
        raise WebSocketError(
            f"{url!r}: the scheme must be {' or '.join(allowed)}", reason="bad_scheme"
        )
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise WebSocketError(f"{url!r}: {exc}", reason="bad_url") from exc
    if not host:
        raise WebSocketError(f"{url!r} names no host", reason="bad_url")
    if parts.fragment:
        raise WebSocketError(f"{url!r}: a URL fragment has no meaning here", reason="bad_url")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        token = base64.b64encode(credentials.encode()).decode("ascii")
        authorization = ("Authorization", f"Basic {token}")
    return Target(parts.scheme, host, port or _DEFAULT_PORTS[parts.scheme], path, authorization)


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """Every TLS option of ``mint.http.connect``, passed through unchanged."""

    ssl_context: ssl.SSLContext | None = None
    cafile: str | os.PathLike[str] | None = None
    verify: bool = True
    server_hostname: str | None = None


def protocols_for(http_scheme: str, http2: HTTP2Preference) -> tuple[str, ...]:
    """The ``protocols=`` for ``mint.http.connect`` that a preference means.

    "auto" lets ALPN choose on https and keeps to HTTP/1.1 on plain http,
    where offering HTTP/2 would need prior knowledge the client lacks.
    """
    if http2 is True:
        return ("http2",)
    if http2 is False:
        return ("http1",)
    if http2 != "auto":
        raise WebSocketError(
            f"http2 must be True, False or 'auto', not {http2!r}", reason="invalid_argument"
        )
    return ("http2", "http1") if http_scheme == "https" else ("http1",)


def check_http3_options(
    http3: object, http3_timeout: object, ssl_context: ssl.SSLContext | None
) -> HTTP3Preference:
    """The HTTP/3 options of a client, refused before any I/O when they cannot work."""
    preference = check_preference(http3)
    if not isinstance(http3_timeout, (int, float)) or http3_timeout <= 0:
        raise WebSocketError(
            f"http3_timeout must be a positive number, not {http3_timeout!r}",
            reason="invalid_argument",
        )
    if preference is not False and ssl_context is not None:
        raise WebSocketError(
            "ssl_context cannot configure QUIC's TLS (aioquic's own): pass cafile= and"
            " verify= with http3",
            reason="invalid_argument",
        )
    return preference


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """Everything one WebSocket session was asked for (see ``mint.client.connect``)."""

    subprotocols: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    origin: str | None = None
    compression: bool = True
    max_size: int | None = DEFAULT_MAX_SIZE
    max_queue: int = 16
    open_timeout: float | None = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float | None = 10.0
    extensions: tuple[Extension, ...] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.subprotocols, str):
            raise WebSocketError(
                "subprotocols must be a sequence of str, not one str", reason="invalid_argument"
            )
        if not isinstance(self.max_queue, int) or self.max_queue < 1:
            raise WebSocketError(
                f"max_queue must be an int >= 1, not {self.max_queue!r}", reason="invalid_argument"
            )
        for name in ("open_timeout", "ping_interval", "ping_timeout", "close_timeout"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or value <= 0):
                raise WebSocketError(
                    f"{name} must be a positive number or None, not {value!r}",
                    reason="invalid_argument",
                )
        if self.max_size is not None and (not isinstance(self.max_size, int) or self.max_size < 1):
            raise WebSocketError(
                f"max_size must be a positive int or None, not {self.max_size!r}",
                reason="invalid_argument",
            )

    def request_headers(self, target: Target) -> list[tuple[str, str]]:
        headers = list(self.headers)
        if self.origin is not None:
            headers.append(("Origin", self.origin))
        if target.authorization is not None and not any(
            name.lower() == "authorization" for name, _ in headers
        ):
            headers.append(target.authorization)
        return headers

    def offered_extensions(self) -> list[Extension]:
        """A fresh offer each time: an extension object holds one connection's state."""
        offered: list[Extension] = [PerMessageDeflate()] if self.compression else []
        offered.extend(self.extensions)
        return offered


def session_options(options: SessionKwargs) -> SessionOptions:
    """The checked options of one session; what is not given keeps ``SessionOptions``'s default."""
    subprotocols = options.get("subprotocols", ())
    if isinstance(subprotocols, str):  # tuple() would split it into one-letter subprotocols
        raise WebSocketError(
            "subprotocols must be a sequence of str, not one str", reason="invalid_argument"
        )
    unknown = set(options) - set(SessionKwargs.__annotations__)
    if unknown:
        raise WebSocketError(
            f"unknown session options: {sorted(unknown)}", reason="invalid_argument"
        )
    given: dict[str, object] = dict(options)
    given["subprotocols"] = tuple(subprotocols)
    given["headers"] = tuple((str(n), str(v)) for n, v in options.get("headers", ()))
    given["extensions"] = tuple(options.get("extensions", ()))
    return SessionOptions(**given)  # type: ignore[arg-type]


class SessionKwargs(TypedDict, total=False):
    """The options of one session, as ``Client.connect`` takes them (for typed ``**kwargs``)."""

    subprotocols: Sequence[str]
    headers: Iterable[tuple[str, str]]
    origin: str | None
    compression: bool
    max_size: int | None
    max_queue: int
    open_timeout: float | None
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float | None
    extensions: Sequence[Extension]


class ClientKwargs(TypedDict, total=False):
    """The connection options of ``Client``, as the module-level ``connect`` takes them."""

    http2: HTTP2Preference
    ssl_context: ssl.SSLContext | None
    cafile: str | os.PathLike[str] | None
    verify: bool
    server_hostname: str | None
    http2_window_size: int
    #: A proxy URL, or None for none; left out, the environment decides (``mint.client.proxies``).
    proxy: str | None
    proxy_ssl_context: ssl.SSLContext | None
    #: Try HTTP/3 first: True, False or "auto" (where Alt-Svc announced it); see ``Client``.
    http3: HTTP3Preference
    http3_timeout: float


class ConnectKwargs(SessionKwargs, ClientKwargs, total=False):
    """Everything the module-level ``connect`` takes besides the URL and reconnecting."""


_CLIENT_KEYS = frozenset(ClientKwargs.__annotations__)


def split_connect_kwargs(options: ConnectKwargs) -> tuple[ClientKwargs, SessionKwargs]:
    """Options for the session's own client, and for the session."""
    client = {key: value for key, value in options.items() if key in _CLIENT_KEYS}
    session = {key: value for key, value in options.items() if key not in _CLIENT_KEYS}
    return cast(ClientKwargs, client), cast(SessionKwargs, session)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter, for reconnecting sessions.

    Jitter spreads the reconnects of many clients that lost one server at
    the same moment, so they do not all knock at once when it comes back.
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: bool = True

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield random.uniform(0, delay) if self.jitter else delay
            delay = min(delay * self.factor, self.maximum)


__all__ = [
    "DEFAULT_MAX_SIZE",
    "Backoff",
    "ClientKwargs",
    "ConnectKwargs",
    "HTTP2Preference",
    "SessionKwargs",
    "SessionOptions",
    "TLSOptions",
    "Target",
    "check_http3_options",
    "parse_url",
    "protocols_for",
    "session_options",
    "split_connect_kwargs",
]
