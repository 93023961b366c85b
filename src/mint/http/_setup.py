"""What every shell decides before and around its I/O: arguments, TLS context, core choice.

The blocking shell (``transport.py``) and the asyncio shell (``aio.py``) must
accept the same options, refuse the same mistakes with the same messages, pick
HTTP/1.1 or HTTP/2 by the same rules and name failures with the same
``reason``.  Keeping those decisions here, free of sockets and event loops,
is what makes "the same semantics" a fact rather than a promise kept by
copy and paste.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mint.errors import HTTPError, MintError, TransportError
from mint.http.core import HTTPCore
from mint.http.events import Ref
from mint.http.http1 import HTTP1Core
from mint.http.http2 import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_RECEIVE_WINDOW,
    MAX_FRAME_SIZE,
    MAX_WINDOW,
    MIN_FRAME_SIZE,
    HTTP2Core,
)

DEFAULT_PORTS = {"http": 80, "https": 443}
ALPN_IDS = {"http1": "http/1.1", "http2": "h2"}
#: Not an ALPN choice over TCP: ``protocols=("http3",)`` means QUIC over UDP.
HTTP3 = "http3"


@dataclass(frozen=True, slots=True)
class ConnectPlan:
    """The checked arguments of a ``connect`` call: what to dial and how to speak."""

    scheme: str
    host: str
    port: int
    offered: tuple[str, ...]
    cafile: str | None
    #: HTTP/2 receive window and SETTINGS_MAX_FRAME_SIZE (see ``HTTP2Core``).
    http2_window_size: int = DEFAULT_RECEIVE_WINDOW
    http2_max_frame_size: int = DEFAULT_MAX_FRAME_SIZE


def plan_connect(
    scheme: str,
    host: str,
    port: int | None,
    protocols: Sequence[str],
    ssl_context: ssl.SSLContext | None,
    cafile: str | os.PathLike[str] | None,
    verify: bool,
    http2_window_size: int = DEFAULT_RECEIVE_WINDOW,
    http2_max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
) -> ConnectPlan:
    """Check ``connect``'s arguments up front, so a mistake never costs a network round trip.

    Raises ``ValueError`` (a caller's bug, not a network condition) for an
    unknown scheme or protocol, a port out of range, ``ssl_context``
    combined with ``cafile``/``verify``, or HTTP/2 settings out of RFC 9113's
    ranges.
    """
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"scheme must be 'http' or 'https', not {scheme!r}")
    offered = offered_protocols(protocols)
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if not _is_int(port) or not 0 < port < 65536:
        raise ValueError(f"port must be an int within 1..65535, not {port!r}")
    if ssl_context is not None and (cafile is not None or not verify):
        raise ValueError(
            "pass either ssl_context (configured as you need) or cafile=/verify=, not both"
        )
    if not _is_int(http2_window_size) or not 0 <= http2_window_size <= MAX_WINDOW:
        raise ValueError(
            f"http2_window_size must be an int within 0..{MAX_WINDOW}, not {http2_window_size!r}"
        )
    if not _is_int(http2_max_frame_size) or not (
        MIN_FRAME_SIZE <= http2_max_frame_size <= MAX_FRAME_SIZE
    ):
        raise ValueError(
            f"http2_max_frame_size must be an int within {MIN_FRAME_SIZE}..{MAX_FRAME_SIZE},"
            f" not {http2_max_frame_size!r}"
        )
    return ConnectPlan(
        scheme,
        host,
        port,
        offered,
        None if cafile is None else os.fspath(cafile),
        http2_window_size,
        http2_max_frame_size,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def offered_protocols(protocols: Sequence[str]) -> tuple[str, ...]:
    if isinstance(protocols, str):
        raise ValueError(
            f"protocols must be a tuple such as ('http1',), not the string {protocols!r}"
        )
    offered = tuple(protocols)
    unknown = [p for p in offered if p not in ALPN_IDS and p != HTTP3]
    if unknown or not offered:
        raise ValueError(
            "protocols must be a non-empty tuple of 'http1' and/or 'http2', or ('http3',),"
            f" got {protocols!r}"
        )
    if HTTP3 in offered and offered != (HTTP3,):
        # QUIC runs over UDP, the others over TCP: no ALPN can choose between
        # them on one socket.  Trying one after the other is a policy, which
        # belongs to the caller (mint.client does it).
        raise ValueError(f"'http3' cannot be combined with other protocols, got {protocols!r}")
    return offered


#: QUIC's floor (RFC 9000 section 14) and the largest packet aioquic copes with.
HTTP3_DATAGRAM_SIZES = (1200, 16384)


def check_http3(
    plan: ConnectPlan,
    ssl_context: ssl.SSLContext | None,
    proxy: str | None,
    max_datagram_size: int = HTTP3_DATAGRAM_SIZES[0],
) -> None:
    """Refuse the options HTTP/3 cannot honour before any packet is sent.

    QUIC always encrypts (no ``http``), runs its own TLS 1.3 (aioquic's, so
    an ``ssl.SSLContext`` cannot configure it: ``cafile``/``verify`` can),
    and travels over UDP, which HTTP CONNECT and SOCKS5 tunnels do not carry.
    """
    if plan.scheme != "https":
        raise ValueError("HTTP/3 needs scheme 'https' (QUIC is always encrypted)")
    if ssl_context is not None:
        raise ValueError("ssl_context cannot configure QUIC's TLS; pass cafile= or verify=")
    if proxy is not None:
        raise ValueError("HTTP/3 (UDP) cannot go through an HTTP or SOCKS5 proxy tunnel")
    low, high = HTTP3_DATAGRAM_SIZES
    if not _is_int(max_datagram_size) or not low <= max_datagram_size <= high:
        raise ValueError(
            f"http3_max_datagram_size must be an int within {low}..{high},"
            f" not {max_datagram_size!r}"
        )


def http3_module(name: str) -> Any:
    """Import an HTTP/3 module of mint, which needs the optional aioquic.

    Imported only when HTTP/3 is asked for, so that mint works without the
    extra; without it the caller learns what to install.
    """
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if exc.name is not None and not exc.name.startswith("aioquic"):
            raise
        raise MintError(
            "HTTP/3 needs aioquic: install mint-websocket[http3]", reason="missing_dependency"
        ) from exc


def tls_context(
    ssl_context: ssl.SSLContext | None,
    cafile: str | None,
    verify: bool,
    offered: Sequence[str],
) -> ssl.SSLContext:
    """The client context, verifying by default, with ALPN set to exactly what is offered.

    A caller's ``ssl_context`` is used as given, except for its ALPN list:
    offering a protocol the caller did not ask for would let the server pick
    a core the caller cannot use.
    """
    if ssl_context is not None:
        context = ssl_context
    else:
        try:
            context = ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot load cafile {cafile!r}: {exc}", reason="tls") from exc
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols([ALPN_IDS[p] for p in offered])
    return context


def proxy_tls_context(
    proxy_ssl_context: ssl.SSLContext | None, cafile: str | None, verify: bool
) -> ssl.SSLContext:
    """The context for TLS to an ``https://`` proxy itself (not to the target behind it).

    A caller's ``proxy_ssl_context`` is used exactly as given.  Otherwise the
    proxy is verified like the target: the same ``cafile`` (a private CA
    usually signs both the proxy and the servers behind it, and one option
    beats two) and the same ``verify``.  The target's own ``ssl_context`` is
    never reused for the proxy: its ALPN list is the target's, and what it
    trusts was chosen for the target.  ALPN offers ``http/1.1`` only, the
    version CONNECT is spoken in here.
    """
    if proxy_ssl_context is not None:
        return proxy_ssl_context
    context = tls_context(None, cafile, verify, ("http1",))
    return context


def use_http2(scheme: str, offered: Sequence[str], alpn: str | None) -> bool:
    """HTTP/2 when ALPN chose ``h2``; on cleartext only when it is the sole offer (h2c).

    A TLS server that ignores ALPN gets HTTP/1.1 if it was offered, since
    every server speaks it; HTTP/2 otherwise, as the caller asked for nothing else.
    """
    if scheme == "https":
        return alpn == "h2" or (alpn is None and "http1" not in offered)
    return tuple(offered) == ("http2",)


def authority(scheme: str, host: str, port: int) -> str:
    """The ``Host`` / ``:authority`` value: the port only when it is not the default."""
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host  # IPv6 literal
    return name if port == DEFAULT_PORTS[scheme] else f"{name}:{port}"


def make_core(http2: bool, plan: ConnectPlan) -> HTTPCore:
    name = authority(plan.scheme, plan.host, plan.port)
    if http2:
        return HTTP2Core(
            name,
            plan.scheme,
            initial_window_size=plan.http2_window_size,
            max_frame_size=plan.http2_max_frame_size,
        )
    return HTTP1Core(name)


def transport_error(exc: BaseException, doing: str) -> TransportError:
    """Name the failure so callers can branch on ``reason`` instead of parsing text."""
    reason = "socket"
    if isinstance(exc, socket.gaierror):
        reason = "resolve"
    elif isinstance(exc, TimeoutError):
        reason = "timeout"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "refused"
    elif isinstance(exc, ssl.SSLError | ssl.CertificateError):
        reason = "tls"
    elif isinstance(exc, BrokenPipeError | ConnectionResetError | ConnectionAbortedError):
        reason = "closed"
    detail = str(exc) or type(exc).__name__
    error = TransportError(f"{doing} failed ({reason}): {detail}", reason=reason)
    error.__cause__ = exc
    return error


def http2_method(core: HTTPCore, name: str) -> Any:
    """The core's HTTP/2-only method ``name`` (``ping``, ``send_window``, ``cancel_request``).

    Asked of an HTTP/1.1 connection it is the caller's mistake, not a protocol
    failure, and both shells must name it the same way.
    """
    method = getattr(core, name, None)
    if method is None:
        raise HTTPError(
            f"{name}() needs HTTP/2; this connection is {core.version}", reason="not_supported"
        )
    return method


class ConnectionFacts:
    """What both shells' connections answer without I/O: the core and where it is connected.

    ``Connection`` and ``AsyncConnection`` inherit it, so the read-only side of
    their API cannot drift apart; each adds its own I/O and its ``open``.
    """

    def __init__(
        self, core: HTTPCore, *, scheme: str, host: str, port: int, alpn_protocol: str | None
    ) -> None:
        self._core = core
        self._scheme = scheme
        self._host = host
        self._port = port
        self._alpn_protocol = alpn_protocol

    @property
    def core(self) -> HTTPCore:
        return self._core

    @property
    def version(self) -> str:
        return self._core.version

    @property
    def scheme(self) -> str:
        return self._scheme

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def alpn_protocol(self) -> str | None:
        return self._alpn_protocol

    @property
    def open(self) -> bool:
        return self._core.open

    @property
    def extended_connect_enabled(self) -> bool:
        """RFC 8441 support as the server announced it; always False on HTTP/1.1."""
        return bool(getattr(self._core, "extended_connect_enabled", False))

    @property
    def server_settings(self) -> dict[str, int]:
        """A copy of the server's HTTP/2 SETTINGS; {} on HTTP/1.1."""
        settings: dict[str, int] = dict(getattr(self._core, "server_settings", {}))
        return settings

    def send_window(self, ref: Ref) -> int:
        """Bytes the HTTP/2 flow-control window lets ``ref`` send right now."""
        window: int = http2_method(self._core, "send_window")(ref)
        return window

    def __repr__(self) -> str:
        state = "open" if self.open else "closed"
        where = f"{self._scheme}://{self._host}:{self._port}"
        return f"<{type(self).__name__} {where} {self.version} {state}>"


def awaiting_server_settings(core: HTTPCore) -> bool:
    """True while an HTTP/2 core has not yet seen the server's first SETTINGS frame.

    ``connect`` reads until this turns False: deciding earlier would report
    extended CONNECT as disabled before the server had its say.
    """
    return not getattr(core, "remote_settings_received", True)


def connection_spent(core: HTTPCore) -> bool:
    """An HTTP/1.1 core that stopped being open (``Connection: close``, a protocol error).

    It can do nothing more, so the shell frees the socket at once.  An HTTP/2
    core that is no longer open may still owe a GOAWAY, which ``close`` sends.
    """
    return not core.open and core.version == "HTTP/1.1"


__all__ = [
    "ALPN_IDS",
    "DEFAULT_PORTS",
    "HTTP3",
    "ConnectPlan",
    "ConnectionFacts",
    "authority",
    "awaiting_server_settings",
    "check_http3",
    "connection_spent",
    "http2_method",
    "http3_module",
    "make_core",
    "offered_protocols",
    "plan_connect",
    "proxy_tls_context",
    "tls_context",
    "transport_error",
    "use_http2",
]
