"""asyncio sessions (``mint.client.aio``) when things go wrong: real and scripted servers.

Silent peers (keepalive, close timeout), servers going away and coming back
(reconnecting), refusals, protocol violations and dropped connections: every
failure is a ``mint.errors`` class with a reason, and whatever arrived before
it is handed out first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trustme

from mint.client import Backoff, aio
from mint.errors import (
    ConnectionClosedError,
    ConnectionClosedOK,
    MintError,
    TransportError,
    UpgradeFailureError,
    WebSocketError,
)
from servers import RunningServer, start_hypercorn
from servers.alpn_server import AlpnServer, alpn_server
from servers.asgi_apps import FlakyApp
from servers.client_endpoints import closed_port
from servers.frame_peer import (
    CLOSE,
    PING,
    PONG,
    BurstsThenClose,
    close_frame,
    converse,
    frame_heads,
    server_frame,
)
from servers.h2_scripted import h2_scripted_server
from servers.session_servers import (
    SessionApp,
    WebsocketsServer,
    accept_websocket,
    client_frames,
    close_code_of,
    read_until_eof,
    server_context,
    websockets_server,
)
from servers.websockets_echo import read_request_head, scripted_server

TIMEOUT = 10.0


def run(main: Callable[[], Awaitable[None]], timeout: float = 60.0) -> None:
    """Run one test body in a fresh event loop, bounded so a hang fails instead of stalling."""

    async def bounded() -> None:
        await asyncio.wait_for(main(), timeout)

    asyncio.run(bounded())


async def _exchange(ws: aio.Session, message: str) -> None:
    await ws.send(message)
    assert await ws.recv(TIMEOUT) == message


# -- silent peers: keepalive and the close timeout ----------------------------------------------


def test_keepalive_fails_a_session_whose_peer_stops_answering() -> None:
    received: list[bytes] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)  # then never a pong, nor anything else
        received.append(read_until_eof(connection))

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/", ping_interval=0.2, ping_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(ConnectionClosedError) as dead:
            await ws.recv(TIMEOUT)
        assert 0.4 <= time.monotonic() - started < TIMEOUT  # one interval, then the timeout
        assert dead.value.reason == "keepalive_timeout"
        assert ws.closed and ws.close_code == 1006
        with pytest.raises(ConnectionClosedError):
            await ws.send("too late")
        await ws.close()

    with scripted_server(script) as port:
        run(lambda: main(port))
    frames = client_frames(received[0])
    assert [opcode for opcode, _ in frames] == [PING, CLOSE]
    assert close_code_of(frames[-1][1]) == 1011


def test_keepalive_keeps_a_session_with_an_answering_peer_open() -> None:
    pings: list[bytes] = []

    def answer(opcode: int, payload: bytes) -> bytes | None:
        if opcode == PING:
            pings.append(payload)
            return server_frame(PONG, payload)
        if opcode == CLOSE:
            return close_frame(close_code_of(payload) or 1000)
        return None

    def script(connection: socket.socket) -> None:
        converse(connection, answer)

    async def main(port: int) -> None:
        async with aio.connect(
            f"ws://127.0.0.1:{port}/", ping_interval=0.05, ping_timeout=0.2
        ) as ws:
            # Nothing to receive: the waiting recv sends the keepalive pings meanwhile.
            with pytest.raises(TransportError) as waited:
                await ws.recv(timeout=0.6)
            assert waited.value.reason == "timeout"
            assert not ws.closed
            assert len(pings) >= 3  # about one every 50 ms, each answered in time
            assert await ws.ping() > 0
        assert (ws.close_code, ws.closed) == (1000, True)

    with scripted_server(script) as port:
        run(lambda: main(port))
    assert len(set(pings)) == len(pings)  # a fresh payload each time


def test_keepalive_over_http2_fails_the_silent_sessions_not_the_connection() -> None:
    """The h2 scripted server answers each DATA frame (our pings too) with "ok", never a pong."""

    async def main(port: int) -> None:
        async with aio.Client(http2=True) as c:
            url = f"ws://127.0.0.1:{port}"
            silent = [
                await c.connect(f"{url}/s{i}", ping_interval=0.1, ping_timeout=0.2)
                for i in range(3)
            ]
            collected = await asyncio.gather(
                *(_until_closed(ws) for ws in silent), return_exceptions=True
            )
            for ws, outcome in zip(silent, collected, strict=True):
                assert isinstance(outcome, ConnectionClosedError)
                assert (outcome.reason, ws.close_code) == ("keepalive_timeout", 1006)
            # Only the sessions failed: their streams were let go, the connection is fine.
            assert len(c.connections()) == 1
            assert len(silent[0]._shared.routes) == 0
            fresh = await c.connect(f"{url}/fresh", ping_interval=None)
            await fresh.send("x")
            assert await fresh.recv(TIMEOUT) == "ok"
            assert fresh.connection is silent[0].connection

    with h2_scripted_server(enable_connect_protocol=True) as port:
        run(lambda: main(port))


async def _until_closed(ws: aio.Session) -> list[str | bytes]:
    """Every message until the session ends; the end's error is raised."""
    received = []
    while True:
        received.append(await ws.recv(TIMEOUT))
        assert received[-1] == "ok"  # the server's answer to each of our pings


def test_close_timeout_ends_a_session_whose_server_never_answers() -> None:
    seen: list[list[tuple[int, bytes]]] = []

    def script(connection: socket.socket) -> None:
        seen.append(converse(connection, lambda opcode, payload: None))  # answers nothing

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/", close_timeout=0.3)
        started = time.monotonic()
        await ws.close(4000, "done")
        assert 0.25 <= time.monotonic() - started < 3
        assert ws.closed and ws.close_code == 1006
        assert not ws.connection.open
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
        assert closed.value.reason == "close_timeout"

    with scripted_server(script) as port:
        run(lambda: main(port))
    assert [(opcode, close_code_of(payload)) for opcode, payload in seen[0]] == [(CLOSE, 4000)]
    assert seen[0][0][1][2:] == b"done"


def test_a_stream_ended_instead_of_a_close_reply_over_http2() -> None:
    """The h2 scripted server answers DATA with "ok" and our END_STREAM with its own: no Close."""

    async def main(port: int) -> None:
        async with aio.Client(http2=True) as c:
            ws = await c.connect(f"ws://127.0.0.1:{port}/", close_timeout=TIMEOUT)
            other = await c.connect(f"ws://127.0.0.1:{port}/other")
            started = time.monotonic()
            await ws.close()
            assert time.monotonic() - started < TIMEOUT / 2  # the stream's end finished it
            assert ws.closed and ws.close_code == 1006
            # Its "ok" for our Close frame came before the end: still handed out, then the end.
            assert await ws.recv() == "ok"
            with pytest.raises(ConnectionClosedError) as closed:
                await ws.recv()
            assert closed.value.reason == "abnormal_closure"
            # Only that stream ended: the connection and its other session go on.
            await other.send("still there")
            assert await other.recv(TIMEOUT) == "ok"
            assert len(c.connections()) == 1

    with h2_scripted_server(enable_connect_protocol=True) as port:
        run(lambda: main(port))


# -- reconnecting ------------------------------------------------------------------------------


class _Retries(logging.Handler):
    """Counts the reconnect loop's "retrying" records and wakes a waiter at each."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("connecting failed"):
            self.count += 1
            self.event.set()


@pytest.fixture
def retries(caplog: pytest.LogCaptureFixture) -> Iterator[_Retries]:
    caplog.set_level(logging.INFO, logger="mint.client")
    handler = _Retries()
    logger = logging.getLogger("mint.client")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_async_for_reconnects_after_the_server_restarts_on_the_same_port(
    retries: _Retries,
) -> None:
    backoff = Backoff(initial=0.05, maximum=0.2)
    servers = contextlib.ExitStack()
    first: WebsocketsServer = servers.enter_context(websockets_server())
    port = first.port

    async def restart_after_a_retry() -> None:
        await retries.event.wait()  # the client found nothing listening and backs off
        await asyncio.to_thread(servers.enter_context, websockets_server(port=port))

    async def main() -> None:
        sessions: list[aio.Session] = []
        restarting: asyncio.Task[None] | None = None
        async for ws in aio.connect(f"ws://127.0.0.1:{port}/", backoff=backoff):
            sessions.append(ws)
            if len(sessions) == 1:
                await _exchange(ws, "first")
                await asyncio.to_thread(first.drop_connections)  # no Close, stop listening
                with pytest.raises(ConnectionClosedError) as lost:
                    await ws.recv(TIMEOUT)
                assert lost.value.close_code == 1006
                await asyncio.to_thread(servers.close)
                restarting = asyncio.create_task(restart_after_a_retry())
                continue
            await _exchange(ws, "second")
            break
        assert restarting is not None
        await restarting
        assert len(sessions) == 2 and retries.count >= 1
        assert sessions[0].closed  # the loop closed it before connecting again
        await sessions[1].close()
        assert sessions[1].close_code == 1000

    try:
        run(main)
    finally:
        servers.close()


def test_reconnecting_retries_a_server_that_answers_503(retries: _Retries) -> None:
    app = FlakyApp(failures=2)
    server = start_hypercorn(app)

    async def main() -> None:
        url = f"ws://127.0.0.1:{server.port}/"
        async for ws in aio.reconnecting(url, backoff=Backoff(initial=0.01, maximum=0.05)):
            assert ws.http_version == "HTTP/1.1"
            await _exchange(ws, "third time lucky")
            await ws.close()
            break
        assert retries.count == 2
        assert app.attempts == 3

    try:
        run(main)
    finally:
        server.stop()


def test_reconnecting_raises_a_refusal_that_retrying_cannot_fix(
    ws_server: WebsocketsServer, retries: _Retries
) -> None:
    async def main() -> None:
        with pytest.raises(UpgradeFailureError) as refused:
            async for _ in aio.connect(
                f"ws://127.0.0.1:{ws_server.port}/forbidden", backoff=Backoff(initial=0.01)
            ):
                pytest.fail("no session should open")
        assert refused.value.status == 403
        assert retries.count == 0

    run(main)


# -- refusals ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def session_h2c() -> Iterator[RunningServer]:
    server = start_hypercorn(SessionApp())
    yield server
    server.stop()


def test_refused_port_and_forbidden_paths(
    ws_server: WebsocketsServer, session_h2c: RunningServer
) -> None:
    async def main() -> None:
        with pytest.raises(TransportError) as refused:
            await aio.connect(f"ws://127.0.0.1:{closed_port()}/")
        assert refused.value.reason == "refused"

        with pytest.raises(UpgradeFailureError) as forbidden:
            await aio.connect(f"ws://127.0.0.1:{ws_server.port}/forbidden")
        assert (forbidden.value.status, forbidden.value.reason) == (403, "upgrade_failure")

        async with aio.Client(http2=True) as c:
            with pytest.raises(UpgradeFailureError) as forbidden_h2:
                await c.connect(f"ws://127.0.0.1:{session_h2c.port}/forbidden")
            assert forbidden_h2.value.status == 403
            # Only the stream was refused: the connection takes the next session.
            ws = await c.connect(f"ws://127.0.0.1:{session_h2c.port}/allowed")
            await _exchange(ws, "allowed")
            assert len(c.connections()) == 1

    run(main)


def test_untrusted_certificate_and_missing_extended_connect(
    wss_server: WebsocketsServer, tls_ca_file: Path
) -> None:
    async def main() -> None:
        with pytest.raises(TransportError) as untrusted:
            await aio.connect(f"wss://127.0.0.1:{wss_server.port}/")  # the system's CAs only
        assert untrusted.value.reason == "tls"
        async with aio.connect(f"wss://127.0.0.1:{wss_server.port}/", cafile=tls_ca_file) as ws:
            await _exchange(ws, "trusted")

        with h2_scripted_server(enable_connect_protocol=False) as port:
            with pytest.raises(WebSocketError) as disabled:
                await aio.connect(f"ws://127.0.0.1:{port}/", http2=True)
            assert disabled.value.reason == "extended_connect_disabled"

    run(main)


def test_http2_without_extended_connect_falls_back_to_http1(
    tls_server_cert: trustme.LeafCert, tls_ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ALPN picks h2, but the server never enables RFC 8441: "auto" goes back to HTTP/1.1."""
    caplog.set_level(logging.INFO, logger="mint.client")

    async def main(server: AlpnServer) -> None:
        url = f"wss://127.0.0.1:{server.port}/"
        async with aio.Client(cafile=tls_ca_file) as c:
            first = await c.connect(url)
            assert first.http_version == "HTTP/1.1"
            await _exchange(first, "over http/1.1")
            second = await c.connect(url)  # remembered: straight to HTTP/1.1
            assert second.http_version == "HTTP/1.1"
            await _exchange(second, "again")
            with pytest.raises(WebSocketError) as forced:
                await c.connect(url, http2=True)
            assert forced.value.reason == "extended_connect_disabled"
            await first.close()
            await second.close()

    with alpn_server(server_context(tls_server_cert)) as server:
        run(lambda: main(server))
    assert server.protocols[:3] == ["h2", "http/1.1", "http/1.1"]
    assert any("extended CONNECT" in record.getMessage() for record in caplog.records)


def test_open_timeout_bounds_a_handshake_the_server_never_answers() -> None:
    def script(connection: socket.socket) -> None:
        read_request_head(connection)
        read_until_eof(connection)  # until the client gives up

    async def main(port: int) -> None:
        started = time.monotonic()
        with pytest.raises(TransportError) as timed_out:
            await aio.connect(f"ws://127.0.0.1:{port}/", open_timeout=0.3)
        assert timed_out.value.reason == "timeout"
        assert 0.25 <= time.monotonic() - started < 3

    with scripted_server(script) as port:
        run(lambda: main(port))


# -- protocol violations and lost connections ----------------------------------------------------


def test_protocol_violation_after_good_messages() -> None:
    received: list[bytes] = []

    def script(connection: socket.socket) -> None:
        # Two good messages, then opcode 3, which RFC 6455 reserves.
        accept_websocket(connection, b"\x81\x05first" + b"\x82\x02\x00\x01" + b"\x83\x00")
        received.append(read_until_eof(connection))

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/")
        assert await ws.recv(TIMEOUT) == "first"
        assert await ws.recv(TIMEOUT) == b"\x00\x01"
        with pytest.raises(ConnectionClosedError) as broken:
            await ws.recv(TIMEOUT)
        assert broken.value.reason == "protocol_error"
        assert ws.close_code == 1006  # no Close frame came from the server
        await ws.close()

    with scripted_server(script) as port:
        run(lambda: main(port))
    frames = client_frames(received[0])
    assert [(opcode, close_code_of(payload)) for opcode, payload in frames] == [(CLOSE, 1002)]


def test_a_recv_waiting_over_http1_answers_pings_keeps_order_and_holds_back() -> None:
    """What ``recv`` does while it waits on an HTTP/1.1 tunnel (its short way, no events).

    The server sends, in two bursts, a ping and five messages then its
    Close, to a session whose queue holds two: every message comes out in
    order, the ping is answered and the Close echoed, and the queue that
    fills in between (the session pauses, so the short way steps aside)
    loses and reorders nothing.
    """
    script = BurstsThenClose()

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/", max_queue=2, compression=False)
        first = asyncio.ensure_future(ws.recv())  # waits with nothing there yet
        await asyncio.sleep(0.05)
        script.go.set()
        messages = [await first]
        await asyncio.sleep(0.1)  # the queue is full now: nothing more is read
        script.second.set()
        messages += [await ws.recv() for _ in range(4)]
        assert messages == BurstsThenClose.MESSAGES
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
        await ws.close()

    with scripted_server(script) as port:
        try:
            run(lambda: main(port))
        finally:
            script.release()
    assert client_frames(script.received) == [(PONG, b"beat"), (CLOSE, b"\x03\xe8")]


def test_messages_before_a_dropped_connection_are_returned_first() -> None:
    def script(connection: socket.socket) -> None:
        accept_websocket(connection, b"\x81\x01a" + b"\x82\x01b")  # then the socket closes

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/")
        received: list[str | bytes] = []
        with pytest.raises(ConnectionClosedError) as lost:
            async for message in ws:
                received.append(message)
        assert received == ["a", b"b"]
        assert lost.value.close_code == 1006
        assert ws.close_code == 1006

    with scripted_server(script) as port:
        run(lambda: main(port))


def test_a_pong_that_cannot_be_written_does_not_hide_the_message_before_it() -> None:
    """The server sends a message and a ping, then ends its side of the connection.

    The loop has read all three (data, then EOF) before the session looks, so
    the pong it owes is written to a transport that is already closing.  That
    failed write must not be what ``recv`` raises: the message comes first,
    then the session's own closed error.
    """

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        connection.recv(1024)  # the client's "go"
        connection.sendall(server_frame(0x1, b"hello") + server_frame(PING, b"p"))
        connection.shutdown(socket.SHUT_WR)
        read_until_eof(connection)

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/", compression=False, ping_interval=None)
        await ws.send("go")
        await asyncio.sleep(0.3)  # the loop reads the frames and the EOF meanwhile
        assert ws.connection.transport.is_closing()
        assert await ws.recv(TIMEOUT) == "hello"
        with pytest.raises(ConnectionClosedError) as lost:
            await ws.recv(TIMEOUT)
        assert lost.value.close_code == 1006
        await ws.close()

    with scripted_server(script) as port:
        run(lambda: main(port))


def test_tcp_drop_mid_session_over_http1() -> None:
    async def main(server: WebsocketsServer) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{server.port}/")
        await _exchange(ws, "before the drop")
        waiting = asyncio.create_task(ws.recv())
        await asyncio.to_thread(server.drop_connections)
        with pytest.raises(ConnectionClosedError) as lost:
            await waiting
        assert (lost.value.close_code, ws.close_code) == (1006, 1006)
        assert ws.closed
        with pytest.raises(ConnectionClosedError):
            await ws.send("after the drop")
        await ws.close()

    with websockets_server() as server:
        run(lambda: main(server))


def test_tcp_drop_mid_session_over_http2_ends_every_session_on_it() -> None:
    servers = contextlib.ExitStack()
    port = servers.enter_context(h2_scripted_server(enable_connect_protocol=True))

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            first = await c.connect(f"ws://127.0.0.1:{port}/one")
            second = await c.connect(f"ws://127.0.0.1:{port}/two")
            await first.send("x")
            assert await first.recv(TIMEOUT) == "ok"
            waiting = [asyncio.create_task(ws.recv()) for ws in (first, second)]
            await asyncio.to_thread(servers.close)  # the server shuts its sockets
            for task in waiting:
                with pytest.raises(ConnectionClosedError) as lost:
                    await task
                assert (lost.value.close_code, lost.value.reason) == (1006, "closed")
            assert first.closed and second.closed
            assert c.connections() == []

    try:
        run(main)
    finally:
        servers.close()


def test_a_server_close_glued_to_a_tls_shutdown(
    server_ssl_context: ssl.SSLContext, tls_ca_file: Path
) -> None:
    """Data, a ping and a Close, then the TLS connection ends at once.

    The pong and the Close reply can no longer be written; that must not
    hide the message and the clean close that arrived before.
    """

    def script(connection: socket.socket) -> None:
        with server_ssl_context.wrap_socket(connection, server_side=True) as tls:
            accept_websocket(tls)
            tls.recv(4096)  # the client's "go"
            tls.sendall(server_frame(0x1, b"hi") + server_frame(PING) + close_frame(1000))
            tls.unwrap()

    async def main(port: int) -> None:
        ws = await aio.connect(f"wss://127.0.0.1:{port}/", cafile=tls_ca_file)
        await ws.send("go")
        # All of it arrives, and asyncio closes the TLS transport, before anyone reads.
        while not ws.connection.transport.is_closing():
            await asyncio.sleep(0.005)
        assert await ws.recv(TIMEOUT) == "hi"
        with pytest.raises(ConnectionClosedOK) as closed:
            await ws.recv(TIMEOUT)
        assert closed.value.close_code == 1000
        await ws.close()

    with scripted_server(script) as port:
        run(lambda: main(port))


def test_an_upgrade_answer_followed_by_the_stream_end_still_makes_a_session() -> None:
    """The h2 scripted server answers ``/end`` with 200, "bye", END_STREAM in one write,
    and ``/reset`` with 200, half a frame and RST_STREAM."""

    async def main(port: int) -> None:
        async with aio.Client(http2=True) as c:
            ended = await c.connect(f"ws://127.0.0.1:{port}/end")
            assert await ended.recv(TIMEOUT) == "bye"
            with pytest.raises(ConnectionClosedError) as end:
                await ended.recv(TIMEOUT)
            assert (end.value.reason, end.value.close_code) == ("abnormal_closure", 1006)

            reset = await c.connect(f"ws://127.0.0.1:{port}/reset")
            with pytest.raises(ConnectionClosedError) as was_reset:
                await reset.recv(TIMEOUT)
            assert (was_reset.value.reason, was_reset.value.close_code) == ("stream_reset", 1006)

            # The connection is fine: another session on it talks on.
            ws = await c.connect(f"ws://127.0.0.1:{port}/talk")
            await ws.send("x")
            assert await ws.recv(TIMEOUT) == "ok"
            assert len(c.connections()) == 1

    with h2_scripted_server(enable_connect_protocol=True) as port:
        run(lambda: main(port))


def test_a_fragmented_send_cancelled_half_way_fails_the_session_with_1011() -> None:
    """The server stops reading, so the send waits for the transport between fragments."""
    go_on = threading.Event()
    received: list[bytes] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        go_on.wait(TIMEOUT)
        received.append(read_until_eof(connection))

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/", compression=False)
        transport = ws.connection.transport
        sending = asyncio.create_task(ws.send([b"x" * 2**20] * 64))
        while transport.get_write_buffer_size() <= 2**16:  # past asyncio's high-water mark
            await asyncio.sleep(0.005)
        assert not sending.done()  # it waits for the transport, between two fragments
        sending.cancel()
        go_on.set()  # the server reads again: what was written can be flushed
        with pytest.raises(asyncio.CancelledError):
            await sending
        assert ws.closed
        with pytest.raises(ConnectionClosedError) as failed:
            await ws.send("next")
        assert failed.value.reason == "send_interrupted"
        await ws.close()

    try:
        with scripted_server(script) as port:
            run(lambda: main(port))
    finally:
        go_on.set()
    heads = frame_heads(received[0])
    data, (close,) = heads[:-1], heads[-1:]
    assert data and all(not fin for fin, _, _ in data)  # the message never finished
    assert [opcode for _, opcode, _ in data] == [0x2] + [0x0] * (len(data) - 1)
    assert (close[1], close_code_of(close[2])) == (CLOSE, 1011)


def test_misuse_raises_before_any_io() -> None:
    async def main() -> None:
        for url, reason in [
            ("http://127.0.0.1/", "bad_scheme"),
            ("ws://", "bad_url"),
            ("ws://127.0.0.1/#frag", "bad_url"),
        ]:
            with pytest.raises(MintError) as bad:
                await aio.connect(url)
            assert bad.value.reason == reason
        with pytest.raises(WebSocketError) as bad_option:
            await aio.connect("ws://127.0.0.1:1/", max_queue=0)
        assert bad_option.value.reason == "invalid_argument"
        with pytest.raises(WebSocketError):
            aio.Client(http2="sometimes")  # type: ignore[arg-type]

    run(main)
