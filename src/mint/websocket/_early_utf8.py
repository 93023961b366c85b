"""Fail fast on invalid UTF-8 inside a text frame that is still arriving.

RFC 6455 section 8.1 lets an endpoint fail the connection as soon as it sees
invalid UTF-8, and Autobahn's cases 6.4.3 and 6.4.4 call a client strict only
if it does so before the rest of the frame arrives.  The decoder waits for
whole frames, so this check looks at the partial frame it keeps between reads:
it validates each newly arrived payload byte once, with its own incremental
decoder started from the message's state, and never changes what the decoder
proper will later deliver.
"""

from __future__ import annotations

import codecs

_new_decoder = codecs.getincrementaldecoder("utf-8")

OP_CONTINUATION = 0x0
OP_TEXT = 0x1


class EarlyUtf8Check:
    """Validation state of the one partial frame a WebSocket may hold."""

    __slots__ = ("_decided", "_decoder", "_fed", "_seen_chunks", "_seen_size")

    def __init__(self) -> None:
        self._decoder: codecs.IncrementalDecoder | None = None
        self._decided = False
        self._fed = 0
        # The chunk list only grows while one frame is partial: the chunks
        # already walked (and their bytes) need no second look.  Walking them
        # again on every read made a frame trickled in byte by byte cost
        # time quadratic in its length.
        self._seen_chunks = 0
        self._seen_size = 0

    def reset(self) -> None:
        """The partial frame is gone (completed or failed): forget it."""
        self._decoder = None
        self._decided = False
        self._fed = 0
        self._seen_chunks = 0
        self._seen_size = 0

    def feed(
        self,
        chunks: list[bytes],
        message_opcode: int,
        message_tail: bytes,
    ) -> None:
        """Validate payload bytes of ``chunks`` (a frame's start onwards) not seen yet.

        ``message_opcode`` is the opcode of the fragmented message in progress
        (0: none) and ``message_tail`` the unfinished UTF-8 sequence its text
        so far ends with, which a continuation frame's bytes follow on from.  Raises
        ``UnicodeDecodeError`` at the first invalid sequence.  Frames this
        check cannot judge alone (control frames, RSV bits an extension may
        transform, anything malformed) are left to the decoder proper.
        """
        if not self._decided and not self._start(chunks, message_opcode, message_tail):
            return
        decoder = self._decoder
        if decoder is None:
            return
        offset = self._seen_size
        fed = self._fed
        for index in range(self._seen_chunks, len(chunks)):
            chunk = chunks[index]
            end = offset + len(chunk)
            if end > fed:
                decoder.decode(chunk[fed - offset :] if fed > offset else chunk, False)
            offset = end
        self._fed = offset
        self._seen_chunks = len(chunks)
        self._seen_size = offset

    def _start(
        self,
        chunks: list[bytes],
        message_opcode: int,
        message_tail: bytes,
    ) -> bool:
        """Read the partial frame's header; False while the header is incomplete."""
        head = b""
        for chunk in chunks:
            head += chunk[: 10 - len(head)]
            if len(head) >= 10:
                break
        if len(head) < 2:
            return False
        first, second = head[0], head[1]
        length = second & 0x7F
        header_size = 2 if length < 126 else 4 if length == 126 else 10
        if len(head) < header_size:
            return False
        self._decided = True
        self._fed = header_size
        opcode = first & 0x0F
        if second & 0x80 or first & 0x70:
            return True  # masked or extension-transformed: not ours to judge
        if opcode == OP_TEXT and not message_opcode:
            self._decoder = _new_decoder()
        elif opcode == OP_CONTINUATION and message_opcode == OP_TEXT:
            self._decoder = _new_decoder()
            self._decoder.setstate((message_tail, 0))
        return True
