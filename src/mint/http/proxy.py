"""Proxy tunnels, free of I/O: proxy URLs, the HTTP CONNECT exchange, the SOCKS5 exchange.

Both shells dial the proxy, then hand this module's ``Tunnel`` whatever the
proxy sends and write whatever it asks them to, until it says the tunnel is
up; from then on the socket (or transport) carries the target's bytes as if
it were connected to the target itself, and TLS to the target, ALPN and the
HTTP cores work unchanged over it.  Keeping the exchange here means the
blocking and asyncio shells cannot answer a proxy differently.

Nothing here sends a byte meant for the target: a tunnel refused in any way
(a non-2xx answer, a SOCKS failure code, an early close, bytes that are no
answer at all) raises ``ProxyError`` before the caller's first request is
even built.  Bytes that arrive behind the proxy's answer in the same read
already belong to the target and are kept in ``Tunnel.leftover``.
"""

from __future__ import annotations

import abc
import base64
import importlib
import ipaddress
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import h11

from mint.errors import MintError, ProxyError

#: Where each proxy scheme listens when the URL names no port (the usual conventions).
PROXY_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}

#: RFC 1928 section 6 reply codes, as ``ProxyError.reason`` suffixes.
SOCKS5_REPLIES = {
    1: "general_failure",
    2: "not_allowed",
    3: "network_unreachable",
    4: "host_unreachable",
    5: "connection_refused",
    6: "ttl_expired",
    7: "command_not_supported",
    8: "address_type_not_supported",
}

#: Reasons that retrying with the same settings cannot fix (the session layer does not retry them).
PERMANENT_REASONS = frozenset({"proxy_auth_required", "socks_auth_required", "socks_auth_failed"})


@dataclass(frozen=True, slots=True)
class Proxy:
    """A parsed proxy URL: where the proxy listens and how to speak to it.

    ``username``/``password`` are percent-decoded; ``password`` is ``""``
    when the URL named a user only.
    """

    scheme: str  # http, https, socks5 or socks5h
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        """TLS to the proxy itself (an ``https://`` proxy), besides any TLS to the target."""
        return self.scheme == "https"

    @property
    def socks(self) -> bool:
        return self.scheme in ("socks5", "socks5h")

    @property
    def resolve_locally(self) -> bool:
        """``socks5://`` resolves the target's name here; ``socks5h://`` lets the proxy do it.

        The curl convention, which the Python HTTP clients follow: "h" for
        "hostname", sent as is.  Resolving here leaks the name to the local
        resolver but works with proxies that refuse names.
        """
        return self.scheme == "socks5"

    @property
    def url(self) -> str:
        """The URL without credentials, for messages and logs."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_proxy(url: object) -> Proxy:
    """Check and split a proxy URL before any I/O.

    Raises ``ValueError`` (a caller's mistake, as for ``connect``'s other
    arguments) for a non-string, an unknown scheme, a missing host, a bad
    port, or a path, query or fragment (which a proxy URL cannot use).  A
    SOCKS proxy also needs the optional ``socksio`` package: without it a
    ``MintError(reason="missing_dependency")`` says how to install it.
    """
    if not isinstance(url, str):
        raise ValueError(f"proxy must be a URL string such as 'http://host:port', not {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in PROXY_PORTS:
        raise ValueError(
            f"proxy {url!r}: the scheme must be http, https, socks5 or socks5h"
            " (a bare host:port needs 'http://' in front)"
        )
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"proxy {url!r}: {exc}") from exc
    if not host:
        raise ValueError(f"proxy {url!r} names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"proxy {url!r}: a proxy URL has no path, query or fragment")
    username = None if parts.username is None else unquote(parts.username)
    password = None if username is None else unquote(parts.password or "")
    proxy = Proxy(scheme, host, port or PROXY_PORTS[scheme], username, password)
    if proxy.socks:
        socksio()  # a missing dependency fails here, before any I/O
        if username is not None and (
            len(username.encode()) > 255 or len((password or "").encode()) > 255
        ):
            raise ValueError(f"proxy {proxy.url}: SOCKS5 credentials are at most 255 bytes each")
    return proxy


def socksio() -> ModuleType:
    """The ``socksio`` package, imported on first use: only SOCKS users need it installed."""
    try:
        return importlib.import_module("socksio")
    except ImportError as exc:
        raise MintError(
            "SOCKS proxies need the socksio package: pip install 'mint-websocket[socks]'",
            reason="missing_dependency",
        ) from exc


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class Tunnel(abc.ABC):
    """The client side of one proxy exchange; the shell moves the bytes.

    Loop: write ``data_to_send()``; if ``ready`` stop; read and pass the
    bytes to ``receive_data`` (``b""`` for EOF), which raises ``ProxyError``
    for any refusal.  Once ``ready``, ``leftover`` holds what the proxy sent
    past its answer: the target's first bytes.
    """

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.ready = False
        self.leftover = b""
        self._outgoing = b""

    def data_to_send(self) -> bytes:
        data, self._outgoing = self._outgoing, b""
        return data

    @abc.abstractmethod
    def receive_data(self, data: bytes) -> None:
        """Take the proxy's bytes (``b""``: it closed); raise ``ProxyError`` if it refused."""

    def _closed(self, waiting_for: str) -> ProxyError:
        return ProxyError(
            f"the proxy {self.proxy.url} closed the connection before {waiting_for}",
            reason="proxy_closed",
        )


class HTTPConnectTunnel(Tunnel):
    """``CONNECT host:port HTTP/1.1`` (RFC 9110 section 9.3.6), parsed by h11.

    h11 knows CONNECT: a 2xx answer switches it out of HTTP, and the bytes
    behind the answer come back as its ``trailing_data``.  Its limits (16 KiB
    of head) bound what a misbehaving proxy can make us buffer.
    """

    def __init__(self, proxy: Proxy, host: str, port: int) -> None:
        super().__init__(proxy)
        name = f"[{host}]" if ":" in host and not host.startswith("[") else host
        target = f"{name}:{port}"
        headers = [("Host", target)]
        if proxy.username is not None:
            credentials = f"{proxy.username}:{proxy.password or ''}".encode()
            token = base64.b64encode(credentials).decode("ascii")
            headers.append(("Proxy-Authorization", f"Basic {token}"))
        self._h11 = h11.Connection(our_role=h11.CLIENT)
        try:
            request = h11.Request(method="CONNECT", target=target, headers=headers)
        except h11.LocalProtocolError as exc:  # a host with spaces or control characters
            raise ValueError(f"cannot ask a proxy for {target!r}: {exc}") from exc
        self._outgoing = self._h11.send(request) or b""

    def receive_data(self, data: bytes) -> None:
        if not data:
            raise self._closed("answering the CONNECT request")
        self._h11.receive_data(data)
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise ProxyError(
                    f"the proxy {self.proxy.url} sent no valid HTTP answer to CONNECT: {exc}",
                    reason="proxy_protocol",
                ) from exc
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.InformationalResponse):
                continue  # a 100 Continue or the like: the real answer follows
            if not isinstance(event, h11.Response):  # pragma: no cover - h11 gives nothing else
                raise ProxyError(f"unexpected {event!r} from the proxy", reason="proxy_protocol")
            status = event.status_code
            if 200 <= status < 300:
                trailing, _ = self._h11.trailing_data
                self.leftover = bytes(trailing)
                self.ready = True
                return
            text = event.reason.decode("latin-1")
            reason = "proxy_auth_required" if status == 407 else "proxy_refused"
            raise ProxyError(
                f"the proxy {self.proxy.url} refused the tunnel: {status} {text}".rstrip(),
                reason=reason,
                status=status,
            )


class SOCKS5Tunnel(Tunnel):
    """RFC 1928 (and RFC 1929 username/password), with ``socksio`` building and reading messages.

    ``socksio`` wants each message whole, so the framing is done here: the
    method and auth replies are two bytes, the CONNECT reply's length
    follows from its address type.  ``host`` is sent as given: an IP
    literal as an address, anything else as a name for the proxy to resolve
    (the shell resolves it first for ``socks5://``).
    """

    def __init__(self, proxy: Proxy, host: str, port: int) -> None:
        super().__init__(proxy)
        self._socks = socksio()
        self._host = host.strip("[]")
        self._port = port
        self._conn = self._socks.SOCKS5Connection()
        methods = [self._socks.SOCKS5AuthMethod.NO_AUTH_REQUIRED]
        if proxy.username is not None:
            methods.append(self._socks.SOCKS5AuthMethod.USERNAME_PASSWORD)
        self._conn.send(self._socks.SOCKS5AuthMethodsRequest(methods))
        self._outgoing = self._conn.data_to_send()
        self._stage = "method"
        self._buffer = bytearray()

    def receive_data(self, data: bytes) -> None:
        if not data:
            if self._stage == "auth":
                # The usual way a SOCKS server turns down credentials is to hang up.
                raise ProxyError(
                    f"the SOCKS5 proxy {self.proxy.url} closed the connection after our"
                    " credentials: they were refused",
                    reason="socks_auth_failed",
                )
            raise self._closed(f"its SOCKS5 {self._stage} reply")
        self._buffer += data
        while not self.ready:
            size = self._message_size()
            if size is None or len(self._buffer) < size:
                return
            message = bytes(self._buffer[:size])
            del self._buffer[:size]
            self._handle(message)
        self.leftover = bytes(self._buffer)

    def _message_size(self) -> int | None:
        """Bytes in the next whole reply, or None while too few arrived to tell."""
        if self._stage in ("method", "auth"):
            return 2
        if len(self._buffer) < 5:
            return None
        address_type = self._buffer[3]
        if address_type == 1:
            return 10
        if address_type == 4:
            return 22
        if address_type == 3:
            return 7 + self._buffer[4]
        raise self._garbage(f"unknown address type {address_type}")

    def _handle(self, message: bytes) -> None:
        socks = self._socks
        if self._stage == "method":
            if message[0] != 5:
                raise self._garbage(f"version {message[0]} instead of 5")
            if message[1] == 0xFF:
                raise ProxyError(
                    f"the SOCKS5 proxy {self.proxy.url} accepts none of our authentication"
                    " methods (it wants credentials, or others than username/password)",
                    reason="socks_auth_required",
                )
            reply = self._load(message)
            if reply.method == socks.SOCKS5AuthMethod.USERNAME_PASSWORD:
                if self.proxy.username is None:  # pragma: no cover - not offered
                    raise self._garbage("asked for credentials it was not offered")
                self._conn.send(
                    socks.SOCKS5UsernamePasswordRequest(
                        self.proxy.username.encode(), (self.proxy.password or "").encode()
                    )
                )
                self._outgoing += self._conn.data_to_send()
                self._stage = "auth"
            elif reply.method == socks.SOCKS5AuthMethod.NO_AUTH_REQUIRED:
                self._send_connect()
            else:
                raise self._garbage(f"chose authentication method {message[1]}, not offered")
        elif self._stage == "auth":
            if not self._load(message).success:
                raise ProxyError(
                    f"the SOCKS5 proxy {self.proxy.url} refused our credentials",
                    reason="socks_auth_failed",
                )
            self._send_connect()
        else:
            if message[0] != 5:
                raise self._garbage(f"version {message[0]} instead of 5")
            code = message[1]
            if code != 0:
                name = SOCKS5_REPLIES.get(code, "unknown_failure")
                raise ProxyError(
                    f"the SOCKS5 proxy {self.proxy.url} could not connect to"
                    f" {self._host}:{self._port}: {name.replace('_', ' ')} (reply code {code})",
                    reason=f"socks_{name}",
                    reply_code=code,
                )
            # The bound address that follows is of no use to a client (and
            # its framing was checked by ``_message_size``).
            self.ready = True

    def _send_connect(self) -> None:
        socks = self._socks
        try:
            request = socks.SOCKS5CommandRequest.from_address(
                socks.SOCKS5Command.CONNECT, (self._host, self._port)
            )
        except (socks.SOCKSError, ValueError) as exc:
            raise ValueError(f"cannot ask a SOCKS5 proxy for {self._host!r}: {exc}") from exc
        if len(request.addr) > 255:
            raise ValueError(f"cannot ask a SOCKS5 proxy for {self._host!r}: name too long")
        self._conn.send(request)
        self._outgoing += self._conn.data_to_send()
        self._stage = "connect"

    def _load(self, message: bytes) -> Any:
        try:
            return self._conn.receive_data(message)
        except (self._socks.SOCKSError, ValueError, IndexError) as exc:
            raise self._garbage(str(exc) or type(exc).__name__) from exc

    def _garbage(self, detail: str) -> ProxyError:
        return ProxyError(
            f"the SOCKS5 proxy {self.proxy.url} sent a malformed {self._stage} reply: {detail}",
            reason="proxy_protocol",
        )


def check_no_leftover(leftover: bytes, proxy: Proxy) -> None:
    """A TLS server speaks only after our ClientHello: bytes before it are no TLS at all."""
    if leftover:
        raise ProxyError(
            f"the proxy {proxy.url} sent {len(leftover)} unexpected bytes after opening the"
            " tunnel, before TLS to the server began",
            reason="proxy_protocol",
        )


def open_tunnel(proxy: Proxy, host: str, port: int) -> Tunnel:
    """The exchange that asks ``proxy`` for a tunnel to ``host``:``port``.

    For ``socks5://`` the shell passes the address it resolved ``host`` to.
    """
    if proxy.socks:
        return SOCKS5Tunnel(proxy, host, port)
    return HTTPConnectTunnel(proxy, host, port)


__all__ = [
    "PERMANENT_REASONS",
    "PROXY_PORTS",
    "HTTPConnectTunnel",
    "Proxy",
    "SOCKS5Tunnel",
    "Tunnel",
    "check_no_leftover",
    "is_ip_address",
    "open_tunnel",
    "parse_proxy",
    "socksio",
]
