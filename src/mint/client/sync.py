"""Blocking sessions and a pooling client, on ``mint.http``'s blocking connections.

No thread is started here.  A connection shared by several sessions (HTTP/2)
is read by whichever caller is waiting: the first thread that needs bytes
takes the reader's role, waits on the socket *without* holding the
connection's lock (so others can write meanwhile), feeds what arrived to the
core and hands each event to its session or request.  Threads that wait
while someone else reads sleep on a condition and are woken after every
read.  Keepalive pings go out from that same reader, so they are sent while,
and only while, some caller is inside ``recv``, ``ping``, ``close``, a
``send`` that waits for flow control, or ``Client.request``.

Reading the socket directly (``conn.socket`` and ``conn.stream``, the
process-less core's entry point for callers with their own loop) is what
lets the wait happen outside the lock; ``Connection.recv`` would hold the
core for the whole wait.

Over HTTP/3 (``http3=``) the socket is UDP: the reader reads a batch of
datagrams per wake-up, and also wakes at the QUIC core's next deadline
(``conn.next_deadline()``: retransmissions, ACKs, the idle timeout), which
it hands over with ``conn.handle_deadline()`` before feeding what arrived.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Literal, overload

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
from mint.errors import (
    ConnectionClosedError,
    ConnectionClosedOK,
    HTTPError,
    MintError,
    ProxyError,
    TransportError,
    UpgradeFailureError,
    WebSocketError,
)
from mint.http.proxy import PERMANENT_REASONS

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger("mint.client")
#: Read per message sent: a module constant is one lookup, ``SessionStatus.OPEN`` two.
_OPEN = SessionStatus.OPEN

_READ_SIZE = 256 * 1024
_DATAGRAM_BATCH = 256
_MAX_DATAGRAM = 65536
Origin = tuple[str, str, int]
#: The pool's key: an origin and the proxy (URL or None) its connections go through.
PoolKey = tuple[str, str, int, str | None]


def _wait_readable(sock: socket.socket, timeout: float | None) -> bool:
    """Wait until ``sock`` has bytes (or EOF); poll(), not select(), so fds past 1023 work."""
    pending = getattr(sock, "pending", None)  # SSLSocket, or TLS inside a proxy's TLS
    if pending is not None and pending():
        return True  # decrypted bytes wait in the TLS layer, where poll cannot see them
    fd = sock.fileno()
    if fd < 0:
        return True  # closed under us: the read reports it
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        wait_ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        return bool(poller.poll(wait_ms))
    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable)


class SharedConnection(PooledConnection[http.Connection]):
    """One ``mint.http.Connection`` and the sessions and requests it carries.

    Every method expects ``lock`` to be held by the caller, except ``close``.
    """

    def __init__(self, conn: http.Connection, origin: Origin) -> None:
        super().__init__(conn, origin, time.monotonic())
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self._reading = False
        #: Threads waiting on ``_changed``: the short way (``read_tunnel``) notifies only them.
        self._waiting = 0
        #: The earliest moment a session's keepalive needs looking at (cached:
        #: with a thousand sessions, scanning them all on every read would cost).
        self._keepalive_due: float | None = None

    # -- waiting and reading ---------------------------------------------------------

    def wait(self, ready: Callable[[], bool], deadline: float | None) -> None:
        """Return once ``ready()`` holds, reading for everyone while it does not.

        Raises ``TransportError(reason="timeout")`` at ``deadline``; whatever
        arrived meanwhile has been routed, so nothing is lost.  A deadline
        already spent still lets one look at what has arrived: ``recv(timeout=0)``
        is a poll.
        """
        looked = False
        while not ready():
            now = 0.0 if deadline is None else time.monotonic()
            if deadline is not None and now >= deadline and looked:
                raise TransportError("nothing arrived before the timeout", reason="timeout")
            looked = True
            if self.failure is not None:
                return  # every route has been told; ready() callers check their own state
            if self._reading or not self._may_read():
                self._waiting += 1
                try:
                    self._changed.wait(None if deadline is None else deadline - now)
                finally:
                    self._waiting -= 1
                continue
            self._read_for_all(deadline)

    def poll(self) -> None:
        """Take in what already arrived, without waiting.

        Say, the EOF or GOAWAY of a server that closed the connection while it
        sat idle in the pool (keep-alive timeouts), which nobody was reading:
        looked at before the connection is reused, so it is not picked.
        """
        # Not ``_read_for_all``: that lets go of the lock while it waits, and an
        # idle HTTP/1.1 connection could be claimed by another caller meanwhile.
        if self._reading or self.failure is not None:
            return
        # HTTP/3 looks even with nothing to read: a QUIC idle timeout that passed
        # while nobody read ends the connection only once its deadline is handled.
        if self.http3 or _wait_readable(self.conn.socket, 0):
            self._read_available()

    def _may_read(self) -> bool:
        """HTTP/1.1 backpressure: a full session's socket is not read (HTTP/2 pauses a stream)."""
        return self.http2 or not self.routes.any_paused()

    def _read_for_all(self, deadline: float | None) -> None:
        self._reading = True
        try:
            due = self._keepalive_due
            # QUIC's timers (loss recovery, ACKs) fire from this wait too.
            quic_due = self._quic_deadline()
            wake = earliest(deadline, due, quic_due)
            timeout = None if wake is None else max(0.0, wake - time.monotonic())
            sock = self.conn.socket
            self.lock.release()
            try:
                readable = _wait_readable(sock, timeout)
            finally:
                self.lock.acquire()
            if (readable or quic_due is not None) and self.failure is None:
                self._read_available()
            if due is not None and self.failure is None and time.monotonic() >= due:
                self.service_keepalive()
        finally:
            self._reading = False
            self._changed.notify_all()

    def read_tunnel(self, session: SessionState, deadline: float | None) -> None:
        """HTTP/1.1's short way to ``session``'s next messages, for ``recv`` with none queued.

        The connection carries this one session, so reading for everyone
        comes down to decoding its bytes: no event, no routing, and the
        ``_service`` round only when the frames asked for something (a reply
        staged, the session no longer open, its queue full, a keepalive due).
        Waits (outside the lock, as ``_read_for_all`` does) until ``deadline``
        or the keepalive's wake-up.  When the short way does not hold
        (another thread reads, the session is paused or closed, the tunnel
        ended), it returns, or hands what it read to the general path, and
        ``wait`` takes over.
        """
        conn = self.conn
        ref = session.ref
        while not session.messages:  # read after read: a large message takes several
            if (
                self._reading
                or self.failure is not None
                or session.paused
                or session.closed
                or not conn.passes_through(ref)
            ):
                return
            due = self._keepalive_due
            wake = earliest(deadline, due)
            timeout = None
            if wake is not None:
                timeout = wake - time.monotonic()
                if timeout <= 0:
                    return
            sock = conn.socket
            self._reading = True
            try:
                self.lock.release()
                try:
                    readable = _wait_readable(sock, timeout)
                finally:
                    self.lock.acquire()
                if not readable:
                    return  # the deadline or the keepalive's moment: ``wait`` sees to both
                if self.failure is None:
                    self._read_available(session if conn.passes_through(ref) else None)
            finally:
                self._reading = False
                if self._waiting:
                    self._changed.notify_all()

    def _quic_deadline(self) -> float | None:
        """When the HTTP/3 connection's core needs its deadline handled (None: not HTTP/3)."""
        return self.conn.next_deadline() if self.http3 else None

    def _read_datagrams(self) -> None:
        """HTTP/3: take the datagrams that arrived, honour the core's deadline, route the events.

        ``conn.stream`` takes one datagram at a time (UDP keeps their
        boundaries); a batch is read before routing so a burst costs one
        round of routing, not one per datagram.
        """
        sock = self.conn.socket
        try:
            # Deadlines first: a QUIC idle timeout that passed while nobody read
            # must not be undone by the datagrams that waited meanwhile.
            events = self.conn.handle_deadline()
            for _ in range(_DATAGRAM_BATCH):
                try:
                    data = sock.recv(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    break
                events.extend(self.conn.stream(data))
            events.extend(self.conn.stream(b""))  # deadlines, and the answers to send
        except OSError as exc:
            self.fail(TransportError(f"reading from the server failed: {exc}", reason="closed"))
            return
        except MintError as exc:
            self.fail(exc)
            return
        now = time.monotonic()
        touched = self.routes.dispatch(events, now)
        if not self.conn.open:
            self.fail(TransportError("the QUIC connection ended", reason="closed"))
            return
        self._service(touched, now)

    def _read_available(self, tunnel: SessionState | None = None) -> None:
        """Read and route what arrived; with ``tunnel`` (see ``read_tunnel``), bytes go
        straight to that session while its HTTP/1.1 tunnel passes them through."""
        if self.http3:
            self._read_datagrams()
            return
        try:
            data = self.conn.socket.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return  # woken without bytes (a TLS record still incomplete)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            data = b""
        except OSError as exc:
            self.fail(TransportError(f"reading from the server failed: {exc}", reason="closed"))
            return
        if tunnel is not None and data:
            now = time.monotonic()
            due = self._keepalive_due
            if not tunnel.receive(data, now) or (due is not None and now >= due):
                self._service([tunnel], now)
            elif due is not None:
                self._watch_keepalive(tunnel)
            return
        try:
            events = self.conn.stream(data)
        except MintError as exc:
            self.fail(exc)
            return
        now = time.monotonic()
        touched = self.routes.dispatch(events, now)
        if not data:
            self.fail(TransportError("the server closed the connection", reason="closed"))
            return
        self._service(touched, now)

    def _service(self, sessions: Iterable[SessionState], now: float) -> None:
        """After sessions changed: keepalive, their pending frames, backpressure, release."""
        for session in sessions:
            session.keepalive(now)
            if session.has_outgoing():
                with contextlib.suppress(MintError):
                    # A write that failed has failed the connection (``write``) and every
                    # route learnt why; the caller reading for everyone must not get the
                    # raw error instead of what its own session received before it.
                    self.flush(session)
            if self.failure is not None:
                return
            if session.closed:
                self._release_if_done(session, now)
            elif session.queue_full and not session.paused and session.can_send:
                # Not once our Close went out: the server's answer must be read, and
                # what it still sends before it is bounded by what was in flight.
                session.paused = True
                if self.can_pause:
                    self._call(self.conn.pause_stream, session.ref)
            self._watch_keepalive(session)

    def _watch_keepalive(self, session: SessionState) -> None:
        """Bring the cached keepalive wake-up forward to ``session``'s, if that is earlier.

        A pong moves a session's deadline from its ping's timeout back to the
        next interval; without this the next ping would wait for the later,
        stale wake-up (pings every ``ping_timeout`` instead of ``ping_interval``).
        """
        due = session.keepalive_deadline()
        if due is not None and (self._keepalive_due is None or due < self._keepalive_due):
            self._keepalive_due = due

    def service_keepalive(self) -> None:
        """Send the keepalive pings that are due, fail the sessions whose pings went unanswered."""
        self._service(self.routes.sessions(), time.monotonic())
        self._keepalive_due = self.routes.keepalive_deadline()

    def add_session(self, session: SessionState) -> None:
        """A session took over its upgrade's route: route its events, watch its keepalive."""
        self.routes.replace(session.ref, session)
        self._service([session], time.monotonic())

    def flush(self, session: SessionState) -> None:
        """Write the frames the session staged (pongs, close replies, keepalive pings)."""
        if session.has_outgoing():
            data, end = session.take_outgoing()
            if not session.ended:
                self.write(session.ref, data, end_stream=end)

    def write(self, ref: http.Ref, data: bytes, *, end_stream: bool = False) -> None:
        try:
            self.conn.stream_request_body(ref, data, end_stream=end_stream and self.http2)
        except MintError as exc:
            self.write_failed(exc)
            raise

    def write_failed(self, exc: MintError) -> None:
        """A write raised ``exc``: the connection fails, unless the write may simply be retried."""
        if exc.reason != "not_supported":
            self.fail(exc)

    def _call(self, method: Callable[[http.Ref], None], ref: http.Ref) -> None:
        try:
            method(ref)
        except MintError as exc:
            if exc.reason != "unknown_ref":  # the stream already ended: nothing to pause
                self.fail(exc)

    def resume(self, session: SessionState) -> None:
        """The caller took messages: reading for this session starts again."""
        now = time.monotonic()
        if session.resume(now) and self.can_pause and self.failure is None:
            self._call(self.conn.resume_stream, session.ref)
        self._service([session], now)  # pongs or a Close reply among the held bytes
        self._keepalive_due = self.routes.keepalive_deadline()
        self._changed.notify_all()

    def _release_if_done(self, session: SessionState, now: float) -> None:
        """Let go of a closed session's stream once it ended, or at once if it failed."""
        # Without the server's Close the session failed on our side: nothing
        # more is owed.  After it, the server's END_STREAM (or EOF) is near.
        if session.ended or not session.ws.close_received:
            self.release(session, now)

    def release(self, session: SessionState, now: float) -> None:
        """Forget the session; its stream is cancelled (HTTP/2) or its socket closed (HTTP/1.1)."""
        if session.ref not in self.routes:
            return
        self.routes.remove(session.ref, now)
        if not self.http2:
            self._close_conn()
        elif not session.ended and self.failure is None:
            session.ended = True
            with contextlib.suppress(MintError):
                self.conn.cancel_request(session.ref)

    def fail(self, error: MintError) -> None:
        """The connection is unusable: every session and request on it learns why."""
        if self.failure is None:
            self.failure = error
            self.routes.fail_all(error, time.monotonic())
            self._close_conn()
        self._changed.notify_all()

    def _close_conn(self) -> None:
        if self._reading:
            # Another thread may be polling this socket: closing it would not
            # wake that poll (nor even close the socket while poll holds it),
            # shutting its reading side does.  The plain socket's shutdown,
            # since SSLSocket's drops TLS for the GOAWAY.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.conn.socket, socket.SHUT_RD)
        self.conn.close()

    def close(self) -> None:
        with self.lock:
            for session in self.routes.sessions():
                session.fail(1001, "the client was closed", reason="client_closed")
                with contextlib.suppress(MintError):
                    self.flush(session)
            self.fail(TransportError("the client was closed", reason="client_closed"))


class Session(SessionFacts):
    """A WebSocket conversation: send and receive messages, ping, close.

    Made by ``connect`` or ``Client.connect``.  ``recv`` returns whole
    messages (``str`` for text, ``bytes`` for binary); iterating yields them
    until a normal close.  Pings from the server are answered, keepalive
    pings sent (see the module doc for exactly when).  Safe to use from
    several threads: sends are serialized per session, and receivers of
    different sessions on one connection take turns reading for each other.
    """

    def __init__(
        self,
        shared: SharedConnection,
        state: SessionState,
        options: SessionOptions,
        response_headers: list[tuple[str, str]],
    ) -> None:
        super().__init__(state, response_headers, shared.conn.version)
        self._shared = shared
        self._options = options
        #: The client a module-level ``connect`` made for this session alone: closed with it.
        self._owner: Client | None = None
        self._send_lock = threading.Lock()

    @property
    def connection(self) -> http.Connection:
        """The HTTP connection under the session (shared with others on HTTP/2)."""
        return self._shared.conn

    # -- messages ----------------------------------------------------------------------

    def send(self, message: Message | Iterable[Message]) -> None:
        """Send ``str`` as text, ``bytes`` as binary, or an iterable as one fragmented message.

        Over HTTP/2 this returns once the flow-control windows took the
        bytes, so a fast sender is held back by a slow server instead of
        filling memory.
        """
        state = self._state
        shared = self._shared
        if not shared.http2 and isinstance(message, (str, bytes, bytearray, memoryview)):
            with shared.lock:
                if not self._send_lock.locked():
                    # No fragmented message is under way (one holds the send lock
                    # from its first fragment to its last) and none can write before
                    # the connection's lock is let go: this frame cannot land inside
                    # one, so the send lock is not needed (it costs a message's worth).
                    # ``encode_message``, inline for str and bytes on an open session.
                    if type(message) is str and state.status is _OPEN:
                        data = state.ws.encode_text(message)
                    elif type(message) is bytes and state.status is _OPEN:
                        data = state.ws.encode_binary(message)
                    else:
                        data = state.encode_message(message)  # a closed session's error, too
                    self._write(data)
                    return
        with self._send_lock:
            if isinstance(message, (str, bytes, bytearray, memoryview)):
                with shared.lock:
                    self._write(state.encode_message(message))
            else:
                self._send_fragments(message)
            if shared.http2:
                with shared.lock:
                    self._wait_for_window()

    def _send_fragments(self, message: Iterable[Message]) -> None:
        """One message in fragments; if it stops half way, the session fails with 1011.

        Once a first fragment went out, the rest of the message is owed: a
        later message would be taken as its continuation.  When the iterable
        raises, a piece has the wrong type, or a write fails before the last
        fragment, the session is failed (its Close written, its stream let
        go), and the exception goes on to the caller.
        """
        state = self._state
        shared = self._shared
        started = finished = False
        try:
            for piece, kind, fin in fragments(message):
                with shared.lock:
                    frame = state.encode_fragment(piece, kind, fin=fin)
                    started, finished = True, fin
                    self._write(frame)
        except BaseException:
            if started and not finished:
                with shared.lock:
                    if not state.closed:
                        state.fail(
                            1011,
                            "a message sent in fragments stopped before its last fragment",
                            reason="send_interrupted",
                        )
                        with contextlib.suppress(MintError):
                            shared.flush(state)
                    shared.release(state, time.monotonic())
            raise

    def _write(self, data: bytes) -> None:
        shared = self._shared
        if shared.failure is not None:
            self._state.raise_if_closed()
        try:
            shared.conn.stream_request_body(self._state.ref, data)  # ``shared.write``, inline
        except MintError as exc:
            shared.write_failed(exc)
            self._state.raise_if_closed()
            raise ConnectionClosedError(
                f"the connection failed while sending: {exc}", close_code=1006, reason=exc.reason
            ) from exc

    def _wait_for_window(self) -> None:
        shared = self._shared
        state = self._state
        ref = state.ref

        def room() -> bool:
            if state.closed or shared.failure is not None:
                return True
            try:
                return shared.conn.send_window(ref) > 0
            except MintError:
                return True

        shared.wait(room, None)

    def recv(self, timeout: float | None = None) -> Message:
        """The next message; waits at most ``timeout`` seconds (``None``: without limit).

        Raises ``TransportError(reason="timeout")`` when nothing came (the
        session stays usable), ``ConnectionClosedOK`` after a normal close
        and ``ConnectionClosedError`` after an abnormal one, once every
        message received before the close has been returned.
        """
        state = self._state
        shared = self._shared
        deadline = None if timeout is None else time.monotonic() + timeout
        with shared.lock:
            if not state.messages:
                if not shared.http2:
                    shared.read_tunnel(state, deadline)
                if not state.messages:
                    shared.wait(lambda: bool(state.messages) or state.closed, deadline)
            messages = state.messages
            message = messages.popleft() if messages else None  # ``next_message``, per message
            if message is None:
                state.raise_if_closed()
                raise ConnectionClosedError(  # the connection failed before routing an end
                    "the connection failed", close_code=1006, reason="closed"
                )
            if state.paused and len(messages) <= state.low_water:  # ``queue_low``, per message
                shared.resume(state)
            return message

    def __iter__(self) -> Iterator[Message]:
        """Messages until the session closes normally; an abnormal close raises."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    def ping(self, data: bytes | None = None, *, timeout: float | None = None) -> float:
        """Send a ping and wait for its pong; returns the round trip in seconds.

        ``timeout`` defaults to the session's ``ping_timeout``.  ``data`` is
        ignored beyond being a hint for logs: the payload is chosen here so
        that pongs match pings unambiguously.
        """
        del data
        state = self._state
        shared = self._shared
        if timeout is None:
            timeout = self._options.ping_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._send_lock, shared.lock:
            payload, frame = state.start_ping(time.monotonic())
            self._write(frame)
        with shared.lock:
            try:
                shared.wait(lambda: state.answered(payload) or state.closed, deadline)
                latency = state.latency(payload)
                if latency is None:
                    state.raise_if_closed()
                    raise ConnectionClosedError(
                        "the connection failed", close_code=1006, reason="closed"
                    )
                return latency
            finally:
                state.forget_ping(payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Perform the closing handshake, bounded by ``close_timeout``, then end the stream.

        Idempotent.  A server that never answers gets its stream cancelled
        (HTTP/2) or its socket closed (HTTP/1.1) after the timeout; the
        session is then closed with ``ConnectionClosedError(reason="close_timeout")``.
        """
        state = self._state
        shared = self._shared
        timeout = self._options.close_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with self._send_lock, shared.lock:
                if state.can_send and shared.failure is None:
                    frame = state.start_close(code, reason)
                    with contextlib.suppress(MintError):
                        shared.write(state.ref, frame, end_stream=True)
                if state.paused:
                    # The server's Close may wait behind our backpressure; once ours
                    # is out, nothing pauses the session again.
                    shared.resume(state)
                try:
                    shared.wait(lambda: state.close_finished(shared.http2), deadline)
                except TransportError:
                    if not state.closed:
                        state.fail(
                            1006,
                            f"the server did not finish the closing handshake within {timeout}s",
                            reason="close_timeout",
                        )
                        state.take_outgoing()  # our Close already went; nothing more to say
                shared.release(state, time.monotonic())
        finally:
            if self._owner is not None:
                self._owner.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Client:
    """Sessions and requests over pooled connections: one HTTP/2 connection per origin.

    Every session and request to an origin shares one HTTP/2 connection
    while the server allows more streams on it (SETTINGS_MAX_CONCURRENT_STREAMS)
    and has not sent GOAWAY; then a new connection is opened.  Over HTTP/1.1
    each session has a connection of its own, and requests reuse idle ones.
    Connections with nothing open are closed once ``idle_timeout`` passed,
    checked whenever the client is used (no timer runs in between).

    ``proxy``: a proxy URL (``http://``, ``https://``, ``socks5://``,
    ``socks5h://``, maybe with ``user:password@``) for every connection,
    ``None`` for none, or left out to follow the environment
    (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, read once
    here: see ``mint.client.proxies``).  Connections are pooled per origin
    *and* proxy.  ``proxy_ssl_context`` is for TLS to an ``https://`` proxy
    (by default it is verified with ``cafile``/``verify``, like the servers).

    ``http3`` (needs ``mint-websocket[http3]``): ``True`` tries HTTP/3
    (RFC 9220) first for every ``https``/``wss`` origin, ``"auto"`` only for
    origins whose ``Alt-Svc`` announced ``h3`` in an earlier answer, ``False``
    (the default) never.  Each attempt is bounded by ``http3_timeout``; when
    it fails (UDP blocked, nothing listening) the session goes over TCP as
    ``http2`` says, and the origin stays on TCP for a few minutes
    (``mint.client.altsvc``).  TLS for QUIC takes ``cafile``/``verify``, not
    ``ssl_context``; no proxy carries it.
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
        protocols_for("https", http2)  # checks the value before any I/O
        self._http3 = check_http3_options(http3, http3_timeout, ssl_context)
        self._http3_timeout = http3_timeout
        #: Origins that announced HTTP/3 (Alt-Svc), and those where it failed lately.
        self._altsvc = AltSvcMemory()
        self._http2 = http2
        self._tls = TLSOptions(ssl_context, cafile, verify, server_hostname)
        self._proxies = client_proxies(proxy)
        self._proxy_ssl_context = proxy_ssl_context
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._window = http2_window_size
        self._lock = threading.Lock()
        self._origin_locks: dict[PoolKey, threading.Lock] = {}
        self._pool: dict[PoolKey, list[SharedConnection]] = {}
        #: Origins whose HTTP/2 server refused extended CONNECT: sessions go straight to HTTP/1.1.
        self._no_extended_connect: set[Origin] = set()
        #: Origins that answered with HTTP/1.1: their dials need not wait for each other.
        self._http1_origins: set[Origin] = set()
        self._closed = False

    # -- sessions ----------------------------------------------------------------------

    def connect(
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
        return self._open_session(target, session, self._http2 if http2 is None else http2)

    def _open_session(
        self,
        target: Target,
        options: SessionOptions,
        http2: HTTP2Preference,
    ) -> Session:
        protocols_for(target.http_scheme, http2)
        timeout = options.open_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        fallback = http2 == "auto" and target.origin in self._no_extended_connect
        while True:
            wanted = ("http1",) if fallback else protocols_for(target.http_scheme, http2)
            shared = self._connection_for(target, wanted, deadline, websocket_session=True)
            if shared.http2 and not shared.conn.extended_connect_enabled and http2 == "auto":
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
                return self._upgrade(shared, target, options, deadline)
            except HTTPError as exc:
                if exc.reason not in ("too_many_streams", "goaway", "closed"):
                    raise
                # The pool's view was stale (another thread took the last stream,
                # or GOAWAY just arrived): try another connection.
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def _upgrade(
        self,
        shared: SharedConnection,
        target: Target,
        options: SessionOptions,
        deadline: float | None,
    ) -> Session:
        with shared.lock:
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
                shared.wait(lambda: response.head_ready, deadline)
            except TransportError as exc:
                self._abandon(shared, ref)
                raise TransportError(
                    f"the WebSocket handshake with {target.host}:{target.port} did not complete"
                    f" within open_timeout={options.open_timeout}s",
                    reason="timeout",
                ) from exc
            self._learn_alt_svc(target, response.headers)
            if response.headers is None or response.status is None:
                # No answer at all.  An answer followed by an end or an error still
                # makes a session: what came with it is delivered, then the end.
                self._abandon(shared, ref)
                if response.error is not None:
                    raise response.error
                raise HTTPError("the server ended the stream before answering", reason="closed")
            now = time.monotonic()
            try:
                state = start_session(shared.conn, ref, response, options, now)
            except (UpgradeFailureError, WebSocketError):
                self._abandon(shared, ref)
                raise
            shared.add_session(state)
            return Session(shared, state, options, response.headers or [])

    def _abandon(self, shared: SharedConnection, ref: http.Ref) -> None:
        shared.routes.remove(ref, time.monotonic())
        if shared.http2 and shared.failure is None:
            with contextlib.suppress(MintError):
                shared.conn.cancel_request(ref)
        elif not shared.http2:
            shared.conn.close()

    # -- requests ----------------------------------------------------------------------

    def request(
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
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            shared = self._connection_for(
                target,
                protocols_for(target.http_scheme, self._http2),
                deadline,
                websocket_session=False,
            )
            try:
                return self._exchange(
                    shared, method, target, list(headers), body, deadline, max_body
                )
            except HTTPError as exc:
                if exc.reason not in ("too_many_streams", "goaway", "closed"):
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def _exchange(
        self,
        shared: SharedConnection,
        method: str,
        target: Target,
        headers: list[tuple[str, str]],
        body: bytes | None,
        deadline: float | None,
        max_body: int | None,
    ) -> Response:
        if target.authorization is not None:
            headers.append(target.authorization)
        with shared.lock:
            if shared.failure is not None:
                raise HTTPError(f"the connection failed: {shared.failure}", reason="closed")
            ref = shared.conn.request(method, target.path, headers, body)
            response = ResponseState(ref, max_body=max_body)
            shared.routes.add(ref, response)
            try:
                shared.wait(lambda: response.finished, deadline)
            except TransportError:
                self._abandon(shared, ref)
                raise
            shared.routes.remove(ref, time.monotonic())
            self._learn_alt_svc(target, response.headers)
            if response.error is not None:
                if response.error.reason == "body_too_large":
                    self._abandon(shared, ref)
                raise response.error
            assert response.status is not None
            return Response(
                response.status, response.headers or [], response.take_body(), shared.conn.version
            )

    # -- the pool ------------------------------------------------------------------------

    def _connection_for(
        self,
        target: Target,
        protocols: tuple[str, ...],
        deadline: float | None,
        *,
        websocket_session: bool,
    ) -> SharedConnection:
        origin = target.origin
        proxy = self._proxies.for_target(target)
        key: PoolKey = (*origin, proxy)
        with self._lock:
            if self._closed:
                raise MintError("the client is closed", reason="closed")
            self._sweep(time.monotonic())
            origin_lock = self._origin_locks.setdefault(key, threading.Lock())
        # One dial per origin at a time: ten threads opening sessions to one
        # HTTP/2 server should share the connection the first one opens.
        # HTTP/1.1 connections are one per session anyway: no need to queue.
        serial = protocols != ("http1",) and origin not in self._http1_origins
        h3_port = self._http3_port(target, proxy, websocket_session)
        with origin_lock if serial or h3_port is not None else contextlib.nullcontext():
            with self._lock:
                candidates = list(self._pool.get(key, []))
            if h3_port is not None:
                # HTTP/3 first: a pooled QUIC connection, else a bounded attempt to
                # open one; TCP (pooled or new) only when that failed.
                found = self._pick_pooled(candidates, ("http3",), websocket_session)
                if found is not None:
                    return found
                quic = self._dial_http3(target, h3_port, deadline)
                if quic is not None:
                    shared = SharedConnection(quic, origin)
                    with self._lock:
                        self._pool.setdefault(key, []).append(shared)
                    return shared
            found = self._pick_pooled(candidates, protocols, websocket_session)
            if found is not None:
                return found
            conn = self._dial(target, protocols, deadline, proxy)
            shared = SharedConnection(conn, origin)
            if not shared.http2:
                shared.routes.idle_since = None  # ours: pooled before our route is added
                if "http2" in protocols:  # the server chose HTTP/1.1, not our fallback
                    self._http1_origins.add(origin)
            with self._lock:
                self._pool.setdefault(key, []).append(shared)
            return shared

    def _pick_pooled(
        self,
        candidates: list[SharedConnection],
        protocols: tuple[str, ...],
        websocket_session: bool,
    ) -> SharedConnection | None:
        for shared in candidates:
            with shared.lock:
                if not shared.http2 and shared.routes.idle_since is None:
                    continue  # claimed by another caller whose route is not added yet
                if shared.routes.idle_since is not None:
                    shared.poll()  # a server that hung up meanwhile fails it here
                if pick([shared], protocols, websocket_session=websocket_session):
                    if not shared.http2:
                        shared.routes.idle_since = None  # claimed before the lock drops
                    return shared
        return None

    def _http3_port(self, target: Target, proxy: str | None, websocket_session: bool) -> int | None:
        """The UDP port to try HTTP/3 on for ``target``, or None to stay on TCP.

        Never through a proxy (HTTP CONNECT and SOCKS5 carry no UDP), nor for
        a session to an origin whose server refused extended CONNECT.
        """
        if proxy is not None:
            return None
        if websocket_session and target.origin in self._no_extended_connect:
            return None
        with self._lock:
            return self._altsvc.http3_port(target.origin, self._http3, time.monotonic())

    def _dial_http3(
        self, target: Target, port: int, deadline: float | None
    ) -> http.Connection | None:
        """One bounded HTTP/3 attempt (``http3_timeout``); None, remembered, when it fails.

        A missing aioquic is the caller's setup, not the network's: raised.
        """
        timeout = self._http3_timeout
        if deadline is not None:
            timeout = min(timeout, max(0.001, deadline - time.monotonic()))
        tls = self._tls
        try:
            return http.connect(
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
            with self._lock:
                self._altsvc.mark_broken(target.origin, time.monotonic())
            return None

    def _learn_alt_svc(self, target: Target, headers: list[tuple[str, str]] | None) -> None:
        if headers:
            with self._lock:
                self._altsvc.learn(target.origin, headers, time.monotonic())

    def _dial(
        self,
        target: Target,
        protocols: tuple[str, ...],
        deadline: float | None,
        proxy: str | None,
    ) -> http.Connection:
        timeout = self._connect_timeout
        if deadline is not None:
            remaining = max(0.001, deadline - time.monotonic())
            timeout = remaining if timeout is None else min(timeout, remaining)
        tls = self._tls
        return http.connect(
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

    def _sweep(self, now: float, idle_timeout: float | None = None) -> None:
        """Drop dead connections and close idle ones (called with the pool lock held)."""
        for key, conns in list(self._pool.items()):
            keep, idle = sweep(
                conns, now, self._idle_timeout if idle_timeout is None else idle_timeout
            )
            for shared in idle:
                shared.close()
            if keep:
                self._pool[key] = keep
            else:
                del self._pool[key]

    def connections(self) -> list[http.Connection]:
        """The open connections in the pool, for inspection (tests, metrics)."""
        with self._lock:
            return [
                shared.conn for conns in self._pool.values() for shared in conns if shared.conn.open
            ]

    def close(self) -> None:
        """Close every connection; open sessions end with ``ConnectionClosedError`` (1001 sent)."""
        with self._lock:
            self._closed = True
            pools, self._pool = self._pool, {}
        for conns in pools.values():
            for shared in conns:
                shared.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Reconnecting:
    """Sessions to one URL, a new one each time: ``for ws in connect(url, reconnect=True)``.

    Failures to connect (refused, timed out, a 5xx, a dropped handshake) are
    retried after a capped exponential backoff with jitter; a refusal that
    retrying cannot fix (a 4xx other than 429, a bad handshake, a bad URL)
    is raised.  The delay starts over after each session that opened.  The
    previous session is closed when the next one is asked for; the one held
    when the loop is left stays the caller's to close (``with ws:`` in the
    loop body), so ``ws = next(iter(...))`` keeps a usable session.
    """

    def __init__(self, open_session: Callable[[], Session], backoff: Backoff) -> None:
        self._open = open_session
        self._backoff = backoff
        self._current: Session | None = None

    def __iter__(self) -> Iterator[Session]:
        while True:
            if self._current is not None:
                self._current.close()
                self._current = None
            delays = self._backoff.delays()
            while True:
                try:
                    self._current = self._open()
                    break
                except MintError as exc:
                    if not retryable(exc):
                        raise
                    delay = next(delays)
                    log.info("connecting failed (%s); retrying in %.2fs", exc, delay)
                    time.sleep(delay)
            yield self._current


def retryable(exc: MintError) -> bool:
    """Whether a failed connect may succeed later: transport trouble, 5xx, 429.

    Not a proxy that refused our credentials (or wants some): asking again
    with the same ones cannot help.
    """
    if isinstance(exc, ProxyError) and exc.reason in PERMANENT_REASONS:
        return False
    if isinstance(exc, UpgradeFailureError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, (TransportError, HTTPError, ConnectionClosedError))


@overload
def connect(
    url: str, *, reconnect: Literal[False] = False, **options: Unpack[ConnectKwargs]
) -> Session: ...
@overload
def connect(
    url: str,
    *,
    reconnect: Literal[True],
    backoff: Backoff | None = None,
    **options: Unpack[ConnectKwargs],
) -> Reconnecting: ...
def connect(
    url: str,
    *,
    reconnect: bool = False,
    backoff: Backoff | None = None,
    **options: Unpack[ConnectKwargs],
) -> Session | Reconnecting:
    """Open one WebSocket session to ``url`` on a connection of its own.

    Takes ``Client``'s connection options and ``Client.connect``'s session
    options.  The session owns its connection: closing it closes the
    connection.  Use ``Client`` to share one HTTP/2 connection among many
    sessions.  ``reconnect=True`` returns an iterator of sessions instead
    (``for ws in connect(url, reconnect=True)``), see ``Reconnecting``.
    """
    if reconnect:
        return reconnecting(url, backoff=backoff, **options)
    client_options, session_kwargs = split_connect_kwargs(options)
    client = Client(idle_timeout=None, **client_options)
    try:
        session = client.connect(url, **session_kwargs)
    except BaseException:
        client.close()
        raise
    with client._lock:
        # An HTTP/2 connection that a fallback to HTTP/1.1 left empty serves nobody here.
        client._sweep(time.monotonic(), idle_timeout=0)
    session._owner = client
    return session


def reconnecting(
    url: str, *, backoff: Backoff | None = None, **options: Unpack[ConnectKwargs]
) -> Reconnecting:
    """Sessions to ``url``, a new one whenever asked: ``for ws in reconnecting(url): ...``.

    See ``Reconnecting`` for what is retried and how long it waits.
    """
    parse_url(url, websocket=True)  # a bad URL fails now, not at the first retry
    return Reconnecting(lambda: connect(url, **options), backoff or Backoff())


__all__ = [
    "Client",
    "Reconnecting",
    "Response",
    "Session",
    "SharedConnection",
    "connect",
    "reconnecting",
]
