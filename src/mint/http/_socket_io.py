"""Reads and writes on a non-blocking socket, waiting only when the kernel says to.

The blocking shell used to give the socket a timeout before every read and
write.  CPython then spends three system calls where one usually does: the
``settimeout`` itself (an ``ioctl``), a ``poll`` before every ``recv`` and
``send``, and the call.  On an HTTP/2 connection a 1 MiB upload waits for
about 32 WINDOW_UPDATEs and makes some 80 reads and 30 writes, so that was
a tenth of the client's CPU.  Here the socket stays non-blocking: a read or
write is tried first, and ``poll`` runs only when the socket had nothing to
give or no room to take.

A read that came back short emptied the socket's buffer, so the next read
waits in ``poll`` before trying: trying first would almost always fail and
cost a system call and an exception.  That is once per round trip for small
messages and once per WINDOW_UPDATE for an HTTP/2 upload held back by the
server's windows.  (Over TLS, "short" means less than a full record: an
``SSLSocket`` read never returns more than one, whatever is waiting behind it.)

A TLS read that filled a record goes on to take the records already waiting,
up to the size asked for (64 KiB at most), without waiting for more.  A 1 MiB
message is 64 records; returned one per call, each would cost the caller a
trip through the protocol core and its own loop.

The caller still sees blocking calls bounded by a deadline; running out of
time raises ``TimeoutError``, every other failure is the socket's own
``OSError`` (or ``ssl.SSLError``).
"""

from __future__ import annotations

import math
import select
import socket
import ssl
import time

from mint.http._proxy_socket import TunneledTLSSocket

#: Reads start at this size, grow while they come back full, and fall back
#: once they come back small: a 1 MiB message then costs a few reads, while a
#: stream of small messages never pays for allocating a large buffer.
READ_SIZE = 64 * 1024
MAX_READ_SIZE = 256 * 1024

#: The most an ``SSLSocket`` read returns: one record's plaintext (RFC 8446
#: section 5.1), however many more records wait in the socket.
_TLS_RECORD = 16 * 1024

#: The largest buffer a TLS read gathers into or a TLS write is staged through.
#: Larger ones are fresh buffers that glibc takes from (and gives back to) the
#: kernel, and filling one page-faults on every page: gathering 256 KiB cost
#: some 320 minor faults per MiB read, joining a 1 MiB write 256.
_TLS_BUFFER = 64 * 1024

#: Below this many bytes a join and ``send`` beat ``sendmsg``'s per-buffer setup.
_GATHER_FROM = 64 * 1024

#: Buffers per sendmsg call, under every system's IOV_MAX (1024 on Linux).
_MAX_BUFFERS = 512

_POLLIN = getattr(select, "POLLIN", 1)
_POLLOUT = getattr(select, "POLLOUT", 4)


class NonBlockingSocket:
    """A socket (plain or TLS) put in non-blocking mode, with deadline-bounded I/O.

    TLS needs no special case for decrypted bytes buffered inside the
    ``SSLSocket``: a non-blocking ``recv`` returns them at once.  Both ways
    round, TLS may need the other direction first (``SSLWantWriteError`` on a
    read, ``SSLWantReadError`` on a write); waiting for that direction and
    retrying the same call is what OpenSSL asks for.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._poller = select.poll() if hasattr(select, "poll") else None
        self._registered = 0
        self._read_size = READ_SIZE
        #: The last read came back short: the kernel had nothing more then.
        self._drained = False
        # TLS inside a proxy's TLS (``TunneledTLSSocket``) reads and writes as an SSLSocket does.
        self._tls: ssl.SSLSocket | TunneledTLSSocket | None = (
            sock if isinstance(sock, (ssl.SSLSocket, TunneledTLSSocket)) else None
        )
        self._gather = hasattr(sock, "sendmsg") and self._tls is None
        #: What the next ``recv`` reports before reading: the EOF (``b""``) or
        #: error that ended a gathering of TLS records, held back so that the
        #: records before it are returned first.
        self._held_back: bytes | OSError | None = None

    def read(self, deadline: float | None) -> bytes:
        """``recv`` with a size that follows the traffic (see ``READ_SIZE``)."""
        size = self._read_size
        data = self.recv(size, deadline)
        if len(data) == size:
            if size < MAX_READ_SIZE:
                self._read_size = size * 4
        elif size > READ_SIZE and len(data) < size // 16:
            self._read_size = READ_SIZE
        return data

    def recv(self, size: int, deadline: float | None) -> bytes:
        """Return the bytes that are there (waiting for some until ``deadline``); ``b""`` on EOF.

        A spent deadline still allows one read of what already arrived, so
        ``deadline=time.monotonic()`` is a poll.
        """
        if self._held_back is not None:
            held, self._held_back = self._held_back, None
            if isinstance(held, OSError):
                raise held
            return held
        if self._drained and not self._decrypted_waiting():
            self._wait_first(deadline)
        # Over TLS one read returns one record at most: asking for more would
        # only allocate a larger buffer to shrink afterwards.
        first_size = size if self._tls is None else min(size, _TLS_RECORD)
        while True:
            try:
                data = self.sock.recv(first_size)
            except (BlockingIOError, ssl.SSLWantReadError):
                self._wait(_POLLIN, deadline)
            except ssl.SSLWantWriteError:
                self._wait(_POLLOUT, deadline)
            else:
                if self._tls is not None and len(data) == _TLS_RECORD < size:
                    return self._add_waiting_records(data, min(size, _TLS_BUFFER))
                self._drained = len(data) < first_size
                return data

    def _add_waiting_records(self, first: bytes, size: int) -> bytes:
        """``first`` (a full TLS record) and the records already here after it, up to ``size``.

        Never waits: gathering stops at the first short record (the socket
        was empty then), at a read that would block, or at ``size``.  An EOF
        or error met on the way is held back for the next ``recv``; the
        records before it are the caller's first.
        """
        pieces = [first]
        total = len(first)
        drained = False
        while total < size:
            wanted = min(_TLS_RECORD, size - total)
            try:
                piece = self.sock.recv(wanted)
            except (BlockingIOError, ssl.SSLWantReadError):
                drained = True
                break
            except ssl.SSLWantWriteError:
                break  # the next recv waits for that, as it would have anyway
            except OSError as exc:
                self._held_back = exc
                break
            if not piece:
                self._held_back = b""
                break
            pieces.append(piece)
            total += len(piece)
            if len(piece) < wanted:
                drained = True
                break
        self._drained = drained
        return b"".join(pieces)

    def _decrypted_waiting(self) -> bool:
        """TLS bytes already decrypted inside the ``SSLSocket``: poll cannot see them.

        A short read ends a record, so this should not happen after one; it is
        checked because waiting on bytes that are already here would hang.
        """
        return self._tls is not None and self._tls.pending() > 0

    def _wait_first(self, deadline: float | None) -> None:
        """Wait for bytes before reading, except with a spent deadline (then just read)."""
        if deadline is not None and deadline <= time.monotonic():
            return
        self._wait(_POLLIN, deadline)

    def send_all(self, data: bytes | memoryview, deadline: float | None) -> None:
        """Write all of ``data`` by ``deadline``; a ``TimeoutError`` may leave part written."""
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            sent = 0  # tried again below, where the waiting is
        if sent == len(data):
            return  # the usual case: the socket took it all at once
        view = memoryview(data)[sent:]
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, ssl.SSLWantWriteError):
                self._wait(_POLLOUT, deadline)
                continue
            except ssl.SSLWantReadError:
                self._wait(_POLLIN, deadline)
                continue
            view = view[sent:]

    def send_buffers(self, buffers: list[bytes | memoryview], deadline: float | None) -> None:
        """Write ``buffers`` in order, as one stream of bytes, by ``deadline``.

        Over plain TCP, large writes go out with ``sendmsg`` (gather write: the
        kernel reads each piece where it lies, no join).  TLS has no gather
        write, and a TLS record per small piece would cost more than a copy:
        small writes are joined, large ones copied through a stage.
        """
        if len(buffers) == 1:
            self.send_all(buffers[0], deadline)
            return
        total = sum(map(len, buffers))
        if self._tls is not None and total > _TLS_BUFFER:
            self._send_staged(buffers, deadline)
            return
        if not self._gather or total < _GATHER_FROM:
            self.send_all(b"".join(buffers), deadline)
            return
        views = [memoryview(buffer) for buffer in buffers]
        first = 0
        while True:
            batch = views[first : first + _MAX_BUFFERS]
            try:
                sent = self.sock.sendmsg(batch)
            except BlockingIOError:
                self._wait(_POLLOUT, deadline)
                continue
            if sent == sum(map(len, batch)):  # the usual case: all of it
                first += len(batch)
                if first >= len(views):
                    return
                continue
            for view in batch:  # a partial write: drop what went, cut the piece it ended in
                if sent < len(view):
                    views[first] = view[sent:]
                    break
                sent -= len(view)
                first += 1

    def _send_staged(self, buffers: list[bytes | memoryview], deadline: float | None) -> None:
        """Write ``buffers`` over TLS by copying them through a 64 KiB stage.

        Joining them would make a fresh buffer as large as the write (see
        ``_TLS_BUFFER``).  Being written only when full, the stage still makes
        whole TLS records.
        """
        stage = memoryview(bytearray(_TLS_BUFFER))
        filled = 0
        for buffer in buffers:
            piece = memoryview(buffer).cast("B")
            while piece:
                taken = min(len(piece), _TLS_BUFFER - filled)
                stage[filled : filled + taken] = piece[:taken]
                filled += taken
                piece = piece[taken:]
                if filled == _TLS_BUFFER:
                    self.send_all(stage, deadline)
                    filled = 0
        if filled:
            self.send_all(stage[:filled], deadline)

    def _wait(self, events: int, deadline: float | None) -> None:
        """Block until the socket is ready for ``events`` (or failed), or raise ``TimeoutError``.

        An error or hang-up counts as ready: the retried call reports it.
        """
        timeout: float | None = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError("timed out")
        if self._poller is None:  # Windows: no poll()
            wanted = [self.sock]
            readable, writable, failed = select.select(
                wanted if events == _POLLIN else [],
                wanted if events == _POLLOUT else [],
                wanted,
                timeout,
            )
            if not (readable or writable or failed):
                raise TimeoutError("timed out")
            return
        if self._registered != events:
            if self._registered:
                self._poller.modify(self.sock, events)
            else:
                self._poller.register(self.sock, events)
            self._registered = events
        # poll() counts whole milliseconds: round up, or a wait just short of
        # the deadline would spin with a zero timeout.
        milliseconds = None if timeout is None else max(1, math.ceil(timeout * 1000))
        if not self._poller.poll(milliseconds):
            raise TimeoutError("timed out")
