"""The DESIGN.md flow over HTTP/1.1 against real peers on 127.0.0.1, ws:// and wss://."""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mint import http, websocket
from mint.errors import ProtocolError, UpgradeFailureError, WebSocketError
from mint.http.events import Ref
from mint.websocket import Binary, Close, Frame, Ping, Pong, Text
from mint.websocket.handshake import accept_for
from servers.mint_client import Client, Mailbox
from servers.websockets_echo import (
    RunningServer,
    read_request_head,
    scripted_server,
    websockets_echo_server,
)


@pytest.fixture(scope="module")
def ws_server() -> Iterator[RunningServer]:
    with websockets_echo_server() as server:
        yield server


@pytest.fixture(scope="module")
def wss_server(server_ssl_context: ssl.SSLContext) -> Iterator[RunningServer]:
    with websockets_echo_server(ssl_context=server_ssl_context) as server:
        yield server


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_the_design_flow(
    scheme: str, ws_server: RunningServer, wss_server: RunningServer, tls_ca_file: Path
) -> None:
    """DESIGN.md's example, as written, over ws:// and wss://."""
    if scheme == "ws":
        conn = http.connect("http", "localhost", ws_server.port)
    else:
        conn = http.connect("https", "localhost", wss_server.port, cafile=str(tls_ca_file))
    ref = websocket.upgrade(scheme, conn, "/", [])
    ws = None
    while ws is None:
        match conn.recv(timeout=5):
            case [http.Status(ref=r, status=status), http.Headers(headers=resp_headers), *_] if (
                r == ref
            ):
                ws = websocket.new(conn, ref, status, resp_headers)
    conn.stream_request_body(ref, ws.encode(Text("hello world")))
    frames: list[Frame] = []
    while not frames:
        match conn.recv(timeout=5):
            case [http.Data(ref=r, data=data)] if r == ref:
                frames.extend(ws.decode(data))
    assert frames == [Text("hello world")]
    conn.close()


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_echo_ping_and_close(
    scheme: str,
    ws_server: RunningServer,
    wss_server: RunningServer,
    client_ssl_context: ssl.SSLContext,
) -> None:
    if scheme == "ws":
        client = Client.open("ws", ws_server.port)
    else:
        client = Client.open("wss", wss_server.port, ssl_context=client_ssl_context)
    client.send(Text("héllo ✓"))
    client.send(Binary(b"\x00\xff" * 100))
    client.send(Text(""))
    assert client.receive(3) == [Text("héllo ✓"), Binary(b"\x00\xff" * 100), Text("")]
    client.send(Ping(b"ping?"))
    assert client.receive() == [Pong(b"ping?")]
    assert client.close() == Close(1000, "done")


def test_close_handshake_reported_to_server(ws_server: RunningServer) -> None:
    before = len(ws_server.close_codes)
    client = Client.open("ws", ws_server.port)
    client.send(Close(4001, "custom"))
    assert client.receive() == [Close(4001, "custom")]
    assert client.ws.close_sent and client.ws.close_received and client.ws.closed
    with pytest.raises(WebSocketError):
        client.ws.encode(Text("too late"))
    # The server closes TCP after the handshake: the tunnel ends with Done.
    events: list[http.Event] = []
    while not any(isinstance(event, http.Done) for event in events):
        events.extend(client.conn.recv(timeout=10))
    assert not client.conn.open
    deadline = time.monotonic() + 10
    while len(ws_server.close_codes) == before and time.monotonic() < deadline:
        time.sleep(0.05)  # the server thread records the code after its handler returns
    assert ws_server.close_codes[-1] == 4001


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_sixteen_mebibyte_message(
    scheme: str,
    ws_server: RunningServer,
    wss_server: RunningServer,
    client_ssl_context: ssl.SSLContext,
) -> None:
    if scheme == "ws":
        client = Client.open("ws", ws_server.port)
    else:
        client = Client.open("wss", wss_server.port, ssl_context=client_ssl_context)
    payload = os.urandom(16 * 2**20)
    client.send(Binary(payload))
    (echo,) = client.receive()
    assert isinstance(echo, Binary)
    assert echo.data == payload
    client.close()


def test_fragmented_send_arrives_as_one_message(ws_server: RunningServer) -> None:
    client = Client.open("ws", ws_server.port)
    client.send(Text("frag", fin=False))
    client.send(Ping(b"in between"))
    client.send(Text("men", fin=False))
    client.send(Text("ted ✓"))
    client.send(Binary(b"a", fin=False))
    client.send(Binary(b"b"))
    frames = client.receive(3)
    assert Pong(b"in between") in frames  # the server may answer the ping at any point
    assert [frame for frame in frames if not isinstance(frame, Pong)] == [
        Text("fragmented ✓"),
        Binary(b"ab"),
    ]
    client.close()


def test_forbidden_upgrade_raises_upgrade_failure(ws_server: RunningServer) -> None:
    conn = http.connect("http", "127.0.0.1", ws_server.port)
    ref = websocket.upgrade("ws", conn, "/forbidden", [])
    status, headers, _, _ = Mailbox(conn).response(ref)
    with pytest.raises(UpgradeFailureError) as info:
        websocket.new(conn, ref, status, headers)
    assert info.value.status == 403
    assert ("content-type", "text/plain; charset=utf-8") in info.value.headers
    conn.close()


def test_wrong_accept_key_is_refused() -> None:
    def script(connection: socket.socket) -> None:
        read_request_head(connection)
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: "
            + accept_for("AAAAAAAAAAAAAAAAAAAAAA==").encode()
            + b"\r\n\r\n"
        )

    with scripted_server(script) as port:
        conn = http.connect("http", "127.0.0.1", port)
        ref = websocket.upgrade("ws", conn, "/", [])
        status, headers, _, _ = Mailbox(conn).response(ref)
        with pytest.raises(WebSocketError) as info:
            websocket.new(conn, ref, status, headers)
        assert info.value.reason == "bad_accept"
        conn.close()


def test_frames_glued_to_the_101_are_not_lost() -> None:
    """The server sends the 101 and two frames in one segment; both frames reach the caller."""

    def script(connection: socket.socket) -> None:
        key = read_request_head(connection)["sec-websocket-key"]
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_for(key).encode() + b"\r\n\r\n"
            b"\x81\x05early" + b"\x82\x03\x01\x02\x03"
        )
        connection.recv(1024)  # wait for the client's close frame
        connection.sendall(b"\x88\x02\x03\xe8")

    with scripted_server(script) as port:
        client = Client.open("ws", port)
        assert client.receive(2) == [Text("early"), Binary(b"\x01\x02\x03")]
        assert client.close() == Close(1000, "")


def test_protocol_error_keeps_frames_decoded_before_it() -> None:
    """A masked server frame after a good one: the good one is in the error."""

    def script(connection: socket.socket) -> None:
        key = read_request_head(connection)["sec-websocket-key"]
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_for(key).encode() + b"\r\n\r\n"
        )
        connection.sendall(b"\x81\x02ok" + b"\x81\x82\x00\x00\x00\x00no")
        connection.recv(1024)

    with scripted_server(script) as port:
        conn = http.connect("http", "127.0.0.1", port)
        ref = websocket.upgrade("ws", conn, "/", [])
        status, headers, early, _ = Mailbox(conn).response(ref)
        ws = websocket.new(conn, ref, status, headers)
        data = b"".join(early)
        while len(data) < 10:
            data += b"".join(
                event.data for event in conn.recv(timeout=10) if isinstance(event, http.Data)
            )
        with pytest.raises(ProtocolError) as info:
            ws.decode(data)
        assert info.value.close_code == 1002
        assert info.value.frames == [Text("ok")]
        conn.stream_request_body(ref, ws.encode(Close(info.value.close_code)))
        conn.close()


def test_upgrade_argument_errors(ws_server: RunningServer) -> None:
    conn = http.connect("http", "127.0.0.1", ws_server.port)
    with pytest.raises(WebSocketError, match="https"):
        websocket.upgrade("wss", conn, "/", [])
    with pytest.raises(WebSocketError):
        websocket.upgrade("ftp", conn, "/", [])
    with pytest.raises(WebSocketError):
        websocket.upgrade("ws", conn, "no-slash", [])
    with pytest.raises(WebSocketError, match="not a pending"):
        websocket.new(conn, Ref(), 101, [])
    conn.close()


def test_subprotocol_negotiated(ws_server: RunningServer) -> None:
    with websockets_echo_server(subprotocols=["chat.v2"]) as server:
        conn = http.connect("http", "127.0.0.1", server.port)
        ref = websocket.upgrade("ws", conn, "/", [], subprotocols=["chat.v1", "chat.v2"])
        status, headers, _, _ = Mailbox(conn).response(ref)
        ws = websocket.new(conn, ref, status, headers)
        assert ws.subprotocol == "chat.v2"
        client = Client(Mailbox(conn), ref, ws, [])
        client.send(Text("round trip"))  # the server's handler has run once this is back
        assert client.receive() == [Text("round trip")]
        assert server.handshakes[-1]["Sec-WebSocket-Protocol"] == "chat.v1, chat.v2"
        conn.close()
