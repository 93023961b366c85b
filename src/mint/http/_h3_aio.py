"""The asyncio HTTP/3 shell: an asyncio datagram endpoint around ``HTTP3Core``.

The blocking HTTP/3 shell's logic (see ``_h3_transport``), awaited.  The
datagram protocol only keeps what the event loop read until the caller
takes it; the core is fed inside the caller's calls.  QUIC's deadlines are
honoured while the caller awaits ``recv``: each wait lasts until the
earlier of the caller's timeout and the core's next deadline (a timer armed
inside that await and gone when it returns); when neither exists no timer
is armed at all.  Nothing is scheduled between calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Coroutine, Sequence
from typing import Any

from mint.errors import MintError, TransportError
from mint.http._h3_transport import enlarge_buffers, make_http3_core
from mint.http._setup import ConnectionFacts, ConnectPlan, transport_error
from mint.http.aio import AsyncConnection, _within
from mint.http.events import Body, Chunk, Event, Ref
from mint.http.http3 import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_DATAGRAM_SIZE, HTTP3Core

_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)
_CLOSE_TIMEOUT = 5.0


class DatagramReceiver(asyncio.DatagramProtocol):
    """Keeps received datagrams, in order, until the connection takes them.

    Unbounded in principle, bounded in practice by QUIC: the server may send
    no more than the receive windows we granted, plus retransmissions.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.datagrams: list[bytes] = []
        self.error: Exception | None = None
        self.lost = False
        self._waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] = loop.create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append(data)
        self._wake()

    def error_received(self, exc: Exception) -> None:
        self.error = exc
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self._closed.done():
            self._closed.set_result(None)
        self._wake()

    @property
    def ready(self) -> bool:
        return bool(self.datagrams) or self.error is not None or self.lost

    async def readable(self) -> None:
        if self.ready:
            return
        waiter = self._waiter = self.loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def take(self) -> list[bytes]:
        datagrams, self.datagrams = self.datagrams, []
        return datagrams

    async def wait_closed(self) -> None:
        await self._closed

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class AsyncUDPConnection(AsyncConnection):
    """One HTTP/3 connection for asyncio; an ``AsyncConnection`` to its callers.

    It overrides every public method (none of the TCP machinery is set up),
    so ``mint.websocket.upgrade``/``new`` and code typed for
    ``AsyncConnection`` work unchanged.
    """

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        receiver: DatagramReceiver,
        core: HTTP3Core,
        *,
        scheme: str,
        host: str,
        port: int,
        peer: tuple[object, ...],
    ) -> None:
        # Not AsyncConnection.__init__: it expects a stream transport.
        ConnectionFacts.__init__(
            self, core, scheme=scheme, host=host, port=port, alpn_protocol="h3"
        )
        self._udp = transport
        self._receiver = receiver
        self._h3 = core
        self._peer = peer
        self._pending: list[Event] = []
        self._closed = False
        self._receiving = False

    @property
    def transport(self) -> asyncio.Transport:
        """The datagram transport (typed as its base for the parent's sake)."""
        return self._udp  # type: ignore[return-value]

    @property
    def open(self) -> bool:
        return not self._closed and self._h3.open

    def next_deadline(self) -> float | None:
        """When (``loop.time()``) the core needs ``recv_once`` or ``stream`` to be called."""
        return self._h3.next_deadline()

    # -- requests ----------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: Body = None,
        *,
        protocol: str | None = None,
    ) -> Ref:
        self._check_open()
        ref = self._h3.request(method, path, headers, body, protocol=protocol)
        self._transmit()
        return ref

    async def stream_request_body(
        self, ref: Ref, chunk: Chunk, *, end_stream: bool = False
    ) -> None:
        """Hand bytes to QUIC; what congestion control holds back leaves from later reads."""
        self.stream_request_body_nowait(ref, chunk, end_stream=end_stream)

    def stream_request_body_nowait(
        self, ref: Ref, chunk: Chunk, *, end_stream: bool = False
    ) -> bool:
        """Never asks for a drain: datagrams are sent or dropped, never queued in the transport."""
        self._check_open()
        self._h3.stream_request_body(ref, chunk, end_stream=end_stream)
        self._transmit()
        return False

    def cancel_request(self, ref: Ref) -> None:
        self._check_open()
        self._h3.cancel_request(ref)
        self._transmit()

    async def drain(self) -> None:
        """Nothing to wait for: UDP has no write buffer worth waiting on (QUIC paces itself)."""
        self._check_open()

    def ping(self) -> Ref:
        self._check_open()
        ref = self._h3.ping()
        self._transmit()
        return ref

    def pause_stream(self, ref: Ref) -> None:
        self._h3.pause_stream(ref)

    def resume_stream(self, ref: Ref) -> None:
        self._h3.resume_stream(ref)
        self._transmit()  # the credit the server has been waiting for

    # -- responses -----------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Coroutine[Any, Any, list[Event]]:
        return self._receive(timeout, until_event=True)

    def recv_once(self, timeout: float | None = None) -> Coroutine[Any, Any, list[Event]]:
        return self._receive(timeout, until_event=False)

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
            loop = self._receiver.loop
            deadline = None if timeout is None else loop.time() + timeout
            while True:
                events, read = await self._pump(deadline)
                if events or (read and not until_event):
                    return events
                if not self._h3.open:
                    self._close_transport()
                    raise self._ended()
                if deadline is not None and loop.time() >= deadline:
                    raise TransportError("no response event before the timeout", reason="timeout")
        finally:
            self._receiving = False

    async def stream(self, data: bytes) -> list[Event]:
        """Feed one datagram read by other means (``b""``: none, just honour deadlines)."""
        self._check_open()
        events, self._pending = self._pending, []
        now = self._receiver.loop.time()
        if data:
            events.extend(self._h3.receive_datagram(data, self._peer, now))
        events.extend(self._h3.handle_deadline(now))
        self._transmit()
        return events

    # -- closing ---------------------------------------------------------------

    async def close(self) -> None:
        """Send CONNECTION_CLOSE (best effort) and close the endpoint; idempotent."""
        if not self._closed:
            try:
                self._h3.close()
                self._transmit()
            except (OSError, MintError):
                pass
            self._close_transport()
        with contextlib.suppress(OSError, *_TIMEOUTS):
            await _within(self._receiver.wait_closed(), _CLOSE_TIMEOUT)

    async def __aenter__(self) -> AsyncUDPConnection:
        return self

    # -- internals -------------------------------------------------------------

    async def _handshake(self, deadline: float | None) -> None:
        """Run the QUIC handshake until the server's HTTP/3 SETTINGS arrived (bounded)."""
        loop = self._receiver.loop
        try:
            self._transmit()
            while not self._h3.remote_settings_received:
                if not self._h3.open:
                    raise self._ended()
                if deadline is not None and loop.time() >= deadline:
                    raise TransportError(
                        "no HTTP/3 answer before the timeout (is UDP blocked?)", reason="timeout"
                    )
                events, _ = await self._pump(deadline)
                self._pending.extend(events)
        except BaseException:
            await self.close()
            raise

    async def _pump(self, deadline: float | None) -> tuple[list[Event], bool]:
        """One wait (datagram, core deadline or ``deadline``); the events and whether any came."""
        receiver = self._receiver
        loop = receiver.loop
        if not receiver.ready:
            wake = self._h3.next_deadline()
            if deadline is not None and (wake is None or deadline < wake):
                wake = deadline
            if wake is None:
                await receiver.readable()
            else:
                remaining = wake - loop.time()
                if remaining > 0:
                    with contextlib.suppress(*_TIMEOUTS):
                        await _within(receiver.readable(), remaining)
                else:
                    await asyncio.sleep(0)
        core, peer = self._h3, self._peer
        # Deadlines passed while the caller was away come before the datagrams
        # that waited meanwhile (see the blocking shell's ``_pump``).
        events = core.handle_deadline(loop.time())
        datagrams = receiver.take()
        for data in datagrams:
            events.extend(core.receive_datagram(data, peer, loop.time()))
        error = receiver.error
        if error is not None and not isinstance(error, ConnectionRefusedError | BlockingIOError):
            events.extend(core.receive_data(b""))
            self._close_transport()
            raise transport_error(error, "reading from the server") from error
        if error is not None:
            receiver.error = None
            if not core.handshake_complete and isinstance(error, ConnectionRefusedError):
                # Nobody listens on that UDP port: as good an answer as QUIC will get.
                self._close_transport()
                raise transport_error(error, "reading from the server") from error
        if receiver.lost and not self._closed:
            # The endpoint went away under us (not by our close): nothing more can come.
            events.extend(core.receive_data(b""))
            self._close_transport()
            if not events:
                raise TransportError("the UDP endpoint was lost", reason="closed")
            return events, bool(datagrams)
        events.extend(core.handle_deadline(loop.time()))
        self._transmit()
        return events, bool(datagrams)

    def _transmit(self) -> None:
        if self._closed:
            return
        transport = self._udp
        for data, _ in self._h3.datagrams_to_send(self._receiver.loop.time()):
            transport.sendto(data)

    def _ended(self) -> MintError:
        failure = self._h3.failure
        if failure is None:
            return TransportError("the connection is closed", reason="closed")
        copy = type(failure)(str(failure), reason=failure.reason)
        copy.__cause__ = failure
        return copy

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("the connection is closed", reason="closed")

    def _close_transport(self) -> None:
        if not self._closed:
            self._closed = True
            self._udp.close()


async def connect_http3(
    plan: ConnectPlan,
    *,
    timeout: float | None,
    verify: bool,
    server_hostname: str | None,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
) -> AsyncUDPConnection:
    """``mint.http.aio.connect`` for ``protocols=("http3",)``: handshake and SETTINGS, bounded."""

    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    core = make_http3_core(
        plan,
        verify=verify,
        server_hostname=server_hostname,
        idle_timeout=DEFAULT_IDLE_TIMEOUT,
        max_datagram_size=max_datagram_size,
    )
    try:
        infos = await loop.getaddrinfo(plan.host, plan.port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise transport_error(exc, f"resolving {plan.host}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        enlarge_buffers(sock)
        sock.connect(address)
        peer: tuple[object, ...] = sock.getpeername()
    except OSError as exc:
        sock.close()
        raise transport_error(exc, f"connecting to {plan.host}:{plan.port}") from exc
    receiver = DatagramReceiver(loop)
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: receiver, sock=sock)
    except BaseException:
        sock.close()
        raise
    core.start(peer, loop.time())
    conn = AsyncUDPConnection(
        transport, receiver, core, scheme=plan.scheme, host=plan.host, port=plan.port, peer=peer
    )
    await conn._handshake(deadline)
    return conn


__all__ = ["AsyncUDPConnection", "DatagramReceiver", "connect_http3"]
