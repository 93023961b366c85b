"""The blocking shell: a socket (maybe TLS) around a sans-I/O HTTP core.

Process-less by design: no thread, no timer, no background reader.  Nothing
happens on the connection unless the caller calls a method; ``recv`` blocks
only for the length of that call (bounded by its ``timeout``), and writes
happen inside the call that produced them.  Keep-alive pings, reconnection and
concurrency are the caller's policy, as with Mint.

Callers who run their own event loop (``selectors``, ``select``) can skip
``recv`` entirely: wait on ``conn.socket`` (or ``conn.fileno()``), read from it
themselves and pass the bytes to ``conn.stream(data)``.  With TLS, remember
that ``conn.socket.pending()`` may hold decrypted bytes a selector will not
report.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from mint.errors import HTTPError, MintError, TransportError
from mint.http.core import HTTPCore
from mint.http.events import Body, Chunk, Event, Ref
from mint.http.http1 import HTTP1Core

_READ_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ALPN_IDS = {"http1": "http/1.1", "http2": "h2"}


def _transport_error(exc: BaseException, doing: str) -> TransportError:
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


class Connection:
    """One HTTP connection: a socket, and the core that speaks HTTP over it.

    Every method that makes the core produce bytes writes them before returning.
    Use as a context manager to close the socket on the way out.
    """

    def __init__(
        self,
        sock: socket.socket,
        core: HTTPCore,
        *,
        scheme: str,
        host: str,
        port: int,
        write_timeout: float | None,
        alpn_protocol: str | None = None,
    ) -> None:
        self._socket = sock
        self._core = core
        self._scheme = scheme
        self._host = host
        self._port = port
        self._write_timeout = write_timeout
        self._alpn_protocol = alpn_protocol
        self._pending: list[Event] = []
        self._socket_closed = False

    # -- facts -----------------------------------------------------------

    @property
    def socket(self) -> socket.socket:
        return self._socket

    def fileno(self) -> int:
        return self._socket.fileno()

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
        return not self._socket_closed and self._core.open

    # -- requests --------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: Body = None,
        *,
        protocol: str | None = None,
    ) -> Ref:
        self._check_socket()
        ref = self._core.request(method, path, headers, body, protocol=protocol)
        self._flush()
        return ref

    def stream_request_body(self, ref: Ref, chunk: Chunk, *, end_stream: bool = False) -> None:
        """Write body or tunnel bytes (``EOF`` ends them); see ``HTTPCore.stream_request_body``.

        On HTTP/2, bytes the flow-control windows cannot take yet are queued in
        the core and go out from later ``recv`` calls as the server opens them.
        """
        self._check_socket()
        self._core.stream_request_body(ref, chunk, end_stream=end_stream)
        self._flush()

    def cancel_request(self, ref: Ref) -> None:
        """Abandon one HTTP/2 request or tunnel (RST_STREAM CANCEL); no event follows for it.

        The way out of a WebSocket whose server finished the close handshake but
        never ended its stream.  HTTP/1.1 cannot cancel one request without
        losing the connection, so there it raises ``HTTPError(reason="not_supported")``.
        """
        self._check_socket()
        self._http2_method("cancel_request")(ref)
        self._flush()

    # -- responses -------------------------------------------------------

    def recv(self, timeout: float | None = None) -> list[Event]:
        """Read until the core yields at least one event; ``None`` waits without limit.

        Raises ``TransportError(reason="timeout")`` when ``timeout`` seconds pass
        with no event (the connection stays usable), and
        ``TransportError(reason="closed")`` when the peer closed it and there is
        nothing left to report.
        """
        if self._pending:
            events, self._pending = self._pending, []
            return events
        self._check_socket()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            data = self._read(deadline)
            events = self._feed(data)
            if events:
                return events
            if not data:
                raise TransportError("the server closed the connection", reason="closed")
            if deadline is not None and time.monotonic() >= deadline:
                # The partial response stays buffered in the core for the next call.
                raise TransportError("no response event before the timeout", reason="timeout")

    def stream(self, data: bytes) -> list[Event]:
        """Feed bytes the caller read from ``conn.socket`` itself; ``b""`` means EOF.

        The sans-I/O entry point for callers running their own loop.  May return
        no events (a partial response).
        """
        events, self._pending = self._pending, []
        if self._socket_closed and data:
            raise TransportError("the connection is closed", reason="closed")
        events.extend(self._feed(data))
        return events

    # -- HTTP/2 extras -----------------------------------------------------

    @property
    def extended_connect_enabled(self) -> bool:
        return bool(getattr(self._core, "extended_connect_enabled", False))

    @property
    def server_settings(self) -> dict[str, int]:
        settings: dict[str, int] = dict(getattr(self._core, "server_settings", {}))
        return settings

    def ping(self) -> Ref:
        """Send an HTTP/2 PING; its answer arrives as ``Pong(ref)`` from ``recv``."""
        self._check_socket()
        ref: Ref = self._http2_method("ping")()
        self._flush()
        return ref

    def send_window(self, ref: Ref) -> int:
        """Bytes the HTTP/2 flow-control window lets ``ref`` send right now."""
        window: int = self._http2_method("send_window")(ref)
        return window

    # -- closing -----------------------------------------------------------

    def close(self) -> None:
        """Close the connection; idempotent.  A final GOAWAY (HTTP/2) is sent if possible."""
        if self._socket_closed:
            return
        try:
            self._core.close()
            leftover = self._core.data_to_send()
            if leftover:
                self._socket.settimeout(self._write_timeout)
                self._socket.sendall(leftover)
        except (OSError, MintError):
            pass  # best effort: the connection is going away anyway
        finally:
            self._close_socket()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.open else "closed"
        return f"<Connection {self._scheme}://{self._host}:{self._port} {self.version} {state}>"

    # -- internals -----------------------------------------------------------

    def _await_server_settings(self, deadline: float | None) -> None:
        """Send the HTTP/2 preface, then read until the server's SETTINGS arrived.

        RFC 8441 support is only known from those SETTINGS; deciding earlier would
        wrongly report extended CONNECT as disabled.  Events seen meanwhile are
        kept for the first ``recv()``.
        """
        try:
            self._flush()
            while not getattr(self._core, "remote_settings_received", True):
                data = self._read(deadline)
                self._pending.extend(self._feed(data))
                if not data:
                    raise TransportError(
                        "the server closed the connection before sending its HTTP/2 SETTINGS",
                        reason="closed",
                    )
        except BaseException:
            self.close()
            raise

    def _http2_method(self, name: str) -> Any:
        method = getattr(self._core, name, None)
        if method is None:
            raise HTTPError(
                f"{name}() needs HTTP/2; this connection is {self.version}", reason="not_supported"
            )
        return method

    def _check_socket(self) -> None:
        if self._socket_closed:
            raise TransportError("the connection is closed", reason="closed")

    def _feed(self, data: bytes) -> list[Event]:
        events = self._core.receive_data(data)
        if not data:
            self._close_socket()
        else:
            self._flush()
            if not self._core.open and self._core.version == "HTTP/1.1":
                # An HTTP/1.1 core that stopped being open can do nothing more
                # (Connection: close, a protocol error): free the socket now.
                self._close_socket()
        return events

    def _read(self, deadline: float | None) -> bytes:
        """One socket read bounded by ``deadline``; ``b""`` on EOF."""
        if isinstance(self._socket, ssl.SSLSocket) and self._socket.pending():
            deadline = None  # decrypted bytes are waiting: no wait at all
        # A spent deadline still allows one read of what is already buffered,
        # so recv(timeout=0) is a poll.
        remaining = None if deadline is None else max(deadline - time.monotonic(), 1e-6)
        self._socket.settimeout(remaining)
        try:
            return self._socket.recv(_READ_SIZE)
        except TimeoutError as exc:
            raise TransportError("no response event before the timeout", reason="timeout") from exc
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""
        except OSError as exc:
            self._close_socket()
            raise _transport_error(exc, "reading from the server") from exc

    def _flush(self) -> None:
        data = self._core.data_to_send()
        if not data:
            return
        try:
            self._socket.settimeout(self._write_timeout)
            self._socket.sendall(data)
        except OSError as exc:
            # A partial write leaves the byte stream unusable: give up on it.
            self._close_socket()
            raise _transport_error(exc, "writing to the server") from exc

    def _close_socket(self) -> None:
        if not self._socket_closed:
            self._socket_closed = True
            with contextlib.suppress(OSError):
                self._socket.close()


def _offered(protocols: Sequence[str]) -> tuple[str, ...]:
    if isinstance(protocols, str):
        raise ValueError(
            f"protocols must be a tuple such as ('http1',), not the string {protocols!r}"
        )
    offered = tuple(protocols)
    unknown = [p for p in offered if p not in _ALPN_IDS]
    if unknown or not offered:
        raise ValueError(
            f"protocols must be a non-empty tuple of 'http1' and/or 'http2', got {protocols!r}"
        )
    return offered


def _tls_context(
    ssl_context: ssl.SSLContext | None, cafile: str | None, verify: bool
) -> ssl.SSLContext:
    if ssl_context is not None:
        return ssl_context
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(f"cannot load cafile {cafile!r}: {exc}", reason="tls") from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(
    scheme: str,
    host: str,
    port: int | None = None,
    *,
    protocols: Sequence[str] = ("http1",),
    timeout: float | None = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    cafile: str | os.PathLike[str] | None = None,
    verify: bool = True,
    server_hostname: str | None = None,
) -> Connection:
    """Open a TCP (and for ``https`` a TLS) connection and pick the HTTP core.

    Certificates and host names are verified unless ``verify=False`` is given
    explicitly.  ``ssl_context`` replaces the default context entirely (its
    ALPN list is set to match ``protocols``; it cannot be combined with
    ``cafile`` or ``verify``).  On ``https`` ALPN chooses among
    ``protocols``; on ``http``, ``protocols=("http2",)`` means HTTP/2 with prior
    knowledge (h2c).  For HTTP/2 this returns once the server's first SETTINGS
    arrived, so ``extended_connect_enabled`` is meaningful right away.
    ``timeout`` bounds the whole connect, and later each write.
    """
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"scheme must be 'http' or 'https', not {scheme!r}")
    offered = _offered(protocols)
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an int within 1..65535, not {port!r}")
    if ssl_context is not None and (cafile is not None or not verify):
        raise ValueError(
            "pass either ssl_context (configured as you need) or cafile=/verify=, not both"
        )
    deadline = None if timeout is None else time.monotonic() + timeout

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise _transport_error(exc, f"connecting to {host}:{port}") from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        alpn: str | None = None
        if scheme == "https":
            context = _tls_context(
                ssl_context, None if cafile is None else os.fspath(cafile), verify
            )
            context.set_alpn_protocols([_ALPN_IDS[p] for p in offered])
            sock.settimeout(_remaining(deadline))
            tls_sock = context.wrap_socket(sock, server_hostname=server_hostname or host)
            sock = tls_sock
            alpn = tls_sock.selected_alpn_protocol()
            use_http2 = alpn == "h2" or (alpn is None and "http1" not in offered)
        else:
            use_http2 = offered == ("http2",)
    except TransportError:
        sock.close()
        raise
    except (OSError, ValueError) as exc:
        sock.close()
        raise _transport_error(exc, f"TLS handshake with {host}:{port}") from exc

    authority = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    if ":" in host and not host.startswith("["):  # IPv6 literal
        authority = f"[{host}]" if port == _DEFAULT_PORTS[scheme] else f"[{host}]:{port}"
    core: HTTPCore
    if use_http2:
        from mint.http.http2 import HTTP2Core

        core = HTTP2Core(authority, scheme)
    else:
        core = HTTP1Core(authority)
    conn = Connection(
        sock, core, scheme=scheme, host=host, port=port, write_timeout=timeout, alpn_protocol=alpn
    )
    if use_http2:
        conn._await_server_settings(deadline)
    return conn


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), 0.001)


__all__ = ["Connection", "connect"]
