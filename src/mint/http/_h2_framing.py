"""Cuts the server's byte stream into whole HTTP/2 frames before h2 sees them.

Three reasons to look at frame boundaries ourselves instead of handing h2 every
read as is:

* h2 raises on the first bad frame of a read and throws away the events of the
  good frames before it.  Feeding one frame at a time means a fault costs only
  what comes after it: nothing already received is lost.
* h2 treats a received GOAWAY as the end of everything and refuses every frame
  after it, while RFC 9113 section 6.8 lets the streams up to the GOAWAY's
  last stream id finish.  Spotting GOAWAY here lets the core keep those
  streams alive.
* Plain DATA frames on an open stream are the bulk of a WebSocket's traffic,
  and h2 spends several microseconds on each (it even formats a log line with
  the payload in hex).  The header parsed here is all the core needs to take
  those frames itself (see ``mint.http._h2_data``).

Only the 9-byte frame header (RFC 9113 section 4.1) is parsed; payload rules
stay h2's business.  Frames are handed out as positions inside a ``bytes``
buffer, not as copies: a read that holds whole frames is never copied here; a
plain DATA frame cut by a read boundary is handed on in pieces, and only other
frames so cut are assembled in a side buffer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TypeAlias

FRAME_HEADER_SIZE = 9
DATA_TYPE = 0x0
GOAWAY_TYPE = 0x7
END_STREAM_FLAG = 0x1
PADDED_FLAG = 0x8

# length (24 bits as 8 + 16), type, flags, reserved bit + stream id
_HEADER = struct.Struct(">BHBBL")
_LENGTH = struct.Struct(">BH")

#: One whole frame: (type, flags, stream id, buffer, start, end); the frame,
#: header included, is ``buffer[start:end]`` and its payload starts at
#: ``start + FRAME_HEADER_SIZE``.  A plain tuple: cheapest to build and unpack.
#: Two pseudo types carry a streamed DATA frame (see ``FrameSplitter``):
#: ``DATA_START`` is its header at ``buffer[start:]`` and whatever payload
#: follows it up to ``end``; ``DATA_MORE`` is ``buffer[start:end]``, more of
#: that payload.
Frame: TypeAlias = tuple[int, int, int, bytes, int, int]

DATA_START = -1
DATA_MORE = -2


@dataclass(frozen=True, slots=True)
class GoAway:
    """The parts of a GOAWAY frame the core acts on."""

    last_stream_id: int
    error_code: int


class FrameSplitter:
    """Buffers bytes until whole frames are available, then hands them out in order.

    A frame header that declares more than the allowed size (RFC 9113 section
    4.2) stops the splitter at once and sets ``oversized``: waiting for the whole
    frame, as h2's own buffer does, would let a hostile server make us buffer
    up to 16 MiB before anyone complains.

    Plain DATA frames (no PADDED, no END_STREAM) on a stream the core takes
    DATA for itself are not buffered at all when a read cuts them: the part
    that is here goes out at once as a ``DATA_START`` piece, and the rest as
    ``DATA_MORE`` pieces as it arrives.  So a large frame costs no copy here,
    and memory stays flat whatever SETTINGS_MAX_FRAME_SIZE we advertise.
    """

    def __init__(self) -> None:
        #: The start of a frame the last read cut short (header included).
        self._partial = bytearray()
        #: Payload bytes of a streamed DATA frame still to come, and its stream.
        self._streaming = 0
        self._streaming_stream_id = 0
        #: The declared length of the first oversized frame seen, if any.
        self.oversized: int | None = None

    def feed(
        self, data: bytes, max_frame_size: int, streams_data: Callable[[int], bool]
    ) -> Iterator[Frame]:
        """Yield the frames and pieces ``data`` completes, oldest first.

        A generator on purpose: ``streams_data(stream_id)`` is asked whether a
        cut DATA frame may be streamed only when that frame's turn comes, so
        it sees the core's state after the frames before it (the HEADERS that
        opened the stream, an RST_STREAM that ended it).  Nothing is yielded
        once ``oversized`` is set.
        """
        if self.oversized is not None:
            return
        size = len(data)
        offset = 0
        if self._streaming:
            offset = min(self._streaming, size)
            self._streaming -= offset
            yield (DATA_MORE, 0, self._streaming_stream_id, data, 0, offset)
        elif self._partial:
            offset = yield from self._complete_partial(data, max_frame_size, streams_data)
            if offset < 0:
                return
        unpack = _HEADER.unpack_from
        while size - offset >= FRAME_HEADER_SIZE:
            high, low, frame_type, flags, stream_id = unpack(data, offset)
            length = high << 16 | low
            if length > max_frame_size:
                self.oversized = length
                return
            stream_id &= 0x7FFFFFFF
            end = offset + FRAME_HEADER_SIZE + length
            if end > size:
                if _streamable(frame_type, flags) and streams_data(stream_id):
                    self._streaming = end - size
                    self._streaming_stream_id = stream_id
                    yield (DATA_START, flags, stream_id, data, offset, size)
                    return
                break
            yield (frame_type, flags, stream_id, data, offset, end)
            offset = end
        if offset < size:
            self._partial += memoryview(data)[offset:]

    def _complete_partial(
        self, data: bytes, max_frame_size: int, streams_data: Callable[[int], bool]
    ) -> Generator[Frame, None, int]:
        """Finish the frame cut by the last read; return where ``data`` goes on, or -1.

        Only the missing bytes are copied, so a 16 KiB frame cut across two reads
        costs 16 KiB of copying, not the size of the reads.  A DATA frame whose
        header only now became whole may be streamed instead (see ``feed``).
        """
        partial = self._partial
        taken = 0
        header_was_whole = len(partial) >= FRAME_HEADER_SIZE
        if not header_was_whole:
            taken = min(FRAME_HEADER_SIZE - len(partial), len(data))
            partial += memoryview(data)[:taken]
            if len(partial) < FRAME_HEADER_SIZE:
                return -1
        high, low, frame_type, flags, stream_id = _HEADER.unpack_from(partial)
        length = high << 16 | low
        if length > max_frame_size:
            self.oversized = length
            partial.clear()
            return -1
        stream_id &= 0x7FFFFFFF
        missing: int = FRAME_HEADER_SIZE + length - len(partial)
        available = len(data) - taken
        if missing > available:
            if not header_was_whole and _streamable(frame_type, flags) and streams_data(stream_id):
                header = bytes(partial)
                partial.clear()
                yield (DATA_START, flags, stream_id, header, 0, FRAME_HEADER_SIZE)
                self._streaming = length - available
                self._streaming_stream_id = stream_id
                if available:
                    yield (DATA_MORE, 0, stream_id, data, taken, len(data))
                return -1
            partial += memoryview(data)[taken:]
            return -1
        partial += memoryview(data)[taken : taken + missing]
        frame = bytes(partial)
        partial.clear()
        yield (frame_type, flags, stream_id, frame, 0, len(frame))
        return taken + missing

    def continue_stream(self, data: bytes) -> int | None:
        """Take all of ``data`` as more of the DATA frame being streamed; its stream id, or None.

        None (taking nothing) unless ``data`` lies wholly inside that frame.
        A large message arrives as many such reads (over TLS, 64 KiB of
        records at most each); this spares each the general loop of ``feed``.
        """
        if self._streaming < len(data):
            return None
        self._streaming -= len(data)
        return self._streaming_stream_id

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest (buffered or streamed)."""
        return len(self._partial) + self._streaming


def _streamable(frame_type: int, flags: int) -> bool:
    """A DATA frame the core could take piece by piece: no padding to strip, no END_STREAM."""
    return frame_type == DATA_TYPE and not flags & (PADDED_FLAG | END_STREAM_FLAG)


def declared_length(buffer: bytes, start: int) -> int:
    """The payload length in the frame header at ``buffer[start:]``."""
    high, low = _LENGTH.unpack_from(buffer, start)
    return int(high << 16 | low)


def parse_goaway(frame: bytes) -> GoAway | None:
    """Return the GOAWAY carried by ``frame`` (one whole frame), or None if malformed.

    A malformed GOAWAY (wrong stream id, short payload) is left for h2 to reject
    as the connection error it is.
    """
    if len(frame) < FRAME_HEADER_SIZE or frame[3] != GOAWAY_TYPE:
        return None
    stream_id = int.from_bytes(frame[5:9], "big") & 0x7FFFFFFF
    payload = frame[FRAME_HEADER_SIZE:]
    declared_length = int.from_bytes(frame[0:3], "big")
    if stream_id != 0 or len(payload) != declared_length or len(payload) < 8:
        return None
    return GoAway(
        last_stream_id=int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF,
        error_code=int.from_bytes(payload[4:8], "big"),
    )
