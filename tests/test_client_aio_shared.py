"""asyncio sessions sharing one HTTP/2 connection (``mint.client.aio.Client``), against hypercorn.

No task reads for the sessions: whichever coroutine waits reads for all of
them and routes each event by its stream.  These tests run many coroutines at
once on one connection (a thousand sessions, twenty readers, requests beside
sessions, a slow consumer beside a fast one), take the reader away in the
middle (cancelled, timed out), and count the TCP connections the server saw.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Awaitable, Callable, Iterator

import priority.priority
import pytest
from hypercorn.config import Config

from mint.client import aio
from mint.errors import ConnectionClosedError, MintError, TransportError
from servers import RunningServer, pattern, start_hypercorn
from servers.asgi_apps import ClientRecorder
from servers.hypercorn_app import app as hypercorn_app
from servers.session_servers import SessionApp, flood_message

TIMEOUT = 10.0


def run(main: Callable[[], Awaitable[None]], timeout: float = 60.0) -> None:
    """Run one test body in a fresh event loop, bounded so a hang fails instead of stalling."""

    async def bounded() -> None:
        await asyncio.wait_for(main(), timeout)

    asyncio.run(bounded())


@pytest.fixture
def session_server() -> Iterator[tuple[RunningServer, ClientRecorder]]:
    """hypercorn with the session protocol (echo, ``close``, ``/flood``), recording clients."""
    app = ClientRecorder(SessionApp())
    server = start_hypercorn(app)
    yield server, app
    server.stop()


async def _exchange(ws: aio.Session, message: str) -> None:
    await ws.send(message)
    assert await ws.recv(TIMEOUT) == message


async def _until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (``run`` bounds the wait)."""
    while not condition():
        await asyncio.sleep(0)


# -- a thousand sessions -----------------------------------------------------------------------


@pytest.fixture
def wide_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningServer, ClientRecorder]]:
    # hypercorn announces h2_max_concurrent_streams but builds each connection's
    # stream scheduler with the priority library's default cap of 1,000 streams
    # (its root included): the thousandth stream would kill the connection.
    # Lifting that server-side cap lets the client's thousand streams be tested.
    roomy = functools.partial(priority.priority.PriorityTree, maximum_streams=4096)
    monkeypatch.setattr(priority, "PriorityTree", roomy)  # the name hypercorn calls
    config = Config()
    config.h2_max_concurrent_streams = 1200
    app = ClientRecorder(SessionApp())
    server = start_hypercorn(app, config=config)
    yield server, app
    server.stop()


def test_a_thousand_sessions_on_one_http2_connection(
    wide_server: tuple[RunningServer, ClientRecorder],
) -> None:
    server, app = wide_server
    count = 1000
    timings: dict[str, float] = {}

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            started = time.perf_counter()
            sessions = await asyncio.gather(
                *(c.connect(f"ws://127.0.0.1:{server.port}/s{i}") for i in range(count))
            )
            timings["open"] = time.perf_counter() - started
            assert len(c.connections()) == 1
            assert {ws.connection for ws in sessions} == set(c.connections())
            assert len({ws._state.ref for ws in sessions}) == count

            started = time.perf_counter()

            async def exchange(i: int, ws: aio.Session) -> str | bytes:
                await ws.send(f"message {i}")
                return await ws.recv(TIMEOUT * 3)

            replies = await asyncio.gather(*(exchange(i, ws) for i, ws in enumerate(sessions)))
            assert replies == [f"message {i}" for i in range(count)]
            timings["exchange"] = time.perf_counter() - started

            started = time.perf_counter()
            await asyncio.gather(*(ws.close() for ws in sessions))
            timings["close"] = time.perf_counter() - started
            assert all(ws.closed and ws.close_code == 1000 for ws in sessions)
            assert len(c.connections()) == 1  # closing sessions keeps the connection

    run(main, timeout=120)
    print(", ".join(f"{phase} {seconds:.2f}s" for phase, seconds in timings.items()))
    assert app.count("websocket") == count
    assert len(app.clients("websocket")) == 1  # the server saw one TCP connection


def test_more_sessions_than_the_server_allows_open_a_second_connection(
    session_server: tuple[RunningServer, ClientRecorder],
) -> None:
    server, app = session_server  # hypercorn's default: 100 concurrent streams

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            sessions = await asyncio.gather(
                *(c.connect(f"ws://127.0.0.1:{server.port}/p{i}") for i in range(120))
            )
            conns = c.connections()
            assert len(conns) == 2
            assert all(conn.server_settings["max_concurrent_streams"] == 100 for conn in conns)
            per_connection = sorted(
                sum(1 for ws in sessions if ws.connection is conn) for conn in conns
            )
            assert per_connection == [20, 100]
            await asyncio.gather(*(_exchange(ws, f"m{i}") for i, ws in enumerate(sessions)))
            await asyncio.gather(*(ws.close() for ws in sessions))

    run(main)
    assert len(app.clients("websocket")) == 2


# -- many coroutines reading one connection ----------------------------------------------------


def test_twenty_sessions_each_receiving_in_its_own_task(
    session_server: tuple[RunningServer, ClientRecorder],
) -> None:
    server, app = session_server
    sessions_count, messages = 20, 25

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            sessions = [
                await c.connect(f"ws://127.0.0.1:{server.port}/r{i}") for i in range(sessions_count)
            ]

            async def receive_all(ws: aio.Session) -> list[str | bytes]:
                return [await ws.recv(TIMEOUT) for _ in range(messages)]

            async def send_all(i: int, ws: aio.Session) -> None:
                for k in range(messages):
                    await ws.send(f"{i}:{k}")
                    await asyncio.sleep(0)  # let the others send in between

            receivers = [asyncio.create_task(receive_all(ws)) for ws in sessions]
            shared = sessions[0]._shared
            # Every receiver waits: one reads for all, nineteen wait on it.
            await _until(lambda: shared._waiting == sessions_count - 1)
            assert shared._reading
            await asyncio.gather(*(send_all(i, ws) for i, ws in enumerate(sessions)))
            received = await asyncio.gather(*receivers)  # any error (recv_in_progress) raises
            for i, got in enumerate(received):
                assert got == [f"{i}:{k}" for k in range(messages)]
            assert not shared._reading and shared._waiting == 0
            assert len(c.connections()) == 1

    run(main)
    assert len(app.clients("websocket")) == 1


def test_two_coroutines_receiving_on_one_session_share_its_messages(
    session_server: tuple[RunningServer, ClientRecorder],
) -> None:
    server, _ = session_server

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            ws = await c.connect(f"ws://127.0.0.1:{server.port}/pair")

            async def take(n: int) -> list[str]:
                return [str(await ws.recv(TIMEOUT)) for _ in range(n)]

            first, second = asyncio.create_task(take(10)), asyncio.create_task(take(10))
            await _until(lambda: ws._shared._waiting == 1)  # one reads, one waits
            for k in range(20):
                await ws.send(f"m{k:02d}")
            got = await asyncio.gather(first, second)
            assert sorted(got[0] + got[1]) == [f"m{k:02d}" for k in range(20)]
            for part in got:  # each coroutine still sees its share in order
                assert part == sorted(part)
            await ws.close()

    run(main)


@pytest.mark.parametrize("leave", ["cancel", "wait_for", "recv_timeout"])
def test_the_reader_leaving_leaves_the_others_working(
    session_server: tuple[RunningServer, ClientRecorder], leave: str
) -> None:
    """The coroutine reading for everyone is cancelled or times out; another takes over."""
    server, _ = session_server

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            url = f"ws://127.0.0.1:{server.port}"
            quiet = await c.connect(f"{url}/quiet")
            talkers = [await c.connect(f"{url}/t{i}") for i in range(5)]
            shared = quiet._shared

            # The quiet session's recv becomes the reader for everyone.
            if leave == "cancel":
                reader: asyncio.Task[str | bytes] = asyncio.create_task(quiet.recv())
            elif leave == "wait_for":
                reader = asyncio.create_task(asyncio.wait_for(quiet.recv(), 0.2))
            else:
                reader = asyncio.create_task(quiet.recv(timeout=0.2))
            await _until(lambda: shared._reading)
            waiting = [asyncio.create_task(t.recv()) for t in talkers]
            await _until(lambda: shared._waiting == len(talkers))

            if leave == "cancel":
                reader.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reader
            elif leave == "wait_for":
                with pytest.raises(TimeoutError):
                    await reader
            else:
                with pytest.raises(TransportError) as timed_out:
                    await reader
                assert timed_out.value.reason == "timeout"
            assert not quiet.closed

            for i, talker in enumerate(talkers):
                await talker.send(f"after {leave} {i}")
            replies = await asyncio.gather(*waiting)
            assert replies == [f"after {leave} {i}" for i in range(len(talkers))]
            await _exchange(quiet, "quiet still works")
            assert await quiet.ping() > 0
            assert not shared._reading and shared._waiting == 0

    run(main)


def test_a_connect_cancelled_mid_handshake_leaves_the_connection_clean(
    session_server: tuple[RunningServer, ClientRecorder],
) -> None:
    server, _ = session_server

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            url = f"ws://127.0.0.1:{server.port}"
            first = await c.connect(f"{url}/first")
            shared = first._shared
            pending = asyncio.create_task(c.connect(f"{url}/abandoned"))
            await _until(lambda: len(shared.routes) == 2)  # its CONNECT went out
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            assert len(shared.routes) == 1  # the abandoned stream was cancelled and forgotten
            await _exchange(first, "unaffected")
            second = await c.connect(f"{url}/second")
            await _exchange(second, "next one")
            assert len(c.connections()) == 1

    run(main)


def test_closing_the_client_ends_every_session_and_wakes_its_receivers(
    session_server: tuple[RunningServer, ClientRecorder],
) -> None:
    server, _ = session_server

    async def main() -> None:
        c = aio.Client(http2=True)
        sessions = [await c.connect(f"ws://127.0.0.1:{server.port}/c{i}") for i in range(5)]
        receivers = [asyncio.create_task(ws.recv()) for ws in sessions]
        shared = sessions[0]._shared
        await _until(lambda: shared._reading and shared._waiting == len(sessions) - 1)
        await c.close()
        results = await asyncio.gather(*receivers, return_exceptions=True)
        for result in results:
            assert isinstance(result, ConnectionClosedError)
            assert (result.reason, result.close_code) == ("client_closed", 1006)
        assert all(ws.closed for ws in sessions)
        assert c.connections() == []
        with pytest.raises(MintError) as closed:
            await c.connect(f"ws://127.0.0.1:{server.port}/late")
        assert closed.value.reason == "closed"

    run(main)


# -- requests beside sessions ------------------------------------------------------------------


@pytest.fixture
def recorded_hypercorn() -> Iterator[tuple[RunningServer, ClientRecorder]]:
    """hypercorn's test app (``/``, ``/bytes/N``, ``POST /echo``, WebSocket echo), recorded."""
    app = ClientRecorder(hypercorn_app)
    server = start_hypercorn(app)
    yield server, app
    server.stop()


def test_requests_and_sessions_share_one_connection(
    recorded_hypercorn: tuple[RunningServer, ClientRecorder],
) -> None:
    server, app = recorded_hypercorn
    base = f"127.0.0.1:{server.port}"
    sizes = [0, 1, 65_535, 65_536, 3_000_000]  # the last one is beyond the client's 1 MiB window

    async def main() -> None:
        async with aio.Client(http2=True) as c:
            sessions = [await c.connect(f"ws://{base}/ws{i}") for i in range(3)]
            for i, ws in enumerate(sessions):
                await ws.send(f"before {i}")  # echoes wait on the connection meanwhile

            async def talk(i: int, ws: aio.Session) -> None:
                # The echo sent before the requests was kept for its session.
                assert await ws.recv(TIMEOUT) == f"before {i}"
                for k in range(20):
                    await _exchange(ws, f"{i}:{k}")

            upload = os.urandom(200_000)
            results = await asyncio.gather(
                *(c.request("GET", f"http://{base}/") for _ in range(5)),
                *(c.request("GET", f"http://{base}/bytes/{size}") for size in sizes),
                c.request("POST", f"http://{base}/echo", body=upload),
                c.request("GET", f"http://{base}/missing"),
                *(talk(i, ws) for i, ws in enumerate(sessions)),
            )
            responses = [r for r in results if isinstance(r, aio.Response)]
            assert len(responses) == 5 + len(sizes) + 2
            hello, sized = responses[:5], responses[5 : 5 + len(sizes)]
            echoed, missing = responses[-2:]
            assert all(r.status == 200 and r.body == b"hello" for r in hello)
            for size, r in zip(sizes, sized, strict=True):
                assert r.status == 200
                assert r.header("Content-Length") == str(size)
                assert r.body == pattern(size)
            assert (echoed.status, echoed.body) == (200, upload)
            assert missing.status == 404
            assert {r.http_version for r in responses} == {"HTTP/2"}
            assert {r.header("x-http-version") for r in responses} == {"2"}

            assert len(c.connections()) == 1
            for ws in sessions:
                await ws.close()
            after = await c.request("GET", f"http://{base}/bytes/1000")
            assert after.body == pattern(1000)
            assert len(c.connections()) == 1

    run(main)
    assert app.count("websocket") == 3
    assert app.count("http") == 5 + len(sizes) + 3
    assert len(app.clients()) == 1  # requests and sessions: one TCP connection


def test_idle_connections_are_closed_when_the_client_is_next_used(
    recorded_hypercorn: tuple[RunningServer, ClientRecorder],
) -> None:
    server, app = recorded_hypercorn
    base = f"127.0.0.1:{server.port}"

    async def main() -> None:
        async with aio.Client(http2=True, idle_timeout=0.2) as c:
            ws = await c.connect(f"ws://{base}/busy")
            first = ws.connection
            await asyncio.sleep(0.3)  # longer than idle_timeout, but a session is open
            assert (await c.request("GET", f"http://{base}/")).status == 200
            assert c.connections() == [first]
            await ws.close()
            await asyncio.sleep(0.3)  # now nothing is open on it for longer than idle_timeout
            assert first.open  # no timer closes it: the next call does
            assert (await c.request("GET", f"http://{base}/")).status == 200
            assert not first.open
            assert len(c.connections()) == 1 and c.connections()[0] is not first

    run(main)
    assert len(app.clients()) == 2


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_a_pooled_connection_the_server_closed_while_idle_is_not_reused(http2: bool) -> None:
    """hypercorn closes connections idle for keep_alive_timeout; the next request must not fail."""
    config = Config()
    config.keep_alive_timeout = 0.2
    app = ClientRecorder(SessionApp())
    server = start_hypercorn(app, config=config)
    url = f"http://127.0.0.1:{server.port}/"

    async def main() -> None:
        async with aio.Client(http2=http2, idle_timeout=None) as c:
            first = await c.request("GET", url)
            assert first.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            pooled = c.connections()
            await asyncio.sleep(0.6)  # the server's keep-alive timeout passes
            assert (await c.request("GET", url)).status == 200
            assert c.connections() != pooled
            assert not pooled[0].open
            assert (await c.request("GET", url)).status == 200  # this one is reused

    try:
        run(main)
    finally:
        server.stop()
    assert len(app.clients("http")) == 2


# -- backpressure ------------------------------------------------------------------------------


def test_a_slow_consumer_does_not_stall_a_fast_one(
    session_server: tuple[RunningServer, ClientRecorder],
) -> None:
    """The server floods one session; its stream alone is throttled by HTTP/2 flow control."""
    server, app = session_server
    count, size, max_queue, window = 200, 16_384, 4, 128 * 1024
    # What a paused session may hold: its queue, then at most the stream window in flight.
    bound = max_queue + window // size + 1

    async def main() -> None:
        async with aio.Client(http2=True, http2_window_size=window) as c:
            url = f"ws://127.0.0.1:{server.port}"
            slow = await c.connect(f"{url}/flood", max_queue=max_queue, compression=False)
            fast = await c.connect(f"{url}/fast")
            await slow.send(f"go {count} {size}")  # 3.2 MiB, many times the window

            for i in range(100):
                await _exchange(fast, f"echo {i}")
                assert len(slow._state.messages) <= bound
            assert slow._state.paused  # full: its stream gets no more credit
            assert len(slow._state.messages) >= max_queue
            held = len(slow._state.messages)
            response = await c.request("GET", f"http://127.0.0.1:{server.port}/")
            assert response.status == 200  # a new stream flows too
            assert len(slow._state.messages) == held  # nothing more arrived for slow

            for index in range(count):  # everything, in order, none lost
                assert await slow.recv(TIMEOUT) == flood_message(index, size)
                assert len(slow._state.messages) <= bound
            assert not slow._state.paused
            await _exchange(slow, "slow still works")
            await _exchange(fast, "fast still works")
            await slow.close()
            await fast.close()
            assert len(c.connections()) == 1

    run(main)
    assert len(app.clients()) == 1
