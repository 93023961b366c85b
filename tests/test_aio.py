"""The asyncio shell against real peers on 127.0.0.1: ``websockets`` (HTTP/1.1) and hypercorn (h2).

No pytest-asyncio: each test is a plain function running one coroutine under
``asyncio.run``, bounded as a whole so a bug hangs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import trustme

from mint import http, websocket
from mint.errors import (
    HTTPError,
    MintError,
    TransportError,
    UpgradeFailureError,
    WebSocketError,
)
from mint.http import EOF, STREAM, Data, Done, Error, Event, Headers, Pong, Ref, Status
from mint.http._aio_protocol import PAUSE_READING_AT, ReceiveProtocol
from mint.http.aio import AsyncConnection, connect
from mint.http.http2 import HTTP2Core
from mint.websocket import Binary, Close, Frame, Ping, Text
from mint.websocket.codec import WebSocket
from servers import RunningServer, pattern, start_hypercorn
from servers.websockets_echo import RunningServer as EchoServer
from servers.websockets_echo import read_request_head, scripted_server, websockets_echo_server

TIMEOUT = 10.0
T = TypeVar("T")


def run(test: Callable[[], Awaitable[T]]) -> T:
    """Run one test coroutine on a fresh loop, never longer than a minute."""

    async def bounded() -> T:
        return await asyncio.wait_for(test(), 60)

    return asyncio.run(bounded())


# -- servers -----------------------------------------------------------------------------------


def switch_protocols(connection: socket.socket) -> None:
    """A scripted server's side of an upgrade: read the request, answer 101 (no accept key:
    these tests drive the HTTP connection, not a WebSocket)."""
    read_request_head(connection)
    connection.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    )


async def upgrade(conn: AsyncConnection) -> Ref:
    """The client's side: an Upgrade request answered 101; the tunnel's ref."""
    ref = conn.request("GET", "/", [("upgrade", "websocket"), ("connection", "upgrade")])
    assert [type(e) for e in await conn.recv(timeout=TIMEOUT)] == [Status, Headers]
    return ref


@pytest.fixture(scope="module")
def ws_server() -> Iterator[EchoServer]:
    with websockets_echo_server() as server:
        yield server


@pytest.fixture(scope="module")
def wss_server(server_ssl_context: ssl.SSLContext) -> Iterator[EchoServer]:
    with websockets_echo_server(ssl_context=server_ssl_context) as server:
        yield server


@pytest.fixture(scope="module")
def h2c_server() -> Iterator[RunningServer]:
    server = start_hypercorn()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def h2_tls_server(
    tls_server_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    pem = tmp_path_factory.mktemp("aio-hypercorn") / "server.pem"
    tls_server_cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    server = start_hypercorn(certfile=str(pem), keyfile=str(pem))
    yield server
    server.stop()


async def connect_h2(server: RunningServer, tls_ca_file: Path) -> AsyncConnection:
    if server.scheme == "http":
        return await connect("http", server.host, server.port, protocols=("http2",))
    return await connect(
        "https",
        server.host,
        server.port,
        protocols=("http1", "http2"),
        cafile=os.fspath(tls_ca_file),
        timeout=TIMEOUT,
    )


@pytest.fixture(params=["h2c", "tls"])
def h2_server(
    request: pytest.FixtureRequest, h2c_server: RunningServer, h2_tls_server: RunningServer
) -> RunningServer:
    return h2c_server if request.param == "h2c" else h2_tls_server


# -- the caller's side: routing events, and a WebSocket session ---------------------------------


class Demux:
    """Caller-side routing for several coroutines on one connection.

    One coroutine reads at a time (under the lock); events for other refs are
    queued for them.  The check of the queue happens under the lock too, so a
    coroutine never waits on the socket for an event another one already took.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.queues: defaultdict[Ref, deque[Event]] = defaultdict(deque)
        self.lock = asyncio.Lock()

    async def next(self, ref: Ref) -> Event:
        async with self.lock:
            while not self.queues[ref]:
                for event in await self.conn.recv(timeout=TIMEOUT):
                    self.queues[event.ref].append(event)
            return self.queues[ref].popleft()


class Session:
    """One WebSocket on a (maybe shared) connection: DESIGN.md's flow, awaited."""

    def __init__(self, demux: Demux, ref: Ref, ws: WebSocket) -> None:
        self.demux, self.ref, self.ws = demux, ref, ws
        self.pending: deque[Frame] = deque()

    @classmethod
    async def open(cls, demux: Demux, scheme: str, path: str = "/") -> Session:
        ref = websocket.upgrade(scheme, demux.conn, path, [])  # the synchronous upgrade, as is
        status: int | None = None
        while True:
            event = await demux.next(ref)
            if isinstance(event, Status):
                status = event.status
            elif isinstance(event, Headers):
                assert status is not None
                return cls(demux, ref, websocket.new(demux.conn, ref, status, event.headers))
            else:
                raise AssertionError(f"unexpected event during the handshake: {event!r}")

    async def send(self, frame: Frame) -> None:
        await self.demux.conn.stream_request_body(self.ref, self.ws.encode(frame))

    async def receive(self) -> Frame:
        while not self.pending:
            event = await self.demux.next(self.ref)
            assert isinstance(event, Data), f"expected WebSocket bytes, got {event!r}"
            self.pending.extend(self.ws.decode(event.data))
        return self.pending.popleft()

    async def close(self) -> Close:
        # On HTTP/2 the Close ends our half of the stream (RFC 8441 section 5).
        end_stream = self.demux.conn.version == "HTTP/2"
        await self.demux.conn.stream_request_body(
            self.ref, self.ws.encode(Close(1000, "done")), end_stream=end_stream
        )
        reply = await self.receive()
        assert isinstance(reply, Close)
        assert self.ws.closed
        return reply


async def exercise(session: Session, label: str) -> None:
    """Text, binary and ping round trips, then the closing handshake."""
    await session.send(Text(f"hello from {label}"))
    assert await session.receive() == Text(f"hello from {label}")
    payload = os.urandom(100_000)
    await session.send(Binary(payload))
    assert await session.receive() == Binary(payload)
    await session.send(Ping(b"are you there"))
    assert await session.receive() == websocket.Pong(b"are you there")
    reply = await session.close()
    assert reply.code == 1000


# -- WebSockets over HTTP/1.1 ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_websocket_echo_over_http1(
    scheme: str, ws_server: EchoServer, wss_server: EchoServer, tls_ca_file: Path
) -> None:
    async def main() -> None:
        if scheme == "ws":
            conn = await connect("http", "localhost", ws_server.port)
        else:
            conn = await connect("https", "localhost", wss_server.port, cafile=tls_ca_file)
        async with conn:
            assert conn.version == "HTTP/1.1"
            demux = Demux(conn)
            session = await Session.open(demux, scheme)
            await exercise(session, scheme)
            # The server ends the TCP connection after the closing handshake.
            assert await demux.next(session.ref) == Done(session.ref)
            assert not conn.open
        assert not conn.open

    run(main)


def test_the_design_flow_awaited(ws_server: EchoServer) -> None:
    """DESIGN.md's example, with ``await`` where the blocking shell blocks."""

    async def main() -> None:
        conn = await connect("http", "localhost", ws_server.port)
        ref = websocket.upgrade("ws", conn, "/", [])
        ws = None
        while ws is None:
            match await conn.recv(timeout=5):
                case [Status(ref=r, status=status), Headers(headers=resp_headers), *_] if r == ref:
                    ws = websocket.new(conn, ref, status, resp_headers)
        await conn.stream_request_body(ref, ws.encode(Text("hello world")))
        frames: list[Frame] = []
        while not frames:
            match await conn.recv(timeout=5):
                case [Data(ref=r, data=data)] if r == ref:
                    frames.extend(ws.decode(data))
        assert frames == [Text("hello world")]
        await conn.close()

    run(main)


def test_upgrade_refused_over_http1(ws_server: EchoServer) -> None:
    async def main() -> None:
        async with await connect("http", "127.0.0.1", ws_server.port) as conn:
            with pytest.raises(UpgradeFailureError) as info:
                await Session.open(Demux(conn), "ws", "/forbidden")
            assert info.value.status == 403

    run(main)


def test_recv_timeout_keeps_the_connection_usable(ws_server: EchoServer) -> None:
    async def main() -> None:
        async with await connect("http", "127.0.0.1", ws_server.port) as conn:
            demux = Demux(conn)
            session = await Session.open(demux, "ws")
            with pytest.raises(TransportError) as info:
                await conn.recv(timeout=0.2)  # the echo server says nothing unprompted
            assert info.value.reason == "timeout"
            assert conn.open
            await session.send(Text("still here"))
            assert await session.receive() == Text("still here")

    run(main)


def test_recv_once_returns_after_a_read_that_made_no_event() -> None:
    """``recv`` waits for an event; ``recv_once`` returns after every read, events or not.

    What a sender waiting for a WINDOW_UPDATE (bytes that make no event)
    needs; here half a response head plays that part.
    """
    rest = threading.Event()

    def answer_in_two_parts(connection: socket.socket) -> None:
        read_request_head(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\n")
        rest.wait(TIMEOUT)
        connection.sendall(b"content-length: 2\r\n\r\nok")

    async def main() -> None:
        async with await connect("http", "127.0.0.1", port) as conn:
            conn.request("GET", "/", [])
            assert await conn.recv_once(timeout=TIMEOUT) == []  # half a head: no event yet
            with pytest.raises(TransportError) as waited:
                await conn.recv(timeout=0.1)
            assert waited.value.reason == "timeout"
            rest.set()
            events: list[Event] = []
            while not any(isinstance(event, Done) for event in events):
                events += await conn.recv_once(timeout=TIMEOUT)
            assert [type(event) for event in events] == [Status, Headers, Data, Done]

    with scripted_server(answer_in_two_parts) as port:
        try:
            run(main)
        finally:
            rest.set()


def test_bytes_read_before_a_reset_are_delivered_before_the_error() -> None:
    """The server answers, then resets the connection; the answer must not be lost.

    The client awaits nothing until both happened, so the event loop has read
    the answer and then met the reset by the time ``recv`` looks.
    """

    def answer_then_reset(connection: socket.socket) -> None:
        read_request_head(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello")
        time.sleep(0.1)
        # SO_LINGER with a zero timeout turns close() into a reset.
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    async def main() -> None:
        async with await connect("http", "127.0.0.1", port) as conn:
            ref = conn.request("GET", "/", [])
            await asyncio.sleep(0.5)  # the loop reads the answer, then meets the reset
            assert await conn.recv(timeout=TIMEOUT) == [
                Status(ref, 200),
                Headers(ref, [("content-length", "10")]),
                Data(ref, b"hello"),
            ]
            with pytest.raises(TransportError) as failed:
                await conn.recv(timeout=TIMEOUT)
            assert failed.value.reason == "closed"

    with scripted_server(answer_then_reset) as port:
        run(main)


def test_a_caller_that_does_not_read_stops_the_socket_being_read() -> None:
    """What waits for ``recv`` is bounded: past ``PAUSE_READING_AT`` the transport stops
    reading, the server's sends back up, and everything arrives once the caller reads."""
    size = 16 * 2**20
    sent = threading.Event()

    def flood(connection: socket.socket) -> None:
        read_request_head(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        with contextlib.suppress(OSError):
            connection.sendall(bytes(size))
            sent.set()

    async def main() -> None:
        async with await connect("http", "127.0.0.1", port) as conn:
            ref = conn.request("GET", "/", [])
            await asyncio.sleep(0.5)  # the caller is busy elsewhere
            kept = conn._protocol._size
            assert 0 < kept <= PAUSE_READING_AT + 2**20
            assert not sent.is_set()  # the server is held back by TCP
            received = 0
            while True:
                events = await conn.recv(timeout=TIMEOUT)
                received += sum(len(e.data) for e in events if isinstance(e, Data))
                if any(isinstance(e, Done) for e in events):
                    break
            assert received == size
            assert sent.wait(TIMEOUT)
            assert ref is not None

    with scripted_server(flood) as port:
        run(main)


def test_a_writer_is_held_back_when_the_server_stops_reading() -> None:
    """stream_request_body awaits the transport's drain: a fast writer cannot run ahead.

    The server answers the upgrade, then reads nothing.  Once the kernel
    buffers and asyncio's high-water mark are full, ``drain`` (bounded by the
    connect timeout) gives up with reason "timeout", long before the writer
    has pushed everything it wanted to.
    """
    release = threading.Event()

    def accept_then_stall(connection: socket.socket) -> None:
        switch_protocols(connection)
        release.wait(30)

    chunk = bytes(1024 * 1024)
    attempted = 256

    async def main() -> int:
        conn = await connect("http", "127.0.0.1", port, timeout=1.0)
        ref = await upgrade(conn)
        written = 0
        try:
            for _ in range(attempted):
                await conn.stream_request_body(ref, chunk)
                written += 1
        except TransportError as exc:
            assert exc.reason == "timeout"
            assert conn.open  # nothing was lost: the bytes wait in the transport
        finally:
            await conn.close()
        return written

    with scripted_server(accept_then_stall) as port:
        try:
            written = run(main)
        finally:
            release.set()
    assert written < attempted, written


def test_recv_tunnel_hands_over_the_tunnel_bytes_as_read(ws_server: EchoServer) -> None:
    async def main() -> None:
        async with await connect("http", "127.0.0.1", ws_server.port) as conn:
            session = await Session.open(Demux(conn), "ws")
            assert not conn.stream_request_body_nowait(session.ref, session.ws.encode(Text("hi")))
            received: list[Frame] = []
            while not received:
                data = await conn.recv_tunnel(session.ref, timeout=TIMEOUT)
                assert data, "the echo never came"
                received += session.ws.decode(data)
            assert received == [Text("hi")]
            # Not this tunnel's ref: nothing to hand over, at once.
            assert await conn.recv_tunnel(Ref(), timeout=TIMEOUT) == b""
            # Nothing coming: b"" once the timeout passed, and the connection is fine.
            started = time.monotonic()
            assert await conn.recv_tunnel(session.ref, timeout=0.2) == b""
            assert time.monotonic() - started >= 0.15
            assert conn.open
            await session.send(Text("again"))
            assert await session.receive() == Text("again")  # recv takes over as before

    run(main)


def frame_then_end(go: threading.Event, got: list[bytes]) -> Callable[[socket.socket], None]:
    """A server's script: the 101, then (once ``go`` is set) one text frame and its EOF.

    It then keeps what the client still writes in ``got``, until the client goes.
    """

    def script(connection: socket.socket) -> None:
        switch_protocols(connection)
        go.wait(TIMEOUT)
        connection.sendall(b"\x81\x03end")
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(TIMEOUT)
        with contextlib.suppress(OSError):
            while chunk := connection.recv(4096):
                got.append(chunk)

    return script


def test_recv_tunnel_leaves_the_end_and_other_readers_to_recv() -> None:
    """The server sends a frame and closes: the frame comes by ``recv_tunnel``, the end by ``recv``.

    And while another coroutine awaits ``recv``, ``recv_tunnel`` takes nothing.
    """
    go = threading.Event()
    frame_then_close = frame_then_end(go, [])

    async def main() -> None:
        async with await connect("http", "127.0.0.1", port) as conn:
            ref = await upgrade(conn)
            reader = asyncio.ensure_future(conn.recv(timeout=0.2))
            await asyncio.sleep(0)
            assert await conn.recv_tunnel(ref, timeout=TIMEOUT) == b""  # recv is reading
            with pytest.raises(TransportError):
                await reader
            go.set()
            data = b""
            while True:
                more = await conn.recv_tunnel(ref, timeout=TIMEOUT)
                if not more:
                    break
                data += more
            assert data == b"\x81\x03end"
            assert await conn.recv(timeout=TIMEOUT) == [Done(ref)]
            assert await conn.recv_tunnel(ref, timeout=TIMEOUT) == b""  # ended: no short way

    with scripted_server(frame_then_close) as port:
        try:
            run(main)
        finally:
            go.set()


def test_an_alarm_left_from_another_wait_is_not_taken_for_the_end() -> None:
    """``wake_after`` keeps its timer for later waits; one that rings in a wait without a
    deadline must not end it, let alone pass for the server's EOF.

    A bounded ``recv_tunnel`` is cancelled, leaving its alarm set for 0.2 s;
    an unbounded ``recv`` then waits through the ring for the server's
    frame, sent at 0.5 s.
    """
    go = threading.Event()

    def late_frame(connection: socket.socket) -> None:
        switch_protocols(connection)
        go.wait(TIMEOUT)
        time.sleep(0.5)
        connection.sendall(b"\x81\x04late")
        connection.recv(1)  # until the client goes

    async def main() -> None:
        async with await connect("http", "127.0.0.1", port) as conn:
            ref = await upgrade(conn)
            bounded = asyncio.ensure_future(conn.recv_tunnel(ref, timeout=0.2))
            await asyncio.sleep(0.01)
            bounded.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bounded
            go.set()
            started = time.monotonic()
            assert await conn.recv() == [Data(ref, b"\x81\x04late")]
            assert time.monotonic() - started >= 0.4
            assert conn.open
            # And a bounded wait still ends on time, with the connection usable.
            with pytest.raises(TransportError) as info:
                await conn.recv(timeout=0.1)
            assert info.value.reason == "timeout"
            assert conn.open

    with scripted_server(late_frame) as port:
        try:
            run(main)
        finally:
            go.set()


def test_wake_after_keeps_one_timer_while_the_moment_stays_the_same() -> None:
    """The keepalive's wake-up stays put for a ping interval: one handle serves every wait."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        protocol = ReceiveProtocol(loop)
        protocol.wake_after(30.0)
        first = protocol.alarm
        assert first is not None
        protocol.wake_after(30.0 - 0.0001)  # the same moment, asked a little later
        assert protocol.alarm is first
        protocol.wake_after(5.0)  # another moment: a new handle, the old one cancelled
        assert protocol.alarm is not first and first.cancelled()
        rung = protocol.alarm
        protocol.wake_after(0.01)
        assert rung is not None and rung.cancelled()
        waiter = protocol.readable()
        await waiter  # the alarm rang: the waiter is done with nothing buffered
        assert not protocol.buffered and protocol.alarm is None
        protocol.wake_after(0.01)
        last = protocol.alarm
        protocol.connection_lost(None)  # the connection takes its timer with it
        assert last is not None and last.cancelled() and protocol.alarm is None

    run(main)


def test_a_wait_without_deadline_drops_the_alarm_an_earlier_wait_left(
    ws_server: EchoServer,
) -> None:
    """A bounded wait that bytes ended keeps its alarm for later waits; the next wait with no
    deadline needs none, and an alarm left armed (a ``connect`` timeout's, seconds away) would
    make the event loop look at its clock and timer heap on every turn until it rang."""

    async def main() -> None:
        async with await connect("http", "127.0.0.1", ws_server.port) as conn:
            session = await Session.open(Demux(conn), "ws")
            protocol = conn._protocol
            for wait_unbounded in (
                lambda: conn.recv_tunnel(session.ref),
                lambda: conn.recv(),
            ):
                conn.stream_request_body_nowait(session.ref, session.ws.encode(Text("bounded")))
                assert await conn.recv_tunnel(session.ref, timeout=30)
                left = protocol.alarm
                assert left is not None and not left.cancelled()  # kept for the next wait
                conn.stream_request_body_nowait(session.ref, session.ws.encode(Text("unbounded")))
                assert await wait_unbounded()
                assert protocol.alarm is None and left.cancelled()

    run(main)


def test_stream_request_body_nowait_says_when_to_drain() -> None:
    """False while the socket takes the bytes; True once the transport is above its high-water
    mark, and then ``drain`` waits (bounded by the connect timeout), losing nothing."""
    release = threading.Event()

    def accept_then_stall(connection: socket.socket) -> None:
        switch_protocols(connection)
        release.wait(30)

    async def main() -> None:
        conn = await connect("http", "127.0.0.1", port, timeout=0.5)
        try:
            ref = await upgrade(conn)
            assert not conn.stream_request_body_nowait(ref, b"x" * 100)
            chunk = bytes(256 * 1024)
            sent = 0
            while not conn.stream_request_body_nowait(ref, chunk):
                sent += 1
                assert sent < 1024, "the transport never asked for a drain"
            assert sent > 0  # the first chunks went to the socket's buffer
            with pytest.raises(TransportError) as info:
                await conn.drain()
            assert info.value.reason == "timeout"
            assert conn.open
        finally:
            await conn.close()
        with pytest.raises(TransportError):
            conn.stream_request_body_nowait(ref, b"late")

    with scripted_server(accept_then_stall) as port:
        try:
            run(main)
        finally:
            release.set()


def test_a_write_after_the_servers_end_is_refused_before_anything_is_read() -> None:
    """The event loop saw the server's EOF, the caller has not read yet: a write is refused.

    The transport closes itself at the EOF; a write handed to it then would
    be dropped or hit a dead socket, and the caller would learn nothing.
    What the server sent before its end is still there for ``recv``.
    """
    got: list[bytes] = []
    go = threading.Event()
    frame_then_close = frame_then_end(go, got)

    async def main() -> None:
        async with await connect("http", "127.0.0.1", port) as conn:
            ref = await upgrade(conn)
            go.set()
            for _ in range(200):  # until the loop has run the protocol's eof_received
                if conn._protocol.eof:
                    break
                await asyncio.sleep(0.01)
            with pytest.raises(TransportError) as info:
                conn.stream_request_body_nowait(ref, b"\x82\x80mask")
            assert info.value.reason == "closed"
            assert await conn.recv_tunnel(ref, timeout=TIMEOUT) == b"\x81\x03end"
            assert await conn.recv(timeout=TIMEOUT) == [Done(ref)]

    with scripted_server(frame_then_close) as port:
        try:
            run(main)
        finally:
            go.set()
    assert b"mask" not in b"".join(got)


def test_only_one_coroutine_may_await_recv(ws_server: EchoServer) -> None:
    async def main() -> None:
        async with await connect("http", "127.0.0.1", ws_server.port) as conn:
            session = await Session.open(Demux(conn), "ws")
            first = asyncio.ensure_future(conn.recv(timeout=TIMEOUT))
            await asyncio.sleep(0)  # let the first reader start waiting
            with pytest.raises(MintError) as info:
                await conn.recv(timeout=TIMEOUT)
            assert info.value.reason == "recv_in_progress"
            await session.send(Text("for the first reader"))
            match await first:
                case [Data(ref=r, data=data)] if r == session.ref:
                    assert session.ws.decode(data) == [Text("for the first reader")]
                case other:
                    raise AssertionError(f"unexpected events {other!r}")

    run(main)


# -- HTTP/2 against hypercorn ----------------------------------------------------------------------


async def collect(demux: Demux, ref: Ref) -> tuple[int, list[tuple[str, str]], bytes]:
    status, headers, body = 0, [], bytearray()
    while True:
        event = await demux.next(ref)
        if isinstance(event, Status):
            status = event.status
        elif isinstance(event, Headers):
            headers.extend(event.headers)
        elif isinstance(event, Data):
            body += event.data
        elif isinstance(event, Done):
            return status, headers, bytes(body)
        elif isinstance(event, Error):
            raise event.error


def test_http2_get(h2_server: RunningServer, tls_ca_file: Path) -> None:
    async def main() -> None:
        async with await connect_h2(h2_server, tls_ca_file) as conn:
            assert conn.version == "HTTP/2"
            assert isinstance(conn.core, HTTP2Core)
            assert conn.alpn_protocol == ("h2" if h2_server.scheme == "https" else None)
            # connect waited for the server's SETTINGS: no guessing here.
            assert conn.extended_connect_enabled
            assert conn.server_settings["max_concurrent_streams"] == 100
            status, headers, body = await collect(Demux(conn), conn.request("GET", "/"))
            assert (status, body) == (200, b"hello")
            assert ("x-http-version", "2") in headers

    run(main)


def test_http2_ping_and_send_window(h2c_server: RunningServer, tls_ca_file: Path) -> None:
    async def main() -> None:
        async with await connect_h2(h2c_server, tls_ca_file) as conn:
            demux = Demux(conn)
            ref = conn.ping()
            assert await demux.next(ref) == Pong(ref)
            upload = conn.request("POST", "/echo", [], STREAM)
            assert conn.send_window(upload) > 0
            await conn.stream_request_body(upload, EOF)
            status, headers, body = await collect(demux, upload)
            assert (status, body) == (200, b"")
            assert ("x-http-version", "2") in headers

    run(main)


def test_http2_upload_and_echo_flow_together(h2c_server: RunningServer, tls_ca_file: Path) -> None:
    """A writer far ahead of the flow-control window, and a reader, as two coroutines."""
    payload = pattern(4 * 1024 * 1024)

    async def main() -> None:
        async with await connect_h2(h2c_server, tls_ca_file) as conn:
            demux = Demux(conn)
            ref = conn.request("POST", "/echo", [], STREAM)

            async def write() -> None:
                for start in range(0, len(payload), 256 * 1024):
                    await conn.stream_request_body(ref, payload[start : start + 256 * 1024])
                await conn.stream_request_body(ref, EOF)

            _, (status, _, body) = await asyncio.gather(write(), collect(demux, ref))
            assert status == 200
            assert body == payload

    run(main)


def test_websocket_over_http2(h2_server: RunningServer, tls_ca_file: Path) -> None:
    async def main() -> None:
        async with await connect_h2(h2_server, tls_ca_file) as conn:
            demux = Demux(conn)
            session = await Session.open(demux, "ws" if h2_server.scheme == "http" else "wss")
            # HTTP/2 has no short way to tunnel bytes: recv_tunnel says so at once.
            assert await conn.recv_tunnel(session.ref, timeout=TIMEOUT) == b""
            await exercise(session, "http2")
            # The connection outlives the tunnel: a plain request still works.
            status, _, body = await collect(demux, conn.request("GET", "/"))
            assert (status, body) == (200, b"hello")

    run(main)


def test_two_websockets_on_one_http2_connection_concurrently(
    h2c_server: RunningServer, tls_ca_file: Path
) -> None:
    async def main() -> None:
        async with await connect_h2(h2c_server, tls_ca_file) as conn:
            demux = Demux(conn)
            first, second = await asyncio.gather(
                Session.open(demux, "ws", "/one"), Session.open(demux, "ws", "/two")
            )

            async def chatter(session: Session, label: str) -> list[Frame]:
                sent = [Text(f"{label} {n}") for n in range(20)]
                for frame in sent:
                    await session.send(frame)
                received = [await session.receive() for _ in sent]
                assert received == sent
                await exercise(session, label)
                return received

            one, two = await asyncio.gather(chatter(first, "one"), chatter(second, "two"))
            assert one != two
            assert conn.open

    run(main)


def test_cancel_request_drops_one_tunnel_and_keeps_the_connection(
    h2c_server: RunningServer, tls_ca_file: Path
) -> None:
    async def main() -> None:
        async with await connect_h2(h2c_server, tls_ca_file) as conn:
            demux = Demux(conn)
            doomed, kept = await asyncio.gather(
                Session.open(demux, "ws", "/doomed"), Session.open(demux, "ws", "/kept")
            )
            conn.cancel_request(doomed.ref)
            with pytest.raises(HTTPError) as info:
                await doomed.send(Text("too late"))
            assert info.value.reason == "unknown_ref"
            await exercise(kept, "kept")

    run(main)


def test_websocket_refused_over_http2(h2c_server: RunningServer, tls_ca_file: Path) -> None:
    async def main() -> None:
        async with await connect_h2(h2c_server, tls_ca_file) as conn:
            with pytest.raises(UpgradeFailureError) as info:
                await Session.open(Demux(conn), "ws", "/forbidden")
            assert info.value.status == 403

    run(main)


# -- connecting and failing ------------------------------------------------------------------------


def free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_connection_refused(host: str) -> None:
    async def main() -> None:
        with pytest.raises(TransportError) as info:
            await connect("http", host, free_port(), timeout=5)
        assert info.value.reason == "refused"

    run(main)


@pytest.mark.parametrize(("scheme", "protocols"), [("https", ("http1",)), ("http", ("http2",))])
def test_connect_timeout_covers_tls_and_http2_settings(
    scheme: str, protocols: tuple[str, ...]
) -> None:
    """A peer that accepts TCP and then says nothing: no TLS ServerHello, no SETTINGS."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]

        async def main() -> None:
            with pytest.raises(TransportError) as info:
                await connect(scheme, "127.0.0.1", port, protocols=protocols, timeout=0.3)
            assert info.value.reason == "timeout"

        run(main)


def test_server_closing_before_its_http2_settings() -> None:
    def hang_up(connection: socket.socket) -> None:
        connection.recv(1024)  # the client preface

    with scripted_server(hang_up) as port:

        async def main() -> None:
            with pytest.raises(TransportError) as info:
                await connect("http", "127.0.0.1", port, protocols=("http2",), timeout=5)
            assert info.value.reason == "closed"

        run(main)


EMPTY_SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def test_stream_feeds_eof_like_the_blocking_shell() -> None:
    """``stream(b"")`` is the peer's EOF: every request in flight fails with reason closed.

    A scripted HTTP/2 peer (SETTINGS, then silence until the client leaves)
    rather than hypercorn, which logs a cancelled task when a client vanishes
    without GOAWAY.
    """

    def settings_then_wait(connection: socket.socket) -> None:
        connection.recv(1024)  # the client preface and SETTINGS
        connection.sendall(EMPTY_SETTINGS_FRAME)
        while connection.recv(1024):
            pass

    async def main() -> None:
        conn = await connect("http", "127.0.0.1", port, protocols=("http2",), timeout=5)
        assert not conn.extended_connect_enabled  # the SETTINGS did not announce it
        with pytest.raises(WebSocketError) as refusal:
            websocket.upgrade("ws", conn, "/", [])
        assert refusal.value.reason == "extended_connect_disabled"
        ref = conn.request("GET", "/")
        match await conn.stream(b""):
            case [*_, Error(ref=r, error=TransportError(reason="closed"))] if r == ref:
                pass
            case other:
                raise AssertionError(f"unexpected events {other!r}")
        assert not conn.open
        with pytest.raises(TransportError):
            await conn.stream(b"more bytes")
        await conn.close()

    with scripted_server(settings_then_wait) as port:
        run(main)


def test_unresolvable_host() -> None:
    async def main() -> None:
        with pytest.raises(TransportError) as info:
            await connect("http", "no-such-host.invalid", 80, timeout=5)
        assert info.value.reason == "resolve"

    run(main)


def test_untrusted_certificate_fails_with_tls_reason(wss_server: EchoServer) -> None:
    async def main() -> None:
        with pytest.raises(TransportError) as info:
            await connect("https", "127.0.0.1", wss_server.port, timeout=5)
        assert info.value.reason == "tls"
        assert "certificate" in str(info.value).lower()

    run(main)


def test_tls_options(wss_server: EchoServer, client_ssl_context: ssl.SSLContext) -> None:
    async def main() -> None:
        async with await connect("https", "127.0.0.1", wss_server.port, verify=False) as conn:
            assert conn.open
        async with await connect(
            "https", "127.0.0.1", wss_server.port, ssl_context=client_ssl_context
        ) as conn:
            assert conn.alpn_protocol is None  # websockets offers no ALPN: HTTP/1.1
            assert conn.version == "HTTP/1.1"
        with pytest.raises(TransportError) as info:
            await connect(
                "https",
                "127.0.0.1",
                wss_server.port,
                ssl_context=client_ssl_context,
                server_hostname="not-the-cert-name.test",
            )
        assert info.value.reason == "tls"

    run(main)


def test_the_same_argument_checks_as_the_blocking_shell() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="scheme"):
            await connect("ftp", "127.0.0.1", 21)
        with pytest.raises(ValueError, match="protocols"):
            await connect("http", "127.0.0.1", 80, protocols="http2")
        with pytest.raises(ValueError, match="port"):
            await connect("http", "127.0.0.1", 70000)
        with pytest.raises(ValueError, match="ssl_context"):
            await connect(
                "https", "127.0.0.1", 443, ssl_context=ssl.create_default_context(), verify=False
            )

    run(main)


def test_close_is_idempotent_and_later_calls_raise(h2c_server: RunningServer) -> None:
    async def main() -> None:
        conn = await connect("http", h2c_server.host, h2c_server.port)
        status, _, body = await collect(Demux(conn), conn.request("GET", "/"))
        assert (status, body) == (200, b"hello")
        with pytest.raises(HTTPError):
            conn.ping()  # HTTP/1.1 has none
        second = conn.request("GET", "/")
        with pytest.raises(HTTPError) as refusal:
            conn.cancel_request(second)
        assert refusal.value.reason == "not_supported"
        assert (await collect(Demux(conn), second))[0] == 200
        await conn.close()
        await conn.close()
        assert not conn.open
        with pytest.raises(TransportError) as info:
            conn.request("GET", "/")
        assert info.value.reason == "closed"
        with pytest.raises(TransportError):
            await conn.recv(timeout=1)

    run(main)


def test_blocking_and_async_shells_agree_on_http2_settings(
    h2c_server: RunningServer, tls_ca_file: Path
) -> None:
    with http.connect("http", h2c_server.host, h2c_server.port, protocols=("http2",)) as blocking:
        expected = blocking.server_settings

    async def main() -> dict[str, int]:
        async with await connect_h2(h2c_server, tls_ca_file) as conn:
            return conn.server_settings

    assert run(main) == expected


def test_bad_http2_settings_are_refused_before_dialing() -> None:
    async def main() -> None:
        # Port 1 would refuse the connection: a ValueError proves nothing was dialed.
        await connect("http", "127.0.0.1", 1, protocols=("http2",), http2_max_frame_size=1)

    with pytest.raises(ValueError):
        asyncio.run(main())


def test_a_cancel_during_connect_is_never_lost() -> None:
    """Cancelled at any moment of the dial, connect raises CancelledError at once.

    ``asyncio.wait_for`` before Python 3.12 returns the result of an awaitable
    that finished in the same loop turn the cancel came in, and the cancel is
    gone: the caller's task went on to the handshake.  Cancelling after 0, 1,
    2, ... loop turns walks the cancel across every step of the dial.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main() -> None:
        cancelled = 0
        for turns in range(50):
            task = asyncio.ensure_future(connect("http", "127.0.0.1", port, timeout=5))
            for _ in range(turns):
                await asyncio.sleep(0)
            if task.done():  # connected before the cancel: every step was walked
                await (await task).close()
                break
            task.cancel()
            try:
                conn = await task
            except asyncio.CancelledError:
                cancelled += 1
                continue
            await conn.close()
            raise AssertionError(f"a cancel after {turns} loop turns was lost")
        assert cancelled >= 2  # the walk crossed the dial, not only its first step

    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        listener.close()
