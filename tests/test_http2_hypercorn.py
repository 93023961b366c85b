"""HTTP2Core against a real HTTP/2 server: hypercorn over h2c (prior knowledge) and TLS (ALPN h2).

hypercorn spots the HTTP/2 preface on a cleartext connection (its h11 protocol
hands ``PRI * HTTP/2.0`` over to h2), announces SETTINGS_ENABLE_CONNECT_PROTOCOL
= 1, and serves RFC 8441 WebSockets through wsproto, so it checks our frames
and our extended CONNECT with an implementation we did not write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from mint.errors import MintError
from mint.http import (
    EOF,
    STREAM,
    Connection,
    Data,
    Done,
    Error,
    Headers,
    Pong,
    Ref,
    Status,
    connect,
)
from mint.http.http2 import HTTP2Core
from servers import RunningServer, pattern, start_hypercorn

TIMEOUT = 10.0


@dataclass
class Response:
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    done: bool = False
    error: MintError | None = None


def collect(conn: Connection, refs: list[Ref]) -> dict[Ref, Response]:
    """Receive until every ref is Done (or failed), keeping events per ref."""
    responses = {ref: Response() for ref in refs}
    while not all(r.done or r.error for r in responses.values()):
        for event in conn.recv(timeout=TIMEOUT):
            if isinstance(event, Pong):
                continue
            response = responses[event.ref]
            if isinstance(event, Status):
                response.status = event.status
            elif isinstance(event, Headers):
                response.headers.extend(event.headers)
            elif isinstance(event, Data):
                response.body += event.data
            elif isinstance(event, Done):
                response.done = True
            elif isinstance(event, Error):
                response.error = event.error
    return responses


@pytest.fixture(scope="module")
def h2c_server() -> Iterator[RunningServer]:
    server = start_hypercorn()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_server(
    tls_server_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    pem = tmp_path_factory.mktemp("hypercorn") / "server.pem"
    tls_server_cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    server = start_hypercorn(certfile=str(pem), keyfile=str(pem))
    yield server
    server.stop()


@pytest.fixture(params=["h2c", "tls"])
def conn(
    request: pytest.FixtureRequest,
    h2c_server: RunningServer,
    tls_server: RunningServer,
    tls_ca_file: Path,
) -> Iterator[Connection]:
    if request.param == "h2c":
        connection = connect(
            "http", h2c_server.host, h2c_server.port, protocols=("http2",), timeout=TIMEOUT
        )
    else:
        connection = connect(
            "https",
            tls_server.host,
            tls_server.port,
            protocols=("http2",),
            cafile=os.fspath(tls_ca_file),
            timeout=TIMEOUT,
        )
    yield connection
    connection.close()


def test_get(conn: Connection) -> None:
    assert conn.version == "HTTP/2"
    assert isinstance(conn.core, HTTP2Core)
    ref = conn.request("GET", "/")
    response = collect(conn, [ref])[ref]
    assert response.status == 200
    assert ("x-http-version", "2") in response.headers
    assert bytes(response.body) == b"hello"


def test_server_settings_and_ping(conn: Connection) -> None:
    assert conn.extended_connect_enabled
    assert conn.server_settings["max_concurrent_streams"] == 100
    ref = conn.ping()
    events: list[object] = []
    while Pong(ref) not in events:
        events.extend(conn.recv(timeout=TIMEOUT))


def test_fifty_concurrent_gets_on_one_connection(conn: Connection) -> None:
    sizes = {conn.request("GET", f"/bytes/{n * 997}"): n * 997 for n in range(50)}
    responses = collect(conn, list(sizes))
    for ref, size in sizes.items():
        assert responses[ref].status == 200
        assert bytes(responses[ref].body) == pattern(size)


def test_large_post_echo_drains_through_default_windows(conn: Connection) -> None:
    payload = pattern(16 * 1024 * 1024)
    ref = conn.request("POST", "/echo", [("content-type", "application/octet-stream")], STREAM)
    conn.stream_request_body(ref, payload)  # far beyond the server's 65,535-byte window
    conn.stream_request_body(ref, EOF)
    response = collect(conn, [ref])[ref]
    assert response.error is None
    assert response.status == 200
    assert len(response.body) == len(payload)
    assert bytes(response.body) == payload


def masked_frame(opcode: int, payload: bytes, key: bytes = b"\x11\x22\x33\x44") -> bytes:
    """A client WebSocket frame, built by hand: FIN + opcode, MASK bit, short length, key, data."""
    assert len(payload) < 126
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + masked


def test_extended_connect_tunnel_carries_websocket_bytes(conn: Connection) -> None:
    ref = conn.request("CONNECT", "/chat", [("sec-websocket-version", "13")], protocol="websocket")
    status = None
    while status is None:
        for event in conn.recv(timeout=TIMEOUT):
            if isinstance(event, Status) and event.ref is ref:
                status = event.status
    assert status == 200

    conn.stream_request_body(ref, masked_frame(0x1, b"hello h2"))
    echoed = bytearray()
    while len(echoed) < 10:
        for event in conn.recv(timeout=TIMEOUT):
            if isinstance(event, Data) and event.ref is ref:
                echoed += event.data
    assert bytes(echoed) == b"\x81\x08hello h2"  # unmasked text frame from the server

    conn.stream_request_body(ref, masked_frame(0x2, b"\x00\xff binary"))
    echoed.clear()
    while len(echoed) < 11:
        for event in conn.recv(timeout=TIMEOUT):
            if isinstance(event, Data) and event.ref is ref:
                echoed += event.data
    assert bytes(echoed) == b"\x82\x09\x00\xff binary"

    conn.stream_request_body(ref, masked_frame(0x8, (1000).to_bytes(2, "big")))
    echoed.clear()
    while len(echoed) < 4:
        for event in conn.recv(timeout=TIMEOUT):
            if isinstance(event, Data) and event.ref is ref:
                echoed += event.data
    assert bytes(echoed) == b"\x88\x02\x03\xe8"  # the server's Close, code 1000
    # hypercorn forgets the stream after the closing handshake without ending it,
    # and a DATA frame on it (even an empty END_STREAM) crashes its whole
    # connection: reset it instead.  The RST goes out with the next request.
    assert isinstance(conn.core, HTTP2Core)
    conn.core.cancel_request(ref)
    again = conn.request("GET", "/")
    assert collect(conn, [again])[again].status == 200


def test_extended_connect_refused_with_403(conn: Connection) -> None:
    ref = conn.request(
        "CONNECT", "/forbidden", [("sec-websocket-version", "13")], protocol="websocket"
    )
    response = collect(conn, [ref])[ref]
    assert response.status == 403
    assert bytes(response.body) == b"forbidden"
    # the refused tunnel is closed on our side too: the connection stays usable
    again = conn.request("GET", "/")
    assert collect(conn, [again])[again].status == 200


def test_server_helper_also_serves_http1_websockets(h2c_server: RunningServer) -> None:
    """The fixture server is shared with the WebSocket tests: check its HTTP/1.1 side too."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect as ws_connect

    url = f"ws://{h2c_server.host}:{h2c_server.port}"
    with ws_connect(f"{url}/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send("text")
        assert ws.recv(timeout=TIMEOUT) == "text"
        ws.send(b"\x00bytes")
        assert ws.recv(timeout=TIMEOUT) == b"\x00bytes"
    with pytest.raises(InvalidStatus) as info:
        ws_connect(f"{url}/forbidden", open_timeout=TIMEOUT)
    assert info.value.response.status_code == 403
