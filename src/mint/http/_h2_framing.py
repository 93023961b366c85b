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
buffer, not as copies: a read that holds whole frames is never copied here, and
only a frame cut by a read boundary is assembled in a small side buffer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TypeAlias

FRAME_HEADER_SIZE = 9
DATA_TYPE = 0x0
GOAWAY_TYPE = 0x7
END_STREAM_FLAG = 0x1
PADDED_FLAG = 0x8

# length (24 bits as 8 + 16), type, flags, reserved bit + stream id
_HEADER = struct.Struct(">BHBBL")

#: One whole frame: (type, flags, stream id, buffer, start, end); the frame,
#: header included, is ``buffer[start:end]`` and its payload starts at
#: ``start + FRAME_HEADER_SIZE``.  A plain tuple: cheapest to build and unpack.
Frame: TypeAlias = tuple[int, int, int, bytes, int, int]


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
    """

    def __init__(self) -> None:
        #: The start of a frame the last read cut short (header included).
        self._partial = bytearray()
        #: The declared length of the first oversized frame seen, if any.
        self.oversized: int | None = None

    def feed(self, data: bytes, max_frame_size: int) -> list[Frame]:
        """Return the frames ``data`` completes, oldest first (none once ``oversized`` is set)."""
        if self.oversized is not None:
            return []
        frames: list[Frame] = []
        offset = 0
        if self._partial:
            offset = self._complete_partial(data, max_frame_size, frames)
            if offset < 0:
                return frames
        size = len(data)
        unpack = _HEADER.unpack_from
        while size - offset >= FRAME_HEADER_SIZE:
            high, low, frame_type, flags, stream_id = unpack(data, offset)
            length = high << 16 | low
            if length > max_frame_size:
                self.oversized = length
                return frames
            end = offset + FRAME_HEADER_SIZE + length
            if end > size:
                break
            frames.append((frame_type, flags, stream_id & 0x7FFFFFFF, data, offset, end))
            offset = end
        if offset < size:
            self._partial += memoryview(data)[offset:]
        return frames

    def _complete_partial(self, data: bytes, max_frame_size: int, frames: list[Frame]) -> int:
        """Finish the frame cut by the last read; return where ``data`` goes on, or -1.

        Only the missing bytes are copied, so a 16 KiB frame cut across two reads
        costs 16 KiB of copying, not the size of the reads.
        """
        partial = self._partial
        taken = 0
        if len(partial) < FRAME_HEADER_SIZE:
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
        missing: int = FRAME_HEADER_SIZE + length - len(partial)
        if missing > len(data) - taken:
            partial += memoryview(data)[taken:]
            return -1
        partial += memoryview(data)[taken : taken + missing]
        frame = bytes(partial)
        partial.clear()
        frames.append((frame_type, flags, stream_id & 0x7FFFFFFF, frame, 0, len(frame)))
        return taken + missing

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._partial)


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
