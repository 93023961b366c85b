"""Cuts the server's byte stream into whole HTTP/2 frames before h2 sees them.

Two reasons to look at frame boundaries ourselves instead of handing h2 every
read as is:

* h2 raises on the first bad frame of a read and throws away the events of the
  good frames before it.  Feeding one frame at a time means a fault costs only
  what comes after it: nothing already received is lost.
* h2 treats a received GOAWAY as the end of everything and refuses every frame
  after it, while RFC 9113 section 6.8 lets the streams up to the GOAWAY's
  last stream id finish.  Spotting GOAWAY here lets the core keep those
  streams alive.

Only the 9-byte frame header (RFC 9113 section 4.1) is parsed; payload rules
stay h2's business.
"""

from __future__ import annotations

from dataclasses import dataclass

FRAME_HEADER_SIZE = 9
GOAWAY_TYPE = 0x7


@dataclass(frozen=True, slots=True)
class GoAway:
    """The parts of a GOAWAY frame the core acts on."""

    last_stream_id: int
    error_code: int


class FrameSplitter:
    """Buffers bytes until whole frames are available, then hands them out one by one.

    A frame header that declares more than the allowed size (RFC 9113 section
    4.2) stops the splitter at once and sets ``oversized``: waiting for the whole
    frame, as h2's own buffer does, would let a hostile server make us buffer
    up to 16 MiB before anyone complains.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        #: The declared length of the first oversized frame seen, if any.
        self.oversized: int | None = None

    def feed(self, data: bytes, max_frame_size: int) -> list[bytes]:
        """Return the frames ``data`` completes, oldest first (none once ``oversized`` is set)."""
        if self.oversized is not None:
            return []
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= FRAME_HEADER_SIZE:
            length = int.from_bytes(self._buffer[0:3], "big")
            if length > max_frame_size:
                self.oversized = length
                self._buffer.clear()
                break
            end = FRAME_HEADER_SIZE + length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[:end]))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._buffer)


def parse_goaway(frame: bytes) -> GoAway | None:
    """Return the GOAWAY carried by ``frame``, or None if it is another frame or malformed.

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
