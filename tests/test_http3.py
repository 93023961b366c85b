"""WebSockets over HTTP/3 (RFC 9220) against an aioquic server on 127.0.0.1, blocking and asyncio.

The server (``servers.h3_server``) is aioquic's server API with wsproto's
framing: no code shared with the client under test.  Packet loss is a
seeded relay between the two dropping datagrams both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from mint import http, websocket
from mint.errors import HTTPError, MintError, TransportError, UpgradeFailureError, WebSocketError
from mint.http import aio as http_aio
from mint.http.events import Data, Done, Error, Event, Headers, Pong, Ref, Status
from mint.http.http2 import StreamResetError
from mint.http.http3 import DEFAULT_STREAM_WINDOW, HTTP3Core, client_configuration
from mint.websocket import Binary, Close, Frame, Ping, Text
from mint.websocket import Pong as WsPong
from servers.h3_server import FLOOD_SIZE, RunningH3Server, h3_echo_server

T = TypeVar("T")
BIG = 16 << 20


@pytest.fixture(scope="module")
def server(tls_cert_files: tuple[str, str]) -> Iterator[RunningH3Server]:
    with h3_echo_server(*tls_cert_files) as running:
        yield running


@pytest.fixture
def lossy_server(tls_cert_files: tuple[str, str]) -> Iterator[RunningH3Server]:
    with h3_echo_server(*tls_cert_files, drop=0.1, seed=14) as running:
        yield running


@pytest.fixture(scope="module")
def no_connect_server(tls_cert_files: tuple[str, str]) -> Iterator[RunningH3Server]:
    with h3_echo_server(*tls_cert_files, enable_connect=False) as running:
        yield running


def dial(server: RunningH3Server, ca: Path, **options: object) -> http.Connection:
    return http.connect(
        "https",
        server.host,
        server.port,
        protocols=("http3",),
        cafile=ca,
        timeout=10,
        **options,  # type: ignore[arg-type]
    )


# -- blocking helpers -------------------------------------------------------------------------


class Tunnels:
    """Routes one connection's events to the WebSockets (or requests) their refs name."""

    def __init__(self, conn: http.Connection) -> None:
        self.conn = conn
        self.events: dict[Ref, list[Event]] = {}

    def take(self, ref: Ref) -> list[Event]:
        return self.events.pop(ref, [])

    def pump(self, timeout: float = 30) -> None:
        for event in self.conn.recv(timeout):
            self.events.setdefault(event.ref, []).append(event)

    def until(self, ref: Ref, done: Callable[[list[Event]], bool], timeout: float = 60) -> None:
        limit = time.monotonic() + timeout
        while not done(self.events.get(ref, [])):
            assert time.monotonic() < limit, "no answer in time"
            self.pump(limit - time.monotonic())


def open_ws(tunnels: Tunnels, path: str = "/") -> tuple[Ref, websocket.WebSocket]:
    ref = websocket.upgrade("wss", tunnels.conn, path, [])
    tunnels.until(ref, lambda events: any(isinstance(e, Headers) for e in events))
    events = tunnels.take(ref)
    status = next(e.status for e in events if isinstance(e, Status))
    headers = next(e.headers for e in events if isinstance(e, Headers))
    return ref, websocket.new(tunnels.conn, ref, status, headers)


def frames_until(
    tunnels: Tunnels, ref: Ref, ws: websocket.WebSocket, count: int, timeout: float = 60
) -> list[Frame]:
    frames: list[Frame] = []
    limit = time.monotonic() + timeout
    while len(frames) < count:
        for event in tunnels.take(ref):
            if isinstance(event, Data):
                frames.extend(ws.decode(event.data))
        if len(frames) < count:
            assert time.monotonic() < limit, f"{len(frames)} of {count} frames in time"
            tunnels.pump(limit - time.monotonic())
    return frames


# -- blocking ---------------------------------------------------------------------------------


def test_connect_waits_for_settings(server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(server, tls_ca_file) as conn:
        assert conn.version == "HTTP/3"
        assert conn.alpn_protocol == "h3"
        assert conn.extended_connect_enabled
        assert conn.server_settings["enable_connect_protocol"] == 1
        assert isinstance(conn, http.Connection)


def test_echo_text_and_binary(server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref, ws = open_ws(tunnels)
        conn.stream_request_body(ref, ws.encode(Text("héllo")))
        conn.stream_request_body(ref, ws.encode(Binary(b"\x00\xff" * 100)))
        assert frames_until(tunnels, ref, ws, 2) == [Text("héllo"), Binary(b"\x00\xff" * 100)]
    assert server.state.handshakes[-1][":protocol"] == "websocket"
    assert server.state.handshakes[-1]["sec-websocket-version"] == "13"
    assert "sec-websocket-key" not in server.state.handshakes[-1]


def test_ping_and_quic_ping(server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref, ws = open_ws(tunnels)
        conn.stream_request_body(ref, ws.encode(Ping(b"are you there")))
        assert frames_until(tunnels, ref, ws, 1) == [WsPong(b"are you there")]
        ping = conn.ping()  # QUIC PING, answered by its acknowledgement
        tunnels.until(ping, lambda events: any(isinstance(e, Pong) for e in events))


def test_close_handshake_ends_with_fin(server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref, ws = open_ws(tunnels)
        conn.stream_request_body(ref, ws.encode(Close(1000, "bye")), end_stream=True)
        tunnels.until(ref, lambda events: any(isinstance(e, Done) for e in events))
        events = tunnels.take(ref)
        frames = [f for e in events if isinstance(e, Data) for f in ws.decode(e.data)]
        assert frames == [Close(1000, "bye")]
        assert isinstance(events[-1], Done)
        assert ws.closed
        with pytest.raises(HTTPError) as raised:
            conn.stream_request_body(ref, b"more")
        assert raised.value.reason == "unknown_ref"  # both sides ended: forgotten
        assert conn.open  # the QUIC connection outlives the stream
    assert server.state.close_codes[-1] == 1000


def test_sixteen_mebibytes_both_ways(server: RunningH3Server, tls_ca_file: Path) -> None:
    payload = os.urandom(BIG)
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref, ws = open_ws(tunnels)
        conn.stream_request_body(ref, ws.encode(Binary(payload)))
        conn.stream_request_body(ref, ws.encode(Text("after")))
        assert frames_until(tunnels, ref, ws, 2, timeout=120) == [Binary(payload), Text("after")]


def test_large_datagrams_both_ways(tls_cert_files: tuple[str, str], tls_ca_file: Path) -> None:
    """16 KiB QUIC packets on loopback (``http3_max_datagram_size``): same bytes, fewer packets."""
    payload = os.urandom(BIG)
    with (
        h3_echo_server(*tls_cert_files, max_datagram_size=16384) as wide,
        dial(wide, tls_ca_file, http3_max_datagram_size=16384) as conn,
    ):
        tunnels = Tunnels(conn)
        ref, ws = open_ws(tunnels)
        conn.stream_request_body(ref, ws.encode(Binary(payload)))
        assert frames_until(tunnels, ref, ws, 1, timeout=60) == [Binary(payload)]


def test_hundred_sessions_on_one_connection(server: RunningH3Server, tls_ca_file: Path) -> None:
    before = server.state.connections
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        sockets = [open_ws(tunnels) for _ in range(100)]
        for number, (ref, ws) in enumerate(sockets):
            conn.stream_request_body(ref, ws.encode(Text(f"session {number}")))
        for number, (ref, ws) in enumerate(sockets):
            assert frames_until(tunnels, ref, ws, 1) == [Text(f"session {number}")]
        for ref, ws in sockets:
            conn.stream_request_body(ref, ws.encode(Close()), end_stream=True)
        for ref, _ in sockets:
            tunnels.until(ref, lambda events: any(isinstance(e, Done) for e in events))
    assert server.state.connections == before + 1


def test_server_without_the_setting(no_connect_server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(no_connect_server, tls_ca_file) as conn:
        assert not conn.extended_connect_enabled
        assert "enable_connect_protocol" not in conn.server_settings
        with pytest.raises(WebSocketError) as raised:
            websocket.upgrade("wss", conn, "/", [])
        assert raised.value.reason == "extended_connect_disabled"
        with pytest.raises(HTTPError) as refused:
            conn.request("CONNECT", "/", [], http.STREAM, protocol="websocket")
        assert refused.value.reason == "extended_connect_disabled"
        # Plain requests still work on it.
        tunnels = Tunnels(conn)
        ref = conn.request("GET", "/")
        tunnels.until(ref, lambda events: any(isinstance(e, Done) for e in events))


def test_packet_loss(lossy_server: RunningH3Server, tls_ca_file: Path) -> None:
    payload = os.urandom(1 << 20)
    with dial(lossy_server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref, ws = open_ws(tunnels)
        for number in range(30):
            conn.stream_request_body(ref, ws.encode(Text(f"message {number}")))
        conn.stream_request_body(ref, ws.encode(Binary(payload)))
        expected: list[Frame] = [Text(f"message {n}") for n in range(30)]
        expected.append(Binary(payload))
        assert frames_until(tunnels, ref, ws, 31, timeout=120) == expected
    assert lossy_server.state.dropped > 10


def test_reset_is_an_error_for_that_stream(server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref = websocket.upgrade("wss", conn, "/reset", [])
        tunnels.until(ref, lambda events: any(isinstance(e, Error) for e in events))
        error = next(e.error for e in tunnels.take(ref) if isinstance(e, Error))
        assert isinstance(error, StreamResetError)
        assert error.reason == "stream_reset"
        assert error.error_code == "H3_REQUEST_CANCELLED"
        other, ws = open_ws(tunnels)  # the connection is unaffected
        conn.stream_request_body(other, ws.encode(Text("still here")))
        assert frames_until(tunnels, other, ws, 1) == [Text("still here")]


def test_refused_upgrade(server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref = websocket.upgrade("wss", conn, "/forbidden", [])
        tunnels.until(ref, lambda events: any(isinstance(e, Headers) for e in events))
        events = tunnels.take(ref)
        status = next(e.status for e in events if isinstance(e, Status))
        headers = next(e.headers for e in events if isinstance(e, Headers))
        with pytest.raises(UpgradeFailureError) as raised:
            websocket.new(conn, ref, status, headers)
        assert raised.value.status == 403


def test_plain_request(server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref = conn.request("GET", "/", [("accept", "text/plain")])
        tunnels.until(ref, lambda events: any(isinstance(e, Done) for e in events))
        events = tunnels.take(ref)
        assert events[0] == Status(ref, 200)
        assert ("content-type", "text/plain") in next(
            e.headers for e in events if isinstance(e, Headers)
        )
        assert b"".join(e.data for e in events if isinstance(e, Data)) == b"hello"


def test_cancel_request(server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref, _ws = open_ws(tunnels)
        conn.cancel_request(ref)
        with pytest.raises(HTTPError) as raised:
            conn.send_window(ref)
        assert raised.value.reason == "unknown_ref"
        other, ws2 = open_ws(tunnels)
        conn.stream_request_body(other, ws2.encode(Text("next")))
        assert frames_until(tunnels, other, ws2, 1) == [Text("next")]
        assert not tunnels.take(ref)


def test_send_window_bounds_buffering(server: RunningH3Server, tls_ca_file: Path) -> None:
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref, ws = open_ws(tunnels)
        window = conn.send_window(ref)
        assert 0 < window <= 1 << 20
        conn.stream_request_body(ref, ws.encode(Binary(bytes(window + 10))))
        assert conn.send_window(ref) == 0  # the rest waits in aioquic until the server reads
        assert frames_until(tunnels, ref, ws, 1) == [Binary(bytes(window + 10))]
        assert conn.send_window(ref) > 0


def _data_bytes(events: list[Event]) -> int:
    return sum(len(e.data) for e in events if isinstance(e, Data))


def test_pause_stream_holds_the_server_to_the_window(
    server: RunningH3Server, tls_ca_file: Path
) -> None:
    """A paused stream gets no more credit: the server stops within one window, then resumes."""
    count = 2048  # 8 MiB, eight times the client's stream window
    total = count * (FLOOD_SIZE + 4)  # + the frame headers (4 bytes for 4 KiB)
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        ref = websocket.upgrade("wss", conn, f"/flood/{count}", [])
        tunnels.until(ref, lambda events: any(isinstance(e, Headers) for e in events))
        conn.pause_stream(ref)
        conn.pause_stream(ref)  # idempotent
        received = _data_bytes(tunnels.take(ref))  # what came with the answer
        quiet_until = time.monotonic() + 1.0
        while time.monotonic() < quiet_until:
            with contextlib.suppress(TransportError):
                tunnels.pump(0.2)
            received += _data_bytes(tunnels.take(ref))
        # aioquic doubles a window once half of it is used: the credit given before the
        # pause is at most twice the initial 1 MiB.
        assert 0 < received <= 2 * DEFAULT_STREAM_WINDOW < total
        conn.resume_stream(ref)
        conn.resume_stream(ref)
        limit = time.monotonic() + 30
        while received < total:
            assert time.monotonic() < limit, f"{received} of {total} bytes after resuming"
            tunnels.pump(limit - time.monotonic())
            received += _data_bytes(tunnels.take(ref))
        assert received == total


def test_pause_stream_leaves_the_other_streams_alone(
    server: RunningH3Server, tls_ca_file: Path
) -> None:
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        paused, _ = open_ws(tunnels, "/flood/2048")
        conn.pause_stream(paused)
        ref, ws = open_ws(tunnels)
        for n in range(20):
            conn.stream_request_body(ref, ws.encode(Binary(bytes(64 * 1024) + bytes([n]))))
            assert frames_until(tunnels, ref, ws, 1) == [Binary(bytes(64 * 1024) + bytes([n]))]
        conn.cancel_request(paused)
        with pytest.raises(HTTPError) as forgotten:
            conn.resume_stream(paused)
        assert forgotten.value.reason == "unknown_ref"


def test_goaway_fails_unprocessed_requests_and_refuses_new_ones(
    server: RunningH3Server, tls_ca_file: Path
) -> None:
    """RFC 9114 section 5.2: the stream the GOAWAY names, and later ones, were not processed."""
    with dial(server, tls_ca_file) as conn:
        tunnels = Tunnels(conn)
        kept = websocket.upgrade("wss", conn, "/goaway", [])
        dropped = websocket.upgrade("wss", conn, "/", [])  # the stream the GOAWAY names
        tunnels.until(dropped, lambda events: any(isinstance(e, Error) for e in events))
        (error,) = tunnels.take(dropped)
        assert isinstance(error, Error) and isinstance(error.error, HTTPError)
        assert error.error.reason == "goaway"
        assert conn.core.goaway_received  # type: ignore[attr-defined]
        with pytest.raises(HTTPError) as refused:
            websocket.upgrade("wss", conn, "/", [])
        assert refused.value.reason == "goaway"
        with pytest.raises(HTTPError):
            conn.resume_stream(dropped)  # forgotten, as after a reset
        # The request the server did process goes on.
        tunnels.until(kept, lambda events: any(isinstance(e, Headers) for e in events))
        events = tunnels.take(kept)
        status = next(e.status for e in events if isinstance(e, Status))
        headers = next(e.headers for e in events if isinstance(e, Headers))
        ws = websocket.new(conn, kept, status, headers)
        assert conn.open  # drained only once its last stream ends
        conn.stream_request_body(kept, ws.encode(Text("still here")))
        assert frames_until(tunnels, kept, ws, 1) == [Text("still here")]
        conn.cancel_request(kept)
        assert not conn.open  # GOAWAY received and nothing left to finish


def test_certificate_is_verified(server: RunningH3Server) -> None:
    with pytest.raises(TransportError) as raised:
        http.connect("https", server.host, server.port, protocols=("http3",), timeout=5)
    assert raised.value.reason == "tls"


def test_nobody_listening_is_refused_quickly(tls_ca_file: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(TransportError) as raised:
        http.connect("https", "127.0.0.1", port, protocols=("http3",), cafile=tls_ca_file)
    assert raised.value.reason == "refused"
    assert time.monotonic() - started < 5


def test_silent_server_is_a_bounded_attempt(tls_ca_file: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # receives, never answers: UDP blackholed
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(TransportError) as raised:
            http.connect(
                "https", "127.0.0.1", port, protocols=("http3",), cafile=tls_ca_file, timeout=0.5
            )
        assert raised.value.reason == "timeout"
        assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("scheme", "options"),
    [
        ("http", {}),
        ("https", {"proxy": "http://127.0.0.1:1"}),
        ("https", {"ssl_context": __import__("ssl").create_default_context()}),
        ("https", {"http3_max_datagram_size": 1199}),
        ("https", {"http3_max_datagram_size": 65000}),
    ],
)
def test_options_http3_cannot_honour(scheme: str, options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        http.connect(scheme, "127.0.0.1", 443, protocols=("http3",), **options)  # type: ignore[arg-type]


def test_http3_is_not_mixed_with_tcp_protocols() -> None:
    with pytest.raises(ValueError, match="cannot be combined"):
        http.connect("https", "127.0.0.1", 443, protocols=("http2", "http3"))


def test_core_refuses_byte_stream_calls() -> None:
    core = HTTP3Core("example.com", client_configuration("example.com", verify=False))
    with pytest.raises(HTTPError) as raised:
        core.receive_data(b"bytes")
    assert raised.value.reason == "not_supported"
    with pytest.raises(HTTPError):
        core.data_to_send()
    with pytest.raises(HTTPError) as not_started:
        core.request("GET", "/", [])
    assert not_started.value.reason == "closed"
    core.start(("127.0.0.1", 443), now=100.0)
    assert core.datagrams_to_send(now=100.0)  # the Initial packet
    deadline = core.next_deadline()
    assert deadline is not None and deadline > 100.0  # the caller's clock, not one of its own
    with pytest.raises(HTTPError) as pending:
        core.request("CONNECT", "/", [], http.STREAM, protocol="websocket")
    assert pending.value.reason == "settings_pending"


def test_core_retransmits_only_when_the_caller_hands_it_a_deadline() -> None:
    """No clock, no timer inside: the lost Initial is resent when the caller says time passed."""
    core = HTTP3Core("example.com", client_configuration("example.com", verify=False))
    core.start(("127.0.0.1", 443), now=10.0)
    first = core.datagrams_to_send(now=10.0)
    assert first
    assert core.datagrams_to_send(now=10.0) == []  # nothing more until something happens
    deadline = core.next_deadline()
    assert deadline is not None
    assert core.handle_deadline(deadline - 0.001) == []
    assert core.datagrams_to_send(now=deadline - 0.001) == []  # too early: nothing fires
    assert core.handle_deadline(deadline) == []
    probes = core.datagrams_to_send(now=deadline)
    assert probes  # the handshake is probed again (RFC 9002 PTO)
    assert core.open


def test_missing_aioquic_is_a_clear_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['aioquic'] = None\n"
        "import mint, mint.http, mint.http.aio, mint.websocket, mint.client\n"
        "from mint.errors import MintError\n"
        "try:\n"
        "    mint.http.connect('https', '127.0.0.1', 443, protocols=('http3',))\n"
        "except MintError as exc:\n"
        "    print(exc.reason, 'mint-websocket[http3]' in str(exc))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["missing_dependency", "True"]


# -- asyncio ------------------------------------------------------------------------------------


def run(test: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(test(), 120)

    return asyncio.run(bounded())


class AsyncTunnels:
    def __init__(self, conn: http_aio.AsyncConnection) -> None:
        self.conn = conn
        self.events: dict[Ref, list[Event]] = {}

    def take(self, ref: Ref) -> list[Event]:
        return self.events.pop(ref, [])

    async def until(self, ref: Ref, done: Callable[[list[Event]], bool]) -> None:
        while not done(self.events.get(ref, [])):
            for event in await self.conn.recv(60):
                self.events.setdefault(event.ref, []).append(event)

    async def open_ws(self, path: str = "/") -> tuple[Ref, websocket.WebSocket]:
        ref = websocket.upgrade("wss", self.conn, path, [])
        await self.until(ref, lambda events: any(isinstance(e, Headers) for e in events))
        events = self.take(ref)
        status = next(e.status for e in events if isinstance(e, Status))
        headers = next(e.headers for e in events if isinstance(e, Headers))
        return ref, websocket.new(self.conn, ref, status, headers)

    async def frames(self, ref: Ref, ws: websocket.WebSocket, count: int) -> list[Frame]:
        frames: list[Frame] = []
        while len(frames) < count:
            for event in self.take(ref):
                if isinstance(event, Data):
                    frames.extend(ws.decode(event.data))
            if len(frames) < count:
                for event in await self.conn.recv(60):
                    self.events.setdefault(event.ref, []).append(event)
        return frames


async def adial(server: RunningH3Server, ca: Path) -> http_aio.AsyncConnection:
    return await http_aio.connect(
        "https", server.host, server.port, protocols=("http3",), cafile=ca, timeout=10
    )


def test_async_echo_ping_close(server: RunningH3Server, tls_ca_file: Path) -> None:
    async def scenario() -> None:
        async with await adial(server, tls_ca_file) as conn:
            assert conn.version == "HTTP/3" and conn.extended_connect_enabled
            tunnels = AsyncTunnels(conn)
            ref, ws = await tunnels.open_ws()
            await conn.stream_request_body(ref, ws.encode(Text("hello")))
            await conn.stream_request_body(ref, ws.encode(Binary(b"\x01\x02")))
            await conn.stream_request_body(ref, ws.encode(Ping(b"p")))
            frames = await tunnels.frames(ref, ws, 3)
            assert frames == [Text("hello"), Binary(b"\x01\x02"), WsPong(b"p")]
            ping = conn.ping()
            await tunnels.until(ping, lambda events: any(isinstance(e, Pong) for e in events))
            await conn.stream_request_body(ref, ws.encode(Close(1001)), end_stream=True)
            await tunnels.until(ref, lambda events: any(isinstance(e, Done) for e in events))
            events = tunnels.take(ref)
            assert [f for e in events if isinstance(e, Data) for f in ws.decode(e.data)] == [
                Close(1001)
            ]

    run(scenario)
    assert server.state.close_codes[-1] == 1001


def test_async_sixteen_mebibytes_both_ways(server: RunningH3Server, tls_ca_file: Path) -> None:
    payload = os.urandom(BIG)

    async def scenario() -> None:
        async with await adial(server, tls_ca_file) as conn:
            tunnels = AsyncTunnels(conn)
            ref, ws = await tunnels.open_ws()
            await conn.stream_request_body(ref, ws.encode(Binary(payload)))
            assert await tunnels.frames(ref, ws, 1) == [Binary(payload)]

    run(scenario)


def test_async_hundred_sessions(server: RunningH3Server, tls_ca_file: Path) -> None:
    async def scenario() -> None:
        async with await adial(server, tls_ca_file) as conn:
            tunnels = AsyncTunnels(conn)
            sockets = [await tunnels.open_ws() for _ in range(100)]
            for number, (ref, ws) in enumerate(sockets):
                await conn.stream_request_body(ref, ws.encode(Text(f"s{number}")))
            for number, (ref, ws) in enumerate(sockets):
                assert await tunnels.frames(ref, ws, 1) == [Text(f"s{number}")]

    before = server.state.connections
    run(scenario)
    assert server.state.connections == before + 1


def test_async_without_the_setting(no_connect_server: RunningH3Server, tls_ca_file: Path) -> None:
    async def scenario() -> None:
        async with await adial(no_connect_server, tls_ca_file) as conn:
            assert not conn.extended_connect_enabled
            with pytest.raises(WebSocketError) as raised:
                websocket.upgrade("wss", conn, "/", [])
            assert raised.value.reason == "extended_connect_disabled"

    run(scenario)


def test_async_packet_loss(lossy_server: RunningH3Server, tls_ca_file: Path) -> None:
    payload = os.urandom(1 << 20)

    async def scenario() -> None:
        async with await adial(lossy_server, tls_ca_file) as conn:
            tunnels = AsyncTunnels(conn)
            ref, ws = await tunnels.open_ws()
            for number in range(30):
                await conn.stream_request_body(ref, ws.encode(Text(f"m{number}")))
            await conn.stream_request_body(ref, ws.encode(Binary(payload)))
            frames = await tunnels.frames(ref, ws, 31)
            assert frames == [Text(f"m{n}") for n in range(30)] + [Binary(payload)]

    run(scenario)
    assert lossy_server.state.dropped > 10


def test_async_reset_and_timeout(server: RunningH3Server, tls_ca_file: Path) -> None:
    async def scenario() -> None:
        async with await adial(server, tls_ca_file) as conn:
            tunnels = AsyncTunnels(conn)
            ref = websocket.upgrade("wss", conn, "/reset", [])
            await tunnels.until(ref, lambda events: any(isinstance(e, Error) for e in events))
            error = next(e.error for e in tunnels.take(ref) if isinstance(e, Error))
            assert isinstance(error, StreamResetError)
            assert error.error_code == "H3_REQUEST_CANCELLED"
            with pytest.raises(TransportError) as raised:
                await conn.recv(0.2)
            assert raised.value.reason == "timeout"
            assert conn.open

    run(scenario)


def test_async_nobody_listening(tls_ca_file: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> None:
        with pytest.raises(MintError) as raised:
            await http_aio.connect(
                "https", "127.0.0.1", port, protocols=("http3",), cafile=tls_ca_file, timeout=3
            )
        assert raised.value.reason in ("refused", "timeout")

    run(scenario)
