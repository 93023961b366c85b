"""Lines from standard input for the event loop, whatever standard input is.

stdin may be a terminal, a pipe, a socket, a regular file or /dev/null, and
no single asyncio mechanism covers them all: epoll refuses regular files
and /dev/null, and ``connect_read_pipe`` switches the descriptor to
non-blocking mode, a flag shared with every process holding the same open
file (the user's shell, for a terminal), which a crash or a kill would leave
behind.  So one daemon thread does plain blocking ``os.read`` calls, and
only when the loop asks for the next chunk: input is never read further
ahead than what is being sent, so a slow server slows the reading down
instead of filling memory.

``os.read`` on the raw descriptor, not ``sys.stdin.buffer``: a daemon thread
blocked inside a buffered reader holds its lock, and Python's shutdown then
aborts with "could not acquire lock ... at interpreter shutdown".  The
thread is a daemon because a blocking read cannot be interrupted: at exit
it is simply abandoned.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import AsyncIterator

_CHUNK = 64 * 1024


def _settle(future: asyncio.Future[bytes], data: bytes) -> None:
    if not future.done():  # the reader may have been cancelled meanwhile
        future.set_result(data)


class ChunkReader:
    """Chunks of a file descriptor, read by a thread on demand; ``b""`` at the end."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._requests: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[bytes]]]
        self._requests = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._at_end = False

    async def read(self) -> bytes:
        if self._at_end:
            return b""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mint-cli-stdin", daemon=True)
            self._thread.start()
        self._requests.put((loop, future))
        data = await future
        if not data:
            self._at_end = True
        return data

    def _run(self) -> None:
        while True:
            loop, future = self._requests.get()
            try:
                data = os.read(self._fd, _CHUNK)
            except OSError:
                data = b""  # a closed or unreadable stdin is no input at all
            try:
                loop.call_soon_threadsafe(_settle, future, data)
            except RuntimeError:
                return  # the loop is closed: the program is ending
            if not data:
                return


async def lines(reader: ChunkReader) -> AsyncIterator[bytes]:
    """Each line without its line ending (``\\n`` or ``\\r\\n``); a last unterminated one too."""
    partial: list[bytes] = []  # a line's pieces so far: a long line costs no re-scanning
    while chunk := await reader.read():
        *complete, rest = chunk.split(b"\n")
        if complete:
            complete[0] = b"".join([*partial, complete[0]])
            partial = []
            for line in complete:
                yield line.removesuffix(b"\r")
        if rest:
            partial.append(rest)
    if partial:
        yield b"".join(partial).removesuffix(b"\r")


__all__ = ["ChunkReader", "lines"]
