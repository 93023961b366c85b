"""WebSockets over HTTP/2 (RFC 8441) against real servers on 127.0.0.1: hypercorn, h2c and TLS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypercorn.config import Config

from mint import http, websocket
from mint.errors import HTTPError, TransportError, UpgradeFailureError, WebSocketError
from mint.websocket import Binary, Close, Frame, Ping, Pong, Text
from servers import RunningServer, start_hypercorn
from servers.h2_scripted import h2_scripted_server
from servers.mint_client import Client, Mailbox


def _config() -> Config:
    config = Config()
    config.websocket_max_message_size = 64 * 2**20  # room for the 16 MiB echoes
    return config


@pytest.fixture(scope="module")
def h2c_server() -> Iterator[RunningServer]:
    server = start_hypercorn(config=_config())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_server(tls_cert_files: tuple[str, str]) -> Iterator[RunningServer]:
    server = start_hypercorn(
        certfile=tls_cert_files[0], keyfile=tls_cert_files[1], config=_config()
    )
    yield server
    server.stop()


@pytest.fixture(params=["h2c", "tls"])
def mailbox(
    request: pytest.FixtureRequest,
    h2c_server: RunningServer,
    tls_server: RunningServer,
    tls_ca_file: Path,
) -> Iterator[tuple[str, Mailbox]]:
    """An HTTP/2 connection to hypercorn, and the ws scheme that goes with it."""
    if request.param == "h2c":
        conn = http.connect("http", "127.0.0.1", h2c_server.port, protocols=("http2",))
        scheme = "ws"
    else:
        conn = http.connect(
            "https",
            "localhost",
            tls_server.port,
            protocols=("http1", "http2"),
            cafile=str(tls_ca_file),
        )
        scheme = "wss"
    assert conn.version == "HTTP/2"
    yield scheme, Mailbox(conn)
    conn.close()


@pytest.mark.parametrize("transport", ["h2c", "tls"])
def test_the_design_flow(
    transport: str, h2c_server: RunningServer, tls_server: RunningServer, tls_ca_file: Path
) -> None:
    """DESIGN.md's example, unchanged but for connect's options, over HTTP/2."""
    if transport == "h2c":
        conn = http.connect("http", "localhost", h2c_server.port, protocols=("http2",))
        scheme = "ws"
    else:
        conn = http.connect(
            "https", "localhost", tls_server.port, protocols=("http2",), cafile=str(tls_ca_file)
        )
        scheme = "wss"
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


def test_echo_ping_and_close(mailbox: tuple[str, Mailbox]) -> None:
    scheme, box = mailbox
    client = Client.on(box, scheme, "/echo", subprotocols=["chat"])
    assert client.ws.subprotocol == "chat"
    client.send(Text("héllo ✓"))
    client.send(Binary(b"\x00\xff" * 1000))
    assert client.receive(2) == [Text("héllo ✓"), Binary(b"\x00\xff" * 1000)]
    client.send(Ping(b"ping?"))
    assert client.receive() == [Pong(b"ping?")]
    assert client.close(1000, "bye") == Close(1000, "bye")
    assert client.ws.closed
    # Our END_STREAM went out with the Close; the connection stays usable.
    ref = box.conn.request("GET", "/", [])
    assert box.full_response(ref) == (200, b"hello")


def test_sixteen_mebibytes_both_ways_with_default_windows(mailbox: tuple[str, Mailbox]) -> None:
    """Writes far beyond the 64 KiB windows queue and drain while we keep receiving."""
    scheme, box = mailbox
    client = Client.on(box, scheme)
    first, second = os.urandom(16 * 2**20), os.urandom(16 * 2**20)
    client.send(Binary(first))
    client.send(Text("between"))
    client.send(Binary(second))
    frames = client.receive(3)
    assert [type(frame) for frame in frames] == [Binary, Text, Binary]
    assert frames[0] == Binary(first)
    assert frames[1] == Text("between")
    assert frames[2] == Binary(second)
    client.close()


def test_fifty_websockets_and_plain_requests_on_one_connection(
    mailbox: tuple[str, Mailbox],
) -> None:
    scheme, box = mailbox
    clients = [Client.on(box, scheme, f"/ws/{index}") for index in range(50)]
    gets = [box.conn.request("GET", f"/bytes/{1000 + index}", []) for index in range(10)]
    for index, client in enumerate(clients):
        client.send(Text(f"message {index}"))
    for index, client in enumerate(reversed(clients)):
        assert client.receive() == [Text(f"message {49 - index}")]
    for index, ref in enumerate(gets):
        status, body = box.full_response(ref)
        assert status == 200
        assert len(body) == 1000 + index
    for client in clients:
        client.close()


def test_forbidden_upgrade(mailbox: tuple[str, Mailbox]) -> None:
    scheme, box = mailbox
    ref = websocket.upgrade(scheme, box.conn, "/forbidden", [])
    status, headers, _, _ = box.response(ref)
    with pytest.raises(UpgradeFailureError) as info:
        websocket.new(box.conn, ref, status, headers)
    assert info.value.status == 403
    # The refusal touched nothing else: a WebSocket still opens next to it.
    client = Client.on(box, scheme)
    client.send(Text("still here"))
    assert client.receive() == [Text("still here")]


def test_extended_connect_disabled() -> None:
    with h2_scripted_server(enable_connect_protocol=False) as port:
        conn = http.connect("http", "127.0.0.1", port, protocols=("http2",))
        # connect() waited for the server's SETTINGS, so this is a decision, not a guess.
        assert conn.core.remote_settings_received  # type: ignore[attr-defined]
        assert not conn.extended_connect_enabled
        with pytest.raises(WebSocketError) as info:
            websocket.upgrade("ws", conn, "/", [])
        assert info.value.reason == "extended_connect_disabled"
        # Plain requests still work on that connection.
        box = Mailbox(conn)
        assert box.full_response(conn.request("GET", "/", []))[0] == 200
        conn.close()


def test_server_end_stream_ends_one_websocket_only() -> None:
    with h2_scripted_server(enable_connect_protocol=True) as port:
        box = Mailbox(http.connect("http", "127.0.0.1", port, protocols=("http2",)))
        keep = Client.on(box, "ws", "/keep")
        ending = Client.on(box, "ws", "/end")
        assert isinstance(ending.wait_end(), http.Done)
        assert ending.receive() == [Text("bye")]
        keep.send(Text("are you there"))
        assert keep.receive() == [Text("ok")]
        box.conn.close()


def test_server_reset_ends_one_websocket_only() -> None:
    with h2_scripted_server(enable_connect_protocol=True) as port:
        box = Mailbox(http.connect("http", "127.0.0.1", port, protocols=("http2",)))
        keep = Client.on(box, "ws", "/keep")
        reset = Client.on(box, "ws", "/reset")
        with pytest.raises(AssertionError, match="ended with Error"):
            reset.receive()
        assert isinstance(reset.ended, http.Error)
        assert isinstance(reset.ended.error, HTTPError)
        assert reset.ended.error.reason == "stream_reset"
        assert reset.pending == []  # half a frame arrived: nothing was made up of it
        keep.send(Text("are you there"))
        assert keep.receive() == [Text("ok")]
        box.conn.close()


def test_wss_needs_https(h2c_server: RunningServer) -> None:
    conn = http.connect("http", "127.0.0.1", h2c_server.port, protocols=("http2",))
    with pytest.raises(WebSocketError, match="https"):
        websocket.upgrade("wss", conn, "/", [])
    conn.close()


def test_tls_without_trust_fails(tls_server: RunningServer) -> None:
    with pytest.raises(TransportError) as info:
        http.connect("https", "localhost", tls_server.port, protocols=("http2",))
    assert info.value.reason == "tls"
