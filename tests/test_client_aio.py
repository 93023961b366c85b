"""asyncio sessions (``mint.client.aio``) against real servers on 127.0.0.1.

The blocking tests' conversations, awaited, on the same four transports, and
what only asyncio has: many coroutines sharing one connection with no task
reading for them, a reader cancelled mid-wait, a thousand sessions on one
HTTP/2 connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterator

import priority.priority
import pytest
from hypercorn.config import Config

from mint.client import Backoff, aio
from mint.errors import (
    ConnectionClosedError,
    ConnectionClosedOK,
    TransportError,
    UpgradeFailureError,
)
from servers import RunningServer, start_hypercorn
from servers.client_endpoints import Endpoint, closed_port
from servers.session_servers import (
    SessionApp,
    WebsocketsServer,
    accept_websocket,
    client_frames,
    close_code_of,
    flood_message,
    read_until_eof,
    websockets_server,
)
from servers.websockets_echo import scripted_server

TIMEOUT = 10.0
PING, CLOSE = 0x9, 0x8


def run(main: Callable[[], Awaitable[None]], timeout: float = 60.0) -> None:
    """Run one test body in a fresh event loop, bounded so a hang fails instead of stalling."""

    async def bounded() -> None:
        await asyncio.wait_for(main(), timeout)

    asyncio.run(bounded())


# -- conversations, on every transport -------------------------------------------------------


def test_echo_fragments_timeout_ping_and_close(endpoint: Endpoint) -> None:
    async def main() -> None:
        async with aio.connect(endpoint.url("/echo"), **endpoint.options) as ws:
            assert ws.http_version == endpoint.http_version
            names = {name.lower() for name, _ in ws.response_headers}
            # RFC 6455's accept key exists over HTTP/1.1 only; RFC 8441 drops it.
            assert ("sec-websocket-accept" in names) == (endpoint.http_version == "HTTP/1.1")
            await ws.send("text")
            await ws.send(b"\x00binary\xff")
            assert await ws.recv(TIMEOUT) == "text"
            assert await ws.recv(TIMEOUT) == b"\x00binary\xff"
            await ws.send(["frag", "ment", "ed"])
            assert await ws.recv(TIMEOUT) == "fragmented"
            await ws.send(bytes([i]) * 1000 for i in range(5))
            assert await ws.recv(TIMEOUT) == b"".join(bytes([i]) * 1000 for i in range(5))
            with pytest.raises(TransportError) as waited:
                await ws.recv(timeout=0.05)
            assert waited.value.reason == "timeout"
            await ws.send("still usable")
            assert await ws.recv(TIMEOUT) == "still usable"
            latency = await ws.ping()
            assert 0 < latency < TIMEOUT
        assert ws.closed
        assert (ws.close_code, ws.close_reason) == (1000, "")
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()

    run(main)


def test_awaited_connect_and_iteration_until_the_server_closes(endpoint: Endpoint) -> None:
    async def main() -> None:
        ws = await aio.connect(endpoint.url("/iterate"), **endpoint.options)
        for word in ("one", "two", "close"):
            await ws.send(word)
        received = [message async for message in ws]
        assert received == ["one", "two"]
        assert (ws.close_code, ws.close_reason) == (1000, "bye")
        await ws.close()  # idempotent after the server's close

    run(main)


# -- one HTTP/2 connection, many coroutines ----------------------------------------------------


@pytest.fixture
def wide_h2c(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningServer, SessionApp]]:
    # hypercorn announces h2_max_concurrent_streams but builds its stream
    # scheduler with the priority library's fixed cap of 1,000 (the root
    # included): the thousandth stream would kill the connection.  Lifting
    # that server limit lets the client's own thousand streams be tested.
    roomy = functools.partial(priority.priority.PriorityTree, maximum_streams=4096)
    monkeypatch.setattr(priority, "PriorityTree", roomy)  # the name hypercorn calls
    config = Config()
    config.h2_max_concurrent_streams = 1200
    app = SessionApp()
    server = start_hypercorn(app, config=config)
    yield server, app
    server.stop()


def test_a_thousand_sessions_on_one_http2_connection(
    wide_h2c: tuple[RunningServer, SessionApp],
) -> None:
    server, app = wide_h2c
    count = 1000

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            sessions = await asyncio.gather(
                *(c.connect(f"ws://127.0.0.1:{server.port}/s{i}") for i in range(count))
            )

            async def exchange(i: int, ws: aio.Session) -> None:
                await ws.send(f"message {i}")
                assert await ws.recv(TIMEOUT * 3) == f"message {i}"

            await asyncio.gather(*(exchange(i, ws) for i, ws in enumerate(sessions)))
            assert len(c.connections()) == 1
            await asyncio.gather(*(ws.close() for ws in sessions))
            assert all(ws.close_code == 1000 for ws in sessions)

    started = time.monotonic()
    run(main, timeout=120)
    logging.getLogger(__name__).info("1,000 sessions took %.1fs", time.monotonic() - started)
    assert len(app.client_ports()) == 1  # the server saw one TCP connection


def test_cancelling_the_reader_leaves_the_others_working(h2c_server: RunningServer) -> None:
    async def main() -> None:
        async with aio.Client(http2=True) as c:
            quiet = await c.connect(f"ws://127.0.0.1:{h2c_server.port}/quiet")
            talkers = [await c.connect(f"ws://127.0.0.1:{h2c_server.port}/t{i}") for i in range(5)]
            # The quiet session's recv becomes the reader for everyone, then is cancelled.
            reader = asyncio.ensure_future(quiet.recv())
            await asyncio.sleep(0.05)
            waiting = [asyncio.ensure_future(t.recv()) for t in talkers]
            await asyncio.sleep(0)
            reader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reader
            for i, talker in enumerate(talkers):
                await talker.send(f"after cancel {i}")
            assert await asyncio.gather(*waiting) == [f"after cancel {i}" for i in range(5)]
            await quiet.send("quiet still works")
            assert await quiet.recv(TIMEOUT) == "quiet still works"

    run(main)


def test_requests_and_sessions_share_the_connection(
    wide_h2c: tuple[RunningServer, SessionApp],
) -> None:
    server, app = wide_h2c

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            ws = await c.connect(f"ws://127.0.0.1:{server.port}/mixed")
            await ws.send("before")
            responses = await asyncio.gather(
                *(c.request("GET", f"http://127.0.0.1:{server.port}/r{i}") for i in range(10))
            )
            assert all(r.status == 200 and r.body == b"hello" for r in responses)
            assert {r.http_version for r in responses} == {"HTTP/2"}
            assert await ws.recv(TIMEOUT) == "before"
            assert len(c.connections()) == 1
            await ws.close()

    run(main)
    assert len(app.client_ports()) == 1


def test_a_slow_consumer_does_not_stall_a_fast_one(
    wide_h2c: tuple[RunningServer, SessionApp],
) -> None:
    server, _ = wide_h2c
    count, size, max_queue = 200, 16_384, 4

    async def main() -> None:
        async with aio.Client(http2=True, http2_window_size=128 * 1024) as c:
            slow = await c.connect(
                f"ws://127.0.0.1:{server.port}/flood", max_queue=max_queue, compression=False
            )
            fast = await c.connect(f"ws://127.0.0.1:{server.port}/fast")
            await slow.send(f"go {count} {size}")  # 3.2 MiB, far beyond one window
            for i in range(50):
                await fast.send(f"echo {i}")
                assert await fast.recv(TIMEOUT) == f"echo {i}"
            # What the slow session holds is bounded by its queue and one window.
            held = slow._state.messages
            assert len(held) <= max_queue + (128 * 1024) // size + 1
            assert slow._state.paused
            for index in range(count):
                assert await slow.recv(TIMEOUT) == flood_message(index, size)
            await slow.close()
            await fast.close()

    run(main)


# -- failures ----------------------------------------------------------------------------------


def test_keepalive_fails_a_session_whose_peer_stops_answering() -> None:
    received: list[bytes] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        received.append(read_until_eof(connection))

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/", ping_interval=0.2, ping_timeout=0.3)
        with pytest.raises(ConnectionClosedError) as dead:
            await ws.recv(TIMEOUT)
        assert dead.value.reason == "keepalive_timeout"
        assert ws.close_code == 1006
        await ws.close()

    with scripted_server(script) as port:
        run(lambda: main(port))
    frames = client_frames(received[0])
    assert [opcode for opcode, _ in frames] == [PING, CLOSE]
    assert close_code_of(frames[-1][1]) == 1011


def test_close_timeout_ends_a_session_whose_server_never_answers() -> None:
    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        read_until_eof(connection)

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/", close_timeout=0.3)
        started = time.monotonic()
        await ws.close()
        assert 0.25 <= time.monotonic() - started < 3
        assert ws.closed
        with pytest.raises(ConnectionClosedError) as closed:
            await ws.recv()
        assert closed.value.reason == "close_timeout"

    with scripted_server(script) as port:
        run(lambda: main(port))


def test_reconnect_after_the_server_restarts_on_the_same_port() -> None:
    backoff = Backoff(initial=0.05, maximum=0.2)
    with contextlib.ExitStack() as servers:
        first: WebsocketsServer = servers.enter_context(websockets_server())
        port = first.port

        async def main() -> None:
            sessions = aio.connect(f"ws://127.0.0.1:{port}/", backoff=backoff).__aiter__()
            ws = await sessions.__anext__()
            await ws.send("first")
            assert await ws.recv(TIMEOUT) == "first"
            first.drop_connections()
            with pytest.raises(ConnectionClosedError) as lost:
                await ws.recv(TIMEOUT)
            assert lost.value.close_code == 1006
            servers.close()  # nothing listens now: the next session needs retries

            async def restart() -> None:
                await asyncio.sleep(0.3)
                servers.enter_context(websockets_server(port=port))

            restarting = asyncio.ensure_future(restart())
            again = await sessions.__anext__()
            await restarting
            await again.send("second")
            assert await again.recv(TIMEOUT) == "second"
            await sessions.aclose()  # type: ignore[attr-defined]
            assert again.closed

        run(main)


def test_refused_forbidden_and_broken_servers(ws_server: WebsocketsServer) -> None:
    async def main() -> None:
        with pytest.raises(TransportError) as refused:
            await aio.connect(f"ws://127.0.0.1:{closed_port()}/")
        assert refused.value.reason == "refused"
        with pytest.raises(UpgradeFailureError) as forbidden:
            await aio.connect(f"ws://127.0.0.1:{ws_server.port}/forbidden")
        assert forbidden.value.status == 403

    run(main)


def test_protocol_violation_after_good_messages() -> None:
    def script(connection: socket.socket) -> None:
        accept_websocket(connection, b"\x81\x05first" + b"\x83\x00")  # opcode 3 is reserved
        read_until_eof(connection)

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/")
        assert await ws.recv(TIMEOUT) == "first"
        with pytest.raises(ConnectionClosedError) as broken:
            await ws.recv(TIMEOUT)
        assert broken.value.reason == "protocol_error"
        await ws.close()

    with scripted_server(script) as port:
        run(lambda: main(port))


def test_messages_before_a_dropped_connection_are_returned_first() -> None:
    def script(connection: socket.socket) -> None:
        accept_websocket(connection, b"\x81\x01a" + b"\x82\x01b")

    async def main(port: int) -> None:
        ws = await aio.connect(f"ws://127.0.0.1:{port}/")
        received: list[str | bytes] = []
        with pytest.raises(ConnectionClosedError) as lost:
            async for message in ws:
                received.append(message)
        assert received == ["a", b"b"]
        assert lost.value.close_code == 1006

    with scripted_server(script) as port:
        run(lambda: main(port))
