"""A WebSocket session's protocol state, free of I/O: what both shells share.

A session is a ``mint.websocket.WebSocket`` codec plus the policy a user
expects from a client library: received messages queued (bounded), pings
answered, our pings matched with their pongs, the closing handshake followed
through, and every way the conversation can end turned into one closed
error.  The state machine never reads, writes, sleeps or looks at a clock:
the shells pass ``now`` in and write what ``take_outgoing`` hands them, so the
same code serves the blocking and the asyncio layers and is tested with bytes.

States, in order (a session only moves forward):

* OPEN: messages flow both ways.
* CLOSING: one Close frame went by (ours or the server's); data already
  received is still delivered, nothing new may be sent.
* CLOSED: the closing handshake finished, or the session failed; ``error``
  says which (``ConnectionClosedOK`` or ``ConnectionClosedError``).

The stream under the session (an HTTP/2 stream or an HTTP/1.1 socket) ends
on its own schedule: ``ended`` records that, and the shell releases it once
the session is CLOSED.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from collections.abc import Iterable, Iterator

from mint.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    MintError,
    ProtocolError,
    WebSocketError,
)
from mint.http import Ref
from mint.websocket import Binary, Close, Frame, Ping, Pong, Text, WebSocket
from mint.websocket.extensions import Extension

Message = str | bytes

#: Close codes after which the conversation counts as finished, not broken
#: (1005: the server's Close carried no code).
_OK_CODES = frozenset({1000, 1001, 1005})
#: RFC 6455 section 7.4.1: 1006 is never sent, it says "no Close frame arrived".
ABNORMAL_CLOSURE = 1006


class SessionStatus(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


#: ``SessionStatus.OPEN`` in one lookup rather than two, for ``receive`` (per read).
_OPEN = SessionStatus.OPEN


class SessionState:
    """One WebSocket session's state; every method is called with the shell's lock held."""

    def __init__(
        self,
        ws: WebSocket,
        ref: Ref,
        *,
        max_queue: int,
        ping_interval: float | None,
        ping_timeout: float | None,
        now: float,
    ) -> None:
        self.ws = ws
        self.ref = ref
        self.max_queue = max_queue
        #: Reading starts again once the queue is down to this (see ``queue_low``).
        self.low_water = max_queue // 4
        self.messages: deque[Message] = deque()
        self.status = SessionStatus.OPEN
        #: Set when the session reached CLOSED: what ``recv`` raises once the queue is empty.
        self.error: ConnectionClosed | None = None
        #: The tunnel is over (HTTP/2 END_STREAM or reset, HTTP/1.1 EOF, connection lost).
        self.ended = False
        #: The receive queue is full and the shell stopped reading for this session.
        self.paused = False
        #: Bytes that arrived while paused, kept as they came: decoding them
        #: could inflate a stream window's worth of compressed data a
        #: thousandfold, so memory is bounded by the window, not the ratio.
        self._held: list[bytes] = []
        self._outgoing: list[bytes] = []
        self._end_after_outgoing = False
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        #: Our pings waiting for a pong: payload -> time sent, oldest first.
        self._pings: dict[bytes, float] = {}
        #: Answered pings: payload -> round-trip time, until the waiter takes it.
        self._latencies: dict[bytes, float] = {}
        self._keepalive: bytes | None = None
        self._next_keepalive = None if ping_interval is None else now + ping_interval

    # -- what the shell asks -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.status is SessionStatus.CLOSED

    @property
    def can_send(self) -> bool:
        return self.status is SessionStatus.OPEN

    @property
    def queue_full(self) -> bool:
        return len(self.messages) >= self.max_queue

    @property
    def queue_low(self) -> bool:
        """Room to read again: a low-water mark, so a pause does not flip per message."""
        return len(self.messages) <= self.low_water

    def close_finished(self, http2: bool) -> bool:
        """Whether ``close`` may stop waiting: the session is closed and its stream done with.

        Over HTTP/1.1 the server closes the TCP connection after the closing
        handshake (RFC 6455 section 7.1.1), so that end is waited for.  Over
        HTTP/2, once the server's Close arrived nothing more is owed on the
        stream: some servers (hypercorn) never end their half, and waiting
        for that END_STREAM would make every close last ``close_timeout``;
        the shell cancels the stream instead.
        """
        return self.closed and (self.ended or (http2 and self.ws.close_received))

    def has_outgoing(self) -> bool:
        return bool(self._outgoing)

    def take_outgoing(self) -> tuple[bytes, bool]:
        """The frames to write now, and whether our half of the stream ends after them.

        The half-close rides on our Close frame: RFC 8441 section 5 makes
        END_STREAM the tunnel's orderly end, and on HTTP/1.1 the shell keeps
        the socket for the server's closing move.
        """
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        end, self._end_after_outgoing = self._end_after_outgoing, False
        return data, end

    def next_message(self) -> Message | None:
        return self.messages.popleft() if self.messages else None

    def raise_if_closed(self) -> None:
        """Raise the closed error once nothing received is left to hand out."""
        if self.error is not None and not self.messages:
            raise _fresh(self.error)

    # -- sending -------------------------------------------------------------------------

    def encode_message(self, message: Message | bytearray | memoryview) -> bytes:
        if self.status is not SessionStatus.OPEN:
            self._check_can_send()
        if isinstance(message, str):
            return self.ws.encode_text(message)  # no Text object: it costs as much as encoding
        if isinstance(message, (bytes, bytearray, memoryview)):
            return self.ws.encode_binary(message)
        raise WebSocketError(
            f"send takes str, bytes or an iterable of them, not {type(message).__name__}",
            reason="invalid_argument",
        )

    def encode_fragment(self, piece: object, kind: type, *, fin: bool) -> bytes:
        """One frame of a message sent in pieces; ``kind`` is the first piece's type.

        Every piece must be of that type: a message is text or binary, not both.
        """
        self._check_can_send()
        if kind is str and isinstance(piece, str):
            return self.ws.encode(Text(piece, fin=fin))
        if kind is bytes and isinstance(piece, (bytes, bytearray, memoryview)):
            return self.ws.encode(Binary(bytes(piece), fin=fin))
        raise WebSocketError(
            f"every fragment of a {kind.__name__} message must be {kind.__name__},"
            f" not {type(piece).__name__}",
            reason="invalid_argument",
        )

    def start_ping(self, now: float) -> tuple[bytes, bytes]:
        """A new ping's payload and frame; the payload is what ``latency`` is asked with."""
        self._check_can_send()
        payload = os.urandom(4)
        while payload in self._pings:
            payload = os.urandom(4)
        self._pings[payload] = now
        return payload, self.ws.encode(Ping(payload))

    def answered(self, payload: bytes) -> bool:
        return payload in self._latencies

    def latency(self, payload: bytes) -> float | None:
        """The round trip of an answered ping (taken once), else None."""
        return self._latencies.pop(payload, None)

    def forget_ping(self, payload: bytes) -> None:
        self._pings.pop(payload, None)
        self._latencies.pop(payload, None)

    def start_close(self, code: int, reason: str) -> bytes:
        """Our Close frame; the session is CLOSING until the server's answer."""
        if self.ws.close_sent or self.status is SessionStatus.CLOSED:
            return b""
        frame = self.ws.encode(Close(code, reason))
        if self.ws.close_received:
            self._finish_handshake()
        else:
            self.status = SessionStatus.CLOSING
        return frame

    def _check_can_send(self) -> None:
        if self.status is SessionStatus.OPEN:
            return
        if self.error is not None:
            raise _fresh(self.error)
        raise ConnectionClosedOK(
            "the session is closing: nothing more can be sent",
            close_code=ABNORMAL_CLOSURE
            if self.ws.close_frame is None
            else self.ws.close_frame.code or 1005,
            reason="closing",
        )

    # -- receiving -----------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> bool:
        """Decode the server's bytes; messages are queued, pongs and close replies staged.

        Returns whether the shell has nothing to do after this read: no frame
        staged, the session still open, room in its queue.  The short way
        asks after every read; one call answers both (this runs per message).
        """
        messages = self.messages
        if self.status is _OPEN:
            if self.paused or self._held or len(messages) >= self.max_queue:  # ``queue_full``
                # Full: keep the bytes as they came until the caller makes room.
                self._held.append(data)
                return False
        elif self.status is SessionStatus.CLOSED and self.ws.close_received:
            return False  # anything after the server's Close is no longer part of the conversation
        elif self.paused:
            self._held.append(data)
            return False
        try:
            frames = self.ws.decode(data)
        except ProtocolError as exc:
            self._decode_failed(exc, now)
            return False
        for frame in frames:
            kind = type(frame)
            if kind is Text or kind is Binary:  # ``_on_frames``, inline for data frames
                messages.append(frame.data)  # type: ignore[union-attr]
            else:
                self._on_frames([frame], now)
        return not self._outgoing and self.status is _OPEN and len(messages) < self.max_queue

    def _decode(self, data: bytes, now: float) -> None:
        """Decode ``data`` however full the queue is: bytes held back, once nothing more comes."""
        try:
            frames = self.ws.decode(data)
        except ProtocolError as exc:
            self._decode_failed(exc, now)
            return
        self._on_frames(frames, now)

    def _decode_failed(self, exc: ProtocolError, now: float) -> None:
        self._on_frames(exc.frames, now)  # what arrived intact is still delivered
        self.fail(
            exc.close_code,
            f"the server broke the WebSocket protocol: {exc}",
            reason=exc.reason,
            cause=exc,
        )

    def _on_frames(self, frames: list[Frame], now: float) -> None:
        for frame in frames:
            if isinstance(frame, (Text, Binary)):
                self.messages.append(frame.data)
            elif isinstance(frame, Ping):
                if not self.ws.close_sent:
                    self._outgoing.append(self.ws.encode(Pong(frame.data)))
            elif isinstance(frame, Pong):
                self._on_pong(frame.data, now)
            else:
                self._on_close(frame)

    def _on_pong(self, payload: bytes, now: float) -> None:
        """A pong answers its ping and all earlier ones (a peer may answer the last only)."""
        if payload not in self._pings:
            return  # unsolicited: a heartbeat, which RFC 6455 allows and asks us to ignore
        for sent_payload in list(self._pings):
            sent_at = self._pings.pop(sent_payload)
            self._latencies[sent_payload] = now - sent_at
            if sent_payload == self._keepalive:
                self._keepalive = None
                self._latencies.pop(sent_payload)
            if sent_payload == payload:
                break

    def _on_close(self, frame: Close) -> None:
        if self.ws.close_sent:
            self._finish_handshake()
            return
        # Echo the code (RFC 6455 section 5.5.1), then the handshake is done from our side.
        echo = Close(frame.code, "") if frame.code is not None else Close(None)
        self._outgoing.append(self.ws.encode(echo))
        self._end_after_outgoing = True
        self._finish_handshake()

    def _finish_handshake(self) -> None:
        frame = self.ws.close_frame
        assert frame is not None
        code = 1005 if frame.code is None else frame.code
        if code in _OK_CODES:
            error: ConnectionClosed = ConnectionClosedOK(
                f"the session was closed ({code}{': ' + frame.reason if frame.reason else ''})",
                close_code=code,
                close_reason=frame.reason,
                reason="closed",
            )
        else:
            error = ConnectionClosedError(
                f"the server closed the session with code {code}"
                f"{': ' + frame.reason if frame.reason else ''}",
                close_code=code,
                close_reason=frame.reason,
                reason="closed_with_error",
            )
        self._set_closed(error)

    def receive_end(self, failure: MintError | None, now: float) -> None:
        """The stream under the session ended: END_STREAM, a reset, EOF or a lost connection."""
        self.ended = True
        if self._held:
            # Nothing more can come: what was held back is decoded now, so no
            # message (nor a clean Close) that arrived before the end is lost.
            held, self._held = self._held, []
            self.paused = False
            self._decode(b"".join(held), now)
        if self.status is SessionStatus.CLOSED:
            return
        if failure is None:
            message = "the stream ended without a closing handshake"
            reason = "abnormal_closure"
        else:
            message = f"the connection failed without a closing handshake: {failure}"
            reason = failure.reason
        error = ConnectionClosedError(message, close_code=ABNORMAL_CLOSURE, reason=reason)
        if failure is not None:
            error.__cause__ = failure
        self._set_closed(error)

    def fail(
        self, code: int, message: str, *, reason: str, cause: BaseException | None = None
    ) -> None:
        """End the session on our side: a Close with ``code`` staged, the stream to be dropped."""
        if self.status is SessionStatus.CLOSED:
            return
        if not self.ws.close_sent:
            try:
                self._outgoing.append(self.ws.encode(Close(code, "")))
                self._end_after_outgoing = True
            except MintError:
                pass  # a failed codec sends nothing more; the stream is dropped all the same
        error = ConnectionClosedError(message, close_code=ABNORMAL_CLOSURE, reason=reason)
        if cause is not None:
            error.__cause__ = cause
        self._set_closed(error)

    def _set_closed(self, error: ConnectionClosed) -> None:
        self.status = SessionStatus.CLOSED
        self.error = error
        self._pings.clear()
        self._keepalive = None
        self._next_keepalive = None

    # -- keepalive -----------------------------------------------------------------------

    def keepalive_deadline(self) -> float | None:
        """When the shell must next look at this session's keepalive (None: never)."""
        if self.status is not SessionStatus.OPEN or self.paused:
            return None
        if self._keepalive is not None:
            sent_at = self._pings.get(self._keepalive)
            if sent_at is not None and self._ping_timeout is not None:
                return sent_at + self._ping_timeout
            return None
        return self._next_keepalive

    def keepalive(self, now: float) -> None:
        """Stage the ping that is due, or fail the session whose last ping went unanswered.

        A paused session is left alone: its server may be blocked by our own
        flow control, which is not a sign of a dead peer.
        """
        if self.status is not SessionStatus.OPEN or self.paused:
            return
        if self._keepalive is not None:
            sent_at = self._pings.get(self._keepalive)
            if (
                sent_at is not None
                and self._ping_timeout is not None
                and now - sent_at >= self._ping_timeout
            ):
                self.fail(
                    1011,
                    f"keepalive ping unanswered after {self._ping_timeout}s: the connection is"
                    " considered dead",
                    reason="keepalive_timeout",
                )
            return
        if self._next_keepalive is not None and now >= self._next_keepalive:
            payload, frame = self.start_ping(now)
            self._keepalive = payload
            self._outgoing.append(frame)
            assert self._ping_interval is not None
            self._next_keepalive = now + self._ping_interval

    def resume(self, now: float) -> bool:
        """Reading starts again; False if the bytes held meanwhile filled the queue once more.

        Held bytes are decoded first (in order, before anything newer); if
        they fill the queue the session stays paused and the shell keeps the
        stream's credit back.  A keepalive ping's clock restarts: it could
        not be answered while paused.
        """
        self.paused = False
        if self._keepalive is not None and self._keepalive in self._pings:
            self._pings[self._keepalive] = now
        held, self._held = self._held, []
        if held:
            self.receive(b"".join(held), now)
        if self.queue_full and self.can_send:
            self.paused = True
            return False
        return True


class SessionFacts:
    """The read-only side of a session, the same for the blocking and asyncio shells."""

    def __init__(
        self, state: SessionState, response_headers: list[tuple[str, str]], http_version: str
    ) -> None:
        self._state = state
        self._response_headers = response_headers
        self._http_version = http_version

    @property
    def http_version(self) -> str:
        """ "HTTP/1.1" (RFC 6455 upgrade) or "HTTP/2" (RFC 8441 extended CONNECT)."""
        return self._http_version

    @property
    def subprotocol(self) -> str | None:
        return self._state.ws.subprotocol

    @property
    def extensions(self) -> list[Extension]:
        """The negotiated extensions (``PerMessageDeflate`` unless turned off or refused)."""
        return self._state.ws.extensions

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        return list(self._response_headers)

    @property
    def closed(self) -> bool:
        return self._state.closed

    @property
    def close_code(self) -> int | None:
        """The server's close code (1005: none given, 1006: no Close frame); None while open."""
        error = self._state.error
        return None if error is None else error.close_code

    @property
    def close_reason(self) -> str | None:
        error = self._state.error
        return None if error is None else error.close_reason

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state.status.value} {self._http_version}>"


def fragments(message: Iterable[Message]) -> Iterator[tuple[Message, type, bool]]:
    """The pieces of a fragmented message with their kind and whether each is the last.

    Looks one piece ahead, so a message produced piece by piece (a file, a
    generator) is never held whole.  The caller's iterable runs in the
    caller's context, never under a shell's lock.
    """
    if isinstance(message, (str, bytes, bytearray, memoryview)) or not isinstance(
        message, Iterable
    ):
        raise WebSocketError(
            f"send takes str, bytes or an iterable of them, not {type(message).__name__}",
            reason="invalid_argument",
        )
    pieces = iter(message)
    current = next(pieces, None)
    if current is None:
        return
    kind: type = str if isinstance(current, str) else bytes
    for following in pieces:
        yield current, kind, False
        current = following
    yield current, kind, True


def _fresh(error: ConnectionClosed) -> ConnectionClosed:
    """A copy to raise: raising one stored instance again and again piles up tracebacks."""
    copy = type(error)(
        str(error),
        close_code=error.close_code,
        close_reason=error.close_reason,
        reason=error.reason,
    )
    copy.__cause__ = error.__cause__
    return copy


__all__ = [
    "ABNORMAL_CLOSURE",
    "Message",
    "SessionFacts",
    "SessionState",
    "SessionStatus",
    "fragments",
]
