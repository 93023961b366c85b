"""Blocking sessions (``mint.client.connect``) against real servers on 127.0.0.1.

The same conversations run over four transports: ws:// and wss:// against the
``websockets`` package (HTTP/1.1), h2c by prior knowledge and HTTP/2 over TLS
(chosen by ALPN) against hypercorn (RFC 8441).  Then what the handshake
negotiated, and the ways connecting fails.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mint import client
from mint.client.options import ConnectKwargs
from mint.errors import (
    ConnectionClosedOK,
    TransportError,
    UpgradeFailureError,
    WebSocketError,
)
from mint.http import Event
from mint.websocket.extensions import PerMessageDeflate
from servers import RunningServer
from servers.client_endpoints import Endpoint, closed_port
from servers.session_servers import WebsocketsServer
from servers.websockets_echo import websockets_echo_server

TIMEOUT = 10.0


def header_names(headers: list[tuple[str, str]]) -> set[str]:
    return {name.lower() for name, _ in headers}


# -- conversations, on every transport -------------------------------------------------------


class _Str(str):
    pass


class _Bytes(bytes):
    pass


def test_text_and_binary_echo_and_what_was_negotiated(endpoint: Endpoint) -> None:
    with client.connect(endpoint.url("/echo"), **endpoint.options) as ws:
        assert ws.http_version == endpoint.http_version
        assert ws.connection.version == endpoint.http_version
        assert ws.subprotocol is None
        ws.send("héllo")
        reply = ws.recv(timeout=TIMEOUT)
        assert reply == "héllo" and isinstance(reply, str)
        ws.send(b"\x00\x01\xff")
        reply = ws.recv(timeout=TIMEOUT)
        assert reply == b"\x00\x01\xff" and isinstance(reply, bytes)
        buffer: Any = bytearray(b"ba")  # accepted at run time beyond the annotation's bytes
        ws.send(buffer)  # one binary message, not an iterable of ints
        assert ws.recv(timeout=TIMEOUT) == b"ba"
        # Subclasses of str and bytes leave the short way for ``encode_message``: same frames.
        ws.send(_Str("sub"))
        assert ws.recv(timeout=TIMEOUT) == "sub"
        ws.send(_Bytes(b"sub"))
        assert ws.recv(timeout=TIMEOUT) == b"sub"
        ws.send(memoryview(b"view"))
        assert ws.recv(timeout=TIMEOUT) == b"view"
        big = bytes(range(256)) * 1024  # more than one frame and one TLS record
        ws.send(big)
        assert ws.recv(timeout=TIMEOUT) == big
        names = header_names(ws.response_headers)
        if endpoint.http_version == "HTTP/1.1":
            assert {"upgrade", "sec-websocket-accept"} <= names
        else:
            assert "sec-websocket-accept" not in names  # RFC 8441: no key, no accept
            assert dict(ws.response_headers).get("server", "").startswith("hypercorn")
        assert not ws.closed
        assert ws.close_code is None


def test_fragmented_send_from_a_list_and_a_generator(endpoint: Endpoint) -> None:
    handed_out: list[str] = []

    def pieces() -> Iterator[str]:
        for piece in ("stream", "ed ", "text"):
            handed_out.append(piece)
            yield piece

    with client.connect(endpoint.url("/"), **endpoint.options) as ws:
        ws.send(["big ", "message ", "in pieces"])
        assert ws.recv(timeout=TIMEOUT) == "big message in pieces"
        ws.send([b"\x01", b"\x02", b"\x03\x04"])
        assert ws.recv(timeout=TIMEOUT) == b"\x01\x02\x03\x04"
        ws.send(pieces())
        assert handed_out == ["stream", "ed ", "text"]
        assert ws.recv(timeout=TIMEOUT) == "streamed text"
        ws.send([b"x" * 70000, b"y" * 70000])  # fragments bigger than a frame window
        assert ws.recv(timeout=TIMEOUT) == b"x" * 70000 + b"y" * 70000
        with pytest.raises(WebSocketError) as mixed:
            ws.send(["text", b"bytes"])
        assert mixed.value.reason == "invalid_argument"


def test_recv_timeout_raises_and_leaves_the_session_usable(endpoint: Endpoint) -> None:
    with client.connect(endpoint.url("/"), **endpoint.options) as ws:
        started = time.monotonic()
        with pytest.raises(TransportError) as timed_out:
            ws.recv(timeout=0.2)
        assert timed_out.value.reason == "timeout"
        assert time.monotonic() - started >= 0.2
        assert not ws.closed
        ws.send("still there?")
        assert ws.recv(timeout=TIMEOUT) == "still there?"
        with pytest.raises(TransportError):
            ws.recv(timeout=0)
        ws.send("yes")
        assert ws.recv(timeout=TIMEOUT) == "yes"


def test_iteration_ends_when_the_server_closes_normally(endpoint: Endpoint) -> None:
    with client.connect(endpoint.url("/"), **endpoint.options) as ws:
        ws.send("one")
        ws.send(b"two")
        ws.send("close")  # the server closes with 1000 "bye" after echoing the first two
        assert list(ws) == ["one", b"two"]
        assert ws.closed
        assert (ws.close_code, ws.close_reason) == (1000, "bye")
        with pytest.raises(ConnectionClosedOK) as closed:
            ws.send("too late")
        assert closed.value.close_code == 1000


def test_ping_close_and_recv_after_close(endpoint: Endpoint) -> None:
    close_timeout = 5.0
    options: ConnectKwargs = {**endpoint.options, "close_timeout": close_timeout}
    ws = client.connect(endpoint.url("/"), **options)
    latency = ws.ping()
    assert isinstance(latency, float) and 0 <= latency < TIMEOUT
    assert ws.ping(timeout=TIMEOUT) >= 0
    ws.send("before close")
    assert ws.recv(timeout=TIMEOUT) == "before close"
    started = time.monotonic()
    ws.close()
    # The handshake completed: close did not sit out its timeout waiting for the server.
    assert time.monotonic() - started < close_timeout / 2
    assert ws.closed
    assert ws.close_code == 1000
    with pytest.raises(ConnectionClosedOK) as after:
        ws.recv(timeout=TIMEOUT)
    assert after.value.close_code == 1000
    with pytest.raises(ConnectionClosedOK):
        ws.send("nothing more")
    with pytest.raises(ConnectionClosedOK):
        ws.ping()
    ws.close()  # idempotent
    assert not ws.connection.open  # the session owned its connection


# -- negotiation -----------------------------------------------------------------------------


def test_subprotocol_chosen_by_the_server_over_http1() -> None:
    with websockets_echo_server(subprotocols=["chat.v2"]) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with client.connect(url, subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "hi"
        assert server.handshakes[-1]["Sec-WebSocket-Protocol"] == "chat.v1, chat.v2"


def test_subprotocol_chosen_by_the_server_over_http2(h2c_server: RunningServer) -> None:
    url = f"ws://127.0.0.1:{h2c_server.port}/"
    with client.connect(url, http2=True, subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.http_version == "HTTP/2"
        assert ws.subprotocol == "chat.v1"  # the app picks the first one offered
    with client.connect(url, http2=True) as ws:
        assert ws.subprotocol is None


def test_permessage_deflate_is_negotiated_by_default_and_can_be_turned_off() -> None:
    # The server records a handshake when its handler starts: checked after a round trip.
    with websockets_echo_server(compression="deflate") as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with client.connect(url) as ws:
            assert [type(extension) for extension in ws.extensions] == [PerMessageDeflate]
            text = "compressible " * 10000
            ws.send(text)
            assert ws.recv(timeout=TIMEOUT) == text
            assert "permessage-deflate" in server.handshakes[-1]["Sec-WebSocket-Extensions"]
        with client.connect(url, compression=False) as ws:
            assert ws.extensions == []
            ws.send("plain")
            assert ws.recv(timeout=TIMEOUT) == "plain"
            assert "Sec-WebSocket-Extensions" not in server.handshakes[-1]
    # compression=None: the server declines the offer
    with (
        websockets_echo_server() as server,
        client.connect(f"ws://127.0.0.1:{server.port}/") as ws,
    ):
        assert ws.extensions == []
        ws.send("plain")
        assert ws.recv(timeout=TIMEOUT) == "plain"
        assert "permessage-deflate" in server.handshakes[-1]["Sec-WebSocket-Extensions"]


def test_permessage_deflate_over_http2(h2c_server: RunningServer) -> None:
    url = f"ws://127.0.0.1:{h2c_server.port}/"
    with client.connect(url, http2=True) as ws:
        assert [type(extension) for extension in ws.extensions] == [PerMessageDeflate]
        ws.send(b"z" * 100000)
        assert ws.recv(timeout=TIMEOUT) == b"z" * 100000
    with client.connect(url, http2=True, compression=False) as ws:
        assert ws.extensions == []


def test_request_headers_origin_and_credentials_reach_the_server() -> None:
    with websockets_echo_server() as server:
        url = f"ws://user:p%40ss@127.0.0.1:{server.port}/path?q=1"
        with client.connect(url, headers=[("X-Token", "abc")], origin="http://example.test") as ws:
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "hi"
        seen = server.handshakes[-1]
        assert seen["X-Token"] == "abc"
        assert seen["Origin"] == "http://example.test"
        assert seen["Authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss


def test_a_large_message_comes_the_short_way_read_after_read() -> None:
    """Over HTTP/1.1 a message of many reads is read the short way to its end: the general
    path (``conn.stream``, events, routing) is not taken once the first read left it partial."""
    with (
        websockets_echo_server(max_size=None) as server,
        client.connect(f"ws://127.0.0.1:{server.port}/", compression=False, max_size=None) as ws,
    ):
        conn = ws.connection
        general: list[bytes] = []
        stream = conn.stream

        def counting(data: bytes) -> list[Event]:
            general.append(data)
            return stream(data)

        conn.stream = counting  # type: ignore[method-assign]  # counts, changes nothing
        big = os.urandom(4 << 20)
        for _ in range(2):
            ws.send(big)
            assert ws.recv(timeout=TIMEOUT) == big
        assert general == []


# -- connecting fails --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:1/", "bad_scheme"),
        ("ftp://127.0.0.1:1/", "bad_scheme"),
        ("ws:///no-host", "bad_url"),
        ("ws://127.0.0.1:99999/", "bad_url"),
        ("ws://127.0.0.1:1/#fragment", "bad_url"),
    ],
)
def test_bad_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(WebSocketError) as refused:
        client.connect(url)
    assert refused.value.reason == reason
    with pytest.raises(WebSocketError) as also_refused:
        client.reconnecting(url)  # at once, not at the first retry
    assert also_refused.value.reason == reason


def test_a_request_needs_an_http_url() -> None:
    with client.Client() as c, pytest.raises(WebSocketError) as refused:
        c.request("GET", "ws://127.0.0.1:1/")
    assert refused.value.reason == "bad_scheme"


@pytest.mark.parametrize(
    "options",
    [
        {"max_queue": 0},
        {"max_queue": -3},
        {"open_timeout": -1},
        {"ping_interval": 0},
        {"ping_timeout": -0.5},
        {"close_timeout": -1},
        {"max_size": 0},
        {"subprotocols": "chat"},
        {"http2": "yes"},
    ],
)
def test_bad_options_are_refused_before_any_io(options: dict[str, Any]) -> None:
    # Nothing listens on the port: an error other than "refused" proves no connect was tried.
    with pytest.raises(WebSocketError) as refused:
        client.connect(f"ws://127.0.0.1:{closed_port()}/", **options)
    assert refused.value.reason == "invalid_argument"


def test_connecting_to_a_closed_port_raises_refused() -> None:
    with pytest.raises(TransportError) as refused:
        client.connect(f"ws://127.0.0.1:{closed_port()}/")
    assert refused.value.reason == "refused"


def test_forbidden_upgrade_raises_with_the_status(endpoint: Endpoint) -> None:
    with pytest.raises(UpgradeFailureError) as refused:
        client.connect(endpoint.url("/forbidden"), **endpoint.options)
    assert refused.value.status == 403


def test_wss_with_an_untrusted_certificate_is_refused(wss_server: WebsocketsServer) -> None:
    with pytest.raises(TransportError) as refused:
        client.connect(f"wss://127.0.0.1:{wss_server.port}/")  # the test CA is not trusted
    assert refused.value.reason == "tls"
