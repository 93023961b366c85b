"""``mint.client.Client``: one HTTP/2 connection per origin, shared by threads, with backpressure.

Every count of connections is checked on both sides: ``Client.connections()``
and the client ports the server saw (``SessionApp.clients``).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypercorn.config import Config

from mint import client
from mint.errors import ConnectionClosedError, ConnectionClosedOK, TransportError
from servers import RunningServer, start_hypercorn
from servers.session_servers import (
    SessionApp,
    WebsocketsServer,
    flood_message,
    websockets_server,
)

TIMEOUT = 10.0


@pytest.fixture
def app() -> SessionApp:
    return SessionApp()


@pytest.fixture
def h2c(app: SessionApp) -> Iterator[RunningServer]:
    """hypercorn with a fresh app per test, so its record of client ports is the test's own."""
    server = start_hypercorn(app)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ws_server() -> Iterator[WebsocketsServer]:
    with websockets_server() as server:
        yield server


def echo(ws: client.Session, message: str) -> None:
    ws.send(message)
    assert ws.recv(timeout=TIMEOUT) == message


def test_sessions_and_requests_to_one_origin_share_one_http2_connection(
    h2c: RunningServer, app: SessionApp
) -> None:
    base = f"127.0.0.1:{h2c.port}"
    with client.Client(http2=True) as c:
        a = c.connect(f"ws://{base}/a")
        b = c.connect(f"ws://{base}/b")
        response = c.request("GET", f"http://{base}/status")
        assert (response.status, response.body, response.http_version) == (200, b"hello", "HTTP/2")
        assert response.header("X-HTTP-Version") == "2"
        assert len(c.connections()) == 1
        assert a.connection is b.connection is c.connections()[0]
        echo(a, "to a")
        echo(b, "to b")
        a.send("a again")
        b.send("b again")
        assert b.recv(timeout=TIMEOUT) == "b again"  # each stream's messages stay its own
        assert a.recv(timeout=TIMEOUT) == "a again"
        a.close()
        echo(b, "b lives on")  # one session's close leaves the other and the connection alone
        assert c.request("GET", f"http://{base}/").status == 200
        assert len(c.connections()) == 1
        b.close()
    assert len(app.clients) == 4  # two sessions and two requests...
    assert len(app.client_ports()) == 1  # ...over one TCP connection


def test_a_full_connection_sends_the_next_session_to_a_second_one(app: SessionApp) -> None:
    config = Config()
    config.h2_max_concurrent_streams = 2
    server = start_hypercorn(app, config=config)
    try:
        url = f"ws://127.0.0.1:{server.port}/"
        with client.Client(http2=True) as c:
            first, second = c.connect(url), c.connect(url)
            assert first.connection is second.connection
            assert first.connection.server_settings["max_concurrent_streams"] == 2
            third = c.connect(url)
            assert third.connection is not first.connection
            assert len(c.connections()) == 2
            for ws, text in ((first, "1"), (second, "2"), (third, "3")):
                echo(ws, text)
            first.close()  # room again on the first connection
            fourth = c.connect(url)
            assert fourth.connection is second.connection
            echo(fourth, "4")
            assert len(c.connections()) == 2
        assert len(app.client_ports()) == 2
    finally:
        server.stop()


def test_a_response_over_max_body_is_refused_and_the_connection_kept(h2c: RunningServer) -> None:
    url = f"http://127.0.0.1:{h2c.port}/"
    with client.Client(http2=True) as c:
        with pytest.raises(TransportError) as too_big:
            c.request("GET", url, max_body=3)  # the body is "hello"
        assert too_big.value.reason == "body_too_large"
        [conn] = c.connections()
        assert c.request("GET", url, max_body=5).body == b"hello"
        assert c.connections() == [conn]  # only that stream was cancelled


def test_idle_connections_are_closed_after_idle_timeout(h2c: RunningServer) -> None:
    base = f"127.0.0.1:{h2c.port}"
    idle_timeout = 0.2
    with client.Client(http2=True, idle_timeout=idle_timeout) as c:
        ws = c.connect(f"ws://{base}/")
        [busy] = c.connections()
        time.sleep(idle_timeout * 1.5)  # time passing is what is tested here
        assert c.request("GET", f"http://{base}/").status == 200
        assert c.connections() == [busy]  # a session is open on it: not idle
        ws.close()
        assert c.connections() == [busy]  # idle since now: kept until idle_timeout passed
        time.sleep(idle_timeout * 1.5)
        assert busy.open  # no timer runs: it is closed by the next call...
        assert c.request("GET", f"http://{base}/").status == 200
        assert not busy.open  # ...which closed it and opened another
        [fresh] = c.connections()
        assert fresh is not busy


def test_http1_sessions_each_get_their_own_connection(ws_server: WebsocketsServer) -> None:
    url = f"ws://127.0.0.1:{ws_server.port}/"
    seen_before = len(ws_server.remote_ports)
    with client.Client() as c:
        a, b = c.connect(url), c.connect(url)
        assert a.http_version == b.http_version == "HTTP/1.1"
        assert a.connection is not b.connection
        assert len(c.connections()) == 2
        echo(a, "a")
        echo(b, "b")
        a.close()
        assert not a.connection.open
        assert c.connections() == [b.connection]
        echo(b, "b again")
    ports = ws_server.remote_ports[seen_before:]
    assert len(ports) == len(set(ports)) == 2


def test_http1_requests_reuse_an_idle_connection(h2c: RunningServer, app: SessionApp) -> None:
    url = f"http://127.0.0.1:{h2c.port}/"
    with client.Client(http2=False) as c:
        for _ in range(3):
            response = c.request("GET", url)
            assert (response.status, response.body, response.http_version) == (
                200,
                b"hello",
                "HTTP/1.1",
            )
        assert len(c.connections()) == 1
        ws = c.connect(f"ws://127.0.0.1:{h2c.port}/")  # the idle one can carry the upgrade
        assert ws.http_version == "HTTP/1.1"
        echo(ws, "over the reused connection")
        assert c.request("GET", url).status == 200  # the tunnel keeps its connection: a new one
        assert len(c.connections()) == 2
        ws.close()
    assert len(app.clients) == 5
    assert len(app.client_ports()) == 2


def test_threads_never_share_an_http1_connection_mid_exchange(
    h2c: RunningServer, app: SessionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent requests over HTTP/1.1: each connection carries one exchange at a time.

    The pause between picking a pooled connection and sending on it is
    widened, so a second thread picking the same idle connection meanwhile
    (h11 then refuses the second request) would show every time.
    """
    exchange = client.Client._exchange

    def slow_exchange(self: client.Client, *args: Any) -> client.Response:
        time.sleep(0.01)
        return exchange(self, *args)

    monkeypatch.setattr(client.Client, "_exchange", slow_exchange)
    url = f"http://127.0.0.1:{h2c.port}/"
    threads, per_thread = 8, 5
    with client.Client(http2=False) as c:
        assert c.request("GET", url).status == 200  # one idle connection for all to want

        def worker(_: int) -> list[bytes]:
            return [c.request("GET", url, timeout=TIMEOUT).body for _ in range(per_thread)]

        with ThreadPoolExecutor(threads) as pool:
            bodies = [body for result in pool.map(worker, range(threads)) for body in result]
        assert bodies == [b"hello"] * threads * per_thread
        assert 1 <= len(c.connections()) <= threads
    assert len(app.clients) == threads * per_thread + 1


def test_client_close_ends_its_sessions(h2c: RunningServer) -> None:
    c = client.Client(http2=True)
    ws = c.connect(f"ws://127.0.0.1:{h2c.port}/")
    echo(ws, "hi")
    c.close()
    with pytest.raises(ConnectionClosedError) as closed:
        ws.recv(timeout=TIMEOUT)
    assert closed.value.reason == "client_closed"
    assert c.connections() == []
    with pytest.raises(client.ConnectionClosed):
        ws.send("after")


def test_a_hundred_sessions_from_ten_threads_on_one_http2_connection(
    h2c: RunningServer, app: SessionApp
) -> None:
    threads, per_thread, rounds = 10, 10, 5
    url = f"ws://127.0.0.1:{h2c.port}/"

    def worker(c: client.Client, number: int) -> int:
        sessions = [c.connect(url) for _ in range(per_thread)]
        checked = 0
        for round_ in range(rounds):
            for index, ws in enumerate(sessions):  # every session has one message in flight
                ws.send(f"{number}/{index}/{round_}")
            for index, ws in enumerate(sessions):
                payload = struct.pack("!III", number, index, round_)
                ws.send(payload)
            for index, ws in enumerate(sessions):
                assert ws.recv(timeout=TIMEOUT) == f"{number}/{index}/{round_}"
                assert ws.recv(timeout=TIMEOUT) == struct.pack("!III", number, index, round_)
                checked += 2
        for ws in sessions:
            ws.close()
            assert ws.close_code == 1000
        return checked

    with client.Client(http2=True) as c, ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(worker, c, number) for number in range(threads)]
        counts = [future.result(timeout=60) for future in futures]
        assert len(c.connections()) == 1
    assert counts == [per_thread * rounds * 2] * threads
    assert len(app.clients) == threads * per_thread
    assert len(app.client_ports()) == 1


def test_a_slow_consumer_does_not_stall_a_fast_one_on_one_connection(h2c: RunningServer) -> None:
    """Session A is flooded and never reads; session B's round trips all complete meanwhile.

    A's queue stops at ``max_queue`` plus what its stream window let in (its
    credit is withheld while it is full); then A reads every message, in order.
    """
    count, size, max_queue, window = 200, 16 * 1024, 4, 64 * 1024
    url = f"ws://127.0.0.1:{h2c.port}"
    with client.Client(http2=True, http2_window_size=window) as c:
        slow = c.connect(f"{url}/flood", max_queue=max_queue, compression=False)
        fast = c.connect(f"{url}/echo")
        assert slow.connection is fast.connection
        slow.send(f"go {count} {size}")
        bound = max_queue + window // size + 1
        most_queued = 0
        for round_ in range(50):
            echo(fast, f"round {round_}")
            most_queued = max(most_queued, len(slow._state.messages))
            assert len(slow._state.messages) <= bound
        assert slow._state.paused  # A filled its queue while B's reads went on
        assert most_queued >= max_queue
        for index in range(count):
            assert slow.recv(timeout=TIMEOUT) == flood_message(index, size)
            assert len(slow._state.messages) <= bound
        assert not slow._state.paused
        echo(slow, "after the flood")
        echo(fast, "still fine")


@pytest.mark.parametrize("transport", ["http1", "http2"])
def test_close_finishes_while_the_server_keeps_sending(
    transport: str, request: pytest.FixtureRequest
) -> None:
    """A full session's close still reads the server's Close, queued behind more data.

    Backpressure must not hold back the answer close() waits for: the close
    completes with 1000 well before close_timeout, and every message that
    came before the server's Close is still returned, in order.
    """
    count, size, max_queue = 100, 16 * 1024, 4
    if transport == "http1":
        url = f"ws://127.0.0.1:{request.getfixturevalue('ws_server').port}/"
    else:
        url = f"ws://127.0.0.1:{request.getfixturevalue('h2c').port}/flood"
    close_timeout = 5.0
    with client.Client(http2=transport == "http2", http2_window_size=64 * 1024) as c:
        ws = c.connect(url, max_queue=max_queue, compression=False, close_timeout=close_timeout)
        ws.send(f"go {count} {size}")
        assert ws.recv(timeout=TIMEOUT) == flood_message(0, size)  # the flood has started
        started = time.monotonic()
        ws.close()
        assert time.monotonic() - started < close_timeout / 2
        assert ws.close_code == 1000
        received = []
        with pytest.raises(ConnectionClosedOK):
            while True:
                received.append(ws.recv(timeout=TIMEOUT))
        assert received == [flood_message(index, size) for index in range(1, len(received) + 1)]


def test_shared_connection_is_read_by_whichever_thread_waits(h2c: RunningServer) -> None:
    """One thread blocks in recv on A; B's messages reach a thread waiting on B meanwhile."""
    url = f"ws://127.0.0.1:{h2c.port}/"
    with client.Client(http2=True) as c:
        a, b = c.connect(url), c.connect(url)
        got: list[str | bytes] = []
        waiting = threading.Thread(target=lambda: got.append(a.recv(timeout=TIMEOUT)))
        waiting.start()
        for n in range(20):
            echo(b, f"b{n}")
        a.send("finally a")
        waiting.join(TIMEOUT)
        assert not waiting.is_alive()
        assert got == ["finally a"]
