"""What the HTTP/2 core remembers about one request stream, including its send queue.

The send queue is why a caller never has to watch flow-control windows: a write
that does not fit is kept here, in order, and the core drains it whenever a
WINDOW_UPDATE (or a larger SETTINGS_INITIAL_WINDOW_SIZE) opens room.
Chunks are kept as memoryviews so that draining a 16 MiB write frame by frame
never copies the remainder over and over.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from mint.http.events import Ref


@dataclass(eq=False, slots=True)
class StreamState:
    ref: Ref
    stream_id: int
    #: RFC 8441 extended CONNECT: a 2xx answer turns the stream into a tunnel.
    extended_connect: bool = False
    #: Request body bytes waiting for flow-control window, oldest first.
    pending: deque[memoryview] = field(default_factory=deque)
    pending_bytes: int = 0
    #: The caller ended the body (EOF); END_STREAM goes out once ``pending`` is empty.
    eof_queued: bool = False
    #: END_STREAM has been sent: our half of the stream is closed.
    local_ended: bool = False
    #: Done or Error was handed to the caller: the response is over.
    response_finished: bool = False
    status: int | None = None
    #: Extended CONNECT answered with a non-2xx status: no tunnel, nothing to send.
    refused: bool = False
    #: The final response head arrived without content-length: plain DATA frames
    #: may bypass h2 (h2 would only count them; see ``mint.http._h2_data``).
    data_fast_path: bool = False
    #: Bytes we may send before the server's next WINDOW_UPDATE for this stream
    #: (RFC 9113 section 6.9); the core, not h2, keeps the send windows.
    send_window: int = 0
    #: Stream credit owed to the server that h2's window does not show: bytes
    #: taken by that fast path (h2 never saw them), and on ``resume_stream``
    #: those h2 held for the pause.  Given back with a stream WINDOW_UPDATE.
    unacknowledged: int = 0
    #: The caller paused the stream (``pause_stream``): no stream WINDOW_UPDATE
    #: goes out, so its window runs down and the server has to wait.
    credit_held: bool = False
    #: DATA bytes that went through h2 while paused: given back on the
    #: connection at once, their stream credit still counted by h2 as used.
    held_h2_bytes: int = 0

    def queue(self, data: bytes) -> None:
        if data:
            self.pending.append(memoryview(data))
            self.pending_bytes += len(data)

    def take(self, limit: int) -> memoryview:
        """Remove and return up to ``limit`` bytes from the front of the queue, uncopied."""
        head = self.pending[0]
        if len(head) <= limit:
            self.pending.popleft()
            chunk = head
        else:
            chunk = head[:limit]
            self.pending[0] = head[limit:]
        self.pending_bytes -= len(chunk)
        return chunk

    def take_run(self, size: int, count: int) -> list[memoryview]:
        """Up to ``count`` chunks of exactly ``size`` bytes cut from the front piece, uncopied.

        Fewer (maybe none) when the front piece holds less: a chunk never
        spans two pieces, as with ``take``.
        """
        head = self.pending[0]
        end = min(count, len(head) // size) * size
        chunks = [head[start : start + size] for start in range(0, end, size)]
        if end == len(head):
            self.pending.popleft()
        elif end:
            self.pending[0] = head[end:]
        self.pending_bytes -= end
        return chunks

    def discard_pending(self) -> None:
        self.pending.clear()
        self.pending_bytes = 0

    @property
    def has_unsent(self) -> bool:
        """Queued bytes, or a queued END_STREAM, are still waiting to go out."""
        return not self.local_ended and (bool(self.pending) or self.eof_queued)

    @property
    def finished(self) -> bool:
        """Both halves are over (or the stream died): the ref can be forgotten."""
        return self.response_finished and self.local_ended
