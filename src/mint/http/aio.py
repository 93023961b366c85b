"""The asyncio shell: an asyncio stream (maybe TLS) around the same sans-I/O HTTP cores.

Same options, errors and reasons as the blocking ``mint.http.connect``; only
the waiting differs.  Process-less still holds: mint starts no task, and its
asyncio protocol (``_aio_protocol``) only keeps the bytes the event loop read
until the caller takes them.  The core is touched only inside the caller's
calls, and only while the caller awaits does the event loop move bytes
between the socket and the transport's buffers.

Which methods are coroutines, and why ``request`` is not one
--------------------------------------------------------------
A method is a coroutine exactly when it may have to *wait*: ``connect``,
``recv`` (for the server), ``stream_request_body``, ``stream`` and
``drain`` (for the transport's write buffer to fall below its high-water
mark: back-pressure for a fast writer) and ``close``.  ``request``,
``cancel_request`` and ``ping`` never wait: they hand the core's bytes to the transport, whose
``write`` is itself non-blocking, and return the ref at once.  A large
``request`` body can be followed by ``await conn.drain()``.

That choice is what lets ``mint.websocket.upgrade`` work unchanged on an
``AsyncConnection``: it calls ``conn.request(...)`` synchronously and needs
only ``version``, ``scheme`` and ``extended_connect_enabled``, which this
class has with the blocking ``Connection``'s meaning.  The alternatives were
worse: an async ``request`` would force a second ``mint.websocket.aio.upgrade``
duplicating the handshake's checks, and a queue-now-write-later ``request``
would leave the handshake unsent until some unrelated await.  ``request``
still raises ``TransportError(reason="closed")`` when the connection is
already known to be gone; a socket that breaks after the bytes were handed
over is reported by the next awaited call (``recv``, ``drain``, ...).

Several coroutines sharing one connection
-----------------------------------------
HTTP/2 carries many requests and WebSockets at once, but there is one byte
stream to read: only one coroutine may await ``recv`` at a time (a second
gets ``MintError(reason="recv_in_progress")`` rather than silently stealing
the first one's events).  Which coroutine gets which event is the caller's
policy; the simplest is a small demultiplexer that, under an
``asyncio.Lock``, hands out queued events for a ref and otherwise calls
``recv`` and queues what belongs to others (see ``tests/test_aio.py``).
Writes need no such care: ``stream_request_body`` may be awaited by many
coroutines at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import sys
from collections.abc import Awaitable, Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from mint.errors import MintError, ProxyError, TransportError
from mint.http._aio_protocol import ReceiveProtocol
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
from mint.http.core import HTTPCore
from mint.http.events import Body, Chunk, Event, Ref
from mint.http.http1 import HTTP1Core
from mint.http.http2 import DEFAULT_MAX_FRAME_SIZE, DEFAULT_RECEIVE_WINDOW
from mint.http.proxy import Proxy, check_no_leftover, is_ip_address, open_tunnel, parse_proxy

# asyncio.TimeoutError is the builtin only from Python 3.11 on.
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)
# Bounds the TLS close_notify exchange in close() when the caller set no timeout.
_CLOSE_TIMEOUT = 5.0

T = TypeVar("T")


async def _within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds (``None``: no limit).

    ``asyncio.timeout`` where it exists, as it cancels in place;
    ``asyncio.wait_for`` wraps the awaitable in a task, which costs more than
    a small WebSocket round trip is worth.
    """
    if timeout is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)


class AsyncConnection(ConnectionFacts):
    """One HTTP connection: an asyncio transport, and the core that speaks HTTP over it.

    Use as an async context manager to close it on the way out.
    """

    #: The core, when it is HTTP/1.1's: the only one with tunnels to read directly.
    _http1: HTTP1Core | None = None

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: ReceiveProtocol,
        core: HTTPCore,
        *,
        scheme: str,
        host: str,
        port: int,
        write_timeout: float | None,
        alpn_protocol: str | None = None,
    ) -> None:
        super().__init__(core, scheme=scheme, host=host, port=port, alpn_protocol=alpn_protocol)
        self._transport = transport
        self._protocol = protocol
        self._write_timeout = write_timeout
        self._pending: list[Event] = []
        self._closed = False
        self._receiving = False
        self._http1 = core if isinstance(core, HTTP1Core) else None

    # -- facts -----------------------------------------------------------

    @property
    def transport(self) -> asyncio.Transport:
        """The underlying transport, for ``get_extra_info`` (peer certificate, socket)."""
        return self._transport

    @property
    def open(self) -> bool:
        return not self._closed and self._core.open

    def next_deadline(self) -> float | None:
        """None: over TCP the kernel runs the protocol's timers (HTTP/3 connections have some)."""
        return None

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
        """Start a request and hand its bytes to the transport; never waits (see module doc)."""
        self._check_open()
        ref = self._core.request(method, path, headers, body, protocol=protocol)
        self._write()
        return ref

    async def stream_request_body(
        self, ref: Ref, chunk: Chunk, *, end_stream: bool = False
    ) -> None:
        """Send body or tunnel bytes (``EOF`` ends them); returns once the transport can take more.

        ``end_stream`` as in ``HTTPCore.stream_request_body``.  On HTTP/2,
        bytes the flow-control windows cannot take yet stay queued in the core
        and go out from later ``recv`` calls as the server opens them.
        """
        if self.stream_request_body_nowait(ref, chunk, end_stream=end_stream):
            await self.drain()  # only then can it wait (see ``drain``)

    def stream_request_body_nowait(
        self, ref: Ref, chunk: Chunk, *, end_stream: bool = False
    ) -> bool:
        """``stream_request_body`` without the wait: True when ``drain`` should be awaited.

        For a sender that must not suspend between handing bytes over and
        learning whether it may go on (a WebSocket session sending one small
        message: no coroutine at all when the socket took everything).
        """
        if self._closed:
            raise TransportError("the connection is closed", reason="closed")
        data = self._core.send_body(ref, chunk, end_stream=end_stream)
        protocol = self._protocol
        if data:  # ``_write``, inline: this runs per message
            if protocol.eof:  # the transport is closing: ``is_closing()`` without the call
                raise TransportError("the server closed the connection", reason="closed")
            self._transport.write(data)
        # ``drain`` waits (or raises) only then; bytes merely buffered below
        # the high-water mark need no coroutine, let alone a timer.
        return protocol.writing_paused or protocol.lost

    def cancel_request(self, ref: Ref) -> None:
        """Abandon one HTTP/2 request or tunnel (RST_STREAM CANCEL); no event follows for it.

        Never waits, like ``request``.  HTTP/1.1 cannot cancel one request
        without losing the connection: ``HTTPError(reason="not_supported")``.
        """
        self._check_open()
        http2_method(self._core, "cancel_request")(ref)
        self._write()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark.

        Bounded by the ``timeout`` given to ``connect``: ``TransportError(reason=
        "timeout")`` when the server does not read.  Nothing is lost then; the
        bytes stay buffered and the connection stays usable.
        """
        self._check_open()
        transport = self._transport
        if transport.get_write_buffer_size() == 0 and not transport.is_closing():
            # Everything went to the socket: drain could not wait, so it is not
            # even called (no timer, no coroutine; a small WebSocket message's
            # whole trip through mint costs less than arming a timer).  A
            # connection lost meanwhile is reported by the next read.
            return
        try:
            await _within(self._protocol.drain(), self._write_timeout)
        except _TIMEOUTS as exc:
            raise TransportError(
                "the server did not take our bytes before the timeout", reason="timeout"
            ) from exc
        except OSError as exc:
            self._close_transport()
            raise transport_error(exc, "writing to the server") from exc

    # -- responses -------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Coroutine[Any, Any, list[Event]]:
        """Read until the core yields at least one event; ``None`` waits without limit.

        Raises ``TransportError(reason="timeout")`` when ``timeout`` seconds pass
        with no event (the connection stays usable, nothing read is lost), and
        ``TransportError(reason="closed")`` when the peer closed it and there is
        nothing left to report.  Cancelling the awaiting task is as safe as a timeout.
        (A plain method returning the coroutine: one frame less on every wake-up.)
        """
        return self._receive(timeout, until_event=True)

    def recv_once(self, timeout: float | None = None) -> Coroutine[Any, Any, list[Event]]:
        """One read, and the events its bytes made: possibly none.

        For a caller that must look at its own state after every read, not
        only after events: a sender waiting for the server's WINDOW_UPDATE
        (the core sends the queued bytes as it arrives, and reports nothing)
        is woken by this returning.  Timeouts and EOF as in ``recv``.
        """
        return self._receive(timeout, until_event=False)

    async def recv_tunnel(self, ref: Ref, timeout: float | None = None) -> bytes:
        """The next bytes of HTTP/1.1 tunnel ``ref`` as read, without an event; ``b""`` if none.

        A WebSocket session's receive path: after a 101 every read is one
        ``Data(ref, ...)``, and building that event and routing it cost as
        much as decoding the frames in it.  ``b""`` means "use ``recv``":
        this is not an open HTTP/1.1 tunnel (HTTP/2 and HTTP/3 always say
        so), events are pending, another coroutine is reading, the peer
        closed or the connection broke (``recv`` reports which), or
        ``timeout`` passed with nothing read.  Nothing is lost either way.
        """
        http1 = self._http1
        if (
            http1 is None
            or ref is not http1.passing  # ``passes_through``, without the call: per read
            or ref is None
            or self._pending
            or self._receiving
            or self._closed
        ):
            return b""
        protocol = self._protocol
        if not protocol.buffered:
            self._receiving = True
            try:
                waiter = protocol.data_waiter  # ``readable()``, inline: nothing is buffered
                if waiter is None or waiter.done():
                    waiter = protocol.data_waiter = protocol.loop.create_future()
                if timeout is not None:
                    protocol.wake_after(timeout)
                elif protocol.alarm is not None:
                    protocol.drop_alarm()
                await waiter
            finally:
                self._receiving = False
        return protocol.take()  # b"": the end, an error or the timeout; recv tells which

    async def _receive(self, timeout: float | None, *, until_event: bool) -> list[Event]:
        if self._pending:
            events, self._pending = self._pending, []
            return events
        self._check_open()
        if self._receiving:
            raise MintError(
                "another coroutine is already awaiting recv() on this connection: read from"
                " one place and route events by ref",
                reason="recv_in_progress",
            )
        self._receiving = True
        try:
            loop = self._protocol.loop  # not get_running_loop(): a getpid call on Python 3.11
            deadline = None if timeout is None else loop.time() + timeout
            protocol = self._protocol
            while True:
                if not protocol.buffered:  # ``_read``, inline
                    if deadline is None:
                        protocol.drop_alarm()
                        while not protocol.buffered:  # a wake-up meant for an earlier wait
                            await protocol.readable()
                    else:
                        await self._wait_readable(deadline)
                data = self._take()
                events = self._feed(data)
                if events or (data and not until_event):
                    return events
                if not data:
                    raise TransportError("the server closed the connection", reason="closed")
                if deadline is not None and loop.time() >= deadline:
                    # The partial response stays buffered in the core for the next call.
                    raise TransportError("no response event before the timeout", reason="timeout")
        finally:
            self._receiving = False

    async def stream(self, data: bytes) -> list[Event]:
        """Feed bytes the caller read by other means; ``b""`` means EOF.

        The sans-I/O entry point, as in the blocking shell: may return no
        events (a partial response).  Whatever the core answers (HTTP/2 ACKs,
        window updates, queued body bytes) is written and drained.
        """
        if self._closed and data:
            raise TransportError("the connection is closed", reason="closed")
        events, self._pending = self._pending, []
        events.extend(self._feed(data))
        if not self._closed:
            await self.drain()
        return events

    def pause_stream(self, ref: Ref) -> None:
        """Stop returning HTTP/2 flow-control credit for one stream (``HTTP2Core.pause_stream``).

        Backpressure for one slow reader among many streams: its server stops
        sending once the stream's window is spent, while the other streams of
        the connection go on.  Never waits.  HTTP/1.1 has no per-request credit
        (the only lever there is to stop reading the socket):
        ``HTTPError(reason="not_supported")``.
        """
        self._check_open()
        http2_method(self._core, "pause_stream")(ref)
        self._write()

    def resume_stream(self, ref: Ref) -> None:
        """Return the credit withheld since ``pause_stream`` at once, so the server resumes.

        Written straight away (one WINDOW_UPDATE) rather than with the next
        request or read: the server has nothing to send until it arrives.
        """
        self._check_open()
        http2_method(self._core, "resume_stream")(ref)
        self._write()

    # -- HTTP/2 extras -----------------------------------------------------

    def ping(self) -> Ref:
        """Send an HTTP/2 PING; its answer arrives as ``Pong(ref)`` from ``recv``."""
        self._check_open()
        ref: Ref = http2_method(self._core, "ping")()
        self._write()
        return ref

    # -- closing -----------------------------------------------------------

    async def close(self) -> None:
        """Close the connection; idempotent.  A final GOAWAY (HTTP/2) is sent if possible.

        Also worth awaiting after the peer closed or the connection failed: it
        waits (bounded) for asyncio to let go of the socket.
        """
        if not self._closed:
            try:
                self._core.close()
                leftover = self._core.data_to_send()
                if leftover and not self._transport.is_closing():
                    self._transport.write(leftover)
            except (OSError, MintError):
                pass  # best effort: the connection is going away anyway
            self._close_transport()
        with contextlib.suppress(OSError, *_TIMEOUTS):
            await _within(self._protocol.wait_closed(), self._write_timeout or _CLOSE_TIMEOUT)

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- internals -----------------------------------------------------------

    async def _await_server_settings(self, deadline: float | None) -> None:
        """Send the HTTP/2 preface, then read until the server's SETTINGS arrived.

        RFC 8441 support is only known from those SETTINGS; deciding earlier would
        wrongly report extended CONNECT as disabled.  Events seen meanwhile are
        kept for the first ``recv()``.
        """
        try:
            self._write()
            while awaiting_server_settings(self._core):
                data = await self._read(deadline)
                self._pending.extend(self._feed(data))
                if not data:
                    raise TransportError(
                        "the server closed the connection before sending its HTTP/2 SETTINGS",
                        reason="closed",
                    )
        except BaseException:
            await self.close()
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("the connection is closed", reason="closed")

    def _feed(self, data: bytes) -> list[Event]:
        events = self._core.receive_data(data)
        if not data:
            self._close_transport()
        else:
            # The events are the caller's even when the answer cannot be sent.
            self._write(strict=False)
            if connection_spent(self._core):
                self._close_transport()
        return events

    async def _read(self, deadline: float | None) -> bytes:
        """Whatever was read since the last call, waiting until ``deadline``; ``b""`` on EOF.

        ``_receive`` has these lines inline (one frame less on every wake-up).
        """
        protocol = self._protocol
        if not protocol.buffered:
            if deadline is None:
                protocol.drop_alarm()
                while not protocol.buffered:  # a wake-up meant for an earlier wait
                    await protocol.readable()
            else:
                await self._wait_readable(deadline)
        return self._take()

    async def _wait_readable(self, deadline: float) -> None:
        """Wait for bytes until ``deadline``; no timer at all when none is needed.

        A spent deadline still lets the event loop take one look at the
        socket: ``recv(timeout=0)`` is a poll.
        """
        protocol = self._protocol
        loop = protocol.loop
        remaining = deadline - loop.time()
        if remaining <= 0:
            await asyncio.sleep(0)  # one turn of the loop reads what the socket has
        while not protocol.buffered and remaining > 0:
            waiter = protocol.readable()
            protocol.wake_after(remaining)
            await waiter  # bytes, the end, or the alarm (this one, or one a little early)
            remaining = deadline - loop.time()
        if not protocol.buffered:
            raise TransportError("no response event before the timeout", reason="timeout")

    def _take(self) -> bytes:
        """What the protocol kept (``b""`` at the end); bytes read before a failure come first."""
        protocol = self._protocol
        data = protocol.take()
        if data or protocol.error is None:
            return data
        error = protocol.error
        if isinstance(error, (ssl.SSLZeroReturnError, ssl.SSLEOFError)):
            return b""
        self._close_transport()
        raise transport_error(error, "reading from the server") from error

    def _write(self, *, strict: bool = True) -> None:
        """Hand the core's bytes to the transport, which sends them as the socket allows.

        A transport that is already closing (the peer hung up) would drop the
        bytes with only a log line; ``strict`` says so with ``TransportError``
        instead.  Either way the connection is not marked closed here: what the
        peer sent before hanging up is still buffered, and ``recv`` delivers it.
        """
        data = self._core.data_to_send()
        if not data:
            return
        if self._transport.is_closing():
            if strict:
                raise TransportError("the server closed the connection", reason="closed")
            return
        self._transport.write(data)

    def _close_transport(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport.close()


async def _open_socket(host: str, port: int) -> socket.socket:
    """Resolve and dial each address in turn, as ``socket.create_connection`` does.

    Done by hand rather than by ``asyncio.open_connection(host, port)``
    because asyncio folds several failures into one plain ``OSError("Multiple
    exceptions")``, which would turn a refused ``localhost`` into reason
    "socket" instead of "refused".
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise transport_error(exc, f"resolving {host}") from exc
    failures: list[OSError] = []
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            failures.append(exc)
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise failures[0] if failures else OSError(f"{host} resolved to no address")


async def _open_transport(
    sock: socket.socket, context: ssl.SSLContext | None, server_hostname: str
) -> tuple[asyncio.Transport, ReceiveProtocol]:
    loop = asyncio.get_running_loop()
    protocol = ReceiveProtocol(loop)
    try:
        if context is None:
            transport, _ = await loop.create_connection(lambda: protocol, sock=sock)
        else:
            transport, _ = await loop.create_connection(
                lambda: protocol, sock=sock, ssl=context, server_hostname=server_hostname
            )
    except BaseException:
        sock.close()
        raise
    assert isinstance(transport, asyncio.Transport)
    return transport, protocol


async def connect(
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
) -> AsyncConnection:
    """Open a TCP (and for ``https`` a TLS) connection and pick the HTTP core.

    The blocking ``mint.http.connect``'s options, checks and errors, awaited:
    certificates verified unless ``verify=False``; ALPN chooses among
    ``protocols`` on ``https``; ``protocols=("http2",)`` on ``http`` is h2c
    with prior knowledge; for HTTP/2 this returns once the server's first
    SETTINGS arrived.  ``timeout`` bounds the whole connect, and later each
    ``drain``.  ``proxy`` and ``proxy_ssl_context`` as for the blocking
    ``connect``: the tunnel is opened within ``timeout``, and TLS to the
    server inside an ``https://`` proxy's TLS needs Python 3.11's
    ``loop.start_tls`` over a TLS transport.

    ``protocols=("http3",)`` speaks HTTP/3 over QUIC on a datagram endpoint,
    as the blocking ``connect`` does; the result is an ``AsyncConnection``
    subclass (``mint.http._h3_aio.AsyncUDPConnection``);
    ``http3_max_datagram_size`` as for the blocking ``connect``.
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
        h3: Any = http3_module("mint.http._h3_aio")
        connection: AsyncConnection = await h3.connect_http3(  # an AsyncConnection subclass
            plan,
            timeout=timeout,
            verify=verify,
            server_hostname=server_hostname,
            max_datagram_size=http3_max_datagram_size,
        )
        return connection
    via = None if proxy is None else parse_proxy(proxy)
    context = (
        tls_context(ssl_context, plan.cafile, verify, plan.offered) if scheme == "https" else None
    )
    proxy_context = (
        proxy_tls_context(proxy_ssl_context, plan.cafile, verify)
        if via is not None and via.tls
        else None
    )
    if context is not None and proxy_context is not None and sys.version_info < (3, 11):
        raise MintError(
            "TLS to the server inside TLS to an https:// proxy needs Python 3.11 for asyncio",
            reason="not_supported",
        )
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    leftover = b""

    async def dial() -> tuple[asyncio.Transport, ReceiveProtocol]:
        nonlocal leftover
        if via is not None:
            transport, protocol, leftover = await _open_tunnel(
                via, proxy_context, context, plan.host, plan.port, server_hostname or plan.host
            )
            return transport, protocol
        try:
            sock = await _open_socket(plan.host, plan.port)
        except OSError as exc:
            raise transport_error(exc, f"connecting to {plan.host}:{plan.port}") from exc
        try:
            return await _open_transport(sock, context, server_hostname or plan.host)
        except (OSError, ValueError) as exc:
            raise transport_error(exc, f"TLS handshake with {plan.host}:{plan.port}") from exc

    try:
        # Not asyncio.wait_for: before Python 3.12 it can return the result of a
        # dial that finished just as a cancel came, and the cancel is lost.
        transport, protocol = await _within(dial(), timeout)
    except _TIMEOUTS as exc:
        where = "" if via is None else f" through the proxy {via.url}"
        raise TransportError(
            f"connecting to {plan.host}:{plan.port}{where} failed (timeout):"
            f" no answer within {timeout}s",
            reason="timeout",
        ) from exc

    alpn: str | None = None
    if context is not None:
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
    http2 = use_http2(scheme, plan.offered, alpn)
    try:
        core = make_core(http2, plan)
    except BaseException:
        transport.close()
        raise
    conn = AsyncConnection(
        transport,
        protocol,
        core,
        scheme=scheme,
        host=plan.host,
        port=plan.port,
        write_timeout=timeout,
        alpn_protocol=alpn,
    )
    if leftover:
        # The server's first bytes (an h2c server's SETTINGS) came with the proxy's answer.
        try:
            conn._pending.extend(conn._feed(leftover))
        except BaseException:
            await conn.close()
            raise
    if http2:
        await conn._await_server_settings(deadline)
    return conn


async def _open_tunnel(
    proxy: Proxy,
    proxy_context: ssl.SSLContext | None,
    context: ssl.SSLContext | None,
    host: str,
    port: int,
    server_hostname: str,
) -> tuple[asyncio.Transport, ReceiveProtocol, bytes]:
    """Dial ``proxy``, have it open a tunnel to ``host``:``port``, start TLS to the server in it.

    Returns the transport and protocol to speak to the server over, and the
    server's bytes that came with the proxy's answer (none when TLS follows:
    a TLS server waits for our hello).  The caller bounds it with its timeout.
    """
    doing = f"opening a tunnel through the proxy {proxy.url}"
    try:
        sock = await _open_socket(proxy.host, proxy.port)
    except OSError as exc:
        raise transport_error(exc, f"connecting to the proxy {proxy.url}") from exc
    try:
        transport, protocol = await _open_transport(sock, proxy_context, proxy.host)
    except (OSError, ValueError) as exc:
        raise transport_error(exc, doing) from exc
    try:
        if proxy.resolve_locally and not is_ip_address(host):
            host = await _resolve(host, port)
        tunnel = open_tunnel(proxy, host, port)
        while True:
            outgoing = tunnel.data_to_send()
            if outgoing:
                transport.write(outgoing)
            if tunnel.ready:
                break
            while not protocol.buffered:
                await protocol.readable()
            data = protocol.take()
            if not data and protocol.error is not None:
                error = protocol.error
                if not isinstance(error, (ssl.SSLZeroReturnError, ssl.SSLEOFError)):
                    raise transport_error(error, doing) from error
            tunnel.receive_data(data)
        if context is None:
            return transport, protocol, tunnel.leftover
        check_no_leftover(tunnel.leftover, proxy)
        inner = ReceiveProtocol(asyncio.get_running_loop())
        try:
            tls = await asyncio.get_running_loop().start_tls(
                transport, inner, context, server_hostname=server_hostname
            )
        except (OSError, ValueError) as exc:
            raise transport_error(exc, f"TLS handshake with {host}:{port}") from exc
        if tls is None:  # pragma: no cover - only when the transport closed meanwhile
            raise ProxyError(f"the proxy {proxy.url} closed the tunnel", reason="proxy_closed")
        assert isinstance(tls, asyncio.Transport)
        inner.connection_made(tls)
        return tls, inner, b""
    except BaseException:
        transport.close()
        raise


async def _resolve(host: str, port: int) -> str:
    """The first address ``host`` resolves to, for a ``socks5://`` proxy that gets no names."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise transport_error(exc, f"resolving {host}") from exc
    return str(infos[0][4][0])


__all__ = ["AsyncConnection", "connect"]
