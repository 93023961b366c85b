"""The server's HTTP/3 control stream, read for the one frame aioquic drops: GOAWAY.

aioquic 1.7 keeps SETTINGS from the control stream and skips the payload of
every other frame, GOAWAY's included, so a client on it never learns that
its server is shutting down gracefully: new requests would go to a server
that will not process them.  ``GoawayWatcher`` reads the same bytes beside
aioquic (RFC 9114 sections 6.2.1 and 7.2.6): the type of each unidirectional
stream the server opens, and on its control stream each frame's type and
length.  Only a GOAWAY's payload (one variable-length integer) is kept; every
other frame is skipped as its bytes arrive, never buffered, so a server that
sends a huge unknown frame costs nothing here.  aioquic still validates the
stream and fails the connection if it is malformed.
"""

from __future__ import annotations

#: RFC 9114 section 6.2.1: the stream type of the control stream.
CONTROL_STREAM_TYPE = 0x00
#: RFC 9114 section 7.2.6.
GOAWAY_FRAME_TYPE = 0x07
#: The longest variable-length integer (RFC 9000 section 16), all a GOAWAY carries.
_MAX_GOAWAY_PAYLOAD = 8


def _varint(buffer: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """The variable-length integer at ``at`` and the offset after it; None if incomplete."""
    if at >= len(buffer):
        return None
    first = buffer[at]
    size = 1 << (first >> 6)
    end = at + size
    if end > len(buffer):
        return None
    value = first & 0x3F
    for index in range(at + 1, end):
        value = (value << 8) | buffer[index]
    return value, end


def _is_server_unidirectional(stream_id: int) -> bool:
    return stream_id & 0x3 == 0x3  # RFC 9000 section 2.1: server-initiated, unidirectional


class GoawayWatcher:
    """Follows the server's unidirectional streams until it finds, then reads, the control one."""

    def __init__(self) -> None:
        #: Server streams whose type has not fully arrived yet (at most 8 bytes each).
        self._untyped: dict[int, bytearray] = {}
        self._not_control: set[int] = set()
        self._control: int | None = None
        #: A partial frame header, or a partial GOAWAY payload.
        self._buffer = bytearray()
        #: Bytes of the current (not GOAWAY) frame still to skip.
        self._skip = 0

    def feed(self, stream_id: int, data: bytes) -> int | None:
        """Take bytes the server sent on ``stream_id``; a GOAWAY's stream ID once one is whole.

        When several GOAWAYs complete in ``data``, the lowest ID: the server
        may only lower it (RFC 9114 section 5.2).
        """
        if not data or not _is_server_unidirectional(stream_id) or stream_id in self._not_control:
            return None
        if stream_id != self._control:
            pending = self._untyped.setdefault(stream_id, bytearray())
            pending += data
            parsed = _varint(pending, 0)
            if parsed is None:
                return None
            stream_type, used = parsed
            del self._untyped[stream_id]
            if stream_type != CONTROL_STREAM_TYPE or self._control is not None:
                self._not_control.add(stream_id)
                return None
            self._control = stream_id
            data = bytes(pending[used:])
        return self._read_frames(data)

    def _read_frames(self, data: bytes) -> int | None:
        found: int | None = None
        if self._skip:
            skipped = min(self._skip, len(data))
            self._skip -= skipped
            data = data[skipped:]
        buffer = self._buffer
        buffer += data
        at = 0
        while True:
            header = _varint(buffer, at)
            length_field = None if header is None else _varint(buffer, header[1])
            if header is None or length_field is None:
                break
            frame_type = header[0]
            length, start = length_field
            available = len(buffer) - start
            if frame_type == GOAWAY_FRAME_TYPE and length <= _MAX_GOAWAY_PAYLOAD:
                if available < length:
                    break  # the rest of a (short) GOAWAY is on its way
                payload = _varint(buffer, start)
                if payload is not None and payload[1] == start + length:
                    found = payload[0] if found is None else min(found, payload[0])
                at = start + length
            elif available >= length:
                at = start + length
            else:
                self._skip = length - available
                at = len(buffer)
                break
        del buffer[:at]
        return found
