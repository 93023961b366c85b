"""Unit tests of HTTP2Core against an in-memory h2 server: bytes in, events out, no sockets.

The peer is a real h2 server-side connection, so every frame the core sends is
checked by an independent HTTP/2 implementation, and every frame it receives is
one a real server could send.  Frames h2 refuses to produce (GOAWAY followed by
more DATA, garbage) are built by hand.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, WindowUpdateFrame

from mint.errors import HTTPError, TransportError
from mint.http.events import EOF, STREAM, Data, Done, Error, Event, Headers, Pong, Ref, Status
from mint.http.http2 import DEFAULT_MAX_FRAME_SIZE, HTTP2Core, StreamResetError

Codes = h2.settings.SettingCodes


class ServerPeer:
    """An h2 server wired to one HTTP2Core through in-memory byte passing."""

    def __init__(self, core: HTTP2Core, **settings: int) -> None:
        self.core = core
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        initial: dict[h2.settings.SettingCodes, int] = {Codes.MAX_CONCURRENT_STREAMS: 100}
        for name, value in settings.items():
            initial[getattr(Codes, name.upper())] = value
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values=initial)
        self.h2.max_inbound_frame_size = self.h2.local_settings.max_frame_size
        self.h2.initiate_connection()

    def pull(self) -> list[h2.events.Event]:
        """Deliver what the client queued to the server; return the server's h2 events."""
        return self.h2.receive_data(self.core.data_to_send())

    def push(self) -> list[Event]:
        """Deliver what the server queued to the client; return the client's events."""
        return self.core.receive_data(self.h2.data_to_send())

    def respond(self, stream_id: int, status: int = 200, *, end: bool = False) -> None:
        self.h2.send_headers(stream_id, [(b":status", str(status).encode())], end_stream=end)


def connected(core: HTTP2Core, **settings: int) -> ServerPeer:
    """A server peer that has exchanged prefaces, SETTINGS and their ACKs with ``core``."""
    peer = ServerPeer(core, **settings)
    peer.pull()
    assert peer.push() == []
    peer.pull()  # the client's SETTINGS ACK
    return peer


def handshake(**settings: int) -> tuple[HTTP2Core, ServerPeer]:
    core = HTTP2Core("example.test", "https")
    return core, connected(core, **settings)


def of(events: list[h2.events.Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def received_body(events: list[h2.events.Event], stream_id: int) -> bytes:
    return b"".join(e.data for e in of(events, h2.events.DataReceived) if e.stream_id == stream_id)


# -- connection setup -------------------------------------------------------------------


def test_preface_and_settings_are_queued_on_creation() -> None:
    core = HTTP2Core("example.test", "http")
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    data = core.data_to_send()
    assert data.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    (changed,) = of(server.receive_data(data), h2.events.RemoteSettingsChanged)
    assert changed.changed_settings[Codes.ENABLE_PUSH].new_value == 0
    assert core.version == "HTTP/2"
    assert core.open


def test_server_settings_are_recorded() -> None:
    core = HTTP2Core("example.test", "https")
    peer = ServerPeer(core, max_concurrent_streams=7, enable_connect_protocol=1)
    assert not core.remote_settings_received
    assert not core.extended_connect_enabled
    peer.pull()
    peer.push()
    assert core.remote_settings_received
    assert core.server_settings["max_concurrent_streams"] == 7
    assert core.server_settings["enable_connect_protocol"] == 1
    assert core.extended_connect_enabled


# -- plain requests ---------------------------------------------------------------------


def test_get_round_trip() -> None:
    core, peer = handshake()
    ref = core.request(
        "GET",
        "/index",
        [("Accept", "text/plain"), ("Connection", "close"), ("TE", "gzip"), ("te", "trailers")],
    )
    (request,) = of(peer.pull(), h2.events.RequestReceived)
    assert request.headers == [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"example.test"),
        (b":path", b"/index"),
        (b"accept", b"text/plain"),
        (b"te", b"trailers"),
    ]
    assert request.stream_ended is not None

    peer.h2.send_headers(
        request.stream_id, [(b":status", b"200"), (b"content-type", b"text/plain")]
    )
    peer.h2.send_data(request.stream_id, b"hello", end_stream=True)
    assert peer.push() == [
        Status(ref, 200),
        Headers(ref, [("content-type", "text/plain")]),
        Data(ref, b"hello"),
        Done(ref),
    ]
    with pytest.raises(HTTPError) as info:
        core.stream_request_body(ref, b"late")
    assert info.value.reason == "unknown_ref"


def test_post_with_body_and_trailers_and_informational_skipped() -> None:
    core, peer = handshake()
    ref = core.request("POST", "/echo", [("content-type", "application/json")], b'{"a": 1}')
    events = peer.pull()
    (request,) = of(events, h2.events.RequestReceived)
    assert received_body(events, request.stream_id) == b'{"a": 1}'
    assert of(events, h2.events.StreamEnded)

    peer.respond(request.stream_id, 103)
    peer.respond(request.stream_id, 201)
    peer.h2.send_data(request.stream_id, b"ok")
    peer.h2.send_headers(request.stream_id, [(b"x-checksum", b"abc")], end_stream=True)
    assert peer.push() == [
        Status(ref, 201),
        Headers(ref, []),
        Data(ref, b"ok"),
        Headers(ref, [("x-checksum", "abc")]),
        Done(ref),
    ]


def test_streamed_body_ends_with_eof() -> None:
    core, peer = handshake()
    ref = core.request("PUT", "/upload", [], STREAM)
    core.stream_request_body(ref, b"part one, ")
    core.stream_request_body(ref, b"part two")
    events = peer.pull()
    assert not of(events, h2.events.StreamEnded)
    core.stream_request_body(ref, EOF)
    events += peer.pull()
    assert received_body(events, 1) == b"part one, part two"
    assert of(events, h2.events.StreamEnded)
    with pytest.raises(HTTPError) as info:
        core.stream_request_body(ref, b"more")
    assert info.value.reason == "stream_closed"


def test_send_body_returns_what_stream_request_body_queued() -> None:
    """The core's default ``send_body``: the DATA frames, and anything queued before them."""
    core, peer = handshake()
    ref = core.request("PUT", "/upload", [], STREAM)  # HEADERS queued, not yet taken
    sent = core.send_body(ref, b"part one", end_stream=True)
    assert core.data_to_send() == b""
    events = peer.h2.receive_data(sent)
    assert received_body(events, 1) == b"part one"
    assert of(events, h2.events.StreamEnded)
    with pytest.raises(HTTPError) as info:
        core.send_body(ref, b"more")
    assert info.value.reason == "stream_closed"


@pytest.mark.parametrize(
    "headers",
    [
        [("bad\r\nname", "v")],
        [("x-ok", "line\nbreak")],
        [(":path", "/x")],
        [("x", "\u20ac")],
        [("x", 1)],
        ["xy"],
    ],
)
def test_invalid_headers_are_refused_with_http_error(headers: list[tuple[str, str]]) -> None:
    core, _ = handshake()
    with pytest.raises(HTTPError) as info:
        core.request("GET", "/", headers)
    assert info.value.reason == "invalid_request"
    # the connection is still usable
    core.request("GET", "/", [])


@pytest.mark.parametrize(
    ("method", "path"), [("", "/"), ("GET", ""), ("GET", "/a b"), ("GET", "/\u00e9"), (None, "/")]
)
def test_invalid_request_line_is_refused(method: Any, path: str) -> None:
    core, _ = handshake()
    with pytest.raises(HTTPError) as info:
        core.request(method, path, [])
    assert info.value.reason == "invalid_request"


def test_unknown_ref_raises() -> None:
    core, _ = handshake()
    with pytest.raises(HTTPError):
        core.stream_request_body(Ref(), b"x")
    with pytest.raises(HTTPError):
        core.send_window(Ref())


# -- extended CONNECT (RFC 8441) --------------------------------------------------------


def test_extended_connect_opens_a_tunnel() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref = core.request("CONNECT", "/chat", [("sec-websocket-version", "13")], protocol="websocket")
    events = peer.pull()
    (request,) = of(events, h2.events.RequestReceived)
    assert (b":method", b"CONNECT") in request.headers
    assert (b":protocol", b"websocket") in request.headers
    assert (b":path", b"/chat") in request.headers
    assert (b":scheme", b"https") in request.headers
    assert not of(events, h2.events.StreamEnded)

    peer.respond(request.stream_id, 200)
    peer.h2.send_data(request.stream_id, b"\x81\x02hi")
    assert peer.push() == [Status(ref, 200), Headers(ref, []), Data(ref, b"\x81\x02hi")]

    core.stream_request_body(ref, b"\x81\x82mask..")
    events = peer.pull()
    assert received_body(events, request.stream_id) == b"\x81\x82mask.."
    assert not of(events, h2.events.StreamEnded)

    core.stream_request_body(ref, EOF)
    assert of(peer.pull(), h2.events.StreamEnded)
    peer.h2.end_stream(request.stream_id)
    assert peer.push() == [Done(ref)]
    assert core.open


def test_refused_extended_connect_is_an_ordinary_response_and_closes_our_half() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref = core.request("CONNECT", "/forbidden", [], protocol="websocket")
    peer.pull()
    peer.respond(1, 403, end=True)
    assert peer.push() == [Status(ref, 403), Headers(ref, []), Done(ref)]
    (reset,) = of(peer.pull(), h2.events.StreamReset)
    assert reset.error_code == h2.errors.ErrorCodes.NO_ERROR
    with pytest.raises(HTTPError):
        core.stream_request_body(ref, b"frame")


def test_cancel_request_resets_and_forgets_the_stream() -> None:
    core, peer = handshake(initial_window_size=10)
    ref = core.request("POST", "/", [], STREAM)
    core.stream_request_body(ref, b"x" * 100)
    peer.pull()
    core.cancel_request(ref)
    (reset,) = of(peer.pull(), h2.events.StreamReset)
    assert reset.error_code == h2.errors.ErrorCodes.CANCEL
    peer.h2.update_settings({Codes.INITIAL_WINDOW_SIZE: 1000})
    peer.push()
    assert not of(peer.pull(), h2.events.DataReceived)  # the queued bytes were dropped
    with pytest.raises(HTTPError) as info:
        core.stream_request_body(ref, b"x")
    assert info.value.reason == "unknown_ref"


def test_extended_connect_disabled_by_server() -> None:
    core, _ = handshake()
    assert core.remote_settings_received
    with pytest.raises(HTTPError) as info:
        core.request("CONNECT", "/", [], protocol="websocket")
    assert info.value.reason == "extended_connect_disabled"


def test_extended_connect_waits_for_server_settings() -> None:
    core = HTTP2Core("example.test", "https")
    with pytest.raises(HTTPError) as info:
        core.request("CONNECT", "/", [], protocol="websocket")
    assert info.value.reason == "settings_pending"


def test_protocol_needs_connect() -> None:
    core, _ = handshake(enable_connect_protocol=1)
    with pytest.raises(HTTPError) as info:
        core.request("GET", "/", [], protocol="websocket")
    assert info.value.reason == "invalid_request"


# -- flow control ------------------------------------------------------------------------


def test_large_write_is_queued_and_drained_in_order() -> None:
    core, peer = handshake()  # server windows: RFC default 65,535
    payload = bytes(range(256)) * 600  # 153,600 bytes
    ref = core.request("POST", "/echo", [], STREAM)
    core.stream_request_body(ref, payload[:100_000])
    core.stream_request_body(ref, payload[100_000:])
    core.stream_request_body(ref, EOF)
    events = peer.pull()
    got = received_body(events, 1)
    assert len(got) == 65_535
    assert not of(events, h2.events.StreamEnded)
    assert core.send_window(ref) == 0

    # Connection window opened alone: the stream window is still 0, nothing moves.
    peer.h2.increment_flow_control_window(200_000)
    assert peer.push() == []
    assert peer.pull() == []
    # Now the stream window opens: 50,000 more bytes, in order.
    peer.h2.increment_flow_control_window(50_000, stream_id=1)
    peer.push()
    events = peer.pull()
    got += received_body(events, 1)
    assert len(got) == 115_535
    # Stream window opened beyond the connection's: capped by the connection window.
    peer.h2.increment_flow_control_window(100_000, stream_id=1)
    peer.push()
    events = peer.pull()
    got += received_body(events, 1)
    assert got == payload
    assert of(events, h2.events.StreamEnded)


def test_stream_window_without_connection_window_sends_nothing() -> None:
    core, peer = handshake()
    ref = core.request("POST", "/", [], STREAM)
    core.stream_request_body(ref, b"x" * 70_000)
    assert len(received_body(peer.pull(), 1)) == 65_535
    peer.h2.increment_flow_control_window(10_000, stream_id=1)
    peer.push()
    assert peer.pull() == []
    peer.h2.increment_flow_control_window(10_000)
    peer.push()
    assert len(received_body(peer.pull(), 1)) == 70_000 - 65_535


def test_eof_waits_behind_queued_data() -> None:
    core, peer = handshake(initial_window_size=10)
    ref = core.request("POST", "/", [], STREAM)
    core.stream_request_body(ref, b"0123456789abcdef")
    core.stream_request_body(ref, EOF)
    events = peer.pull()
    assert received_body(events, 1) == b"0123456789"
    assert not of(events, h2.events.StreamEnded)
    peer.h2.increment_flow_control_window(6, stream_id=1)
    peer.push()
    events = peer.pull()
    assert received_body(events, 1) == b"abcdef"
    assert of(events, h2.events.StreamEnded)


def test_queued_streams_share_the_connection_window_round_robin() -> None:
    core, peer = handshake(initial_window_size=1 << 20)
    big = core.request("POST", "/upload", [], STREAM)
    core.stream_request_body(big, b"u" * 200_000)  # takes the whole connection window
    peer.pull()
    small = core.request("POST", "/ws", [], STREAM)
    core.stream_request_body(small, b"w" * 20_000)
    assert core.send_window(small) == 0
    assert received_body(peer.pull(), 3) == b""
    peer.h2.increment_flow_control_window(2 * 16_384)
    peer.push()
    events = peer.pull()
    assert len(received_body(events, 1)) == 16_384
    assert received_body(events, 3) == b"w" * 16_384


def test_settings_raising_initial_window_drains_queue() -> None:
    core, peer = handshake(initial_window_size=0)
    ref = core.request("POST", "/", [], b"queued body")
    assert core.send_window(ref) == 0
    assert received_body(peer.pull(), 1) == b""
    peer.h2.update_settings({Codes.INITIAL_WINDOW_SIZE: 1000})
    peer.push()
    events = peer.pull()
    assert received_body(events, 1) == b"queued body"
    assert of(events, h2.events.StreamEnded)


def test_data_is_split_at_peer_max_frame_size() -> None:
    core, peer = handshake(initial_window_size=1 << 20)
    peer.h2.increment_flow_control_window(1 << 20)
    peer.push()
    core.request("POST", "/", [], b"a" * 40_000)
    sizes = [len(e.data) for e in of(peer.pull(), h2.events.DataReceived)]
    assert sizes == [16_384, 16_384, 7_232]

    core2, peer2 = handshake(initial_window_size=1 << 20, max_frame_size=20_000)
    peer2.h2.increment_flow_control_window(1 << 20)
    peer2.push()
    core2.request("POST", "/", [], b"a" * 40_000)
    sizes = [len(e.data) for e in of(peer2.pull(), h2.events.DataReceived)]
    assert sizes == [20_000, 20_000]


def test_a_body_ending_on_a_frame_boundary_ends_on_its_last_frame() -> None:
    # The full-size frames of a run leave the last bytes for END_STREAM to ride
    # on: no empty END_STREAM frame after them.
    core, peer = handshake(initial_window_size=1 << 20)
    peer.h2.increment_flow_control_window(1 << 20)
    peer.push()
    core.request("POST", "/", [], b"b" * (3 * 16_384))
    data = of(peer.pull(), h2.events.DataReceived)
    assert [len(event.data) for event in data] == [16_384] * 3
    assert data[-1].stream_ended is not None


def test_frames_follow_the_queued_pieces_and_never_span_two() -> None:
    core, peer = handshake(initial_window_size=1 << 20)
    peer.h2.increment_flow_control_window(1 << 20)
    peer.push()
    ref = core.request("POST", "/", [], STREAM)
    peer.pull()
    pieces = [b"p" * 40_000, b"q" * 5, b"r" * 50_000]
    core.stream_request_body(ref, pieces[0])
    core.stream_request_body(ref, pieces[1])
    core.stream_request_body(ref, pieces[2], end_stream=True)
    data = of(peer.pull(), h2.events.DataReceived)
    sizes = [len(event.data) for event in data]
    assert sizes == [16_384, 16_384, 7_232, 5, 16_384, 16_384, 16_384, 848]
    assert b"".join(event.data for event in data) == b"".join(pieces)
    assert [event.stream_ended is not None for event in data] == [False] * 7 + [True]


def test_a_write_held_back_goes_out_in_full_frames_as_room_opens() -> None:
    core, peer = handshake()  # 65,535-byte windows
    ref = core.request("POST", "/", [], STREAM)
    core.stream_request_body(ref, b"w" * 200_000)
    sizes = [len(event.data) for event in of(peer.pull(), h2.events.DataReceived)]
    assert sizes == [16_384, 16_384, 16_384, 16_383]
    peer.h2.increment_flow_control_window(3 * 16_384 + 100)
    peer.h2.increment_flow_control_window(3 * 16_384 + 100, stream_id=1)
    peer.push()
    sizes = [len(event.data) for event in of(peer.pull(), h2.events.DataReceived)]
    assert sizes == [16_384, 16_384, 16_384, 100]
    assert core.send_window(ref) == 0


def test_send_window_reports_sendable_bytes() -> None:
    core, _ = handshake(initial_window_size=1000)
    ref = core.request("POST", "/", [], STREAM)
    assert core.send_window(ref) == 1000
    core.stream_request_body(ref, b"x" * 400)
    assert core.send_window(ref) == 600


def test_receive_window_is_refilled() -> None:
    core, peer = handshake()
    ref = core.request("GET", "/big", [])
    peer.pull()
    peer.respond(1)
    assert peer.push() == [Status(ref, 200), Headers(ref, [])]
    total = 3 * (1 << 20) + 12_345  # several times the client's receive window
    received = bytearray()
    sent = 0
    while sent < total:
        room = min(peer.h2.local_flow_control_window(1), peer.h2.max_outbound_frame_size)
        assert room > 0, f"stalled after {sent} bytes"
        chunk = min(room, total - sent)
        peer.h2.send_data(1, b"z" * chunk, end_stream=sent + chunk == total)
        sent += chunk
        for event in peer.push():
            assert isinstance(event, (Data, Done)) and event.ref is ref
            if isinstance(event, Data):
                received += event.data
        peer.pull()  # WINDOW_UPDATEs from the client
    assert len(received) == total


def test_receive_window_is_refilled_with_rfc_default_window() -> None:
    core = HTTP2Core("example.test", "http", initial_window_size=65_535)
    peer = connected(core)
    core.request("GET", "/", [])
    peer.pull()
    peer.respond(1)
    sent = 0
    while sent < 300_000:
        room = min(peer.h2.local_flow_control_window(1), peer.h2.max_outbound_frame_size)
        assert room > 0, f"stalled after {sent} bytes"
        peer.h2.send_data(1, b"z" * room)
        sent += room
        peer.push()
        peer.pull()


# -- stream and connection failures ------------------------------------------------------


def test_rst_stream_mid_message_affects_only_that_stream() -> None:
    core, peer = handshake()
    first = core.request("POST", "/a", [], STREAM)
    second = core.request("POST", "/b", [], STREAM)
    core.stream_request_body(first, b"1" * 40_000)
    core.stream_request_body(second, b"2" * 40_000)  # only 25,535 fit the connection window
    peer.pull()
    peer.h2.reset_stream(3, h2.errors.ErrorCodes.CANCEL)
    events = peer.push()
    assert len(events) == 1
    assert isinstance(events[0], Error) and events[0].ref is second
    error = events[0].error
    assert isinstance(error, StreamResetError)
    assert error.reason == "stream_reset"
    assert error.error_code == "CANCEL"

    # The reset stream's queue is gone; the other stream still works.
    core.stream_request_body(first, EOF)
    peer.h2.increment_flow_control_window(100_000)
    peer.push()
    assert not received_body(peer.pull(), 3)
    peer.respond(1, end=True)
    assert peer.push() == [Status(first, 200), Headers(first, []), Done(first)]
    with pytest.raises(HTTPError):
        core.stream_request_body(second, b"x")


def test_goaway_lets_accepted_streams_finish() -> None:
    core, peer = handshake()
    refs = [core.request("GET", f"/{i}", []) for i in range(3)]  # streams 1, 3, 5
    peer.pull()
    goaway = GoAwayFrame(0)
    goaway.last_stream_id = 3
    goaway.error_code = 0
    peer.respond(1)
    data = peer.h2.data_to_send() + goaway.serialize()
    events = core.receive_data(data)
    assert events[:2] == [Status(refs[0], 200), Headers(refs[0], [])]
    assert isinstance(events[2], Error) and events[2].ref is refs[2]
    assert events[2].error.reason == "goaway"
    assert core.open
    with pytest.raises(HTTPError) as info:
        core.request("GET", "/late", [])
    assert info.value.reason == "goaway"

    peer.h2.send_data(1, b"one", end_stream=True)
    peer.respond(3, end=True)
    assert peer.push() == [
        Data(refs[0], b"one"),
        Done(refs[0]),
        Status(refs[1], 200),
        Headers(refs[1], []),
        Done(refs[1]),
    ]
    assert not core.open


def test_max_concurrent_streams_is_respected() -> None:
    core, peer = handshake(max_concurrent_streams=2)
    first = core.request("GET", "/", [])
    core.request("GET", "/", [])
    with pytest.raises(HTTPError) as info:
        core.request("GET", "/", [])
    assert info.value.reason == "too_many_streams"
    peer.pull()
    peer.respond(1, end=True)
    assert peer.push()[-1] == Done(first)
    core.request("GET", "/", [])
    (request,) = of(peer.pull(), h2.events.RequestReceived)
    assert request.stream_id == 5


def test_ping_pong_and_server_ping_answered() -> None:
    core, peer = handshake()
    ref = core.ping()
    other = core.ping()
    assert of(peer.pull(), h2.events.PingReceived)
    assert peer.push() == [Pong(ref), Pong(other)]

    peer.h2.ping(b"serverpg")
    assert peer.push() == []
    (ack,) = of(peer.pull(), h2.events.PingAckReceived)
    assert ack.ping_data == b"serverpg"


def test_eof_fails_unfinished_streams() -> None:
    core, peer = handshake()
    done = core.request("GET", "/done", [])
    open_ref = core.request("GET", "/open", [])
    peer.pull()
    peer.respond(1, end=True)
    peer.respond(3)
    assert peer.push() == [
        Status(done, 200),
        Headers(done, []),
        Done(done),
        Status(open_ref, 200),
        Headers(open_ref, []),
    ]
    events = core.receive_data(b"")
    assert len(events) == 1
    assert isinstance(events[0], Error) and events[0].ref is open_ref
    assert isinstance(events[0].error, TransportError)
    assert events[0].error.reason == "closed"
    assert not core.open


def test_garbage_gives_error_events_and_keeps_earlier_events() -> None:
    core, peer = handshake()
    ref = core.request("GET", "/", [])
    other = core.request("GET", "/other", [])
    peer.pull()
    peer.respond(1)
    # A frame of unknown stream state: DATA on stream 0 is a connection error.
    garbage = b"\x00\x00\x04\x00\x00\x00\x00\x00\x00abcd"
    events = core.receive_data(peer.h2.data_to_send() + garbage)
    assert events[:2] == [Status(ref, 200), Headers(ref, [])]
    errors = events[2:]
    assert {e.ref for e in errors if isinstance(e, Error)} == {ref, other}
    assert all(isinstance(e, Error) and isinstance(e.error, HTTPError) for e in errors)
    assert not core.open
    goaway = of(peer.h2.receive_data(core.data_to_send()), h2.events.ConnectionTerminated)
    assert goaway and goaway[0].error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    with pytest.raises(HTTPError):
        core.request("GET", "/", [])


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"\xff" * 64,
        # SETTINGS frames, then a HEADERS frame declaring 16 MiB - 1: over our limit.
        b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" * 3 + b"\xff\xff\xff\x01\x04\x00\x00\x00\x01",
    ],
)
def test_hostile_bytes_never_raise(garbage: bytes) -> None:
    core = HTTP2Core("example.test", "https")
    ref = core.request("GET", "/", [])
    events = core.receive_data(garbage)
    assert events and all(isinstance(e, Error) and e.ref is ref for e in events)
    assert not core.open
    assert core.receive_data(b"more") == []


def test_close_sends_goaway() -> None:
    core, peer = handshake()
    ref = core.request("POST", "/", [], STREAM)
    core.close()
    with pytest.raises(HTTPError) as info:
        core.stream_request_body(ref, b"late")
    assert info.value.reason == "closed"
    assert not core.open
    assert of(peer.pull(), h2.events.ConnectionTerminated)
    with pytest.raises(HTTPError) as info:
        core.request("GET", "/", [])
    assert info.value.reason == "closed"
    with pytest.raises(HTTPError):
        core.ping()


# -- DATA fast path and flow control kept by the core --------------------------------------


def tunnel(core: HTTP2Core, peer: ServerPeer, path: str = "/ws") -> tuple[Ref, int]:
    """Open an RFC 8441 tunnel answered 200; return its ref and stream id."""
    ref = core.request("CONNECT", path, [], protocol="websocket")
    (request,) = of(peer.pull(), h2.events.RequestReceived)
    peer.respond(request.stream_id, 200)
    assert peer.push() == [Status(ref, 200), Headers(ref, [])]
    return ref, request.stream_id


def data_frame(stream_id: int, payload: bytes, *flags: str) -> bytes:
    frame = DataFrame(stream_id, payload)
    for flag in flags:
        frame.flags.add(flag)
    return bytes(frame.serialize())


def joined_data(events: list[Event], ref: Ref) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data) and e.ref is ref)


def test_interleaved_data_of_several_streams_in_one_read() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    first, first_id = tunnel(core, peer, "/a")
    second, second_id = tunnel(core, peer, "/b")
    for i in range(4):
        peer.h2.send_data(first_id, b"a%d" % i)
        peer.h2.send_data(second_id, b"b%d" % i)
    events = peer.push()
    assert events == [
        Data(ref, prefix + b"%d" % i)
        for i in range(4)
        for ref, prefix in ((first, b"a"), (second, b"b"))
    ]
    assert all(type(e.data) is bytes for e in events if isinstance(e, Data))
    # The server's h2 accepts whatever the client queued meanwhile.
    assert not of(peer.pull(), h2.events.ConnectionTerminated)


@pytest.mark.parametrize("piece", [1, 5, 9, 10, 1000, 16_393])
def test_frames_split_across_reads_give_the_same_events(piece: int) -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    payloads = [bytes([i]) * size for i, size in enumerate([1, 16_384, 0, 300, 7])]
    for payload in payloads:
        peer.h2.send_data(stream_id, payload)
    peer.h2.send_data(stream_id, b"last", end_stream=True)
    wire = peer.h2.data_to_send()
    events: list[Event] = []
    for offset in range(0, len(wire), piece):
        events.extend(core.receive_data(wire[offset : offset + piece]))
    assert joined_data(events, ref) == b"".join(payloads) + b"last"
    assert events[-1] == Done(ref)
    assert not any(isinstance(e, Error) for e in events)


def test_padded_data_goes_through_h2_and_keeps_the_window_flowing() -> None:
    core = HTTP2Core("example.test", "https", initial_window_size=65_535)
    peer = connected(core, enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    received = bytearray()
    sent = 0
    for round_number in range(60):  # about 15 times the window, padded and plain mixed
        room = min(peer.h2.local_flow_control_window(stream_id), 16_384)
        assert room > 300, f"stalled after {sent} bytes"
        size = room - 256
        peer.h2.send_data(stream_id, b"p" * size, pad_length=200 if round_number % 2 else None)
        sent += size
        received += joined_data(peer.push(), ref)
        assert not of(peer.pull(), h2.events.ConnectionTerminated)
    assert received == b"p" * sent


def test_end_stream_data_gives_data_then_done() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    peer.h2.send_data(stream_id, b"fast")
    peer.h2.send_data(stream_id, b"bye", end_stream=True)
    # Adjacent DATA of one stream in one read reach the caller as one chunk.
    assert peer.push() == [Data(ref, b"fastbye"), Done(ref)]
    core.stream_request_body(ref, EOF)
    assert of(peer.pull(), h2.events.StreamEnded)
    assert core.open


def test_window_updates_are_batched_and_keep_more_than_a_window_flowing() -> None:
    core, peer = handshake(enable_connect_protocol=1)  # client windows: 1 MiB
    ref, stream_id = tunnel(core, peer)
    peer.h2.increment_flow_control_window(1 << 24)
    total = 5 * (1 << 20) + 777
    received = bytearray()
    updates: list[h2.events.WindowUpdated] = []
    frames = 0
    sent = 0
    while sent < total:
        room = min(peer.h2.local_flow_control_window(stream_id), 16_384, total - sent)
        assert room > 0, f"stalled after {sent} bytes"
        peer.h2.send_data(stream_id, b"w" * room)
        frames += 1
        sent += room
        received += joined_data(peer.push(), ref)
        updates += of(peer.pull(), h2.events.WindowUpdated)
    assert len(received) == total
    connection_updates = [u.delta for u in updates if u.stream_id == 0]
    stream_updates = [u.delta for u in updates if u.stream_id == stream_id]
    # One update per half window (512 KiB) on each, not one per frame.
    assert frames > 300
    assert 8 <= len(connection_updates) <= 11
    assert 8 <= len(stream_updates) <= 11
    assert all(delta >= 1 << 19 for delta in connection_updates + stream_updates)


def assert_failed_with_flow_control_error(
    core: HTTP2Core, peer: ServerPeer, events: list[Event]
) -> None:
    assert events and all(isinstance(e, Error) for e in events)
    assert all(isinstance(e.error, HTTPError) for e in events if isinstance(e, Error))
    assert all(e.error.reason == "protocol_error" for e in events if isinstance(e, Error))
    assert not core.open
    (goaway,) = of(peer.h2.receive_data(core.data_to_send()), h2.events.ConnectionTerminated)
    assert goaway.error_code == h2.errors.ErrorCodes.FLOW_CONTROL_ERROR
    assert core.receive_data(b"\x00" * 20) == []


def test_data_beyond_the_stream_window_is_a_connection_error() -> None:
    core = HTTP2Core("example.test", "https", initial_window_size=1000)
    peer = connected(core, enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    other = core.request("GET", "/other", [])
    peer.pull()
    # 400 bytes leave 600 (more than half: no update yet); 601 more do not fit.
    events = core.receive_data(
        data_frame(stream_id, b"x" * 400) + data_frame(stream_id, b"y" * 601)
    )
    assert events[0] == Data(ref, b"x" * 400)
    assert {e.ref for e in events[1:]} == {ref, other}
    assert_failed_with_flow_control_error(core, peer, events[1:])


def test_data_beyond_the_stream_window_in_a_read_of_its_own() -> None:
    """A read of exactly one DATA frame takes a shorter path: same checks."""
    core = HTTP2Core("example.test", "https", initial_window_size=1000)
    peer = connected(core, enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    assert core.receive_data(data_frame(stream_id, b"x" * 400)) == [Data(ref, b"x" * 400)]
    events = core.receive_data(data_frame(stream_id, b"y" * 601))
    assert [e.ref for e in events] == [ref]
    assert_failed_with_flow_control_error(core, peer, events)


def test_end_stream_data_beyond_the_real_window_is_caught_though_h2_would_accept_it() -> None:
    core = HTTP2Core("example.test", "https", initial_window_size=1000)
    peer = connected(core, enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    # 400 bytes through the fast path (no update yet: below half the window),
    # then 700 with END_STREAM: h2 alone sees 1000 bytes of room, the real room is 600.
    events = core.receive_data(data_frame(stream_id, b"x" * 400))
    assert events == [Data(ref, b"x" * 400)]
    events = core.receive_data(data_frame(stream_id, b"y" * 700, "END_STREAM"))
    assert_failed_with_flow_control_error(core, peer, events)


def test_padded_data_beyond_the_stream_window_is_a_connection_error() -> None:
    core = HTTP2Core("example.test", "https", initial_window_size=1000)
    peer = connected(core, enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    frame = DataFrame(stream_id, b"p" * 990)
    frame.flags.add("PADDED")
    frame.pad_length = 10  # 1 + 990 + 10 = 1001 flow-controlled bytes
    events = core.receive_data(bytes(frame.serialize()))
    assert [e.ref for e in events if isinstance(e, Error)] == [ref]
    assert_failed_with_flow_control_error(core, peer, events)


def test_data_on_a_cancelled_stream_is_refused_without_events() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    core.cancel_request(ref)
    peer.pull()
    assert core.receive_data(data_frame(stream_id, b"late" * 100)) == []
    assert core.open
    # h2 answered with RST_STREAM and the connection still works.
    other, other_id = tunnel(core, peer, "/other")
    peer.h2.send_data(other_id, b"still fine")
    assert peer.push() == [Data(other, b"still fine")]


def test_data_on_an_idle_stream_is_a_connection_error() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, _ = tunnel(core, peer)
    events = core.receive_data(data_frame(99, b"who?"))
    assert len(events) == 1 and isinstance(events[0], Error) and events[0].ref is ref
    assert isinstance(events[0].error, HTTPError)
    assert not core.open


def test_data_before_the_response_head_goes_through_h2() -> None:
    core, peer = handshake()
    ref = core.request("GET", "/", [])
    (request,) = of(peer.pull(), h2.events.RequestReceived)
    events = core.receive_data(data_frame(request.stream_id, b"too early"))
    assert events and all(isinstance(e, Error) and e.ref is ref for e in events)
    assert not core.open


def test_content_length_is_still_checked() -> None:
    core, peer = handshake()
    ref = core.request("GET", "/", [])
    (request,) = of(peer.pull(), h2.events.RequestReceived)
    peer.h2.send_headers(request.stream_id, [(b":status", b"200"), (b"content-length", b"3")])
    assert peer.push() == [Status(ref, 200), Headers(ref, [("content-length", "3")])]
    events = core.receive_data(data_frame(request.stream_id, b"four"))
    assert events and all(isinstance(e, Error) and e.ref is ref for e in events)


# -- sending: DATA frames built by the core, send windows kept by the core -----------------


def test_last_chunk_and_end_stream_share_one_frame() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, _ = tunnel(core, peer)
    core.stream_request_body(ref, b"close frame", end_stream=True)
    events = peer.pull()
    (data,) = of(events, h2.events.DataReceived)
    assert data.data == b"close frame"
    assert data.stream_ended is not None


def test_body_sent_before_headers_are_written_follows_them() -> None:
    core, peer = handshake()
    first = core.request("POST", "/a", [], STREAM)
    core.stream_request_body(first, b"one")
    second = core.request("POST", "/b", [], b"two")
    core.stream_request_body(first, b"three", end_stream=True)
    events = peer.pull()  # the server's h2 refuses DATA before HEADERS
    assert received_body(events, 1) == b"onethree"
    assert received_body(events, 3) == b"two"
    assert len(of(events, h2.events.StreamEnded)) == 2
    assert core.send_window(first) == 0 and second


def test_zero_stream_window_update_resets_only_that_stream() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    other, _ = tunnel(core, peer, "/other")
    frame = WindowUpdateFrame(stream_id)
    frame.window_increment = 0
    events = core.receive_data(bytes(frame.serialize()))
    assert len(events) == 1 and isinstance(events[0], Error) and events[0].ref is ref
    assert events[0].error.reason == "protocol_error"
    assert core.open
    (reset,) = of(peer.pull(), h2.events.StreamReset)
    assert reset.stream_id == stream_id
    assert reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    core.stream_request_body(other, b"other still works")
    assert received_body(peer.pull(), 3) == b"other still works"


@pytest.mark.parametrize(
    ("stream_id", "increment", "code"),
    [
        (0, 0, h2.errors.ErrorCodes.PROTOCOL_ERROR),
        (0, (1 << 31) - 1, h2.errors.ErrorCodes.FLOW_CONTROL_ERROR),
        (1, (1 << 31) - 1, h2.errors.ErrorCodes.FLOW_CONTROL_ERROR),
    ],
)
def test_bad_window_updates(stream_id: int, increment: int, code: h2.errors.ErrorCodes) -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, _ = tunnel(core, peer)
    frame = WindowUpdateFrame(stream_id)
    frame.window_increment = increment
    events = core.receive_data(bytes(frame.serialize()))
    assert len(events) == 1 and isinstance(events[0], Error) and events[0].ref is ref
    assert events[0].error.reason == "protocol_error"
    server_events = peer.pull()
    if stream_id == 0:
        assert not core.open
        (goaway,) = of(server_events, h2.events.ConnectionTerminated)
        assert goaway.error_code == code
    else:
        assert core.open
        (reset,) = of(server_events, h2.events.StreamReset)
        assert reset.error_code == code


def test_window_update_for_a_closed_stream_is_ignored() -> None:
    core, peer = handshake()
    ref = core.request("GET", "/", [])
    peer.pull()
    peer.respond(1, end=True)
    assert peer.push()[-1] == Done(ref)
    frame = WindowUpdateFrame(1)
    frame.window_increment = 100
    assert core.receive_data(bytes(frame.serialize())) == []
    assert core.open


def test_settings_lowering_initial_window_can_make_the_send_window_negative() -> None:
    core, peer = handshake(initial_window_size=1000)
    ref = core.request("POST", "/", [], STREAM)
    core.stream_request_body(ref, b"x" * 1500)
    assert len(received_body(peer.pull(), 1)) == 1000
    peer.h2.update_settings({Codes.INITIAL_WINDOW_SIZE: 500})  # window: 0 - 500
    peer.push()
    peer.pull()
    peer.h2.increment_flow_control_window(600, stream_id=1)  # window: 100
    peer.push()
    assert len(received_body(peer.pull(), 1)) == 100
    assert core.send_window(ref) == 0


def test_settings_pushing_a_stream_window_past_the_limit_is_a_connection_error() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    peer.h2.increment_flow_control_window((1 << 31) - 1 - 65_535, stream_id=stream_id)
    assert peer.push() == []
    peer.h2.update_settings({Codes.INITIAL_WINDOW_SIZE: 70_000})
    events = peer.push()
    assert len(events) == 1 and isinstance(events[0], Error) and events[0].ref is ref
    assert not core.open


def test_bad_window_update_after_the_response_ends_only_the_upload() -> None:
    core, peer = handshake(initial_window_size=1 << 20)
    ref = core.request("POST", "/", [], STREAM)
    core.stream_request_body(ref, b"x" * 70_000)  # 4,465 bytes wait for window
    peer.pull()
    peer.respond(1, end=True)
    assert peer.push() == [Status(ref, 200), Headers(ref, []), Done(ref)]
    frame = WindowUpdateFrame(1)
    frame.window_increment = 0
    assert core.receive_data(bytes(frame.serialize())) == []
    assert core.open
    with pytest.raises(HTTPError) as info:
        core.stream_request_body(ref, b"more")
    assert info.value.reason == "unknown_ref"


@pytest.mark.parametrize("cut", [2, 5, 8])
def test_oversized_frame_header_cut_across_reads_fails_the_connection(cut: int) -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    peer.h2.send_data(stream_id, b"kept")
    too_long = (DEFAULT_MAX_FRAME_SIZE + 1).to_bytes(3, "big")
    oversized = too_long + b"\x00\x00" + stream_id.to_bytes(4, "big")
    assert core.receive_data(peer.h2.data_to_send() + oversized[:cut]) == [Data(ref, b"kept")]
    events = core.receive_data(oversized[cut:] + b"x" * 100)
    assert len(events) == 1 and isinstance(events[0], Error) and events[0].ref is ref
    assert events[0].error.reason == "protocol_error"
    assert not core.open


def test_adjacent_data_is_joined_per_stream_only() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    first, first_id = tunnel(core, peer)
    second, second_id = tunnel(core, peer)
    peer.h2.send_data(first_id, b"a")
    peer.h2.send_data(first_id, b"b")
    peer.h2.send_data(second_id, b"c")
    peer.h2.send_data(first_id, b"d")
    peer.h2.send_data(first_id, b"e")
    assert peer.push() == [Data(first, b"ab"), Data(second, b"c"), Data(first, b"de")]


# -- DATA frames streamed across reads, and SETTINGS_MAX_FRAME_SIZE -----------------------


def big_frame_handshake(max_frame_size: int = 1 << 20) -> tuple[HTTP2Core, ServerPeer]:
    core = HTTP2Core("example.test", "https", max_frame_size=max_frame_size)
    return core, connected(core, enable_connect_protocol=1)


@pytest.mark.parametrize("size", [16_383, 0, 1 << 24])
def test_max_frame_size_outside_the_rfc_range_is_refused(size: int) -> None:
    with pytest.raises(HTTPError) as info:
        HTTP2Core("example.test", "https", max_frame_size=size)
    assert info.value.reason == "invalid_argument"


def test_max_frame_size_is_announced_and_honoured() -> None:
    core, peer = big_frame_handshake(300_000)
    assert peer.h2.max_outbound_frame_size == 300_000
    ref, stream_id = tunnel(core, peer)
    peer.h2.send_data(stream_id, b"m" * 300_000)
    wire = peer.h2.data_to_send()
    assert len(wire) == 9 + 300_000  # one frame
    assert core.receive_data(wire) == [Data(ref, b"m" * 300_000)]


def test_a_large_frame_is_handed_over_as_it_arrives() -> None:
    core, peer = big_frame_handshake()
    ref, stream_id = tunnel(core, peer)
    payload = bytes(range(256)) * 3000  # 768,000 bytes in one DATA frame
    peer.h2.send_data(stream_id, payload)
    wire = peer.h2.data_to_send()
    assert len(wire) == 9 + len(payload)
    # The first read: the header and 1,000 bytes.  They are the caller's at once.
    assert core.receive_data(wire[: 9 + 1000]) == [Data(ref, payload[:1000])]
    received = bytearray(payload[:1000])
    for offset in range(9 + 1000, len(wire), 65_536):
        events = core.receive_data(wire[offset : offset + 65_536])
        assert len(events) == 1 and isinstance(events[0], Data) and events[0].ref is ref
        received += events[0].data
    assert received == payload
    # Nothing was buffered, and the windows were given back for all of it.
    assert core._splitter.pending == 0
    updates = of(peer.pull(), h2.events.WindowUpdated)
    assert sum(u.delta for u in updates if u.stream_id == stream_id) >= len(payload) // 2
    assert not of(peer.pull(), h2.events.ConnectionTerminated)


@pytest.mark.parametrize("cut", [1, 4, 8, 9, 10])
def test_a_streamed_frame_whose_header_is_cut(cut: int) -> None:
    core, peer = big_frame_handshake()
    ref, stream_id = tunnel(core, peer)
    peer.h2.send_data(stream_id, b"first")
    peer.h2.send_data(stream_id, b"s" * 100_000)
    peer.h2.send_data(stream_id, b"after")
    wire = peer.h2.data_to_send()
    head = 9 + 5 + cut  # "first" and part of the big frame
    events = core.receive_data(wire[:head])
    events += core.receive_data(wire[head : head + 500])
    events += core.receive_data(wire[head + 500 :])
    assert joined_data(events, ref) == b"first" + b"s" * 100_000 + b"after"
    assert core._splitter.pending == 0


def test_streamed_frame_over_the_window_fails_at_its_header() -> None:
    core = HTTP2Core("example.test", "https", initial_window_size=65_535, max_frame_size=1 << 20)
    peer = connected(core, enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    # 100,000 bytes declared on a 65,535-byte window: h2 would never send it.
    header = (100_000).to_bytes(3, "big") + b"\x00\x00" + stream_id.to_bytes(4, "big")
    events = core.receive_data(header + b"v" * 1000)
    assert len(events) == 1 and isinstance(events[0], Error) and events[0].ref is ref
    assert "FLOW_CONTROL_ERROR" in str(events[0].error)
    assert not core.open
    goaway = of(peer.h2.receive_data(core.data_to_send()), h2.events.ConnectionTerminated)
    assert goaway[0].error_code == h2.errors.ErrorCodes.FLOW_CONTROL_ERROR


def test_cancelled_stream_drops_the_rest_of_its_frame_and_others_go_on() -> None:
    core, peer = big_frame_handshake()
    first, first_id = tunnel(core, peer, "/a")
    second, second_id = tunnel(core, peer, "/b")
    peer.h2.send_data(first_id, b"c" * 200_000)
    peer.h2.send_data(second_id, b"other")
    wire = peer.h2.data_to_send()
    assert core.receive_data(wire[:5009]) == [Data(first, b"c" * 5000)]
    core.cancel_request(first)
    events = core.receive_data(wire[5009:])
    assert events == [Data(second, b"other")]
    assert core.open
    server_events = peer.pull()
    assert of(server_events, h2.events.StreamReset)[0].stream_id == first_id
    assert not of(server_events, h2.events.ConnectionTerminated)
    # The dropped bytes were given back with the connection window: 3 MiB more
    # flow on the other stream, three times the window, without a stall.
    received = 0
    while received < 3 << 20:
        room = min(peer.h2.local_flow_control_window(second_id), 65_536)
        assert room > 0, f"stalled after {received} bytes"
        peer.h2.send_data(second_id, b"x" * room)
        received += len(joined_data(peer.push(), second))
        assert not of(peer.pull(), h2.events.ConnectionTerminated)


def test_frames_for_h2_are_still_buffered_whole() -> None:
    core, peer = big_frame_handshake()
    ref = core.request("GET", "/", [])
    (request,) = of(peer.pull(), h2.events.RequestReceived)
    peer.h2.send_headers(request.stream_id, [(b":status", b"200"), (b"content-length", b"150000")])
    peer.push()
    peer.h2.send_data(request.stream_id, b"L" * 150_000, end_stream=True)
    wire = peer.h2.data_to_send()
    # content-length keeps the stream on h2's path: nothing until the frame is whole.
    assert core.receive_data(wire[:70_000]) == []
    assert core.receive_data(wire[70_000:]) == [Data(ref, b"L" * 150_000), Done(ref)]


def test_end_stream_frame_cut_across_reads_goes_through_h2() -> None:
    core, peer = big_frame_handshake()
    ref, stream_id = tunnel(core, peer)
    peer.h2.send_data(stream_id, b"E" * 90_000, end_stream=True)
    wire = peer.h2.data_to_send()
    assert core.receive_data(wire[:40_000]) == []
    assert core.receive_data(wire[40_000:]) == [Data(ref, b"E" * 90_000), Done(ref)]


def test_buffers_to_send_match_data_to_send() -> None:
    core, peer = handshake(enable_connect_protocol=1)
    ref, stream_id = tunnel(core, peer)
    core.stream_request_body(ref, b"q" * 40_000)
    core.ping()
    buffers = core.buffers_to_send()
    assert len(buffers) > 1
    assert core.buffers_to_send() == [] and core.data_to_send() == b""
    events = peer.h2.receive_data(b"".join(buffers))
    assert received_body(events, stream_id) == b"q" * 40_000
    assert of(events, h2.events.PingReceived)
