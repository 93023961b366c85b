"""DATA frames and flow control handled by the HTTP/2 core itself, beside h2.

Why bypass h2 at all: for a plain DATA frame on an open stream h2 does nothing
a client needs beyond counting bytes, yet it costs several microseconds per
frame (frame object, state machines, and an eager log line that hex-encodes
the whole payload).  The core therefore takes such frames itself ("fast
path": not PADDED, no END_STREAM, response head already received, no
content-length to check) and leaves every other frame to h2.

How h2's view stays consistent: h2 never learns about fast-path bytes, so its
receive windows are *larger* than the real ones by exactly the fast-path bytes
not yet given back.  This module keeps that difference, per connection and
per stream, and the real window is always ``h2's window - unacknowledged``:

* every DATA frame, fast or slow, is checked against the real windows before
  anything else sees it; a frame that does not fit is a FLOW_CONTROL_ERROR
  (h2 alone would miss it, since it sees the larger window);
* fast-path bytes are given back with WINDOW_UPDATE frames built here, in
  batches once a real window falls below half (RFC 9113 section 6.9 leaves
  the timing to the receiver), so an echo of small messages costs no extra
  write;
* bytes that went through h2 are acknowledged to h2 as before, and h2 sends
  its own WINDOW_UPDATEs for them.  Each side only ever gives back what it
  consumed, so the sum of both can never push a window past what we
  advertised, let alone past 2^31-1;
* a paused stream (``HTTP2Core.pause_stream``) gets no stream WINDOW_UPDATE
  from either side: its fast-path bytes stay in ``unacknowledged``, and the
  bytes h2 took are given back on the connection only, h2 keeping their
  stream credit until ``resume_stream`` moves it here.  Connection credit
  never waits for a paused stream.

Sending is taken over whole, not shared: h2 never sends a DATA frame with a
payload and never sees a WINDOW_UPDATE for a stream the core tracks or for
the connection, so its own send windows stay at their initial values (they
only follow SETTINGS_INITIAL_WINDOW_SIZE and can never overflow), and the
core's windows (``StreamState.send_window`` and the connection's) are the only
ones that count.  h2 still sends every END_STREAM, so its stream states stay
right; see ``HTTP2Core._end_stream`` for how a last chunk shares its frame.
"""

from __future__ import annotations

import struct

from mint.http._h2_stream import StreamState

DATA_TYPE = 0x0
WINDOW_UPDATE_TYPE = 0x8
END_STREAM_FLAG = 0x1
MAX_WINDOW = (1 << 31) - 1
#: RFC 9113 section 6.9.2: the connection window starts here whatever SETTINGS say.
INITIAL_CONNECTION_WINDOW = 65_535
# length (24 bits as 8 + 16), type, flags, stream id, window size increment
_WINDOW_UPDATE = struct.Struct(">BHBBLL")
_FRAME_HEADER = struct.Struct(">BHBBL")
_INCREMENT = struct.Struct(">L")


def data_frame_header(stream_id: int, length: int, flags: int = 0) -> bytes:
    """The 9-byte header of a DATA frame of ``length`` payload bytes (no padding)."""
    return _FRAME_HEADER.pack(length >> 16, length & 0xFFFF, DATA_TYPE, flags, stream_id)


def window_increment(buffer: bytes, payload_start: int) -> int:
    """The increment of a WINDOW_UPDATE whose 4-byte payload starts at ``payload_start``."""
    value: int = _INCREMENT.unpack_from(buffer, payload_start)[0]
    return value & 0x7FFFFFFF


def window_update_frame(stream_id: int, increment: int) -> bytes:
    """Serialize one WINDOW_UPDATE frame (RFC 9113 section 6.9)."""
    return _WINDOW_UPDATE.pack(0, 4, WINDOW_UPDATE_TYPE, 0, stream_id, increment)


class ReceiveCredit:
    """The fast path's share of our receive windows, and the WINDOW_UPDATEs it owes.

    ``connection_window`` and ``stream_window`` are the windows we advertise;
    a WINDOW_UPDATE goes out once less than half of one is left.  Half keeps
    the sender busy (it always has at least half a window of room) while
    costing one small frame per half window.
    """

    def __init__(
        self, connection_window: int, stream_window: int, outgoing: list[bytes | memoryview]
    ) -> None:
        #: Fast-path bytes of all streams not yet given back on stream 0.
        self.connection_unacknowledged = 0
        self._connection_threshold = max(1, connection_window // 2)
        self._stream_threshold = max(1, stream_window // 2)
        #: The core's output buffer; WINDOW_UPDATEs may go anywhere after the preface.
        self._outgoing = outgoing

    def take(
        self, stream: StreamState, length: int, h2_connection_window: int, h2_stream_window: int
    ) -> bool:
        """Count a fast-path frame and queue the WINDOW_UPDATEs it calls for.

        False, counting nothing, if the frame does not fit the real windows.
        An update goes out once a real window falls below half of what we
        advertise, whether our bytes or h2's (not yet given back) used it up: a
        window must never sit near zero because each side holds back less than
        its half.  A paused stream's window may: that is the point of pausing,
        and its flag is read only when an update is due, off the common path.
        """
        connection_room = h2_connection_window - self.connection_unacknowledged - length
        stream_room = h2_stream_window - stream.unacknowledged - length
        if connection_room < 0 or stream_room < 0:
            return False
        stream.unacknowledged += length
        if (
            stream_room < self._stream_threshold
            and stream.unacknowledged
            and not stream.credit_held
        ):
            self._outgoing.append(window_update_frame(stream.stream_id, stream.unacknowledged))
            stream.unacknowledged = 0
        self.connection_unacknowledged += length
        if connection_room < self._connection_threshold and self.connection_unacknowledged:
            self._outgoing.append(window_update_frame(0, self.connection_unacknowledged))
            self.connection_unacknowledged = 0
        return True

    def release(self, stream: StreamState) -> None:
        """Give back all the stream credit owed at once: the reader just made room again."""
        if stream.unacknowledged:
            self._outgoing.append(window_update_frame(stream.stream_id, stream.unacknowledged))
            stream.unacknowledged = 0

    def fits_connection(self, length: int, h2_connection_window: int) -> bool:
        """Whether a DATA frame bound for h2 fits the real connection window."""
        return length <= h2_connection_window - self.connection_unacknowledged
