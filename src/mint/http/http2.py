"""The HTTP/2 sans-I/O core: many requests, and RFC 8441 WebSocket tunnels, on one connection.

h2 does the framing, HPACK and the stream state machines.  This module adds
what a process-less client needs on top of it:

* refs instead of stream ids, and Mint's event shapes (``Status``, ``Headers``,
  ``Data``, ``Done``, ``Error``, ``Pong``);
* a per-stream send queue, so a write bigger than the flow-control windows is
  accepted and drained in order as WINDOW_UPDATEs arrive inside
  ``receive_data``; the caller only has to keep reading;
* received data acknowledged as soon as it is handed over, so the server's
  windows refill without the caller doing anything, except on a stream the
  caller paused (``pause_stream``): a slow reader throttles its own stream only;
* plain DATA frames on open streams taken without h2 (``_h2_data`` explains
  how h2's flow-control view stays right): they are most of a WebSocket's
  traffic, and h2's per-frame cost dominated a client's CPU;
* the checks h2 leaves to its user: SETTINGS_ENABLE_CONNECT_PROTOCOL before a
  ``:protocol`` request, SETTINGS_MAX_CONCURRENT_STREAMS before a new stream;
* GOAWAY handled per RFC 9113 section 6.8 (streams the server accepted may
  finish) rather than as h2's immediate end of the connection;
* every h2 exception turned into a ``mint.errors`` exception or ``Error`` event.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import h2.stream

from mint.errors import HTTPError, MintError, TransportError
from mint.http._h2_data import (
    END_STREAM_FLAG,
    INITIAL_CONNECTION_WINDOW,
    WINDOW_UPDATE_TYPE,
    ReceiveCredit,
    data_frame_header,
    window_increment,
    window_update_frame,
)
from mint.http._h2_framing import (
    DATA_MORE,
    DATA_START,
    DATA_TYPE,
    FRAME_HEADER_SIZE,
    GOAWAY_TYPE,
    PADDED_FLAG,
    FrameSplitter,
    GoAway,
    declared_length,
    parse_goaway,
)
from mint.http._h2_stream import StreamState
from mint.http.core import HTTPCore, check_extended_connect
from mint.http.events import (
    EOF,
    STREAM,
    Body,
    Chunk,
    Data,
    Done,
    Error,
    Event,
    Headers,
    Pong,
    Ref,
    Status,
)

DEFAULT_RECEIVE_WINDOW = 1 << 20
"""Our initial stream and connection receive windows (RFC default 65,535 is slow on fast links)."""

MAX_WINDOW = (1 << 31) - 1

DEFAULT_MAX_FRAME_SIZE = 1 << 20
"""The largest frame we let the server send (RFC 9113 section 6.5.2).

As large as the receive window: DATA frames are handed on piece by piece as
they arrive (see ``mint.http._h2_framing``), so their size costs no memory,
and a server that honours it sends a 1 MiB message as one frame rather than
64.  Other frames are buffered whole, at most this much per connection.
"""

#: RFC 9113 section 6.5.2: SETTINGSMAX_FRAME_SIZE must lie within these.
MIN_FRAME_SIZE = 1 << 14
MAX_FRAME_SIZE = (1 << 24) - 1

#: RFC 9113 section 8.2.2: meaningless in HTTP/2; dropped like an HTTP/1.1-to-2 proxy would.
_CONNECTION_SPECIFIC_HEADERS = frozenset(
    {"connection", "upgrade", "keep-alive", "transfer-encoding", "proxy-connection"}
)
_FORBIDDEN_VALUE_CHARS = frozenset("\r\n\x00")
#: DATA frames with these flags go through h2: END_STREAM changes stream state,
#: padding is rare and h2 validates it.
_SLOW_DATA_FLAGS = END_STREAM_FLAG | PADDED_FLAG


class StreamResetError(HTTPError):
    """The server reset one stream (RST_STREAM); ``error_code`` is the RFC 9113 name.

    A subclass so that callers who only know ``HTTPError`` keep working, while
    those who care can tell REFUSED_STREAM (safe to retry) from CANCEL.
    """

    def __init__(self, message: str, *, error_code: str) -> None:
        super().__init__(message, reason="stream_reset")
        self.error_code = error_code


def _error_code_name(code: int) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


def _setting_name(code: int) -> str:
    try:
        return h2.settings.SettingCodes(code).name.lower()
    except ValueError:
        return f"unknown_0x{code:x}"


class HTTP2Core(HTTPCore):
    """One HTTP/2 client connection's state; bytes in, events out, no I/O.

    ``authority`` and ``scheme`` fill the ``:authority`` and ``:scheme``
    pseudo-headers of every request (``scheme`` is "http" or "https", as RFC
    8441 asks even for WebSocket tunnels).  The client preface and our SETTINGS
    are queued at once: the shell writes ``data_to_send()`` right after creating
    the core.
    """

    version = "HTTP/2"

    def __init__(
        self,
        authority: str,
        scheme: str,
        *,
        initial_window_size: int = DEFAULT_RECEIVE_WINDOW,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        if not 0 <= initial_window_size <= MAX_WINDOW:
            raise HTTPError(
                f"initial_window_size must be within 0..{MAX_WINDOW}", reason="invalid_argument"
            )
        if not MIN_FRAME_SIZE <= max_frame_size <= MAX_FRAME_SIZE:
            raise HTTPError(
                f"max_frame_size must be within {MIN_FRAME_SIZE}..{MAX_FRAME_SIZE}",
                reason="invalid_argument",
            )
        self.authority = authority
        self.scheme = scheme
        self._authority_bytes = _request_token(authority, "authority")
        self._scheme_bytes = _request_token(scheme, "scheme")
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window_size,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: max_frame_size,
            },
        )
        # h2 took its inbound limit from the default settings it was built
        # with, and initial values are never "acknowledged" into it.
        self._h2.max_inbound_frame_size = max_frame_size
        self._h2.initiate_connection()
        # SETTINGS_INITIAL_WINDOW_SIZE covers streams only; the connection
        # window (RFC 9113 section 6.9.2) is raised with a WINDOW_UPDATE.
        if initial_window_size > self._h2.inbound_flow_control_window:
            self._h2.increment_flow_control_window(
                initial_window_size - self._h2.inbound_flow_control_window
            )
        self._splitter = FrameSplitter()
        #: What goes on the wire, in order, as pieces joined by data_to_send
        #: (one copy of each payload).  h2's output is moved here whenever it
        #: must precede our frames: the preface now, HEADERS in request(), so
        #: a stream's HEADERS always precede its DATA.
        self._out: list[bytes | memoryview] = [self._h2.data_to_send()]
        self._credit = ReceiveCredit(
            connection_window=self._h2.inbound_flow_control_window,
            stream_window=initial_window_size,
            outgoing=self._out,
        )
        # Send windows are ours alone (see mint.http._h2_data).
        self._send_connection_window = INITIAL_CONNECTION_WINDOW
        self._peer_initial_window = self._h2.remote_settings.initial_window_size
        #: A WINDOW_UPDATE or SETTINGS arrived: queued writes may fit now.
        self._room_opened = False
        self._streams: dict[int, StreamState] = {}
        self._stream_ids: dict[Ref, int] = {}
        self._pings: dict[bytes, Ref] = {}
        self._ping_counter = itertools.count(1)
        self._closed = False
        self._goaway: GoAway | None = None
        self.server_settings: dict[str, int] = {}
        self.remote_settings_received = False

    # -- state ----------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        """False once closed, failed, or drained after the server's GOAWAY."""
        if self._closed:
            return False
        return not (self._goaway is not None and not self._streams)

    @property
    def extended_connect_enabled(self) -> bool:
        """Whether the server announced SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441)."""
        return self.server_settings.get("enable_connect_protocol", 0) == 1

    @property
    def goaway_received(self) -> bool:
        return self._goaway is not None

    def send_window(self, ref: Ref) -> int:
        """Bytes a write on ``ref`` could put on the wire right now, without queueing.

        That is min(stream window, connection window) while nothing is queued on
        the stream, and 0 while earlier writes still wait (a new write would
        queue behind them).  Useful for back-pressure; never required.
        """
        stream = self._stream_for(ref)
        if stream.pending or stream.local_ended or stream.eof_queued:
            return 0
        return max(0, min(stream.send_window, self._send_connection_window))

    # -- requests -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]],
        body: Body = None,
        *,
        protocol: str | None = None,
    ) -> Ref:
        """Open a stream.  With ``protocol`` (RFC 8441) the stream stays open as a tunnel.

        Raises ``HTTPError`` with reason ``closed``, ``goaway``, ``too_many_streams``,
        ``settings_pending`` (``protocol`` before the server's SETTINGS arrived),
        ``extended_connect_disabled`` or ``invalid_request``.
        """
        self._check_can_open_stream()
        method_bytes = _request_token(method, "method")
        path_bytes = _request_token(path, "path")
        protocol_bytes = None if protocol is None else _request_token(protocol, "protocol")
        extended_connect = protocol is not None
        if extended_connect:
            check_extended_connect(
                method,
                settings_received=self.remote_settings_received,
                enabled=self.extended_connect_enabled,
                rfc="RFC 8441",
            )
        elif method.upper() == "CONNECT":
            raise HTTPError(
                "plain CONNECT is not supported over HTTP/2; pass protocol= for RFC 8441",
                reason="invalid_request",
            )
        if body is EOF or not (body is None or body is STREAM or isinstance(body, bytes)):
            raise HTTPError("body must be bytes, None or STREAM", reason="invalid_request")

        pseudo = [
            (b":method", method_bytes),
            (b":scheme", self._scheme_bytes),
            (b":authority", self._authority_bytes),
            (b":path", path_bytes),
        ]
        if protocol_bytes is not None:
            pseudo.append((b":protocol", protocol_bytes))
        wire_headers = pseudo + encode_headers(headers)

        body_bytes = body if isinstance(body, bytes) else b""
        # END_STREAM on HEADERS when there is nothing more to send (never on a tunnel).
        end_on_headers = not extended_connect and (body is None or body == b"")
        stream_id = self._h2.get_next_available_stream_id()
        try:
            self._h2.send_headers(stream_id, wire_headers, end_stream=end_on_headers)
        except Exception as exc:
            raise HTTPError(
                f"h2 refused the request headers: {exc}", reason="invalid_request"
            ) from exc
        self._out.append(self._h2.data_to_send())  # before any DATA of this stream

        ref = Ref()
        stream = StreamState(ref=ref, stream_id=stream_id, extended_connect=extended_connect)
        stream.send_window = self._peer_initial_window
        stream.local_ended = end_on_headers
        self._streams[stream_id] = stream
        self._stream_ids[ref] = stream_id
        if isinstance(body, bytes) and not extended_connect:
            stream.queue(body_bytes)
            stream.eof_queued = True
            self._flush(stream)
        elif body_bytes:
            stream.queue(body_bytes)
            self._flush(stream)
        return ref

    def stream_request_body(self, ref: Ref, chunk: Chunk, *, end_stream: bool = False) -> None:
        """Queue bytes (or ``EOF``) on a streamed body or tunnel; sent as windows allow.

        With ``end_stream=True`` END_STREAM is set on the DATA frame carrying the
        last of ``chunk``: some servers (hypercorn 0.18) forget a WebSocket
        stream as soon as its Close frame arrives and fail on a later, separate
        empty END_STREAM frame.
        """
        if self._closed:
            raise HTTPError("the connection is closed", reason="closed")
        stream = self._stream_for(ref)
        if stream.refused:
            raise HTTPError(f"the server refused the tunnel {ref!r}", reason="stream_closed")
        if stream.eof_queued or stream.local_ended:
            raise HTTPError(f"the request body of {ref!r} already ended", reason="stream_closed")
        if chunk is EOF:
            stream.eof_queued = True
        elif (
            type(chunk) is bytes
            and not end_stream
            and not stream.pending
            and 0 < len(chunk) <= min(stream.send_window, self._send_connection_window)
            and len(chunk) <= self._h2.max_outbound_frame_size
        ):
            # The usual WebSocket message: one DATA frame that fits at once,
            # built straight away (what the queue and _send_next would do).
            size = len(chunk)
            stream.send_window -= size
            self._send_connection_window -= size
            self._out += (data_frame_header(stream.stream_id, size), chunk)
            return
        elif isinstance(chunk, (bytes, bytearray, memoryview)):
            stream.queue(bytes(chunk))
            stream.eof_queued = end_stream
        else:
            raise HTTPError("chunk must be bytes or EOF", reason="invalid_argument")
        self._flush(stream)
        self._forget_if_finished(stream)

    def cancel_request(self, ref: Ref) -> None:
        """Abandon a request or tunnel: RST_STREAM(CANCEL), queued bytes dropped, ref forgotten.

        No event follows for ``ref``.  Also the way to drop a tunnel whose
        server stopped answering without ending the stream.
        """
        stream = self._stream_for(ref)
        if not self._closed:
            self._reset(stream, h2.errors.ErrorCodes.CANCEL)
        stream.discard_pending()
        stream.response_finished = True
        stream.local_ended = True
        self._forget_if_finished(stream)

    def pause_stream(self, ref: Ref) -> None:
        """Stop giving the server flow-control credit for one stream: backpressure for one reader.

        A WebSocket whose receive queue is full must slow its own server down
        without slowing its neighbours.  Data still arriving on the stream is
        delivered as usual (at most what is left of its window) and its
        connection credit keeps being given back, so the other streams flow
        on; only this stream's window runs down to zero, and the server must
        wait for ``resume_stream``.  Idempotent.  Raises ``HTTPError(reason=
        "unknown_ref")``, as every per-stream call does, once the ref is
        forgotten (its request over, cancelled or failed).
        """
        self._stream_for(ref).credit_held = True

    def resume_stream(self, ref: Ref) -> None:
        """Give back the stream credit withheld since ``pause_stream`` in one WINDOW_UPDATE.

        Everything at once rather than in the usual half-window batches: the
        reader has room again and the server has been waiting.  Then credit
        flows as usual.  Idempotent; nothing is sent when nothing is owed, or
        when the response is already over (no more DATA can use the credit).
        """
        stream = self._stream_for(ref)
        if not stream.credit_held:
            return
        stream.credit_held = False
        held, stream.held_h2_bytes = stream.held_h2_bytes, 0
        if self._closed or stream.response_finished:
            return
        if held:
            self._reclaim_h2_credit(stream, held)
        self._credit.release(stream)

    def ping(self) -> Ref:
        """Send a PING; its ACK comes back as ``Pong(ref)`` from ``receive_data``."""
        if self._closed:
            raise HTTPError("the connection is closed", reason="closed")
        opaque = next(self._ping_counter).to_bytes(8, "big")
        try:
            self._h2.ping(opaque)
        except Exception as exc:
            raise HTTPError(f"cannot send PING: {exc}", reason="closed") from exc
        ref = Ref()
        self._pings[opaque] = ref
        return ref

    def close(self) -> None:
        """Queue a GOAWAY (NO_ERROR) and stop accepting calls; the shell then closes the socket."""
        if self._closed:
            return
        self._closed = True
        # Failing means h2 already considers the connection closed: nothing to send.
        with contextlib.suppress(Exception):
            self._h2.close_connection()

    def data_to_send(self) -> bytes:
        h2_data = self._h2.data_to_send()
        if not self._out:
            return h2_data
        self._out.append(h2_data)
        data = b"".join(self._out)
        self._out.clear()
        return data

    def buffers_to_send(self) -> list[bytes | memoryview]:
        h2_data = self._h2.data_to_send()
        out = self._out
        if not out:
            return [h2_data] if h2_data else []
        if h2_data:
            out.append(h2_data)
        buffers = list(out)  # the queue itself is shared with self._credit
        out.clear()
        return buffers

    # -- receiving ------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        return _data_events(self._receive(data))

    def _receive(self, data: bytes) -> Sequence[Event | _Payload]:
        if self._closed:
            return []
        if not data:
            return self._fail_all(
                TransportError("the server closed the connection", reason="closed")
            )
        if not isinstance(data, bytes):
            data = bytes(data)
        streamed_to = self._splitter.continue_stream(data)
        if streamed_to is not None:
            # More of a DATA frame counted in full at its start (see feed's DATA_MORE).
            stream = self._streamed_to(streamed_to)
            return [] if stream is None else [Data(stream.ref, data)]
        single = self._single_data_frame(data)
        if single is not None:
            return single
        events: list[Event | _Payload] = []
        max_size = self._h2.max_inbound_frame_size
        streams = self._streams
        frames = self._splitter.feed(data, max_size, self._takes_data)
        for frame_type, flags, stream_id, buffer, start, end in frames:
            if frame_type == DATA_MORE:
                # More of a streamed DATA frame, already counted in full at its
                # DATA_START.
                stream = self._streamed_to(stream_id)
                if stream is not None:
                    events.append(_Payload(stream.ref, buffer, start, end))
                continue
            if frame_type == WINDOW_UPDATE_TYPE and end - start == FRAME_HEADER_SIZE + 4:
                # Ours unless the stream is unknown: h2 knows closed from idle.
                stream = streams.get(stream_id)
                if stream_id == 0 or stream is not None:
                    increment = window_increment(buffer, start + FRAME_HEADER_SIZE)
                    events.extend(self._on_window_update(stream, increment))
                    if self._closed:
                        return events
                    continue
            elif frame_type in (DATA_TYPE, DATA_START):
                if frame_type == DATA_TYPE:
                    length = end - start - FRAME_HEADER_SIZE
                else:
                    length = declared_length(buffer, start)
                # A DATA_START's stream was found fit for the fast path just now.
                fast = self._fast_stream(stream_id)
                if fast is not None and (frame_type == DATA_START or not flags & _SLOW_DATA_FLAGS):
                    # Counted in full even when only its start is here: the
                    # server has sent it all as far as its windows go.
                    if not self._take_credit(*fast, length):
                        events.extend(self._flow_control_violation(stream_id, length))
                        return events
                    if end - start > FRAME_HEADER_SIZE:
                        events.append(_Payload(fast[0].ref, buffer, start + FRAME_HEADER_SIZE, end))
                    continue
                if not self._slow_data_fits(
                    length, streams.get(stream_id), self._h2.streams.get(stream_id)
                ):
                    events.extend(self._flow_control_violation(stream_id, length))
                    return events
            frame = buffer if start == 0 and end == len(buffer) else buffer[start:end]
            if frame_type == GOAWAY_TYPE:
                goaway = parse_goaway(frame)
                if goaway is not None:
                    events.extend(self._on_goaway(goaway))
                    continue
            if self._receive_h2_frames(frame, events):
                return events
        if self._splitter.oversized is not None:
            self._send_goaway_after_failure(h2.errors.ErrorCodes.FRAME_SIZE_ERROR)
            error = HTTPError(
                f"the server sent a frame of {self._splitter.oversized} bytes,"
                f" more than the {max_size} allowed",
                reason="protocol_error",
            )
            events.extend(self._fail_all(error))
            return events
        if self._room_opened:
            self._room_opened = False
            events.extend(self._flush_all())
        return events

    def _single_data_frame(self, data: bytes) -> list[Event] | None:
        """The events of a read that is exactly one plain DATA frame of a fast-path stream.

        That is what a small WebSocket message is, so it skips the general
        loop; ``None`` sends anything else (or a window fault) the long way.
        """
        if len(data) <= FRAME_HEADER_SIZE or self._splitter.pending or data[4]:
            return None
        length = declared_length(data, 0)
        if data[3] != DATA_TYPE or length + FRAME_HEADER_SIZE != len(data):
            return None
        fast = self._fast_stream(int.from_bytes(data[5:9], "big") & 0x7FFFFFFF)
        if (
            fast is None
            or length > self._h2.max_inbound_frame_size
            or not self._take_credit(*fast, length)
        ):
            return None
        return [Data(fast[0].ref, data[FRAME_HEADER_SIZE:])]

    def _streamed_to(self, stream_id: int) -> StreamState | None:
        """The stream more of a streamed DATA frame goes to; None once the caller cancelled it."""
        stream = self._streams.get(stream_id)
        return None if stream is None or stream.response_finished else stream

    def _fast_stream(self, stream_id: int) -> tuple[StreamState, h2.stream.H2Stream] | None:
        """The stream (ours and h2's) if plain DATA on it skips h2 now (see ``_h2_data``)."""
        stream = self._streams.get(stream_id)
        if stream is None or not stream.data_fast_path or stream.response_finished:
            return None
        h2_stream = self._h2.streams.get(stream_id)
        return None if h2_stream is None else (stream, h2_stream)

    def _takes_data(self, stream_id: int) -> bool:
        """Whether a DATA frame cut by a read may be streamed (see ``FrameSplitter``)."""
        return self._fast_stream(stream_id) is not None

    def _take_credit(self, stream: StreamState, h2_stream: h2.stream.H2Stream, length: int) -> bool:
        """Count a fast-path DATA frame against the real windows; False if it does not fit."""
        return self._credit.take(
            stream,
            length,
            self._h2.inbound_flow_control_window,
            h2_stream.inbound_flow_control_window,
        )

    def _receive_h2_frames(self, frames: bytes, events: list[Event | _Payload]) -> bool:
        """Hand whole frames to h2, adding the events they give; True if the connection ended."""
        try:
            for h2_event in self._h2.receive_data(frames):
                events.extend(self._on_h2_event(h2_event))
        except Exception as exc:
            self._send_goaway_after_failure()
            events.extend(self._fail_all(_connection_error(exc)))
            return True
        return self._closed

    def _on_window_update(self, stream: StreamState | None, increment: int) -> list[Event]:
        """Open a send window (RFC 9113 section 6.9); ``stream`` None means the connection's.

        A zero increment or one past 2^31-1 is a connection error on the
        connection window and a stream error on a stream's.
        """
        if stream is None:
            if increment == 0 or increment > MAX_WINDOW - self._send_connection_window:
                code = (
                    h2.errors.ErrorCodes.PROTOCOL_ERROR
                    if increment == 0
                    else h2.errors.ErrorCodes.FLOW_CONTROL_ERROR
                )
                self._send_goaway_after_failure(code)
                return self._fail_all(
                    HTTPError(
                        f"the server sent a connection WINDOW_UPDATE of {increment} ({code.name})",
                        reason="protocol_error",
                    )
                )
            self._send_connection_window += increment
            self._room_opened = True
            return []
        if stream.local_ended:
            return []  # nothing more to send on it: its window no longer matters
        if increment == 0 or increment > MAX_WINDOW - stream.send_window:
            code = (
                h2.errors.ErrorCodes.PROTOCOL_ERROR
                if increment == 0
                else h2.errors.ErrorCodes.FLOW_CONTROL_ERROR
            )
            self._reset(stream, code)
            if stream.response_finished:  # Done already went out: only the upload ends
                stream.discard_pending()
                stream.local_ended = True
                self._forget_if_finished(stream)
                return []
            error = HTTPError(
                f"the server sent a stream WINDOW_UPDATE of {increment} ({code.name})",
                reason="protocol_error",
            )
            return self._finish_with_error(stream, error)
        stream.send_window += increment
        self._room_opened = True
        return []

    def _slow_data_fits(
        self, length: int, stream: StreamState | None, h2_stream: h2.stream.H2Stream | None
    ) -> bool:
        """Check a DATA frame bound for h2 against the real windows h2 cannot see.

        h2's windows exceed the real ones by the fast-path bytes not yet given
        back; h2 checks the frame against its own view afterwards.
        """
        if not self._credit.fits_connection(length, self._h2.inbound_flow_control_window):
            return False
        if stream is None or not stream.unacknowledged or h2_stream is None:
            return True
        return length <= h2_stream.inbound_flow_control_window - stream.unacknowledged

    def _flow_control_violation(self, stream_id: int, length: int) -> list[Event]:
        self._send_goaway_after_failure(h2.errors.ErrorCodes.FLOW_CONTROL_ERROR)
        error = HTTPError(
            f"the server sent {length} bytes of DATA on stream {stream_id},"
            " more than the flow-control window allows (FLOW_CONTROL_ERROR)",
            reason="protocol_error",
        )
        return self._fail_all(error)

    def _on_h2_event(self, event: h2.events.Event) -> list[Event]:
        if isinstance(event, h2.events.DataReceived):
            return self._on_data(event)
        if isinstance(event, h2.events.ResponseReceived):
            return self._on_response(event.stream_id, event.headers or [])
        if isinstance(event, h2.events.TrailersReceived):
            return self._on_trailers(event.stream_id, event.headers or [])
        if isinstance(event, h2.events.StreamEnded):
            return self._on_stream_ended(event.stream_id)
        if isinstance(event, h2.events.StreamReset):
            return self._on_reset(event.stream_id, event.error_code)
        if isinstance(event, h2.events.PingAckReceived):
            ref = self._pings.pop(bytes(event.ping_data or b""), None)
            return [Pong(ref)] if ref is not None else []
        if isinstance(event, h2.events.WindowUpdated):
            self._room_opened = True
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._room_opened = True
            return self._on_settings(event)
        elif isinstance(event, h2.events.ConnectionTerminated):
            # Only reached if h2 itself produced it; GOAWAY frames are intercepted.
            return self._fail_all(
                HTTPError(
                    f"the server ended the connection ({_error_code_name(event.error_code or 0)})",
                    reason="goaway",
                )
            )
        # Informational 1xx, PING (h2 answers it), WINDOW_UPDATE (drained after the
        # frame), SETTINGS ACK, PRIORITY, ALTSVC and unknown frames need no event.
        return []

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> list[Event]:
        self.remote_settings_received = True
        for code, changed in event.changed_settings.items():
            self.server_settings[_setting_name(int(code))] = int(changed.new_value)
        changed_window = event.changed_settings.get(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE)
        if changed_window is None:
            return []
        # RFC 9113 section 6.9.2: the change applies to every open stream's window.
        delta = int(changed_window.new_value) - self._peer_initial_window
        self._peer_initial_window = int(changed_window.new_value)
        for stream in self._streams.values():
            stream.send_window += delta
            if stream.send_window > MAX_WINDOW:
                self._send_goaway_after_failure(h2.errors.ErrorCodes.FLOW_CONTROL_ERROR)
                return self._fail_all(
                    HTTPError(
                        "the server's SETTINGS_INITIAL_WINDOW_SIZE pushed a stream window"
                        " past 2^31-1 (FLOW_CONTROL_ERROR)",
                        reason="protocol_error",
                    )
                )
        return []

    def _on_response(self, stream_id: int, raw_headers: Iterable[Any]) -> list[Event]:
        stream = self._streams.get(stream_id)
        if stream is None:
            return []
        status_text = ""
        headers: list[tuple[str, str]] = []
        for raw_name, raw_value in raw_headers:
            name = _text(raw_name)
            value = _text(raw_value)
            if name == ":status":
                status_text = value
            elif not name.startswith(":"):
                headers.append((name, value))
        if not (len(status_text) == 3 and status_text.isdigit()):
            self._reset(stream, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return self._finish_with_error(
                stream, HTTPError(f"invalid :status {status_text!r}", reason="invalid_response")
            )
        stream.status = int(status_text)
        # h2 checks DATA against content-length: such responses keep to h2.
        stream.data_fast_path = not any(name == "content-length" for name, _ in headers)
        events: list[Event] = [Status(stream.ref, stream.status), Headers(stream.ref, headers)]
        if stream.extended_connect and not 200 <= stream.status < 300:
            # A refused tunnel will never carry our bytes; our half is closed
            # once the response is complete (see _on_stream_ended).
            stream.discard_pending()
            stream.refused = True
        return events

    def _on_trailers(self, stream_id: int, raw_headers: Iterable[Any]) -> list[Event]:
        stream = self._streams.get(stream_id)
        if stream is None:
            return []
        headers = [(_text(n), _text(v)) for n, v in raw_headers if not _text(n).startswith(":")]
        return [Headers(stream.ref, headers)]

    def _on_data(self, event: h2.events.DataReceived) -> list[Event]:
        stream_id = event.stream_id
        length = event.flow_controlled_length or 0
        stream = self._streams.get(stream_id)
        if stream is not None and stream.credit_held:
            self._hold_h2_credit(stream, length)
        else:
            # Handing the bytes to the caller counts as consuming them: give the
            # window back now (h2 batches the WINDOW_UPDATEs).  Failing means the
            # stream is gone, and h2 has already put the connection window right.
            with contextlib.suppress(Exception):
                self._h2.acknowledge_received_data(length, stream_id)
        if stream is None or not event.data:
            return []
        return [Data(stream.ref, bytes(event.data))]

    def _hold_h2_credit(self, stream: StreamState, length: int) -> None:
        """Give back a paused stream's DATA on the connection only; its stream credit waits.

        h2's ``acknowledge_received_data`` gives back both at once, so the
        connection's share goes out here, unbatched (a paused stream takes at
        most one stream window of DATA), and the stream's share is kept for
        ``resume_stream``.  Holding the connection's share too would shrink the
        window every other stream depends on, for good if the stream then ends.
        """
        stream.held_h2_bytes += length
        if length:
            # Failing means h2 already ended the connection: no credit matters.
            with contextlib.suppress(Exception):
                self._h2.increment_flow_control_window(length)

    def _reclaim_h2_credit(self, stream: StreamState, held: int) -> None:
        """Make the stream credit h2 still holds for ``held`` bytes the core's to give back.

        h2 only reopens its stream window by queueing a WINDOW_UPDATE of its
        own.  That frame is taken back out of its output (as in ``_end_stream``)
        and the bytes are added to ``unacknowledged``: h2's window now exceeds
        the real one by them, just as by fast-path bytes, and ``resume_stream``
        gives back everything owed in one frame.
        """
        stream_id = stream.stream_id
        self._out.append(self._h2.data_to_send())  # h2's earlier frames keep their place
        try:
            self._h2.increment_flow_control_window(held, stream_id)
        except Exception:
            return  # h2 closed the stream: no more DATA can use the credit
        h2_frames = self._h2.data_to_send()
        if h2_frames == window_update_frame(stream_id, held):
            stream.unacknowledged += held
        else:  # not what h2 4 does; keep its frames, which carry the credit
            self._out.append(h2_frames)

    def _on_stream_ended(self, stream_id: int) -> list[Event]:
        stream = self._streams.get(stream_id)
        if stream is None:
            return []
        stream.response_finished = True
        if stream.refused and not stream.local_ended:
            # RST_STREAM(NO_ERROR) rather than an empty END_STREAM DATA frame:
            # nothing was sent, and servers (hypercorn) that already forgot the
            # stream choke on DATA for it while they ignore a reset.
            self._reset(stream, h2.errors.ErrorCodes.NO_ERROR)
            stream.local_ended = True
        self._forget_if_finished(stream)  # else the queue drains after this frame
        return [Done(stream.ref)]

    def _on_reset(self, stream_id: int, error_code: int | None) -> list[Event]:
        stream = self._streams.get(stream_id)
        if stream is None:
            return []
        name = _error_code_name(error_code or 0)
        if stream.response_finished:
            # RFC 9113 section 8.1: a NO_ERROR reset after a full response only
            # asks us to stop sending the body.  Nothing is owed to the caller.
            stream.discard_pending()
            stream.local_ended = True
            self._forget_if_finished(stream)
            return []
        error = StreamResetError(f"the server reset the stream ({name})", error_code=name)
        return self._finish_with_error(stream, error)

    def _on_goaway(self, goaway: GoAway) -> list[Event]:
        self._goaway = goaway
        name = _error_code_name(goaway.error_code)
        events: list[Event] = []
        for stream in list(self._streams.values()):
            if stream.stream_id > goaway.last_stream_id:
                error = HTTPError(
                    f"the server is going away ({name}) and did not process this request",
                    reason="goaway",
                )
                events.extend(self._finish_with_error(stream, error))
        return events

    # -- sending --------------------------------------------------------------------------

    def _flush_all(self) -> list[Event]:
        """Drain the queues the last frames opened room for, one frame per stream per round.

        Round-robin rather than oldest-first: a 16 MiB upload must not hold a
        WebSocket on another stream of the same connection behind it.
        """
        events: list[Event] = []
        waiting = [s for s in self._streams.values() if s.has_unsent]
        while waiting:
            still_waiting = []
            alone = len(waiting) == 1
            for stream in waiting:
                try:
                    if alone:  # nobody to take turns with
                        self._send_run(stream)
                    if self._send_next(stream) and stream.has_unsent:
                        still_waiting.append(stream)
                except HTTPError as error:
                    events.extend(self._finish_with_error(stream, error))
                self._forget_if_finished(stream)
            waiting = still_waiting
        return events

    def _flush(self, stream: StreamState) -> None:
        """Send as much of one stream's queue as both windows allow."""
        self._send_run(stream)
        while stream.has_unsent and self._send_next(stream):
            pass

    def _send_run(self, stream: StreamState) -> None:
        """Send full-size DATA frames from the front of the queue, as many as the windows allow.

        The same frames ``_send_next`` would make, built in one loop with one
        shared header: a 1 MiB upload is 64 frames at the usual 16 KiB limit.
        The last bytes of a body that ends are left to ``_send_next``, which
        puts END_STREAM on them.
        """
        if stream.local_ended or self._closed or not stream.pending:
            return
        frame_size = self._h2.max_outbound_frame_size
        count = min(stream.send_window, self._send_connection_window) // frame_size
        if stream.eof_queued:
            count = min(count, (stream.pending_bytes - 1) // frame_size)
        if count < 2:
            return
        chunks = stream.take_run(frame_size, count)
        header = data_frame_header(stream.stream_id, frame_size)
        out = self._out
        for chunk in chunks:
            out += (header, chunk)
        size = len(chunks) * frame_size
        stream.send_window -= size
        self._send_connection_window -= size

    def _send_next(self, stream: StreamState) -> bool:
        """Send the next DATA frame (END_STREAM on the last); False if the windows are shut.

        DATA frames are built here rather than by h2 (h2 spends microseconds per
        frame on objects and state machines); only END_STREAM goes through h2.
        """
        if stream.local_ended or self._closed:
            return False
        if not stream.pending:
            if not stream.eof_queued:
                return False
            self._end_stream(stream, None)
            return True
        room = min(
            stream.send_window, self._send_connection_window, self._h2.max_outbound_frame_size
        )
        if room <= 0:
            return False
        chunk = stream.take(room)
        size = len(chunk)
        stream.send_window -= size
        self._send_connection_window -= size
        if not stream.pending and stream.eof_queued:
            self._end_stream(stream, chunk)
            return True
        # h2's buffer may hold frames queued since (SETTINGS ACK, PING ACK...):
        # none has to precede this one.
        self._out += (data_frame_header(stream.stream_id, size), chunk)
        return True

    def _end_stream(self, stream: StreamState, last_chunk: memoryview | None) -> None:
        """Send END_STREAM through h2, so that its stream state follows, with ``last_chunk``.

        h2 queues END_STREAM as an empty DATA frame.  With a last chunk, that
        frame is taken back out of h2's output and replaced by one DATA frame
        carrying the chunk and the flag: hypercorn 0.18 fails on a separate
        empty END_STREAM after a WebSocket Close.
        """
        stream_id = stream.stream_id
        out = self._out
        out.append(self._h2.data_to_send())
        try:
            self._h2.end_stream(stream_id)
        except Exception as exc:
            raise HTTPError(f"cannot end the stream: {exc}", reason="stream_closed") from exc
        stream.local_ended = True
        if last_chunk is None:
            return
        size = len(last_chunk)
        h2_frames = self._h2.data_to_send()
        if h2_frames == data_frame_header(stream_id, 0, END_STREAM_FLAG):
            out += (data_frame_header(stream_id, size, END_STREAM_FLAG), last_chunk)
        else:  # not what h2 4 does; keep its frames, after our chunk
            out += (data_frame_header(stream_id, size), last_chunk, h2_frames)

    # -- bookkeeping ----------------------------------------------------------------------

    def _check_can_open_stream(self) -> None:
        if self._closed:
            raise HTTPError("the connection is closed", reason="closed")
        if self._goaway is not None:
            raise HTTPError(
                "the server sent GOAWAY: open a new connection for new requests", reason="goaway"
            )
        limit = self._h2.remote_settings.max_concurrent_streams
        if self._h2.open_outbound_streams >= limit:
            raise HTTPError(
                f"the server allows {limit} concurrent streams and all are in use;"
                " wait for one to finish",
                reason="too_many_streams",
            )

    def _stream_for(self, ref: Ref) -> StreamState:
        stream_id = self._stream_ids.get(ref)
        stream = self._streams.get(stream_id) if stream_id is not None else None
        if stream is None:
            raise HTTPError(
                f"{ref!r} is not an open request on this connection", reason="unknown_ref"
            )
        return stream

    def _reset(self, stream: StreamState, code: h2.errors.ErrorCodes) -> None:
        # Failing means h2 already closed the stream: nothing to reset.
        with contextlib.suppress(Exception):
            self._h2.reset_stream(stream.stream_id, code)

    def _send_goaway_after_failure(
        self, code: h2.errors.ErrorCodes = h2.errors.ErrorCodes.PROTOCOL_ERROR
    ) -> None:
        """h2 queues GOAWAY itself for protocol errors; make sure other failures send one too."""
        if self._h2.state_machine.state is h2.connection.ConnectionState.CLOSED:
            return
        # Failing means nothing more can be sent; the shell closes the socket anyway.
        with contextlib.suppress(Exception):
            self._h2.close_connection(error_code=code)

    def _finish_with_error(self, stream: StreamState, error: MintError) -> list[Event]:
        stream.discard_pending()
        stream.response_finished = True
        stream.local_ended = True
        self._forget_if_finished(stream)
        return [Error(stream.ref, error)]

    def _forget_if_finished(self, stream: StreamState) -> None:
        if stream.finished:
            self._streams.pop(stream.stream_id, None)
            self._stream_ids.pop(stream.ref, None)

    def _fail_all(self, error: MintError) -> list[Event]:
        """End the connection: every unfinished request gets ``Error(ref, error)``."""
        events: list[Event] = []
        for stream in list(self._streams.values()):
            if not stream.response_finished:
                events.append(Error(stream.ref, error))
        self._streams.clear()
        self._stream_ids.clear()
        self._pings.clear()
        self._closed = True
        return events


def _request_token(value: object, what: str) -> bytes:
    """Encode a request line part; refuse what no server could parse (RFC 9113 section 8.3)."""
    if not isinstance(value, str) or not value:
        raise HTTPError(f"{what} must be a non-empty str, got {value!r}", reason="invalid_request")
    if not value.isascii() or not value.isprintable() or " " in value:
        raise HTTPError(
            f"{what} must be printable ASCII without spaces, got {value!r}",
            reason="invalid_request",
        )
    return value.encode("ascii")


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode("latin-1")


def _connection_error(exc: Exception) -> HTTPError:
    code = getattr(exc, "error_code", None)
    suffix = f" ({_error_code_name(int(code))})" if code is not None else ""
    return HTTPError(
        f"HTTP/2 protocol error from the server{suffix}: {exc}", reason="protocol_error"
    )


def encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Check and encode a caller's header pairs for HTTP/2 or HTTP/3 (their rules are the same).

    Connection-specific headers are dropped (RFC 9113 section 8.2.2, RFC 9114
    section 4.2): they mean nothing on a multiplexed connection.
    """
    encoded: list[tuple[bytes, bytes]] = []
    for pair in headers:
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], str)
        ):
            raise HTTPError(
                f"headers must be (str, str) pairs, got {pair!r}", reason="invalid_request"
            )
        name, value = pair
        lower = name.lower()
        if lower in _CONNECTION_SPECIFIC_HEADERS:
            continue
        if lower == "te" and value.strip().lower() != "trailers":
            continue  # RFC 9113 section 8.2.2: TE may only say "trailers"
        if not lower or lower.startswith(":") or _FORBIDDEN_VALUE_CHARS & set(lower + value):
            raise HTTPError(f"invalid header {name!r}: {value!r}", reason="invalid_request")
        try:
            encoded.append((lower.encode("ascii"), value.encode("latin-1")))
        except UnicodeEncodeError as exc:
            raise HTTPError(
                f"header {name!r} cannot be encoded as latin-1", reason="invalid_request"
            ) from exc
    return encoded


__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_RECEIVE_WINDOW",
    "HTTP2Core",
    "StreamResetError",
    "encode_headers",
]


class _Payload:
    """DATA bytes for ``ref`` at ``buffer[start:end]``, not yet copied out of the read.

    The core notes where payloads lie and copies them out once, in
    ``_data_events``: a run of frames of one stream becomes one ``Data`` for
    one copy, where slicing each frame and then joining the slices cost two.
    """

    __slots__ = ("buffer", "end", "ref", "start")

    def __init__(self, ref: Ref, buffer: bytes, start: int, end: int) -> None:
        self.ref = ref
        self.buffer = buffer
        self.start = start
        self.end = end

    def data(self) -> bytes:
        buffer = self.buffer
        if self.start == 0 and self.end == len(buffer):
            return buffer  # a whole read of payload: no copy at all
        return buffer[self.start : self.end]

    def view(self) -> memoryview:
        return memoryview(self.buffer)[self.start : self.end]


def _data_events(items: Sequence[Event | _Payload]) -> list[Event]:
    """Turn payload positions into ``Data``, merging runs of one ref into one event.

    A read often holds several DATA frames of the same stream; handing them
    over as one chunk saves the caller a decode call per frame, which is much
    of what a large WebSocket message costs on top of HTTP/1.1.
    """
    if len(items) == 1:
        item = items[0]
        return [Data(item.ref, item.data()) if isinstance(item, _Payload) else item]
    events: list[Event] = []
    run: list[bytes | memoryview] = []
    run_ref: Ref | None = None
    for item in items:
        if isinstance(item, _Payload):
            ref = item.ref
            piece: bytes | memoryview = item.view()
        elif isinstance(item, Data):
            ref = item.ref
            piece = item.data
        else:
            if run:
                events.append(_joined(run_ref, run))
                run = []
            events.append(item)
            continue
        if run and ref is not run_ref:
            events.append(_joined(run_ref, run))
            run = []
        run_ref = ref
        run.append(piece)
    if run:
        events.append(_joined(run_ref, run))
    return events


def _joined(ref: Ref | None, pieces: list[bytes | memoryview]) -> Data:
    assert ref is not None
    if len(pieces) == 1:
        return Data(ref, bytes(pieces[0]))  # bytes() of bytes is the object itself
    return Data(ref, b"".join(pieces))
