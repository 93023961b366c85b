"""The HTTP/3 sans-I/O core: requests and RFC 9220 WebSocket tunnels over QUIC, on aioquic.

aioquic's ``QuicConnection`` does QUIC (TLS 1.3, loss recovery, congestion
and flow control) and its ``H3Connection`` the HTTP/3 framing and QPACK.
This module gives them the shape of mint's other cores: refs instead of
stream ids, the same ``Status``/``Headers``/``Data``/``Done``/``Error``/``Pong``
events, the same checks before an extended CONNECT (RFC 9220 reuses RFC
8441's SETTINGS_ENABLE_CONNECT_PROTOCOL, 0x08, in HTTP/3's SETTINGS), and the
same error reasons.

Why the byte interface differs from ``HTTPCore``'s
---------------------------------------------------
QUIC is made of datagrams, each with a peer address, and of timers: loss
detection, delayed ACKs and the idle timeout must fire even when nothing
arrives.  A byte-stream ``receive_data``/``data_to_send`` pair cannot carry
datagram boundaries, and a core that armed its own timer would no longer be
process-less.  So this core grows a datagram variant of the contract:

* ``receive_datagram(data, addr, now) -> events``: one datagram read from the socket;
* ``datagrams_to_send(now) -> [(bytes, addr), ...]``: what the shell sends after every call;
* ``next_deadline() -> float | None``: when ``handle_deadline`` must be called at the latest;
* ``handle_deadline(now) -> events``: the shell's wait reached that deadline.

``now`` is always the caller's clock (any monotonic clock, used consistently
for one connection): the core reads none.  ``receive_data(b"")`` keeps its
meaning (the shell lost its socket: every request fails); given bytes, it and
``data_to_send`` raise ``HTTPError(reason="not_supported")`` rather than
silently dropping what a TCP-minded caller meant to send.

Flow control stays inside aioquic, which buffers whatever a stream is given.
``send_window(ref)`` tells how much more the server's stream window takes,
counting what is still buffered, so a writer that waits for it to be
positive (as the session layer does on HTTP/2) buffers at most one window.
``pause_stream(ref)`` stops the credit the other way (see ``_PausableQuic``).
The server's GOAWAY, which aioquic drops, is read beside it (``_h3_control``).

This module imports aioquic at the top: ``mint.http._setup`` imports it only
when HTTP/3 is asked for, so the rest of mint works without the extra.
"""

from __future__ import annotations

import contextlib
import itertools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection, Setting
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import NetworkAddress, QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    PingAcknowledged,
    QuicEvent,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.recovery import QuicPacketSpace
from aioquic.quic.stream import QuicStream

from mint.errors import HTTPError, MintError, TransportError
from mint.http._h3_control import GoawayWatcher
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
from mint.http.http2 import StreamResetError, encode_headers

DEFAULT_STREAM_WINDOW = 1 << 20
"""Our receive window per stream (QUIC's initial_max_stream_data)."""

DEFAULT_CONNECTION_WINDOW = 16 << 20
"""Our receive window for the whole connection: room for many streams at once."""

DEFAULT_IDLE_TIMEOUT = 60.0

DEFAULT_MAX_DATAGRAM_SIZE = 1200
"""The QUIC packets we send: 1200 bytes fit every path QUIC may run on (RFC 9000 section 14)."""

#: Larger packets mean fewer of them (aioquic's cost is per packet); past
#: this aioquic 1.x fails to parse its own frames on loopback.
MAX_DATAGRAM_SIZE = 16384

#: RFC 9001 section 4.8: a TLS alert becomes QUIC error 0x100 + alert.
_CRYPTO_ERRORS = range(0x100, 0x200)


class _PausableQuic(QuicConnection):
    """aioquic's connection, able to hold back one stream's receive credit.

    aioquic raises a stream's MAX_STREAM_DATA whenever the peer has used half
    of it, whether or not anyone reads what arrived: a reader that falls
    behind would queue without bound.  For the streams in ``paused`` no
    MAX_STREAM_DATA is written, so the server may send at most what is left of
    the window it was given, then waits (RFC 9000 section 4.1); the credit
    goes out at the next packet after the stream leaves ``paused``.  The
    connection's own credit (MAX_DATA) keeps flowing, so the other streams
    are not slowed.  ``_write_stream_limits`` is aioquic's (1.7, pinned) only
    place that raises a stream's credit.
    """

    def __init__(self, *, configuration: QuicConfiguration) -> None:
        super().__init__(configuration=configuration)
        self.paused: set[int] = set()

    def _write_stream_limits(
        self, builder: QuicPacketBuilder, space: QuicPacketSpace, stream: QuicStream
    ) -> None:
        if stream.stream_id not in self.paused:
            super()._write_stream_limits(builder, space, stream)


@dataclass(slots=True)
class _Stream:
    ref: Ref
    stream_id: int
    status_seen: bool = False
    local_ended: bool = False
    remote_ended: bool = False


def _error_code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"0x{code:x}"


def _setting_name(code: int) -> str:
    try:
        return Setting(code).name.lower()
    except ValueError:
        return f"unknown_0x{code:x}"


def client_configuration(
    server_name: str,
    *,
    cafile: str | None = None,
    verify: bool = True,
    stream_window: int = DEFAULT_STREAM_WINDOW,
    connection_window: int = DEFAULT_CONNECTION_WINDOW,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
) -> QuicConfiguration:
    """aioquic's client settings with mint's defaults: ALPN h3, certificates verified.

    aioquic runs its own TLS 1.3, so an ``ssl.SSLContext`` cannot configure
    it; ``cafile`` and ``verify`` are the knobs that carry over.  Without a
    ``cafile`` the system's default CA locations are trusted, as
    ``ssl.create_default_context`` would.
    """
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=list(H3_ALPN),
        server_name=server_name,
        max_stream_data=stream_window,
        max_data=connection_window,
        idle_timeout=idle_timeout,
        max_datagram_size=max_datagram_size,
        verify_mode=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE,
    )
    if verify:
        if cafile is not None:
            try:
                configuration.load_verify_locations(cafile=cafile)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise TransportError(f"cannot load cafile {cafile!r}: {exc}", reason="tls") from exc
        else:
            paths = ssl.get_default_verify_paths()
            configuration.cafile = paths.cafile
            configuration.capath = paths.capath
    return configuration


class HTTP3Core(HTTPCore):
    """One HTTP/3 client connection's state; datagrams in, events out, no I/O, no clock.

    ``start(addr, now)`` queues the first handshake datagrams; the shell then
    sends ``datagrams_to_send(now)`` and keeps feeding datagrams and deadlines
    until ``remote_settings_received`` (the server's SETTINGS decide whether
    extended CONNECT is possible, as on HTTP/2).
    """

    version = "HTTP/3"

    def __init__(self, authority: str, configuration: QuicConfiguration) -> None:
        self.authority = authority
        self._authority_bytes = _request_token(authority, "authority")
        self._quic = _PausableQuic(configuration=configuration)
        self._h3: H3Connection | None = None
        self._streams: dict[int, _Stream] = {}
        self._stream_ids: dict[Ref, int] = {}
        self._pings: dict[int, Ref] = {}
        self._ping_counter = itertools.count(1)
        self._closed = False
        self._started = False
        self._goaway_watcher = GoawayWatcher()
        #: The stream ID of the server's GOAWAY: requests from it on were not processed.
        self._goaway_id: int | None = None
        #: Why the connection ended, once it did: what ``connect`` reports.
        self.failure: MintError | None = None
        self.alpn_protocol: str | None = None
        self.handshake_complete = False

    # -- state ----------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        """False once closed, failed, or drained after the server's GOAWAY (as on HTTP/2)."""
        if self._closed:
            return False
        return not (self._goaway_id is not None and not self._streams)

    @property
    def goaway_received(self) -> bool:
        """The server is shutting down: no new request goes on this connection."""
        return self._goaway_id is not None

    @property
    def remote_settings_received(self) -> bool:
        """The server's HTTP/3 SETTINGS arrived (its control stream's first frame)."""
        return self._h3 is not None and self._h3.received_settings is not None

    @property
    def server_settings(self) -> dict[str, int]:
        received = self._h3.received_settings if self._h3 is not None else None
        return {_setting_name(code): value for code, value in (received or {}).items()}

    @property
    def extended_connect_enabled(self) -> bool:
        """Whether the server announced SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 9220)."""
        received = self._h3.received_settings if self._h3 is not None else None
        return received is not None and received.get(Setting.ENABLE_CONNECT_PROTOCOL) == 1

    def send_window(self, ref: Ref) -> int:
        """Bytes the server's window for ``ref`` still takes, minus what aioquic still holds.

        aioquic accepts any write and buffers it; this is the bound a careful
        writer keeps to (write only while it is positive), so that a slow
        server costs at most one stream window of memory.  It reads aioquic's
        stream state, which it exposes as attributes without documenting.
        """
        stream = self._stream_for(ref)
        if stream.local_ended or self._closed:
            return 0
        quic_stream = self._quic._streams.get(stream.stream_id)
        if quic_stream is None:
            return 0
        written: int = quic_stream.sender._buffer_stop
        return max(0, quic_stream.max_stream_data_remote - written)

    # -- the datagram contract --------------------------------------------------------------

    def start(self, addr: NetworkAddress, now: float) -> None:
        """Begin the QUIC handshake towards ``addr`` (the shell's connected peer address)."""
        if self._started:
            raise HTTPError("the connection was already started", reason="invalid_argument")
        self._started = True
        self._quic.connect(addr, now=now)
        self._h3 = H3Connection(self._quic)

    def receive_datagram(self, data: bytes, addr: NetworkAddress, now: float) -> list[Event]:
        """Feed one datagram read from the socket; returns the events it completed."""
        if self._closed:
            return []
        self._quic.receive_datagram(data, addr, now=now)
        return self._quic_events()

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkAddress]]:
        """The datagrams the shell must send now; call after every other call, as QUIC paces."""
        return self._quic.datagrams_to_send(now=now)

    def next_deadline(self) -> float | None:
        """When, on the caller's clock, ``handle_deadline`` is due; None when nothing can fire."""
        if self._closed:
            return None  # closing: the shell sends the CONNECTION_CLOSE and lets go
        return self._quic.get_timer()

    def handle_deadline(self, now: float) -> list[Event]:
        """The deadline passed: retransmit, acknowledge, or end an idle connection.

        Safe to call at any time (nothing fires before its deadline), and it
        returns events aioquic queued meanwhile, such as the end of a
        connection noticed while sending: the shells call it on every wake-up.
        """
        deadline = self._quic.get_timer()
        if deadline is not None and now >= deadline:
            self._quic.handle_timer(now=now)
        return self._quic_events()

    def receive_data(self, data: bytes) -> list[Event]:
        """``b""`` reports a lost socket (every request fails); bytes are refused (see module)."""
        if data:
            raise HTTPError(
                "HTTP/3 runs over datagrams: feed them with receive_datagram(data, addr, now)",
                reason="not_supported",
            )
        if self._closed:
            return []
        return self._fail_all(TransportError("the UDP socket was lost", reason="closed"))

    def data_to_send(self) -> bytes:
        raise HTTPError(
            "HTTP/3 runs over datagrams: send datagrams_to_send(now)", reason="not_supported"
        )

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
        """Open a request stream; with ``protocol`` (RFC 9220) it stays open as a tunnel.

        Raises ``HTTPError`` with the HTTP/2 core's reasons: ``closed``,
        ``settings_pending``, ``extended_connect_disabled``, ``invalid_request``, and
        ``goaway`` once the server sent GOAWAY.
        """
        h3 = self._check_open()
        if self._goaway_id is not None:
            raise HTTPError(
                "the server sent GOAWAY: open a new connection for new requests", reason="goaway"
            )
        method_bytes = _request_token(method, "method")
        path_bytes = _request_token(path, "path")
        if protocol is not None:
            protocol_bytes = _request_token(protocol, "protocol")
            check_extended_connect(
                method,
                settings_received=self.remote_settings_received,
                enabled=self.extended_connect_enabled,
                rfc="RFC 9220",
            )
        elif method.upper() == "CONNECT":
            raise HTTPError(
                "plain CONNECT is not supported over HTTP/3; pass protocol= for RFC 9220",
                reason="invalid_request",
            )
        if body is EOF or not (body is None or body is STREAM or isinstance(body, bytes)):
            raise HTTPError("body must be bytes, None or STREAM", reason="invalid_request")
        wire = [
            (b":method", method_bytes),
            (b":scheme", b"https"),
            (b":authority", self._authority_bytes),
            (b":path", path_bytes),
        ]
        if protocol is not None:
            wire.append((b":protocol", protocol_bytes))
        wire += encode_headers(headers)  # the HTTP/2 rules: RFC 9114 section 4.2
        tunnel = protocol is not None
        end_on_headers = not tunnel and (body is None or body == b"")
        stream_id = self._quic.get_next_available_stream_id()
        try:
            h3.send_headers(stream_id, wire, end_stream=end_on_headers)
            if isinstance(body, bytes) and body:
                h3.send_data(stream_id, body, end_stream=not tunnel)
        except Exception as exc:
            raise HTTPError(
                f"aioquic refused the request: {exc}", reason="invalid_request"
            ) from exc
        ref = Ref()
        stream = _Stream(ref, stream_id)
        stream.local_ended = end_on_headers or (isinstance(body, bytes) and not tunnel)
        self._streams[stream_id] = stream
        self._stream_ids[ref] = stream_id
        return ref

    def stream_request_body(self, ref: Ref, chunk: Chunk, *, end_stream: bool = False) -> None:
        """Send bytes (or ``EOF``) on a streamed body or tunnel; ``end_stream`` sets FIN with them.

        FIN is the tunnel's orderly half-close (RFC 9220 section 3, as END_STREAM
        in RFC 8441), so a WebSocket's Close leaves with it.
        """
        h3 = self._check_open()
        stream = self._stream_for(ref)
        if stream.local_ended:
            raise HTTPError(f"the request body of {ref!r} already ended", reason="stream_closed")
        if chunk is EOF:
            data, end_stream = b"", True
        elif isinstance(chunk, (bytes, bytearray, memoryview)):
            data = bytes(chunk)
        else:
            raise HTTPError("chunk must be bytes or EOF", reason="invalid_argument")
        try:
            h3.send_data(stream.stream_id, data, end_stream=end_stream)
        except Exception as exc:
            raise HTTPError(f"cannot send on {ref!r}: {exc}", reason="stream_closed") from exc
        stream.local_ended = end_stream
        self._forget_if_finished(stream)

    def cancel_request(self, ref: Ref) -> None:
        """Abandon a request or tunnel both ways with H3_REQUEST_CANCELLED; no event follows."""
        self._abandon(self._stream_for(ref))

    def _abandon(self, stream: _Stream) -> None:
        """Stop the stream both ways with H3_REQUEST_CANCELLED and forget it."""
        if not self._closed:
            code = ErrorCode.H3_REQUEST_CANCELLED
            with contextlib.suppress(Exception):  # a side that already ended has nothing to stop
                self._quic.reset_stream(stream.stream_id, code)
            with contextlib.suppress(Exception):
                self._quic.stop_stream(stream.stream_id, code)
        stream.local_ended = stream.remote_ended = True
        self._forget_if_finished(stream)

    def pause_stream(self, ref: Ref) -> None:
        """Stop giving the server credit for one stream: backpressure for one reader.

        As on HTTP/2: data already allowed still arrives (at most what is left
        of the stream's window), the other streams flow on, and the server
        waits for ``resume_stream``.  Idempotent; ``HTTPError(reason=
        "unknown_ref")`` once the ref is forgotten.
        """
        self._quic.paused.add(self._stream_for(ref).stream_id)

    def resume_stream(self, ref: Ref) -> None:
        """Let the stream's credit go out again, with the next datagrams sent.  Idempotent."""
        self._quic.paused.discard(self._stream_for(ref).stream_id)

    def ping(self) -> Ref:
        """Send a QUIC PING; its acknowledgement comes back as ``Pong(ref)``."""
        self._check_open()
        uid = next(self._ping_counter)
        self._quic.send_ping(uid)
        ref = Ref()
        self._pings[uid] = ref
        return ref

    def close(self) -> None:
        """Queue CONNECTION_CLOSE (H3_NO_ERROR); the shell sends it, then drops the socket."""
        if self._closed:
            return
        self._closed = True
        self._quic.close(error_code=ErrorCode.H3_NO_ERROR, reason_phrase="")

    # -- events ---------------------------------------------------------------------------

    def _quic_events(self) -> list[Event]:
        events: list[Event] = []
        quic = self._quic
        h3 = self._h3
        while (event := quic.next_event()) is not None:
            if h3 is not None and not self._closed:
                for h3_event in h3.handle_event(event):
                    events.extend(self._on_h3_event(h3_event))
            events.extend(self._on_quic_event(event))
            if isinstance(event, StreamDataReceived) and not self._closed:
                goaway_id = self._goaway_watcher.feed(event.stream_id, event.data)
                if goaway_id is not None:
                    events.extend(self._on_goaway(goaway_id))
        return events

    def _on_goaway(self, goaway_id: int) -> list[Event]:
        """RFC 9114 section 5.2: requests on streams from ``goaway_id`` on were not processed.

        They fail with ``HTTPError(reason="goaway")``, which tells the caller
        that retrying them on a new connection is safe; the others go on.
        """
        if self._goaway_id is not None and goaway_id >= self._goaway_id:
            return []  # a repeat, or an (invalid) increase: nothing more to refuse
        self._goaway_id = goaway_id
        events: list[Event] = []
        for stream in list(self._streams.values()):
            if stream.stream_id < goaway_id or stream.remote_ended:
                continue
            self._abandon(stream)
            error = HTTPError(
                "the server is going away and did not process this request", reason="goaway"
            )
            events.append(Error(stream.ref, error))
        return events

    def _on_quic_event(self, event: QuicEvent) -> list[Event]:
        if isinstance(event, StreamReset):
            stream = self._streams.get(event.stream_id)
            if stream is None or stream.remote_ended:
                return []
            name = _error_code_name(event.error_code)
            stream.remote_ended = stream.local_ended = True
            self._forget_if_finished(stream)
            error = StreamResetError(f"the server reset the stream ({name})", error_code=name)
            return [Error(stream.ref, error)]
        if isinstance(event, StopSendingReceived):
            # aioquic already reset our sending side; the response may still come.
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.local_ended = True
                self._forget_if_finished(stream)
            return []
        if isinstance(event, PingAcknowledged):
            ref = self._pings.pop(event.uid, None)
            return [] if ref is None else [Pong(ref)]
        if isinstance(event, HandshakeCompleted):
            self.handshake_complete = True
            self.alpn_protocol = event.alpn_protocol
            return []
        if isinstance(event, ConnectionTerminated):
            return self._fail_all(_termination_error(event, self.handshake_complete))
        return []

    def _on_h3_event(self, event: H3Event) -> list[Event]:
        if isinstance(event, HeadersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None or stream.remote_ended:
                return []
            events: list[Event] = []
            fields = [(_text(name), _text(value)) for name, value in event.headers]
            if not stream.status_seen:
                status = _status_of(fields)
                if status is None:
                    return self._stream_protocol_error(stream, "a response without :status")
                if 100 <= status < 200 and not event.stream_ended:
                    return []  # informational: the real answer follows
                stream.status_seen = True
                events.append(Status(stream.ref, status))
            events.append(Headers(stream.ref, [(n, v) for n, v in fields if n[:1] != ":"]))
            if event.stream_ended:
                events.append(self._remote_end(stream))
            return events
        if isinstance(event, DataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None or stream.remote_ended:
                return []
            data_events: list[Event] = [Data(stream.ref, event.data)] if event.data else []
            if event.stream_ended:
                data_events.append(self._remote_end(stream))
            return data_events
        return []

    def _remote_end(self, stream: _Stream) -> Done:
        stream.remote_ended = True
        self._forget_if_finished(stream)
        return Done(stream.ref)

    def _stream_protocol_error(self, stream: _Stream, what: str) -> list[Event]:
        with contextlib.suppress(Exception):
            self._quic.reset_stream(stream.stream_id, ErrorCode.H3_MESSAGE_ERROR)
        stream.local_ended = stream.remote_ended = True
        self._forget_if_finished(stream)
        return [Error(stream.ref, HTTPError(f"the server sent {what}", reason="protocol_error"))]

    # -- bookkeeping ----------------------------------------------------------------------

    def _check_open(self) -> H3Connection:
        if self._closed or self._h3 is None:
            raise HTTPError("the connection is closed", reason="closed")
        return self._h3

    def _stream_for(self, ref: Ref) -> _Stream:
        stream_id = self._stream_ids.get(ref)
        stream = self._streams.get(stream_id) if stream_id is not None else None
        if stream is None:
            raise HTTPError(
                f"{ref!r} is not an open request on this connection", reason="unknown_ref"
            )
        return stream

    def _forget_if_finished(self, stream: _Stream) -> None:
        if stream.local_ended and stream.remote_ended:
            self._streams.pop(stream.stream_id, None)
            self._quic.paused.discard(stream.stream_id)
            self._stream_ids.pop(stream.ref, None)

    def _fail_all(self, error: MintError) -> list[Event]:
        events: list[Event] = [
            Error(stream.ref, error) for stream in self._streams.values() if not stream.remote_ended
        ]
        self._streams.clear()
        self._stream_ids.clear()
        self._pings.clear()
        self._closed = True
        if self.failure is None:
            self.failure = error
        return events


def _termination_error(event: ConnectionTerminated, handshake_complete: bool) -> MintError:
    code = event.error_code
    detail = f" ({event.reason_phrase})" if event.reason_phrase else ""
    if code in _CRYPTO_ERRORS and not handshake_complete:
        return TransportError(f"the QUIC TLS handshake failed{detail}", reason="tls")
    if event.reason_phrase == "Idle timeout":
        reason = "closed" if handshake_complete else "timeout"
        return TransportError(f"the QUIC connection timed out{detail}", reason=reason)
    if code in (0, ErrorCode.H3_NO_ERROR):
        return TransportError(f"the server closed the connection{detail}", reason="closed")
    name = _error_code_name(code)
    return HTTPError(f"the QUIC connection failed: {name}{detail}", reason="protocol_error")


def _status_of(fields: list[tuple[str, str]]) -> int | None:
    for name, value in fields:
        if name == ":status":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _request_token(value: object, what: str) -> bytes:
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


__all__ = [
    "DEFAULT_CONNECTION_WINDOW",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_DATAGRAM_SIZE",
    "DEFAULT_STREAM_WINDOW",
    "MAX_DATAGRAM_SIZE",
    "HTTP3Core",
    "client_configuration",
]
