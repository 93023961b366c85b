"""The session layer's sans-I/O parts, driven with hand-built frames: no socket, no clock."""

from __future__ import annotations

import struct

import pytest

from mint.client.options import Backoff, SessionOptions, parse_url, protocols_for
from mint.client.routing import ResponseState, Routes
from mint.client.session import SessionState, SessionStatus, fragments
from mint.errors import (
    ConnectionClosedError,
    ConnectionClosedOK,
    TransportError,
    WebSocketError,
)
from mint.http import Data, Done, Error, Headers, Ref, Status
from mint.websocket import WebSocket


def server_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = False) -> bytes:
    """One frame as a server sends it (unmasked unless asked, to test the rejection)."""
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head = struct.pack("!BB", first, mask_bit | len(payload))
    else:
        head = struct.pack("!BBH", first, mask_bit | 126, len(payload))
    if masked:
        head += b"\x00\x00\x00\x00"
    return head + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def client_opcodes(data: bytes) -> list[int]:
    """The opcodes of the (masked) client frames in ``data``."""
    opcodes = []
    pos = 0
    while pos < len(data):
        opcodes.append(data[pos] & 0x0F)
        length = data[pos + 1] & 0x7F
        header = 2
        if length == 126:
            length = struct.unpack_from("!H", data, pos + 2)[0]
            header = 4
        pos += header + 4 + length
    return opcodes


def new_state(
    *, max_queue: int = 4, ping_interval: float | None = None, ping_timeout: float | None = None
) -> SessionState:
    return SessionState(
        WebSocket(),
        Ref(),
        max_queue=max_queue,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        now=0.0,
    )


def test_messages_are_queued_in_order_and_pings_answered() -> None:
    state = new_state()
    state.receive(
        server_frame(0x1, b"hi") + server_frame(0x9, b"p1") + server_frame(0x2, b"\x00\x01"), 1.0
    )
    assert list(state.messages) == ["hi", b"\x00\x01"]
    data, end = state.take_outgoing()
    assert client_opcodes(data) == [0xA]  # the pong
    assert not end
    assert state.next_message() == "hi"
    assert state.next_message() == b"\x00\x01"
    assert state.next_message() is None


def test_server_close_is_echoed_and_queued_messages_survive_it() -> None:
    state = new_state()
    state.receive(server_frame(0x1, b"last") + server_frame(0x8, close_payload(1000, "bye")), 1.0)
    assert state.status is SessionStatus.CLOSED
    data, end = state.take_outgoing()
    assert client_opcodes(data) == [0x8] and end
    state.raise_if_closed()  # a message is still queued: nothing raised yet
    assert state.next_message() == "last"
    with pytest.raises(ConnectionClosedOK) as caught:
        state.raise_if_closed()
    assert (caught.value.close_code, caught.value.close_reason) == (1000, "bye")


def test_server_close_with_an_error_code_is_an_abnormal_end() -> None:
    state = new_state()
    state.receive(server_frame(0x8, close_payload(1011, "oops")), 1.0)
    with pytest.raises(ConnectionClosedError) as caught:
        state.raise_if_closed()
    assert caught.value.close_code == 1011
    assert caught.value.reason == "closed_with_error"


def test_empty_close_counts_as_normal_with_1005() -> None:
    state = new_state()
    state.receive(server_frame(0x8, b""), 1.0)
    with pytest.raises(ConnectionClosedOK) as caught:
        state.raise_if_closed()
    assert caught.value.close_code == 1005


def test_our_close_then_theirs_finishes_the_handshake() -> None:
    state = new_state()
    frame = state.start_close(1000, "done")
    assert client_opcodes(frame) == [0x8]
    assert state.status is SessionStatus.CLOSING
    with pytest.raises(ConnectionClosedOK):
        state.encode_message("too late")
    state.receive(server_frame(0x8, close_payload(1000)), 1.0)
    assert state.closed
    assert not state.has_outgoing()  # no second Close
    assert state.start_close(1000, "") == b""


def test_protocol_error_keeps_what_came_before_and_stages_1002() -> None:
    state = new_state()
    state.receive(server_frame(0x1, b"ok") + server_frame(0x1, b"masked", masked=True), 1.0)
    assert state.next_message() == "ok"
    data, end = state.take_outgoing()
    assert client_opcodes(data) == [0x8] and end
    assert data[2:4] != b""  # a code is sent
    with pytest.raises(ConnectionClosedError) as caught:
        state.raise_if_closed()
    assert caught.value.close_code == 1006
    assert caught.value.reason == "protocol_error"


def test_stream_end_without_close_is_1006() -> None:
    state = new_state()
    state.receive(server_frame(0x1, b"partial"), 1.0)
    state.receive_end(None, 2.0)
    assert state.ended
    assert state.next_message() == "partial"
    with pytest.raises(ConnectionClosedError) as caught:
        state.raise_if_closed()
    assert caught.value.close_code == 1006
    assert caught.value.reason == "abnormal_closure"


def test_connection_failure_reason_reaches_the_session() -> None:
    state = new_state()
    state.receive_end(TransportError("gone", reason="closed"), 2.0)
    with pytest.raises(ConnectionClosedError) as caught:
        state.raise_if_closed()
    assert caught.value.reason == "closed"
    assert isinstance(caught.value.__cause__, TransportError)


def test_a_pong_answers_its_ping_and_earlier_ones() -> None:
    state = new_state()
    first, _ = state.start_ping(1.0)
    second, _ = state.start_ping(2.0)
    state.receive(server_frame(0xA, b"unsolicited"), 2.5)
    assert not state.answered(first)
    state.receive(server_frame(0xA, second), 3.0)
    assert state.latency(first) == pytest.approx(2.0)
    assert state.latency(second) == pytest.approx(1.0)
    assert state.latency(second) is None  # taken once


def test_keepalive_pings_when_due_and_fails_when_unanswered() -> None:
    state = new_state(ping_interval=10.0, ping_timeout=5.0)
    assert state.keepalive_deadline() == 10.0
    state.keepalive(9.9)
    assert not state.has_outgoing()
    state.keepalive(10.0)
    data, _ = state.take_outgoing()
    assert client_opcodes(data) == [0x9]
    assert state.keepalive_deadline() == 15.0
    state.keepalive(14.9)
    assert state.status is SessionStatus.OPEN
    state.keepalive(15.0)
    with pytest.raises(ConnectionClosedError) as caught:
        state.raise_if_closed()
    assert caught.value.reason == "keepalive_timeout"
    data, end = state.take_outgoing()
    assert client_opcodes(data) == [0x8] and end


def test_keepalive_answered_schedules_the_next_one() -> None:
    state = new_state(ping_interval=10.0, ping_timeout=5.0)
    state.keepalive(10.0)
    state.take_outgoing()
    (keepalive,) = state._pings  # the one outstanding ping (its frame is masked)
    state.receive(server_frame(0xA, keepalive), 11.0)
    assert state.keepalive_deadline() == 20.0
    assert not state.answered(keepalive)  # keepalive latencies are not kept for callers


def test_a_paused_session_is_not_failed_by_keepalive() -> None:
    state = new_state(ping_interval=1.0, ping_timeout=1.0)
    state.keepalive(1.0)
    state.take_outgoing()
    state.paused = True
    assert state.keepalive_deadline() is None
    state.keepalive(100.0)
    assert state.status is SessionStatus.OPEN
    state.resume(100.0)  # the ping's clock restarts: it could not be answered while paused
    state.keepalive(100.5)
    assert state.status is SessionStatus.OPEN
    state.keepalive(101.0)
    assert state.closed


def test_queue_marks() -> None:
    state = new_state(max_queue=4)
    state.receive(b"".join(server_frame(0x1, b"m") for _ in range(4)), 1.0)
    assert state.queue_full
    assert not state.queue_low
    for _ in range(3):
        state.next_message()
    assert state.queue_low


def test_receive_says_whether_the_shell_has_anything_to_do() -> None:
    """The short way's one question after a read: True only when nothing is staged, the
    session is open and its queue has room."""
    state = new_state(max_queue=3)
    assert state.receive(server_frame(0x1, b"a") + server_frame(0x2, b"b"), 1.0)
    assert state.receive(server_frame(0x1, b"partial", fin=False), 1.0)  # nothing completed
    assert not state.receive(server_frame(0x9, b"ping"), 1.0)  # a pong to write
    state.take_outgoing()
    assert not state.receive(server_frame(0x0, b" end"), 1.0)  # the third message: full
    assert list(state.messages) == ["a", b"b", "partial end"] and state.queue_full
    assert not state.receive(server_frame(0x1, b"held"), 1.0)  # held back, not decoded
    assert len(state.messages) == 3
    state.messages.clear()

    closing = new_state()
    assert not closing.receive(server_frame(0x8, close_payload(1000)), 1.0)  # echo, end
    assert not closing.receive(server_frame(0x1, b"late"), 1.0)  # after the Close: dropped
    assert not closing.messages

    broken = new_state()
    assert not broken.receive(server_frame(0x1, b"ok") + b"\x81\x85masked", 1.0)  # 1002 staged
    assert list(broken.messages) == ["ok"]


def test_fragments_look_ahead_and_check_types() -> None:
    assert list(fragments(["a", "b", "c"])) == [
        ("a", str, False),
        ("b", str, False),
        ("c", str, True),
    ]
    assert list(fragments(iter([]))) == []
    state = new_state()
    with pytest.raises(WebSocketError) as caught:
        for piece, kind, fin in fragments(["a", b"b"]):
            state.encode_fragment(piece, kind, fin=fin)
    assert caught.value.reason == "invalid_argument"
    with pytest.raises(WebSocketError):
        list(fragments(42))  # type: ignore[arg-type]


def test_encode_message_refuses_other_types() -> None:
    state = new_state()
    with pytest.raises(WebSocketError) as caught:
        state.encode_message(42)  # type: ignore[arg-type]
    assert caught.value.reason == "invalid_argument"


def test_routes_hand_events_to_their_owner_and_track_idleness() -> None:
    routes = Routes(now=0.0)
    assert routes.idle_since == 0.0
    request_ref = Ref()
    response = ResponseState(request_ref, max_body=4)
    routes.add(request_ref, response)
    assert routes.idle_since is None
    session = new_state()
    routes.add(session.ref, session)
    stranger = Ref()
    touched = routes.dispatch(
        [
            Status(request_ref, 200),
            Headers(request_ref, [("a", "b")]),
            Data(session.ref, server_frame(0x1, b"hey")),
            Data(stranger, b"dropped"),
            Data(request_ref, b"abc"),
            Done(request_ref),
        ],
        1.0,
    )
    assert touched == [session]
    assert response.finished and response.take_body() == b"abc"
    assert session.next_message() == "hey"
    routes.remove(request_ref, 2.0)
    assert routes.idle_since is None  # the session still holds it
    routes.dispatch([Error(session.ref, TransportError("x", reason="closed"))], 3.0)
    assert session.ended
    routes.remove(session.ref, 4.0)
    assert routes.idle_since == 4.0


def test_a_response_over_max_body_fails() -> None:
    ref = Ref()
    response = ResponseState(ref, max_body=3)
    response.on_event(Data(ref, b"abcd"))
    assert response.error is not None
    assert response.error.reason == "body_too_large"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://example.test/chat", ("ws", "example.test", 80, "/chat")),
        ("wss://example.test", ("wss", "example.test", 443, "/")),
        ("ws://127.0.0.1:9000/a?b=c", ("ws", "127.0.0.1", 9000, "/a?b=c")),
        ("ws://[::1]:9/", ("ws", "::1", 9, "/")),
    ],
)
def test_parse_url(url: str, expected: tuple[str, str, int, str]) -> None:
    target = parse_url(url, websocket=True)
    assert (target.scheme, target.host, target.port, target.path) == expected


def test_parse_url_credentials_become_basic_auth() -> None:
    target = parse_url("wss://user:p%40ss@example.test/", websocket=True)
    assert target.authorization == ("Authorization", "Basic dXNlcjpwQHNz")
    options = SessionOptions()
    assert ("Authorization", "Basic dXNlcjpwQHNz") in options.request_headers(target)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.test/", "bad_scheme"),
        ("ws:///nohost", "bad_url"),
        ("ws://example.test/#frag", "bad_url"),
        ("ws://example.test:99999/", "bad_url"),
    ],
)
def test_parse_url_rejects(url: str, reason: str) -> None:
    with pytest.raises(WebSocketError) as caught:
        parse_url(url, websocket=True)
    assert caught.value.reason == reason


def test_options_are_checked_before_any_io() -> None:
    with pytest.raises(WebSocketError):
        SessionOptions(max_queue=0)
    with pytest.raises(WebSocketError):
        SessionOptions(ping_interval=-1)
    with pytest.raises(WebSocketError):
        SessionOptions(subprotocols="chat")  # type: ignore[arg-type]
    with pytest.raises(WebSocketError):
        protocols_for("https", "sometimes")  # type: ignore[arg-type]


def test_protocol_preferences() -> None:
    assert protocols_for("https", "auto") == ("http2", "http1")
    assert protocols_for("http", "auto") == ("http1",)
    assert protocols_for("http", True) == ("http2",)
    assert protocols_for("https", False) == ("http1",)


def test_backoff_grows_to_its_cap() -> None:
    delays = Backoff(initial=1.0, factor=2.0, maximum=5.0, jitter=False).delays()
    assert [next(delays) for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    jittered = Backoff(initial=1.0, maximum=2.0).delays()
    assert all(0 <= next(jittered) <= 2.0 for _ in range(20))


def test_bytes_arriving_on_a_full_queue_are_held_undecoded_until_resumed() -> None:
    state = new_state(max_queue=2)
    state.receive(server_frame(0x1, b"a") + server_frame(0x1, b"b"), 1.0)
    assert state.queue_full
    state.paused = True
    state.receive(server_frame(0x1, b"c") + server_frame(0x9, b"p"), 1.5)
    assert list(state.messages) == ["a", "b"]  # nothing decoded while full: no pong staged
    assert not state.has_outgoing()
    state.next_message()
    assert state.resume(2.0) is False  # "c" fills the queue again: still paused
    assert list(state.messages) == ["b", "c"]
    assert client_opcodes(state.take_outgoing()[0]) == [0xA]  # the held ping is answered now
    state.next_message()
    state.next_message()
    assert state.resume(3.0) is True
    assert not state.paused


def test_a_held_close_is_read_once_our_close_went_out() -> None:
    state = new_state(max_queue=1)
    state.receive(server_frame(0x1, b"a"), 1.0)
    state.paused = True
    state.receive(server_frame(0x8, close_payload(1000)), 1.5)
    assert not state.closed
    state.start_close(1000, "")
    assert state.resume(2.0) is True  # after our Close nothing pauses the session again
    assert state.closed
    assert state.next_message() == "a"


def test_bytes_held_when_the_stream_ends_are_still_delivered() -> None:
    state = new_state(max_queue=1)
    state.receive(server_frame(0x1, b"a"), 1.0)
    state.paused = True
    state.receive(server_frame(0x1, b"b") + server_frame(0x8, close_payload(1000)), 1.5)
    state.receive_end(None, 2.0)  # END_STREAM right after the Close
    assert [state.next_message(), state.next_message()] == ["a", "b"]
    with pytest.raises(ConnectionClosedOK):  # the held Close counts: a normal end
        state.raise_if_closed()
