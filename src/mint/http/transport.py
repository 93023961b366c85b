"""The blocking shell: a socket (maybe TLS) around a sans-I/O HTTP core.

Process-less by design: no thread, no timer, no background reader.  Nothing
happens on the connection unless the caller calls a method; ``recv`` blocks
only for the length of that call (bounded by its ``timeout``), and writes
happen inside the call that produced them.  Keep-alive pings, reconnection and
concurrency are the caller's policy, as with Mint.

Callers who run their own event loop (``selectors``, ``select``) can skip
``recv`` entirely: wait on ``conn.socket`` (or ``conn.fileno()``), read from it
themselves and pass the bytes to ``conn.stream(data)``.  The socket is in
non-blocking mode (see ``mint.http._socket_io``), as such loops want it.  With
TLS, remember that ``conn.socket.pending()`` may hold decrypted bytes a
selector will not report.
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

from mint.errors import MintError, TransportError
from mint.http._proxy_socket import tunnel_through, wrap_tunneled
from mint.http._setup import (
    HTTP3,
    ConnectionFacts,
    awaiting_server_settings,
    check_http3,
    connection_spent,
    http2_method,
    http3_module,
    make_core,
    plan_connect,
    proxy_tls_context,
    tls_context,
    transport_error,
    use_http2,
)
from mint.http._socket_io import NonBlockingSocket
from mint.http.core import HTTPCore
from mint.http.events import Body, Chunk, Event, Ref
from mint.http.http1 import HTTP1Core
from mint.http.http2 import DEFAULT_MAX_FRAME_SIZE, DEFAULT_RECEIVE_WINDOW
from mint.http.proxy import check_no_leftover, parse_proxy


class Connection(ConnectionFacts):
    """One HTTP connection: a socket, and the core that speaks HTTP over it.

    Every method that makes the core produce bytes writes them before returning.
    Use as a context manager to close the socket on the way out.
    """

    #: The core, when it is HTTP/1.1's: the one whose tunnel bytes skip ``_flush``.
    _http1: HTTP1Core | None = None

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
        super().__init__(core, scheme=scheme, host=host, port=port, alpn_protocol=alpn_protocol)
        self._socket = sock
        self._io = NonBlockingSocket(sock)
        self._write_timeout = write_timeout
        self._pending: list[Event] = []
        self._socket_closed = False
        # Set when writing the core's answer to received bytes failed: those
        # bytes' events still went to the caller, so the failure waits here.
        self._write_error: TransportError | None = None
        self._http1 = core if isinstance(core, HTTP1Core) else None

    # -- facts -----------------------------------------------------------

    @property
    def socket(self) -> socket.socket:
        return self._socket

    def fileno(self) -> int:
        return self._socket.fileno()

    @property
    def open(self) -> bool:
        return not self._socket_closed and self._write_error is None and self._core.open

    def next_deadline(self) -> float | None:
        """None: over TCP the kernel runs the protocol's timers (HTTP/3 connections have some)."""
        return None

    def handle_deadline(self) -> list[Event]:
        """Nothing to do over TCP; an HTTP/3 connection fires its due QUIC timers here."""
        return []

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
        self._check_writable()
        ref = self._core.request(method, path, headers, body, protocol=protocol)
        self._flush()
        return ref

    def stream_request_body(self, ref: Ref, chunk: Chunk, *, end_stream: bool = False) -> None:
        """Write body or tunnel bytes (``EOF`` ends them); see ``HTTPCore.stream_request_body``.

        On HTTP/2, bytes the flow-control windows cannot take yet are queued in
        the core and go out from later ``recv`` calls as the server opens them.
        """
        if self._write_error is not None or self._socket_closed:
            self._check_writable()  # raises; tested inline first (this runs per message)
        if self._http1 is None:
            self._core.stream_request_body(ref, chunk, end_stream=end_stream)
            self._flush()
            return
        data = self._http1.send_body(ref, chunk, end_stream=end_stream)
        if data:
            self._write_one(data)

    def cancel_request(self, ref: Ref) -> None:
        """Abandon one HTTP/2 request or tunnel (RST_STREAM CANCEL); no event follows for it.

        The way out of a WebSocket whose server finished the close handshake but
        never ended its stream.  HTTP/1.1 cannot cancel one request without
        losing the connection, so there it raises ``HTTPError(reason="not_supported")``.
        """
        self._check_writable()
        http2_method(self._core, "cancel_request")(ref)
        self._flush()

    # -- responses -------------------------------------------------------

    def recv(self, timeout: float | None = None) -> list[Event]:
        """Read until the core yields at least one event; ``None`` waits without limit.

        Raises ``TransportError(reason="timeout")`` when ``timeout`` seconds pass
        with no event (the connection stays usable), and
        ``TransportError(reason="closed")`` when the peer closed it and there is
        nothing left to report.  After a failed write (see ``stream``) it still
        delivers what already arrived, then raises that write's error.
        """
        if self._pending:
            events, self._pending = self._pending, []
            return events
        self._check_socket()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            data = self._read(deadline) if self._write_error is None else self._read_arrived()
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
        no events (a partial response).  If writing the core's answer (an
        HTTP/2 ACK, a WINDOW_UPDATE) fails, the events are returned all the
        same, ``open`` turns False and the failure is raised by the next call
        that writes; ``recv`` still drains what arrived before raising it.
        """
        if self._socket_closed and data:
            # Checked before taking the pending events, which the next recv() still returns.
            raise TransportError("the connection is closed", reason="closed")
        events, self._pending = self._pending, []
        events.extend(self._feed(data))
        return events

    def passes_through(self, ref: Ref) -> bool:
        """Whether bytes read from ``socket`` now may go straight to ``ref``'s owner.

        True on an open HTTP/1.1 tunnel with no events pending and the socket
        open: ``stream(data)`` would then return exactly ``[Data(ref, data)]``
        and write nothing, so a caller reading the socket itself (a
        WebSocket session's reader) may decode ``data`` without the event.
        HTTP/2 and HTTP/3 always say False; so does the tunnel's end, which
        ``stream(b"")`` must see.
        """
        http1 = self._http1
        return (
            not self._pending
            and not self._socket_closed
            and http1 is not None
            and http1.passes_through(ref)
        )

    def pause_stream(self, ref: Ref) -> None:
        """Stop returning HTTP/2 flow-control credit for one stream (``HTTP2Core.pause_stream``).

        Backpressure for one slow reader among many streams: its server stops
        sending once the stream's window is spent, while the other streams of
        the connection go on.  HTTP/1.1 has no per-request credit (the only
        lever there is to stop reading the socket): ``HTTPError(reason=
        "not_supported")``.
        """
        self._check_writable()
        http2_method(self._core, "pause_stream")(ref)
        self._flush()

    def resume_stream(self, ref: Ref) -> None:
        """Return the credit withheld since ``pause_stream`` at once, so the server resumes.

        Written straight away (one WINDOW_UPDATE) rather than with the next
        request or read: the server has nothing to send until it arrives.
        """
        self._check_writable()
        http2_method(self._core, "resume_stream")(ref)
        self._flush()

    # -- HTTP/2 extras -----------------------------------------------------

    def ping(self) -> Ref:
        """Send an HTTP/2 PING; its answer arrives as ``Pong(ref)`` from ``recv``."""
        self._check_writable()
        ref: Ref = http2_method(self._core, "ping")()
        self._flush()
        return ref

    # -- closing -----------------------------------------------------------

    def close(self) -> None:
        """Close the connection; idempotent.  A final GOAWAY (HTTP/2) is sent if possible."""
        if self._socket_closed:
            return
        try:
            self._core.close()
            leftover = self._core.data_to_send()
            if leftover and self._write_error is None:
                self._io.send_all(leftover, self._write_deadline())
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

    # -- internals -----------------------------------------------------------

    def _await_server_settings(self, deadline: float | None) -> None:
        """Send the HTTP/2 preface, then read until the server's SETTINGS arrived.

        RFC 8441 support is only known from those SETTINGS; deciding earlier would
        wrongly report extended CONNECT as disabled.  Events seen meanwhile are
        kept for the first ``recv()``.
        """
        try:
            self._flush()
            while awaiting_server_settings(self._core):
                data = self._read(deadline)
                self._pending.extend(self._feed(data))
                if not data:
                    raise TransportError(
                        "the server closed the connection before sending its HTTP/2 SETTINGS",
                        reason="closed",
                    )
                # A connection that cannot acknowledge the SETTINGS is no connection.
                self._raise_write_error()
        except BaseException:
            self.close()
            raise

    def _take_early(self, data: bytes) -> None:
        """Feed the server's bytes that came with a proxy's answer, as if just read.

        An h2c server's SETTINGS may well ride along with the proxy's 200;
        the events they make wait for the first ``recv``.
        """
        try:
            self._pending.extend(self._feed(data))
        except BaseException:
            self.close()
            raise

    def _check_socket(self) -> None:
        if self._socket_closed:
            raise TransportError("the connection is closed", reason="closed")

    def _check_writable(self) -> None:
        self._raise_write_error()
        self._check_socket()

    def _raise_write_error(self) -> None:
        if self._write_error is not None:
            raise _reported(self._write_error)

    def _feed(self, data: bytes) -> list[Event]:
        """Hand ``data`` to the core and write its answer.

        The events are the caller's even when the answer cannot be written:
        that failure is kept for the next call (as the asyncio shell does).
        """
        events = self._core.receive_data(data)
        if not data:
            self._close_socket()
        else:
            self._flush(defer_failure=True)
            if connection_spent(self._core):
                self._close_socket()
        return events

    def _read_arrived(self) -> bytes:
        """After a failed write: read only what is already here, else report that failure.

        Waiting for more would be pointless; the server will never see our answers.
        """
        assert self._write_error is not None
        try:
            return self._read(time.monotonic())
        except TransportError as exc:
            if exc.reason != "timeout":
                raise
        self._close_socket()
        raise _reported(self._write_error)

    def _read(self, deadline: float | None) -> bytes:
        """One socket read bounded by ``deadline``; ``b""`` on EOF.

        A spent deadline still allows one read of what is already here, so
        recv(timeout=0) is a poll.
        """
        try:
            return self._io.read(deadline)
        except TimeoutError as exc:
            raise TransportError("no response event before the timeout", reason="timeout") from exc
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""
        except OSError as exc:
            self._close_socket()
            raise transport_error(exc, "reading from the server") from exc

    def _write_deadline(self) -> float | None:
        return None if self._write_timeout is None else time.monotonic() + self._write_timeout

    def _flush(self, *, defer_failure: bool = False) -> None:
        """Write what the core has to send.

        A failed (perhaps partial) write leaves the byte stream unusable for
        writing.  By default it closes the socket and raises.  With
        ``defer_failure`` (answers to received bytes) it keeps the socket open
        for reading, so that bytes already in flight still reach the caller,
        and records the failure for the next call.
        """
        buffers = self._core.buffers_to_send()
        if buffers:
            self._write_out(buffers, defer_failure=defer_failure)

    def _write_one(self, data: bytes) -> None:
        """``_write_out([data])``, trying one ``send`` first: a WebSocket message, usually.

        The socket takes a small message whole; only when it does not is a
        deadline worth computing and a wait worth planning.  Whatever went
        wrong (a full buffer, a broken pipe) ``_write_out`` meets again with
        the rest, and waits or reports as it always does.
        """
        sent = 0
        if self._write_error is None:
            try:
                sent = self._socket.send(data)
            except OSError:  # not ``contextlib.suppress``: this runs per message
                sent = 0
            if sent == len(data):
                return
        self._write_out([memoryview(data)[sent:]] if sent else [data])

    def _write_out(self, buffers: list[bytes | memoryview], *, defer_failure: bool = False) -> None:
        if self._write_error is not None:
            return  # nothing can be sent any more
        timeout = self._write_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            if len(buffers) == 1:  # one message: no gather to plan
                self._io.send_all(buffers[0], deadline)
            else:
                self._io.send_buffers(buffers, deadline)
        except OSError as exc:
            error = transport_error(exc, "writing to the server")
            if defer_failure:
                self._write_error = error
                return
            self._close_socket()
            raise error from exc

    def _close_socket(self) -> None:
        if not self._socket_closed:
            self._socket_closed = True
            with contextlib.suppress(OSError):
                self._socket.close()


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
    http2_window_size: int = DEFAULT_RECEIVE_WINDOW,
    http2_max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    proxy: str | None = None,
    proxy_ssl_context: ssl.SSLContext | None = None,
    http3_max_datagram_size: int = 1200,
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

    ``protocols=("http3",)`` (``https`` only, needs ``mint-websocket[http3]``)
    speaks HTTP/3 over QUIC on a UDP socket instead: the result is a
    ``Connection`` subclass (``mint.http._h3_transport.UDPConnection``), TLS
    is aioquic's (``cafile``/``verify``, no ``ssl_context``, no ``proxy``),
    and it returns once the server's HTTP/3 SETTINGS arrived.
    ``http3_max_datagram_size`` (1200..16384, default 1200, the size every
    path carries) sets the QUIC packets' size: aioquic's cost is per packet,
    so a path known to carry more (1452 on Ethernet, 16384 on loopback)
    costs less CPU with larger ones.

    ``proxy`` (a URL: ``http://``, ``https://``, ``socks5://``, ``socks5h://``,
    with optional percent-encoded ``user:password@``) opens a tunnel to the
    server through that proxy first (see ``mint.http.proxy``): HTTP CONNECT
    for ``http``/``https`` proxies, SOCKS5 otherwise (needs the ``socks``
    extra); ``socks5://`` resolves the server's name here, ``socks5h://``
    lets the proxy resolve it.  ``timeout`` covers the tunnel too, and
    nothing reaches the server before the proxy opened it (``ProxyError``
    otherwise).  TLS to an ``https://`` proxy uses
    ``proxy_ssl_context`` if given, else the same ``cafile``/``verify`` as the
    server (see ``_setup.proxy_tls_context``); TLS to the server then runs
    inside it, with ALPN as usual.
    """
    plan = plan_connect(
        scheme,
        host,
        port,
        protocols,
        ssl_context,
        cafile,
        verify,
        http2_window_size,
        http2_max_frame_size,
    )
    if plan.offered == (HTTP3,):
        check_http3(plan, ssl_context, proxy, http3_max_datagram_size)
        h3: Any = http3_module("mint.http._h3_transport")
        connection: Connection = h3.connect_http3(  # a UDPConnection, a Connection subclass
            plan,
            timeout=timeout,
            verify=verify,
            server_hostname=server_hostname,
            max_datagram_size=http3_max_datagram_size,
        )
        return connection
    via = None if proxy is None else parse_proxy(proxy)
    # Built before dialing, as the asyncio shell does: a bad cafile costs no round trip.
    context = (
        tls_context(ssl_context, plan.cafile, verify, plan.offered) if scheme == "https" else None
    )
    proxy_context = (
        proxy_tls_context(proxy_ssl_context, plan.cafile, verify)
        if via is not None and via.tls
        else None
    )
    deadline = None if timeout is None else time.monotonic() + timeout

    dial_host, dial_port = (plan.host, plan.port) if via is None else (via.host, via.port)
    try:
        sock = socket.create_connection((dial_host, dial_port), timeout=timeout)
    except OSError as exc:
        raise transport_error(exc, f"connecting to {dial_host}:{dial_port}") from exc
    alpn: str | None = None
    leftover = b""
    if via is not None:  # closes the socket itself if the tunnel fails
        sock, leftover = tunnel_through(sock, via, proxy_context, plan.host, plan.port, deadline)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            if via is not None:
                check_no_leftover(leftover, via)
            sock.settimeout(_remaining(deadline))
            sock = wrap_tunneled(sock, context, server_hostname or plan.host)
            alpn = sock.selected_alpn_protocol()  # type: ignore[attr-defined]
    except (OSError, ValueError) as exc:
        sock.close()
        raise transport_error(exc, f"TLS handshake with {plan.host}:{plan.port}") from exc
    except BaseException:
        sock.close()
        raise
    http2 = use_http2(scheme, plan.offered, alpn)
    try:
        core = make_core(http2, plan)
    except BaseException:
        sock.close()
        raise

    conn = Connection(
        sock,
        core,
        scheme=scheme,
        host=plan.host,
        port=plan.port,
        write_timeout=timeout,
        alpn_protocol=alpn,
    )
    if leftover:
        conn._take_early(leftover)
    if http2:
        conn._await_server_settings(deadline)
    return conn


def _reported(error: TransportError) -> TransportError:
    """A fresh copy of a deferred error: re-raising one instance would pile up tracebacks."""
    copy = TransportError(str(error), reason=error.reason)
    copy.__cause__ = error
    return copy


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), 0.001)


__all__ = ["Connection", "connect"]
