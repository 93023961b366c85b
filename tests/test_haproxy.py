"""mint's core API through HAProxy 2.6, a real RFC 8441 front, to a websockets server behind it.

The other HTTP/2 tests talk to servers that speak RFC 8441 end to end.
HAProxy instead turns each extended CONNECT into an HTTP/1.1 upgrade to its
backend and relays the stream as a tunnel: what deployments run, with its
own SETTINGS, flow control and framing choices.  These tests prove the
fixture works and that ``upgrade``/``new`` hold up through it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mint import http, websocket
from mint.errors import WebSocketError
from mint.websocket import Binary, Close, Text
from servers.haproxy import haproxy_front
from servers.mint_client import Client, Mailbox
from servers.websockets_echo import RunningServer

MIB = 2**20


def _two_websockets_on_one_connection(
    conn: http.Connection, scheme: str, backend: RunningServer
) -> None:
    """Two echoes (text, then 1 MiB binary) interleaved on one connection, then both closes.

    The 1 MiB messages span many DATA frames and HAProxy's flow-control
    windows in both directions, interleaved between the two streams: a
    framing or window bug in the client shows up as a hang or a torn frame.
    """
    assert conn.version == "HTTP/2"
    assert conn.extended_connect_enabled
    handshakes_before = len(backend.handshakes)
    box = Mailbox(conn)
    a = Client.on(box, scheme, "/a")
    b = Client.on(box, scheme, "/b")
    assert a.ref != b.ref
    big_a = bytes(range(256)) * (MIB // 256)
    big_b = bytes(reversed(range(256))) * (MIB // 256)
    a.send(Text("to a, héllo ✓"))
    b.send(Text("to b"))
    a.send(Binary(big_a))
    b.send(Binary(big_b))
    assert b.receive(2) == [Text("to b"), Binary(big_b)]
    assert a.receive(2) == [Text("to a, héllo ✓"), Binary(big_a)]
    assert a.close(1000, "bye a") == Close(1000, "bye a")
    assert b.close(1000, "bye b") == Close(1000, "bye b")
    # After the closing handshake HAProxy ends each stream (the backend closed its TCP side).
    assert isinstance(a.wait_end(), http.Done)
    assert isinstance(b.wait_end(), http.Done)
    assert conn.open  # the connection outlives its WebSockets
    # Each extended CONNECT reached the backend as an HTTP/1.1 upgrade of its own,
    # HAProxy making up the Sec-WebSocket-Key that RFC 8441 requests do not carry.
    seen = backend.handshakes[handshakes_before:]
    assert len(seen) == 2
    for headers in seen:
        assert headers["Upgrade"].lower() == "websocket"
        assert "upgrade" in headers["Connection"].lower()
        assert headers["Sec-WebSocket-Version"] == "13"
        assert "Sec-WebSocket-Key" in headers


def test_two_websockets_over_h2c(backend: RunningServer, h2c_front: int) -> None:
    with http.connect("http", "127.0.0.1", h2c_front, protocols=("http2",)) as conn:
        _two_websockets_on_one_connection(conn, "ws", backend)


def test_two_websockets_over_tls_with_alpn_h2(
    backend: RunningServer, tls_front: int, tls_ca_file: Path
) -> None:
    with http.connect(
        "https",
        "localhost",
        tls_front,
        protocols=("http2", "http1"),  # ALPN picks: HAProxy prefers h2
        cafile=str(tls_ca_file),
    ) as conn:
        _two_websockets_on_one_connection(conn, "wss", backend)


def test_the_workaround_hides_extended_connect_over_h2c(backend: RunningServer) -> None:
    with (
        haproxy_front(backend.port, extended_connect=False) as port,
        http.connect("http", "127.0.0.1", port, protocols=("http2",)) as conn,
    ):
        assert conn.version == "HTTP/2"
        assert not conn.extended_connect_enabled
        assert "enable_connect_protocol" not in conn.server_settings
        with pytest.raises(WebSocketError) as caught:
            websocket.upgrade("ws", conn, "/", [])
        assert caught.value.reason == "extended_connect_disabled"


def test_without_extended_connect_http1_websockets_still_work(
    backend: RunningServer, tls_files: tuple[str, str], tls_ca_file: Path
) -> None:
    """What the fallback relies on: the same front still upgrades over HTTP/1.1."""
    with haproxy_front(backend.port, tls=tls_files, extended_connect=False) as port:
        with http.connect(
            "https", "localhost", port, protocols=("http2", "http1"), cafile=str(tls_ca_file)
        ) as conn:
            assert conn.version == "HTTP/2"
            assert not conn.extended_connect_enabled
        client = Client.open("wss", port, "/h1", protocols=("http1",), cafile=str(tls_ca_file))
        try:
            assert client.conn.version == "HTTP/1.1"
            client.send(Text("over HTTP/1.1"))
            client.send(Binary(b"\x00\xff" * (MIB // 2)))
            assert client.receive(2) == [Text("over HTTP/1.1"), Binary(b"\x00\xff" * (MIB // 2))]
            assert client.close() == Close(1000, "done")
        finally:
            client.conn.close()
