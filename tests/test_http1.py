"""HTTP1Core driven with hand-built bytes: no socket, events checked exactly."""

from __future__ import annotations

import pytest

from mint.errors import HTTPError, TransportError
from mint.http import EOF, STREAM, Data, Done, Error, Headers, Ref, Status
from mint.http.http1 import HTTP1Core

UPGRADE_HEADERS = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)


def split_request(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def test_get_sends_host_and_parses_content_length_response() -> None:
    core = HTTP1Core("example.com:8080")
    ref = core.request("GET", "/index", [("Accept", "text/plain")])
    line, headers, body = split_request(core.data_to_send())
    assert line == "GET /index HTTP/1.1"
    assert headers["host"] == "example.com:8080"
    assert headers["accept"] == "text/plain"
    assert body == b""

    events = core.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: \xe9\r\n\r\nhel")
    assert events == [
        Status(ref, 200),
        Headers(ref, [("content-length", "5"), ("x-thing", "\xe9")]),
        Data(ref, b"hel"),
    ]
    assert core.receive_data(b"lo") == [Data(ref, b"lo"), Done(ref)]
    assert core.open


def test_caller_host_header_is_kept() -> None:
    core = HTTP1Core("example.com")
    core.request("GET", "/", [("Host", "other.example")])
    _, headers, _ = split_request(core.data_to_send())
    assert headers["host"] == "other.example"


def test_bytes_body_gets_content_length() -> None:
    core = HTTP1Core("h")
    core.request("POST", "/submit", [], b"payload")
    _, headers, body = split_request(core.data_to_send())
    assert headers["content-length"] == "7"
    assert body == b"payload"


def test_chunked_response_is_reassembled_as_data_events() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/", [])
    events = core.receive_data(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    assert events[0] == Status(ref, 200)
    assert b"".join(e.data for e in events if isinstance(e, Data)) == b"abcdefg"
    assert events[-2:] == [Headers(ref, [("x-trailer", "t")]), Done(ref)]


def test_informational_responses_are_dropped() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/", [])
    events = core.receive_data(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    assert events == [Status(ref, 204), Headers(ref, []), Done(ref)]


def test_keep_alive_serves_sequential_requests() -> None:
    core = HTTP1Core("h")
    for number in range(3):
        ref = core.request("GET", f"/{number}", [])
        assert core.data_to_send().startswith(f"GET /{number} ".encode())
        body = str(number).encode()
        events = core.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + body)
        assert events == [
            Status(ref, 200),
            Headers(ref, [("content-length", "1")]),
            Data(ref, body),
            Done(ref),
        ]
    assert core.open


def test_streamed_body_is_chunked_and_ended_by_eof() -> None:
    core = HTTP1Core("h")
    ref = core.request("PUT", "/up", [], STREAM)
    core.stream_request_body(ref, b"abc")
    core.stream_request_body(ref, b"")
    core.stream_request_body(ref, b"de")
    core.stream_request_body(ref, EOF)
    _, headers, body = split_request(core.data_to_send())
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert core.receive_data(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")[-1] == Done(ref)
    with pytest.raises(HTTPError) as info:
        core.stream_request_body(ref, b"late")
    assert info.value.reason == "unknown_ref"
    core.request("GET", "/again", [])  # the connection was recycled


def test_streamed_body_with_caller_content_length_is_not_chunked() -> None:
    core = HTTP1Core("h")
    ref = core.request("POST", "/", [("Content-Length", "4")], STREAM)
    core.stream_request_body(ref, b"ab")
    core.stream_request_body(ref, b"cd")
    core.stream_request_body(ref, EOF)
    _, headers, body = split_request(core.data_to_send())
    assert "transfer-encoding" not in headers
    assert body == b"abcd"


def test_streaming_past_content_length_raises_http_error() -> None:
    core = HTTP1Core("h")
    ref = core.request("POST", "/", [("Content-Length", "1")], STREAM)
    with pytest.raises(HTTPError):
        core.stream_request_body(ref, b"too long")
    assert not core.open


def test_upgrade_delivers_trailing_bytes_in_the_same_event_list() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/chat", UPGRADE_HEADERS)
    frame = b"\x81\x05hello"
    events = core.receive_data(SWITCHING + frame)
    assert events[0] == Status(ref, 101)
    assert isinstance(events[1], Headers)
    assert ("upgrade", "websocket") in events[1].headers
    assert events[2:] == [Data(ref, frame)]


def test_tunnel_carries_raw_bytes_both_ways_until_eof() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/chat", UPGRADE_HEADERS)
    core.data_to_send()
    assert core.receive_data(SWITCHING)[2:] == []  # nothing trailing: no empty Data
    # Bytes that look like HTTP are tunnel bytes now, not a response.
    assert core.receive_data(b"HTTP/1.1 200 OK\r\n\r\n") == [Data(ref, b"HTTP/1.1 200 OK\r\n\r\n")]
    core.stream_request_body(ref, b"\x82\x80mask")
    assert core.data_to_send() == b"\x82\x80mask"
    with pytest.raises(HTTPError) as info:
        core.request("GET", "/", [])
    assert info.value.reason == "upgraded"
    assert core.receive_data(b"") == [Done(ref)]
    assert not core.open
    with pytest.raises(TransportError):
        core.stream_request_body(ref, b"x")


def test_upgrade_refused_is_an_ordinary_response() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/chat", UPGRADE_HEADERS)
    events = core.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
    assert events == [
        Status(ref, 403),
        Headers(ref, [("content-length", "2")]),
        Data(ref, b"no"),
        Done(ref),
    ]
    # No tunnel: the connection went back to plain keep-alive HTTP.
    again = core.request("GET", "/", [])
    assert core.receive_data(b"HTTP/1.1 204 No Content\r\n\r\n")[0] == Status(again, 204)


def test_101_with_eof_in_the_same_read_ends_the_tunnel() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/chat", UPGRADE_HEADERS)
    core.receive_data(SWITCHING[:10])
    events = core.receive_data(SWITCHING[10:] + b"tail")
    assert events[-1] == Data(ref, b"tail")
    assert core.receive_data(b"") == [Done(ref)]


def test_unrequested_101_is_a_protocol_error() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/", [])
    [event] = core.receive_data(SWITCHING)
    assert isinstance(event, Error) and event.ref is ref
    assert isinstance(event.error, HTTPError)
    assert not core.open


def test_malformed_response_is_an_error_event_and_closes() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/", [])
    [event] = core.receive_data(b"NOT HTTP AT ALL\r\n\r\n")
    assert isinstance(event, Error) and event.ref is ref
    assert isinstance(event.error, HTTPError)
    assert event.error.reason == "protocol_error"
    assert not core.open
    with pytest.raises(HTTPError):
        core.request("GET", "/", [])


def test_events_before_a_protocol_error_are_kept() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/", [])
    events = core.receive_data(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nZZ\r\n"
    )
    assert events[:3] == [
        Status(ref, 200),
        Headers(ref, [("transfer-encoding", "chunked")]),
        Data(ref, b"ok"),
    ]
    assert isinstance(events[3], Error)


def test_server_closing_mid_response_is_a_closed_transport_error() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/", [])
    core.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    [event] = core.receive_data(b"")
    assert isinstance(event, Error) and event.ref is ref
    assert isinstance(event.error, TransportError)
    assert event.error.reason == "closed"
    assert not core.open


def test_close_delimited_response_ends_with_done() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/", [])
    assert core.receive_data(b"HTTP/1.0 200 OK\r\n\r\nabc")[-1] == Data(ref, b"abc")
    assert core.receive_data(b"") == [Done(ref)]
    assert not core.open


def test_connection_close_response_ends_keep_alive() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/", [])
    events = core.receive_data(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert events[-1] == Done(ref)
    assert not core.open
    assert core.receive_data(b"") == []
    with pytest.raises(HTTPError) as info:
        core.request("GET", "/", [])
    assert info.value.reason == "closed"


def test_request_while_in_flight_is_refused() -> None:
    core = HTTP1Core("h")
    core.request("GET", "/", [])
    with pytest.raises(HTTPError) as info:
        core.request("GET", "/second", [])
    assert info.value.reason == "request_in_flight"
    assert "pipeline" in str(info.value)


def test_unknown_ref_is_refused() -> None:
    other = HTTP1Core("h")
    foreign = other.request("POST", "/", [], STREAM)
    core = HTTP1Core("h")
    core.request("POST", "/", [], STREAM)
    with pytest.raises(HTTPError) as info:
        core.stream_request_body(foreign, b"x")
    assert info.value.reason == "unknown_ref"


def test_streaming_a_non_streamed_request_is_refused() -> None:
    core = HTTP1Core("h")
    ref = core.request("POST", "/", [], b"whole")
    with pytest.raises(HTTPError) as info:
        core.stream_request_body(ref, b"more")
    assert info.value.reason == "not_streaming"


def test_extended_connect_needs_http2() -> None:
    core = HTTP1Core("h")
    with pytest.raises(HTTPError, match="HTTP/2"):
        core.request("CONNECT", "/", [], protocol="websocket")


def test_invalid_header_is_an_http_error() -> None:
    core = HTTP1Core("h")
    with pytest.raises(HTTPError):
        core.request("GET", "/", [("X-Bad", "line\r\nbreak")])
    with pytest.raises(HTTPError):
        core.request("GET", "/", [("X-Snow", "\u2603")])
    core.request("GET", "/", [])  # nothing was sent: still usable


def test_every_call_after_close_raises() -> None:
    core = HTTP1Core("h")
    ref = core.request("POST", "/", [], STREAM)
    core.close()
    assert not core.open
    assert core.data_to_send() == b""
    for call in (
        lambda: core.request("GET", "/", []),
        lambda: core.stream_request_body(ref, b"x"),
        lambda: core.receive_data(b"HTTP/1.1 200 OK\r\n"),
    ):
        with pytest.raises(HTTPError) as info:
            call()
        assert info.value.reason == "closed"


def test_send_body_is_stream_request_body_and_data_to_send_in_one_call() -> None:
    """The tunnel's frame comes back as it was given when nothing queued must go first;
    otherwise queued bytes lead, and every refusal is ``stream_request_body``'s."""
    core = HTTP1Core("h")
    ref = core.request("PUT", "/up", [], STREAM)
    sent = core.send_body(ref, b"abc")  # the request head was queued: it goes first
    _, headers, body = split_request(sent)
    assert headers["transfer-encoding"] == "chunked" and body == b"3\r\nabc\r\n"
    assert core.data_to_send() == b""
    core.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert core.send_body(ref, EOF) == b"0\r\n\r\n"

    core = HTTP1Core("h")
    ref = core.request("GET", "/chat", UPGRADE_HEADERS)
    core.data_to_send()
    core.receive_data(SWITCHING)
    frame = b"\x82\x80mask"
    assert core.send_body(ref, frame) is frame  # no copy, nothing queued
    core.stream_request_body(ref, b"first")  # queued, not yet taken
    assert core.send_body(ref, frame) == b"first" + frame
    assert core.data_to_send() == b""
    with pytest.raises(HTTPError) as info:
        core.send_body(Ref(), frame)
    assert info.value.reason == "unknown_ref"
    assert core.receive_data(b"") == [Done(ref)]
    with pytest.raises(TransportError):
        core.send_body(ref, frame)  # the server ended the connection


def test_passes_through_only_while_the_tunnel_is_open_both_ways() -> None:
    """What lets a shell hand tunnel bytes over without the Data event: checked at every step."""
    core = HTTP1Core("h")
    ref = core.request("GET", "/chat", UPGRADE_HEADERS)
    assert not core.passes_through(ref)  # no 101 yet: bytes are a response
    core.receive_data(SWITCHING)
    assert core.passes_through(ref)
    assert not core.passes_through(Ref())  # another request's ref
    assert core.receive_data(b"\x81\x01a") == [Data(ref, b"\x81\x01a")]  # what it promises
    assert core.passes_through(ref)
    assert core.receive_data(b"") == [Done(ref)]
    assert not core.passes_through(ref)  # the server's EOF is an event the shell must see

    closed = HTTP1Core("h")
    ref = closed.request("GET", "/chat", UPGRADE_HEADERS)
    closed.receive_data(SWITCHING)
    closed.close()
    assert not closed.passes_through(ref)  # closed by us: receive_data raises instead


def test_a_refused_upgrade_never_passes_through() -> None:
    core = HTTP1Core("h")
    ref = core.request("GET", "/chat", UPGRADE_HEADERS)
    core.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert not core.passes_through(ref)
