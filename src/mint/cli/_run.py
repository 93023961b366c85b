"""The conversation: stdin lines out, messages in, until a close, the end of input or a signal.

Three things run at once on the session, as asyncio tasks: a receiver that
sits in ``Session.recv`` (which is also what answers the server's pings and
sends keepalive pings: mint does that only inside a call, and this call
never ends while the session is open), a sender that turns input lines into
messages, and a watch on SIGINT/SIGTERM.  Whichever finishes first decides:

* the server closed: the sender is dropped, the exit code follows the close;
* the input ended: our Close (1000) goes out and the receiver keeps printing
  until the server's Close, bounded by ``--close-timeout``;
* a signal: the same close, then exit 128 + signal; a second signal stops
  waiting for the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from mint.cli._args import Options
from mint.cli._output import Output, Reporter
from mint.cli._stdin import ChunkReader, lines
from mint.client import aio
from mint.errors import ConnectionClosed, ConnectionClosedOK

T = TypeVar("T")

#: What ``run`` returns when the session ended normally, from either side.
EXIT_OK = 0
EXIT_FAILED = 1


class InputError(Exception):
    """A line that cannot be sent as asked: a text message must be UTF-8."""


class Stops:
    """SIGINT and SIGTERM, counted, for the loop to await instead of KeyboardInterrupt.

    A KeyboardInterrupt could land anywhere, in the middle of a frame write
    even; a signal turned into a counter is looked at only where stopping is
    safe.  Where the loop cannot install handlers (Windows, a thread other
    than the main one) Ctrl-C stays a KeyboardInterrupt, caught by ``main``.
    """

    def __init__(self) -> None:
        self.count = 0
        self.signum: int | None = None
        self._changed = asyncio.Event()
        self._installed: list[signal.Signals] = []

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._installed.append(signum)

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in self._installed:
            loop.remove_signal_handler(signum)
        self._installed.clear()

    def _on_signal(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self.count += 1
        self._changed.set()

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    async def wait(self, count: int) -> None:
        """Return once ``count`` signals have arrived in all."""
        while self.count < count:
            self._changed.clear()
            await self._changed.wait()


#: How long a cancelled task gets before it is cancelled again.
_RECANCEL = 0.05


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    """Cancel ``tasks`` and wait until they are done, cancelling again if a cancel was lost.

    A cancel can be lost on its way: ``asyncio.wait_for`` before Python 3.12
    returns its inner result instead of raising when the cancel lands just
    as the inner task finishes (mint's asyncio dial uses it), and the task
    then goes on to its next wait as if nothing had happened.  Asking again
    reaches it there.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECANCEL)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # looked at: no "exception was never retrieved" at exit


async def unless_stopped(
    awaitable: Awaitable[T], stops: Stops, count: int
) -> tuple[bool, T | None]:
    """``(True, result)`` of ``awaitable``, or ``(False, None)`` if signal ``count`` came first."""
    work: asyncio.Task[T] = asyncio.ensure_future(awaitable)
    watch = asyncio.ensure_future(stops.wait(count))
    try:
        await asyncio.wait({work, watch}, return_when=FIRST_COMPLETED)
    finally:
        await _cancel(work, watch)
    if work.cancelled() or (stops.count >= count and work.exception() is not None):
        return False, None  # an error then is most likely the interruption's doing
    return True, work.result()


async def _receive(ws: aio.Session, output: Output, reporter: Reporter) -> None:
    """Print every message until a normal close; an abnormal one raises."""
    while True:
        try:
            message = await ws.recv()
        except ConnectionClosedOK:
            return
        path = output.message(message)
        if path is not None:
            reporter.info(f"binary message of {len(message)} bytes written to {path}")


async def _send(ws: aio.Session, lines: AsyncIterator[bytes], binary: bool) -> None:
    number = 0
    async for line in lines:
        number += 1
        if binary:
            await ws.send(line)
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                f"input line {number} is not UTF-8, which a text message must be "
                "(--binary sends lines as binary messages)"
            ) from None
        await ws.send(text)


async def converse(
    ws: aio.Session,
    lines: AsyncIterator[bytes],
    options: Options,
    output: Output,
    reporter: Reporter,
    stops: Stops,
) -> int:
    """The session from open to closed; the exit code."""
    receiver = asyncio.ensure_future(_receive(ws, output, reporter))
    sender = asyncio.ensure_future(_send(ws, lines, options.send_binary))
    watch = asyncio.ensure_future(stops.wait(1))
    try:
        await asyncio.wait({receiver, sender, watch}, return_when=FIRST_COMPLETED)
        # The count, not ``watch.done()``: a signal may have come since, its task not yet run.
        if not receiver.done() and not stops.count:
            # The input ended, or a line could not be sent; the session may still be open.
            failure = sender.exception()
            if isinstance(failure, ConnectionClosed):
                await receiver  # the session is over: the receiver has the reason
                return EXIT_OK
            if failure is None and options.linger > 0:
                # Replies to the last lines may still be on their way: a Close sent
                # now could cross them, and servers drop what they send after it.
                linger = None if options.linger == math.inf else options.linger
                await asyncio.wait({receiver, watch}, timeout=linger, return_when=FIRST_COMPLETED)
            if not receiver.done() and not stops.count:
                finished, _ = await unless_stopped(ws.close(), stops, 1)
                if finished:
                    await receiver  # the rest of the messages; an abnormal close raises
                    if failure is not None:
                        raise failure
                    return EXIT_OK
        if stops.count and not receiver.done():
            await _cancel(sender)
            finished, _ = await unless_stopped(ws.close(), stops, 2)
            if finished:
                with contextlib.suppress(Exception):
                    await receiver  # prints what came before the close; the signal decides
            return stops.exit_code
        await receiver  # the server closed: an abnormal close raises here
        return EXIT_OK
    finally:
        await _cancel(receiver, sender, watch)
        reporter.closed(ws)


async def run(options: Options, output: Output, reporter: Reporter) -> int:
    """Connect, converse, close; the exit code.  Failures of mint raise ``MintError``."""
    loop = asyncio.get_running_loop()
    stops = Stops()
    stops.install(loop)
    try:
        connected, ws = await unless_stopped(_open(options.url, options), stops, 1)
        if not connected or ws is None:
            return stops.exit_code
        try:
            reporter.connected(ws, options.url)
            return await converse(ws, lines(ChunkReader(0)), options, output, reporter, stops)
        finally:
            if stops.count < 2:
                with contextlib.suppress(Exception):
                    await ws.close()  # idempotent; lets go of the connection
    except InputError as exc:
        reporter.error(str(exc))
        return EXIT_FAILED
    finally:
        stops.uninstall(loop)


async def _open(url: str, options: Options) -> aio.Session:
    return await aio.connect(url, **options.connect_kwargs())


__all__ = ["EXIT_FAILED", "EXIT_OK", "InputError", "Stops", "converse", "run"]
