"""asyncio sessions and a pooling client, on ``mint.http.aio``'s connections.

The blocking layer's names and behaviour, awaited.  No task is created:
a connection shared by several sessions is read by whichever coroutine is
waiting.  The first one that needs bytes becomes the reader and awaits
``AsyncConnection.recv`` for everyone; the others wait on an event that is
set after every read, then look at their own session again.  When the
reader is cancelled or leaves with what it wanted, the next waiter takes
over.  Keepalive pings go out from the reader too, so, as in the blocking
layer, they are sent while some coroutine is inside ``recv``, ``ping``,
``close``, a ``send`` held back by HTTP/2 flow control, or ``request``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import sys
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
)
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, TypeVar

from mint import http, websocket
from mint.client.altsvc import AltSvcMemory, HTTP3Preference
from mint.client.options import (
    Backoff,
    ConnectKwargs,
    HTTP2Preference,
    SessionKwargs,
    SessionOptions,
    Target,
    TLSOptions,
    check_http3_options,
    parse_url,
    protocols_for,
    session_options,
    split_connect_kwargs,
)
from mint.client.pool import PooledConnection, earliest, pick, start_session, sweep
from mint.client.proxies import FROM_ENVIRONMENT, ProxySetting, client_proxies
from mint.client.routing import Response, ResponseState
from mint.client.session import Message, SessionFacts, SessionState, SessionStatus, fragments
from mint.client.sync import PoolKey, retryable
from mint.errors import (
    ConnectionClosedError,
    ConnectionClosedOK,
    HTTPError,
    MintError,
    TransportError,
    UpgradeFailureError,
    WebSocketError,
)
from mint.http.aio import AsyncConnection
from mint.http.aio import connect as http_connect

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger("mint.client")

Origin = tuple[str, str, int]
T = TypeVar("T")
_RETRY_REASONS = ("too_many_streams", "goaway", "closed")


async def _within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """``awaitable`` bounded by ``timeout`` (None: unbounded); asyncio's TimeoutError past it."""
    if timeout is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout)  # pragma: no cover - Python 3.10


#: The clock of every deadline here: monotonic, and not ``loop.time()``, whose
#: ``get_running_loop`` costs a ``getpid`` system call per call on Python 3.11.
#: The function itself, not a wrapper: it is read per message.
_now = time.monotonic
#: Read per message sent: a module constant is one lookup, ``SessionStatus.OPEN`` two.
_OPEN = SessionStatus.OPEN
_CLOSED = SessionStatus.CLOSED


class AsyncSharedConnection(PooledConnection[AsyncConnection]):
    """One ``AsyncConnection`` and the sessions and requests it carries."""

    def __init__(self, conn: AsyncConnection, origin: Origin) -> None:
        super().__init__(conn, origin, _now())
        self._reading = False
        #: Set (and replaced) after every read: waiters look at their state again.
        self._changed = asyncio.Event()
        #: Coroutines waiting on ``_changed``: with none, a read replaces no event.
        self._waiting = 0
        self._keepalive_due: float | None = None

    # -- waiting and reading ---------------------------------------------------------

    async def wait(self, ready: Callable[[], bool], deadline: float | None) -> None:
        """Return once ``ready()`` holds, reading for everyone while it does not.

        Raises ``TransportError(reason="timeout")`` at ``deadline``; what
        arrived meanwhile has been routed, so nothing is lost.  A deadline
        already spent still lets one look at what has arrived (``recv(timeout=0)``
        is a poll, as ``AsyncConnection.recv``'s is).
        """
        looked = False
        while not ready():
            now = 0.0 if deadline is None else _now()
            if deadline is not None and now >= deadline and looked:
                raise TransportError("nothing arrived before the timeout", reason="timeout")
            looked = True
            if self.failure is not None:
                return
            if self._reading or not self._may_read():
                changed = self._changed
                self._waiting += 1
                try:
                    with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                        await _within(changed.wait(), None if deadline is None else deadline - now)
                finally:
                    self._waiting -= 1
                continue
            await self._read_for_all(deadline)

    async def poll(self) -> None:
        """Take in what already arrived, without waiting: say, the EOF or GOAWAY of a
        server that closed the connection while it sat idle in the pool (keep-alive
        timeouts), which nobody was reading then."""
        if not self._reading and self.failure is None:
            await self._read_for_all(_now())

    def _may_read(self) -> bool:
        return self.http2 or not self.routes.any_paused()

    def _notify(self) -> None:
        if self._waiting:
            self._changed.set()
            self._changed = asyncio.Event()

    async def _read_for_all(self, deadline: float | None) -> None:
        self._reading = True
        try:
            due = self._keepalive_due
            wake = earliest(deadline, due)
            timeout = None if wake is None else max(0.0, wake - _now())
            try:
                events = await self.conn.recv_once(timeout)
            except TransportError as exc:
                if exc.reason != "timeout":
                    await self.fail(exc)
                    return
                events = []
            except MintError as exc:
                await self.fail(exc)
                return
            now = _now()
            if events:
                await self._service(self.routes.dispatch(events, now), now)
            if due is not None and self.failure is None and now >= due:
                await self.service_keepalive()
        finally:
            self._reading = False
            self._notify()

    async def _service(self, sessions: Iterable[SessionState], now: float) -> None:
        """After sessions changed: keepalive, their pending frames, backpressure, release."""
        for session in sessions:
            session.keepalive(now)
            if session.has_outgoing():
                with contextlib.suppress(MintError):
                    # A write that failed has failed the connection (``write``) and every
                    # route learnt why; the caller reading for everyone must not get the
                    # raw error instead of what its own session received before it.
                    await self.flush(session)
            if self.failure is not None:
                return
            if session.closed:
                if session.ended or not session.ws.close_received:
                    await self.release(session)
            elif session.queue_full and not session.paused and session.can_send:
                # Not once our Close went out: the server's answer must be read.
                session.paused = True
                if self.can_pause:
                    await self._call(self.conn.pause_stream, session.ref)
            self._watch_keepalive(session)

    def _watch_keepalive(self, session: SessionState) -> None:
        """Bring the cached keepalive wake-up forward to ``session``'s, if that is earlier."""
        due = session.keepalive_deadline()
        if due is not None and (self._keepalive_due is None or due < self._keepalive_due):
            self._keepalive_due = due

    async def service_keepalive(self) -> None:
        await self._service(self.routes.sessions(), _now())
        self._keepalive_due = self.routes.keepalive_deadline()

    async def add_session(self, session: SessionState) -> None:
        self.routes.replace(session.ref, session)
        await self._service([session], _now())

    async def flush(self, session: SessionState) -> None:
        if session.has_outgoing():
            data, end = session.take_outgoing()
            if not session.ended:
                await self.write(session.ref, data, end_stream=end)

    async def write(self, ref: http.Ref, data: bytes, *, end_stream: bool = False) -> None:
        try:
            conn = self.conn
            if conn.stream_request_body_nowait(ref, data, end_stream=end_stream and self.http2):
                await conn.drain()
        except MintError as exc:
            await self.write_failed(exc)
            raise

    async def write_failed(self, exc: MintError) -> None:
        """A write raised ``exc``: the connection fails, unless the write may simply be retried."""
        if exc.reason not in ("not_supported", "timeout"):
            await self.fail(exc)

    async def _call(self, method: Callable[[http.Ref], None], ref: http.Ref) -> None:
        try:
            method(ref)
        except MintError as exc:
            if exc.reason != "unknown_ref":  # the stream already ended: nothing to pause
                await self.fail(exc)

    async def resume(self, session: SessionState) -> None:
        now = _now()
        if session.resume(now) and self.can_pause and self.failure is None:
            await self._call(self.conn.resume_stream, session.ref)
        await self._service([session], now)  # pongs or a Close reply among the held bytes
        self._keepalive_due = self.routes.keepalive_deadline()
        self._notify()

    async def release(self, session: SessionState) -> None:
        """Forget the session; its stream is cancelled (HTTP/2) or its socket closed (HTTP/1.1)."""
        if session.ref not in self.routes:
            return
        self.routes.remove(session.ref, _now())
        if not self.http2:
            await self.conn.close()
        elif not session.ended and self.failure is None:
            session.ended = True
            with contextlib.suppress(MintError):
                self.conn.cancel_request(session.ref)

    async def fail(self, error: MintError) -> None:
        if self.failure is None:
            self.failure = error
            self.routes.fail_all(error, _now())
            await self.conn.close()
        self._notify()

    async def close(self) -> None:
        for session in self.routes.sessions():
            session.fail(1001, "the client was closed", reason="client_closed")
            with contextlib.suppress(MintError):
                await self.flush(session)
        await self.fail(TransportError("the client was closed", reason="client_closed"))


class Session(SessionFacts):
    """The blocking ``Session``'s twin: the same methods, awaited.

    Several coroutines may use sessions of one connection at once; sends on
    one session are serialized so fragmented messages never interleave.
    """

    def __init__(
        self,
        shared: AsyncSharedConnection,
        state: SessionState,
        options: SessionOptions,
        response_headers: list[tuple[str, str]],
    ) -> None:
        super().__init__(state, response_headers, shared.conn.version)
        self._shared = shared
        self._options = options
        self._owner: Client | None = None
        self._send_lock = asyncio.Lock()
        #: ``_send_lock`` is held (its ``locked()``, without the call: asked per message).
        self._send_locked = False

    @property
    def connection(self) -> AsyncConnection:
        return self._shared.conn

    async def send(self, message: Message | Iterable[Message]) -> None:
        """Send ``str`` as text, ``bytes`` as binary, or an iterable as one fragmented message."""
        state = self._state
        # A whole str or bytes message on an open session, with no fragmented
        # message under way: the frame is encoded and handed to the transport
        # before the first await, so it cannot land inside another coroutine's
        # fragmented message (which holds the lock between its fragments).
        # ``encode_message`` and ``_write``, inline: this runs per message.
        if type(message) is str and not self._send_locked and state.status is _OPEN:
            data = state.ws.encode_text(message)
        elif type(message) is bytes and not self._send_locked and state.status is _OPEN:
            data = state.ws.encode_binary(message)
        else:
            await self._send_in_turn(message)
            return
        shared = self._shared
        if shared.failure is not None:
            state.raise_if_closed()
        conn = shared.conn
        try:
            if conn.stream_request_body_nowait(state.ref, data):
                await conn.drain()
        except MintError as exc:
            await self._write_failed(exc)
        if shared.http2:
            await self._wait_for_window()

    async def _send_in_turn(self, message: Message | Iterable[Message]) -> None:
        """``send`` for the rest: fragments, other bytes-like types, a closed session, a wait.

        Holds the send lock, so a message waits for a fragmented one under way.
        """
        async with self._send_lock:
            self._send_locked = True
            try:
                if isinstance(message, (str, bytes, bytearray, memoryview)):
                    await self._write(self._state.encode_message(message))
                else:
                    await self._send_fragments(message)
                if self._shared.http2:
                    await self._wait_for_window()
            finally:
                self._send_locked = False

    async def _send_fragments(self, message: Iterable[Message]) -> None:
        """One message in fragments; if it stops half way, the session fails with 1011.

        Once a first fragment went out, the rest of the message is owed: a
        later message would be taken as its continuation.  When the iterable
        raises, a piece has the wrong type, or the send is cancelled before
        the last fragment, the session is failed (the Close staged by
        ``fail`` is written, the stream let go), as the ``websockets`` library
        does, and the exception goes on to the caller.
        """
        state = self._state
        started = finished = False
        try:
            for piece, kind, fin in fragments(message):
                frame = state.encode_fragment(piece, kind, fin=fin)
                started, finished = True, fin  # the frame is the transport's before any await
                await self._write(frame)
        except BaseException:
            if started and not finished and not state.closed:
                state.fail(
                    1011,
                    "a message sent in fragments stopped before its last fragment",
                    reason="send_interrupted",
                )
                with contextlib.suppress(MintError, TimeoutError, asyncio.TimeoutError):
                    # The Close is handed to the transport, not waited for: the send
                    # may have been cancelled because the server stopped reading.
                    await _within(self._shared.flush(state), 0)
                await self._shared.release(state)
            raise

    async def _write(self, data: bytes) -> None:
        """``shared.write`` inlined: one coroutine per message sent rather than three."""
        shared = self._shared
        if shared.failure is not None:
            self._state.raise_if_closed()
        try:
            conn = shared.conn
            if conn.stream_request_body_nowait(self._state.ref, data):
                await conn.drain()
        except MintError as exc:
            await self._write_failed(exc)

    async def _write_failed(self, exc: MintError) -> NoReturn:
        """A write raised ``exc``: the session's error, or ``exc`` itself for a timeout."""
        await self._shared.write_failed(exc)
        self._state.raise_if_closed()
        if exc.reason == "timeout":
            raise exc
        raise ConnectionClosedError(
            f"the connection failed while sending: {exc}", close_code=1006, reason=exc.reason
        ) from exc

    async def _wait_for_window(self) -> None:
        """Wait until the flow-control windows took this session's bytes.

        The server's WINDOW_UPDATEs make no event: the reader (``recv_once``)
        returns after every read all the same, so this waiter looks again.
        """
        shared = self._shared
        state = self._state

        def room() -> bool:
            if state.closed or shared.failure is not None:
                return True
            try:
                return shared.conn.send_window(state.ref) > 0
            except MintError:
                return True

        await shared.wait(room, None)

    async def recv(self, timeout: float | None = None) -> Message:
        """The next message; see the blocking ``Session.recv``."""
        state = self._state
        shared = self._shared
        messages = state.messages
        if not messages:
            deadline = None if timeout is None else _now() + timeout
            while not shared.http2:
                # The short way, for HTTP/1.1: the connection carries this one
                # session, so reading for everyone comes down to decoding its
                # bytes, with no event, no routing, and the ``_service`` round only
                # when the frames asked for something.  Read after read while it
                # holds: a large message takes several.  It does not hold while
                # another coroutine reads, or once the session is paused or
                # closed: ``wait`` then takes over (and reports the end).  All of
                # it inline, as this runs per message.
                if (
                    shared._reading
                    or shared.failure is not None
                    or state.paused
                    or state.status is _CLOSED
                ):
                    break
                # Until the deadline or the keepalive's wake-up, whichever is first.
                wake = earliest(deadline, shared._keepalive_due)
                wait = None if wake is None else max(wake - _now(), 0.0)
                shared._reading = True
                try:
                    data = await shared.conn.recv_tunnel(state.ref, wait)
                    if not data:
                        break  # the end, an error, the timeout, or a reader's turn: ``wait``
                    now = _now()
                    due = shared._keepalive_due
                    if not state.receive(data, now) or (due is not None and now >= due):
                        await shared._service([state], now)
                    elif due is not None:
                        shared._watch_keepalive(state)
                finally:
                    shared._reading = False
                    if shared._waiting:
                        shared._notify()
                if messages:
                    break
            if not messages:
                await shared.wait(self._message_ready, deadline)
        message = messages.popleft() if messages else None  # ``next_message``, per message
        if message is None:
            state.raise_if_closed()
            raise ConnectionClosedError("the connection failed", close_code=1006, reason="closed")
        if state.paused and len(messages) <= state.low_water:  # ``queue_low``, per message
            await shared.resume(state)
        return message

    def _message_ready(self) -> bool:
        state = self._state
        return bool(state.messages) or state.closed

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedOK:
                return

    async def ping(self, *, timeout: float | None = None) -> float:
        """Send a ping, wait for its pong; the round trip in seconds (``timeout``: ping_timeout)."""
        state = self._state
        shared = self._shared
        if timeout is None:
            timeout = self._options.ping_timeout
        async with self._send_lock:
            payload, frame = state.start_ping(_now())
            await self._write(frame)
        deadline = None if timeout is None else _now() + timeout
        try:
            await shared.wait(lambda: state.answered(payload) or state.closed, deadline)
            latency = state.latency(payload)
            if latency is None:
                state.raise_if_closed()
                raise ConnectionClosedError(
                    "the connection failed", close_code=1006, reason="closed"
                )
            return latency
        finally:
            state.forget_ping(payload)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake, bounded by ``close_timeout``; see the blocking ``close``."""
        state = self._state
        shared = self._shared
        timeout = self._options.close_timeout
        deadline = None if timeout is None else _now() + timeout
        try:
            async with self._send_lock:
                if state.can_send and shared.failure is None:
                    frame = state.start_close(code, reason)
                    with contextlib.suppress(MintError):
                        await shared.write(state.ref, frame, end_stream=True)
                if state.paused:
                    # The server's Close may wait behind our backpressure; once ours
                    # is out, nothing pauses the session again.
                    await shared.resume(state)
                try:
                    await shared.wait(lambda: state.close_finished(shared.http2), deadline)
                except TransportError:
                    if not state.closed:
                        state.fail(
                            1006,
                            f"the server did not finish the closing handshake within {timeout}s",
                            reason="close_timeout",
                        )
                        state.take_outgoing()
                await shared.release(state)
        finally:
            if self._owner is not None:
                await self._owner.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Client:
    """The blocking ``Client``'s twin: pooled connections, one HTTP/2 connection per origin.

    ``proxy`` and ``proxy_ssl_context`` as for the blocking ``Client``: left
    out, the environment names the proxy (read once, here).  ``http3`` and
    ``http3_timeout`` too: HTTP/3 first (always, or where Alt-Svc announced
    it), TCP after a failed bounded attempt.
    """

    def __init__(
        self,
        *,
        http2: HTTP2Preference = "auto",
        ssl_context: ssl.SSLContext | None = None,
        cafile: str | os.PathLike[str] | None = None,
        verify: bool = True,
        server_hostname: str | None = None,
        connect_timeout: float | None = 10.0,
        idle_timeout: float | None = 60.0,
        http2_window_size: int = 1 << 20,
        proxy: ProxySetting = FROM_ENVIRONMENT,
        proxy_ssl_context: ssl.SSLContext | None = None,
        http3: HTTP3Preference = False,
        http3_timeout: float = 3.0,
    ) -> None:
        protocols_for("https", http2)
        self._http3 = check_http3_options(http3, http3_timeout, ssl_context)
        self._http3_timeout = http3_timeout
        self._altsvc = AltSvcMemory()
        self._http2 = http2
        self._tls = TLSOptions(ssl_context, cafile, verify, server_hostname)
        self._proxies = client_proxies(proxy)  # the environment, read now (mint.client.proxies)
        self._proxy_ssl_context = proxy_ssl_context
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._window = http2_window_size
        self._origin_locks: dict[PoolKey, asyncio.Lock] = {}
        self._pool: dict[PoolKey, list[AsyncSharedConnection]] = {}
        self._no_extended_connect: set[Origin] = set()
        #: Origins that answered with HTTP/1.1: their dials need not wait for each other.
        self._http1_origins: set[Origin] = set()
        self._closed = False

    async def connect(
        self,
        url: str,
        *,
        http2: HTTP2Preference | None = None,
        **options: Unpack[SessionKwargs],
    ) -> Session:
        """Open a WebSocket session to ``url`` (ws:// or wss://) on a pooled connection.

        Options: ``subprotocols``, ``headers``, ``origin``, ``compression``
        (permessage-deflate, on by default), ``max_size`` (per message),
        ``max_queue`` (messages), ``open_timeout``, ``ping_interval``,
        ``ping_timeout``, ``close_timeout``, ``extensions``; defaults in
        ``mint.client.options.SessionOptions``.  ``http2`` overrides the
        client's preference for this session.
        """
        target = parse_url(url, websocket=True)
        session = session_options(options)
        preference = self._http2 if http2 is None else http2
        protocols_for(target.http_scheme, preference)
        timeout = session.open_timeout
        deadline = None if timeout is None else _now() + timeout
        fallback = preference == "auto" and target.origin in self._no_extended_connect
        while True:
            wanted = ("http1",) if fallback else protocols_for(target.http_scheme, preference)
            shared = await self._connection_for(target, wanted, deadline, websocket_session=True)
            if shared.http2 and not shared.conn.extended_connect_enabled and preference == "auto":
                log.info(
                    "%s:%d speaks HTTP/2 without extended CONNECT (RFC 8441): "
                    "opening the WebSocket over HTTP/1.1 on a new connection",
                    target.host,
                    target.port,
                )
                self._no_extended_connect.add(target.origin)
                fallback = True
                continue
            try:
                return await self._upgrade(shared, target, session, deadline)
            except HTTPError as exc:
                if exc.reason not in _RETRY_REASONS:
                    raise
                if deadline is not None and _now() >= deadline:
                    raise

    async def _upgrade(
        self,
        shared: AsyncSharedConnection,
        target: Target,
        options: SessionOptions,
        deadline: float | None,
    ) -> Session:
        if shared.failure is not None:
            raise HTTPError(f"the connection failed: {shared.failure}", reason="closed")
        ref = websocket.upgrade(
            target.websocket_scheme,
            shared.conn,
            target.path,
            options.request_headers(target),
            subprotocols=options.subprotocols,
            extensions=options.offered_extensions(),
        )
        response = ResponseState(ref)
        shared.routes.add(ref, response)
        try:
            await shared.wait(lambda: response.head_ready, deadline)
        except TransportError as exc:
            await self._abandon(shared, ref)
            raise TransportError(
                f"the WebSocket handshake with {target.host}:{target.port} did not complete"
                f" within open_timeout={options.open_timeout}s",
                reason="timeout",
            ) from exc
        except BaseException:
            await self._abandon(shared, ref)
            raise
        self._learn_alt_svc(target, response.headers)
        if response.headers is None or response.status is None:
            # No answer at all.  An answer followed by an end or an error still
            # makes a session: what came with it is delivered, then the end.
            await self._abandon(shared, ref)
            if response.error is not None:
                raise response.error
            raise HTTPError("the server ended the stream before answering", reason="closed")
        try:
            state = start_session(shared.conn, ref, response, options, _now())
        except (UpgradeFailureError, WebSocketError):
            await self._abandon(shared, ref)
            raise
        await shared.add_session(state)
        return Session(shared, state, options, response.headers or [])

    async def _abandon(self, shared: AsyncSharedConnection, ref: http.Ref) -> None:
        shared.routes.remove(ref, _now())
        if shared.http2 and shared.failure is None:
            with contextlib.suppress(MintError):
                shared.conn.cancel_request(ref)
        elif not shared.http2:
            await shared.conn.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
        timeout: float | None = 30.0,
        max_body: int | None = 64 * 2**20,
    ) -> Response:
        """Send one HTTP request on a pooled connection and return the whole response."""
        target = parse_url(url, websocket=False)
        deadline = None if timeout is None else _now() + timeout
        request_headers = list(headers)
        if target.authorization is not None:
            request_headers.append(target.authorization)
        while True:
            shared = await self._connection_for(
                target,
                protocols_for(target.http_scheme, self._http2),
                deadline,
                websocket_session=False,
            )
            try:
                return await self._exchange(
                    shared, method, target, request_headers, body, deadline, max_body
                )
            except HTTPError as exc:
                if exc.reason not in _RETRY_REASONS:
                    raise
                if deadline is not None and _now() >= deadline:
                    raise

    async def _exchange(
        self,
        shared: AsyncSharedConnection,
        method: str,
        target: Target,
        headers: list[tuple[str, str]],
        body: bytes | None,
        deadline: float | None,
        max_body: int | None,
    ) -> Response:
        if shared.failure is not None:
            raise HTTPError(f"the connection failed: {shared.failure}", reason="closed")
        ref = shared.conn.request(method, target.path, headers, body)
        response = ResponseState(ref, max_body=max_body)
        shared.routes.add(ref, response)
        try:
            await shared.wait(lambda: response.finished, deadline)
        except BaseException:
            await self._abandon(shared, ref)
            raise
        shared.routes.remove(ref, _now())
        self._learn_alt_svc(target, response.headers)
        if response.error is not None:
            if response.error.reason == "body_too_large":
                await self._abandon(shared, ref)
            raise response.error
        assert response.status is not None
        return Response(
            response.status, response.headers or [], response.take_body(), shared.conn.version
        )

    async def _connection_for(
        self,
        target: Target,
        protocols: tuple[str, ...],
        deadline: float | None,
        *,
        websocket_session: bool,
    ) -> AsyncSharedConnection:
        if self._closed:
            raise MintError("the client is closed", reason="closed")
        await self._sweep(_now())
        origin = target.origin
        proxy = self._proxies.for_target(target)
        key: PoolKey = (*origin, proxy)  # two proxies to one origin share nothing
        # One dial per origin at a time, so concurrent sessions share the HTTP/2
        # connection it opens; HTTP/1.1 connections are one per session anyway,
        # and dialing them one after another would only queue the sessions.
        serial = protocols != ("http1",) and origin not in self._http1_origins
        h3_port = self._http3_port(target, proxy, websocket_session)
        lock = self._origin_locks.setdefault(key, asyncio.Lock())
        async with lock if serial or h3_port is not None else contextlib.nullcontext():
            for pooled in list(self._pool.get(key, [])):
                if pooled.routes.idle_since is not None:
                    await pooled.poll()  # a dead one fails here, and is not picked
            if h3_port is not None:
                # HTTP/3 first: a pooled QUIC connection, else one bounded attempt.
                found = pick(
                    self._pool.get(key, []), ("http3",), websocket_session=websocket_session
                )
                if found is None:
                    quic = await self._dial_http3(target, h3_port, deadline)
                    found = None if quic is None else AsyncSharedConnection(quic, origin)
                    if found is not None:
                        self._pool.setdefault(key, []).append(found)
                if found is not None:
                    return found
            shared = pick(self._pool.get(key, []), protocols, websocket_session=websocket_session)
            if shared is not None:
                if not shared.http2:
                    shared.routes.idle_since = None
                return shared
            conn = await self._dial(target, protocols, deadline, proxy)
            shared = AsyncSharedConnection(conn, origin)
            if not shared.http2 and "http2" in protocols:
                # The server chose HTTP/1.1 (not our fallback): its dials need not queue.
                self._http1_origins.add(origin)
            self._pool.setdefault(key, []).append(shared)
            return shared

    def _http3_port(self, target: Target, proxy: str | None, websocket_session: bool) -> int | None:
        """The UDP port to try HTTP/3 on, or None (a proxy, a refused CONNECT, the preference)."""
        if proxy is not None:
            return None
        if websocket_session and target.origin in self._no_extended_connect:
            return None
        return self._altsvc.http3_port(target.origin, self._http3, _now())

    async def _dial_http3(
        self, target: Target, port: int, deadline: float | None
    ) -> AsyncConnection | None:
        """One bounded HTTP/3 attempt; None, remembered, when it fails (aioquic missing: raised)."""
        timeout = self._http3_timeout
        if deadline is not None:
            timeout = min(timeout, max(0.001, deadline - _now()))
        tls = self._tls
        try:
            return await http_connect(
                "https",
                target.host,
                port,
                protocols=("http3",),
                timeout=timeout,
                cafile=tls.cafile,
                verify=tls.verify,
                server_hostname=tls.server_hostname,
            )
        except MintError as exc:
            if exc.reason == "missing_dependency":
                raise
            log.info("HTTP/3 to %s:%d failed (%s): falling back to TCP", target.host, port, exc)
            self._altsvc.mark_broken(target.origin, _now())
            return None

    def _learn_alt_svc(self, target: Target, headers: list[tuple[str, str]] | None) -> None:
        if headers:
            self._altsvc.learn(target.origin, headers, _now())

    async def _dial(
        self,
        target: Target,
        protocols: tuple[str, ...],
        deadline: float | None,
        proxy: str | None,
    ) -> AsyncConnection:
        timeout = self._connect_timeout
        if deadline is not None:
            remaining = max(0.001, deadline - _now())
            timeout = remaining if timeout is None else min(timeout, remaining)
        tls = self._tls
        return await http_connect(
            target.http_scheme,
            target.host,
            target.port,
            protocols=protocols,
            timeout=timeout,
            ssl_context=tls.ssl_context,
            cafile=tls.cafile,
            verify=tls.verify,
            server_hostname=tls.server_hostname,
            http2_window_size=self._window,
            proxy=proxy,
            proxy_ssl_context=self._proxy_ssl_context,
        )

    async def _sweep(self, now: float, idle_timeout: float | None = None) -> None:
        """Drop dead connections and close idle ones (``idle_timeout``: the client's)."""
        limit = self._idle_timeout if idle_timeout is None else idle_timeout
        for key, conns in list(self._pool.items()):
            keep, idle = sweep(conns, now, limit)
            if keep:
                self._pool[key] = keep
            else:
                del self._pool[key]
            for shared in idle:
                await shared.close()

    def connections(self) -> list[AsyncConnection]:
        """The open connections in the pool, for inspection (tests, metrics)."""
        return [
            shared.conn for conns in self._pool.values() for shared in conns if shared.conn.open
        ]

    async def close(self) -> None:
        """Close every connection; open sessions end with ``ConnectionClosedError`` (1001 sent)."""
        self._closed = True
        pools, self._pool = self._pool, {}
        for conns in pools.values():
            for shared in conns:
                await shared.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _open(url: str, options: ConnectKwargs) -> Session:
    client_options, session_kwargs = split_connect_kwargs(options)
    client = Client(idle_timeout=None, **client_options)
    try:
        session = await client.connect(url, **session_kwargs)
    except BaseException:
        await client.close()
        raise
    # An HTTP/2 connection that a fallback to HTTP/1.1 left empty serves nobody here.
    await client._sweep(_now(), idle_timeout=0)
    session._owner = client
    return session


class Connect:
    """What ``connect`` returns: await it, enter it, or iterate it to reconnect.

    ``ws = await connect(url)``; ``async with connect(url) as ws``; and
    ``async for ws in connect(url)`` yields a new session each time the
    previous one ended, retrying failed connects with capped exponential
    backoff (what is retried: see the blocking ``Reconnecting``).  The loop
    closes a session when it fetches the next; the one held when the loop is
    left stays the caller's to close (``async with ws:`` in the loop body),
    since an async generator's cleanup runs only when it is garbage collected.
    """

    def __init__(self, url: str, backoff: Backoff, options: ConnectKwargs) -> None:
        parse_url(url, websocket=True)  # a bad URL fails here, not at the first await
        self._url = url
        self._backoff = backoff
        self._options = options
        self._session: Session | None = None

    def __await__(self) -> Generator[object, None, Session]:
        return _open(self._url, self._options).__await__()

    async def __aenter__(self) -> Session:
        self._session = await _open(self._url, self._options)
        return self._session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    def __aiter__(self) -> AsyncIterator[Session]:
        return self._reconnecting()

    async def _reconnecting(self) -> AsyncIterator[Session]:
        current: Session | None = None
        while True:
            if current is not None:
                await current.close()
                current = None
            delays = self._backoff.delays()
            while current is None:
                try:
                    current = await _open(self._url, self._options)
                except MintError as exc:
                    if not retryable(exc):
                        raise
                    delay = next(delays)
                    log.info("connecting failed (%s); retrying in %.2fs", exc, delay)
                    await asyncio.sleep(delay)
            yield current


def connect(
    url: str, *, backoff: Backoff | None = None, **options: Unpack[ConnectKwargs]
) -> Connect:
    """Open one WebSocket session to ``url`` on a connection of its own (see ``Connect``).

    The blocking ``mint.client.connect``'s options.  ``async for ws in
    connect(url)`` reconnects, with ``backoff`` between failed attempts.
    """
    return Connect(url, backoff or Backoff(), options)


def reconnecting(
    url: str, *, backoff: Backoff | None = None, **options: Unpack[ConnectKwargs]
) -> AsyncIterator[Session]:
    """``async for ws in reconnecting(url)``: the same as iterating ``connect(url)``."""
    return aiter(Connect(url, backoff or Backoff(), options))


__all__ = [
    "AsyncSharedConnection",
    "Client",
    "Connect",
    "Response",
    "Session",
    "connect",
    "reconnecting",
]
