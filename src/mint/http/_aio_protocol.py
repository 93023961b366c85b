"""The asyncio protocol under ``AsyncConnection``: bytes kept for the caller, write back-pressure.

Why not ``asyncio.StreamReader``: it copies every chunk the transport hands
over into its own buffer and again out of it, and with its default 64 KiB
limit it pauses and resumes the transport around every large read (two
``epoll_ctl`` calls each time).  Here the transport's own ``bytes`` objects
are kept as they came and handed over whole, and reading pauses only once
``PAUSE_READING_AT`` bytes wait for a caller that does not read.

Process-less still: this protocol only keeps bytes and wakes the coroutine
waiting for them.  The HTTP core is fed inside the caller's calls, never
from an event-loop callback.
"""

from __future__ import annotations

import asyncio

#: How far apart two wake-up times may be and still share one timer handle
#: (``wake_after``): a wake-up this much early or late only costs one more look.
ALARM_SLACK = 0.001

#: Bytes kept unread before the transport stops reading the socket: the
#: server then sees a full TCP window (HTTP/1.1 backpressure).  Four of the
#: selector transport's 256 KiB reads, so a 1 MiB message never pauses it.
PAUSE_READING_AT = 1024 * 1024


class ReceiveProtocol(asyncio.Protocol):
    """Keeps what the event loop read until ``take`` and says when writing may go on."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._reading_paused = False
        #: The peer ended its side (EOF), or the connection was lost.
        self.eof = False
        #: Bytes wait to be taken, or the end does: ``take`` would not wait.
        #: (A plain attribute kept in step, not a property: it is asked twice per read.)
        self.buffered = False
        #: Why the connection was lost, when it was not a clean close.
        self.error: BaseException | None = None
        self.lost = False
        #: The future ``readable`` hands out, done by the next read (or the end):
        #: an attribute, so the shell's per-read path can reuse it without a call.
        self.data_waiter: asyncio.Future[None] | None = None
        #: The transport's buffer is above its high-water mark: ``drain`` would wait.
        self.writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed: asyncio.Future[None] = loop.create_future()
        #: The timer ``wake_after`` keeps armed (None: none is), for later waits to reuse.
        self.alarm: asyncio.TimerHandle | None = None

    # -- what the event loop calls --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        self.buffered = True
        waiter = self.data_waiter  # ``_wake_reader``, inline: this runs per read
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._size >= PAUSE_READING_AT and not self._reading_paused:
            assert self.transport is not None
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self.eof = self.buffered = True
        self._wake_reader()
        return None  # the transport closes itself; nothing more can be sent either

    def connection_lost(self, exc: Exception | None) -> None:
        if self.alarm is not None:
            self.alarm.cancel()
            self.alarm = None
        self.lost = self.eof = self.buffered = True
        self.error = exc
        self._wake_reader()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(
                    ConnectionResetError("the connection was lost") if exc is None else exc
                )
        self._drain_waiters.clear()
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # -- what AsyncConnection calls ------------------------------------------------

    def take(self) -> bytes:
        """Everything read so far (``b""``: nothing, at the end); never waits.

        Bytes read before the connection broke come first: the error is for
        ``error`` and the next call, once they are taken.
        """
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._size = 0
        self.buffered = self.eof
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def readable(self) -> asyncio.Future[None]:
        """A future done once ``buffered`` holds, or ``wake_after``'s alarm rang: look again.

        Awaited directly, one frame less per wake-up.  The alarm may be one
        set for an earlier wait, so a caller without a deadline loops until
        ``buffered``.

        Cancelling it (a timeout around it) is safe: the next call makes a new one.
        """
        waiter = self.data_waiter
        if waiter is None or waiter.done():
            waiter = self.data_waiter = self.loop.create_future()
            if self.buffered:
                waiter.set_result(None)
        return waiter

    def wake_after(self, delay: float) -> None:
        """Have the waiting reader woken after ``delay`` seconds even if nothing arrives.

        The reader then finds ``buffered`` false: its time is up.  One timer
        handle is kept and reused while the moment asked for stays the same
        (within ``ALARM_SLACK``), as a session's keepalive wake-up does for a
        whole ping interval while messages flow: arming and cancelling a
        timer (or an ``asyncio.timeout`` scope) around every wait cost more
        than the rest of a 32-byte round trip.  A handle that fires with
        nobody waiting does nothing, so nothing happens outside the caller's
        calls; the handle goes with the connection (``connection_lost``).
        """
        when = self.loop.time() + delay
        alarm = self.alarm
        if alarm is not None:
            if abs(alarm.when() - when) <= ALARM_SLACK:
                return
            alarm.cancel()
        self.alarm = self.loop.call_at(when, self._ring)

    def drop_alarm(self) -> None:
        """A wait without deadline starts: the alarm an earlier wait left is not needed.

        Left armed, it would make the event loop look at its clock and its
        timer heap on every turn until it rang (a ``connect`` timeout's
        alarm, seconds away, over thousands of round trips).
        """
        alarm = self.alarm
        if alarm is not None:
            self.alarm = None
            alarm.cancel()

    def _ring(self) -> None:
        self.alarm = None
        self._wake_reader()

    async def drain(self) -> None:
        """Return once the transport's write buffer fell below its high-water mark."""
        if self.lost:
            if self.error is not None:
                raise self.error
            raise ConnectionResetError("the connection was lost")
        if not self.writing_paused:
            return
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._drain_waiters:
                self._drain_waiters.remove(waiter)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def _wake_reader(self) -> None:
        waiter = self.data_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
