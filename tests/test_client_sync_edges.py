"""Blocking sessions at their edges: polls, interrupted and concurrent sends, windows, stale pools.

Each case once broke, or could break, in a way the plain conversations of
``test_client_sync`` do not show: a zero timeout that never looked, a
fragmented send whose missing tail swallowed the next message, a sender held
by HTTP/2 flow control that nobody woke, a pooled connection the server had
closed while it sat idle.  Real servers on 127.0.0.1 throughout.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypercorn.config import Config

from mint import client
from mint.client.options import ClientKwargs, ConnectKwargs
from mint.errors import ConnectionClosedError, ConnectionClosedOK, TransportError, WebSocketError
from servers import RunningServer, start_hypercorn
from servers.asgi_apps import ClientRecorder, SinkApp
from servers.client_endpoints import Endpoint
from servers.session_servers import SessionApp

TIMEOUT = 10.0


def exchange(ws: client.Session, message: str) -> None:
    ws.send(message)
    assert ws.recv(timeout=TIMEOUT) == message


def uncompressed(endpoint: Endpoint) -> ConnectKwargs:
    return {**endpoint.options, "compression": False}


# -- receiving -------------------------------------------------------------------------------


def test_recv_with_a_zero_timeout_is_a_poll(endpoint: Endpoint) -> None:
    """``recv(timeout=0)`` takes what has arrived; it does not time out without looking."""
    with client.connect(endpoint.url("/poll"), **endpoint.options) as ws:
        with pytest.raises(TransportError) as empty:
            ws.recv(timeout=0)
        assert empty.value.reason == "timeout"
        ws.send("polled")
        for _ in range(int(TIMEOUT / 0.01)):  # nobody else reads: only polls bring the echo in
            try:
                message = ws.recv(timeout=0)
                break
            except TransportError as exc:
                assert exc.reason == "timeout"
                time.sleep(0.01)
        else:
            pytest.fail("recv(timeout=0) never took in the echo")
        assert message == "polled"
        assert not ws.closed


def test_two_threads_receiving_on_one_session_share_its_messages(endpoint: Endpoint) -> None:
    with client.connect(endpoint.url("/pair"), **endpoint.options) as ws:
        got: list[list[str]] = [[], []]

        def take(into: list[str]) -> None:
            for _ in range(10):
                into.append(str(ws.recv(timeout=TIMEOUT)))

        threads = [threading.Thread(target=take, args=(part,)) for part in got]
        for thread in threads:
            thread.start()
        for k in range(20):
            ws.send(f"m{k:02d}")
        for thread in threads:
            thread.join(TIMEOUT * 2)
        assert sorted(got[0] + got[1]) == [f"m{k:02d}" for k in range(20)]
        for part in got:  # each thread still sees its share in order
            assert part == sorted(part)


# -- sending ---------------------------------------------------------------------------------


def test_a_fragmented_send_that_stops_half_way_fails_the_session(endpoint: Endpoint) -> None:
    """Its missing fragments would otherwise swallow the next message (as their continuation)."""

    def failing_source() -> Iterator[str]:
        yield "first "
        yield "second "
        raise ValueError("the source broke")

    with client.connect(endpoint.url("/broken-source"), **endpoint.options) as ws:
        exchange(ws, "before")
        with pytest.raises(ValueError, match="the source broke"):
            ws.send(failing_source())
        assert ws.closed and ws.close_code == 1006
        with pytest.raises(ConnectionClosedError) as failed:
            ws.send("next")
        assert failed.value.reason == "send_interrupted"
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=TIMEOUT)

    with client.connect(endpoint.url("/mixed-pieces"), **endpoint.options) as ws:
        with pytest.raises(WebSocketError) as mixed:
            ws.send(["text", b"then bytes"])  # the first piece went out as text
        assert mixed.value.reason == "invalid_argument"
        assert ws.closed

    # Failing before the first fragment sends nothing: the session goes on.
    with client.connect(endpoint.url("/early-failure"), **endpoint.options) as ws:
        with pytest.raises(WebSocketError):
            ws.send([1, 2])  # type: ignore[list-item]
        assert not ws.closed
        exchange(ws, "unharmed")


def test_sends_from_many_threads_never_interleave(endpoint: Endpoint) -> None:
    """Fragmented messages large enough to wait for the socket or window, small ones beside."""
    piece = 256 * 1024
    messages: list[str | bytes | list[bytes]] = [
        [b"A" * piece] * 4,
        "small one",
        [b"B" * piece] * 3,
        "small two",
        b"small three",
        [bytes([k]) * 1000 for k in range(50)],
    ]
    expected = {m if isinstance(m, (str, bytes)) else b"".join(m) for m in messages}
    with client.connect(endpoint.url("/many"), **uncompressed(endpoint)) as ws:
        errors: list[BaseException] = []

        def send(message: str | bytes | list[bytes]) -> None:
            try:
                ws.send(message)
            except BaseException as exc:  # reported below, with the received set
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(m,)) for m in messages]
        for thread in threads:
            thread.start()
        received = {ws.recv(timeout=TIMEOUT) for _ in messages}
        for thread in threads:
            thread.join(TIMEOUT)
        assert errors == []
        assert received == expected


# -- a send held back by HTTP/2 flow control ---------------------------------------------------


@pytest.mark.parametrize("transport", ["h2c", "h2-tls"])
@pytest.mark.parametrize("other_reader", [False, True], ids=["alone", "beside-a-reader"])
def test_a_send_beyond_the_window_returns_once_the_server_took_it(
    sink_servers: tuple[SinkApp, RunningServer, RunningServer],
    tls_ca_file: Path,
    transport: str,
    other_reader: bool,
) -> None:
    """The server answers nothing while it takes the bytes: only its WINDOW_UPDATEs come back.

    ``beside-a-reader``: another thread's ``recv`` reads the connection
    meanwhile, without a timeout, so the sender is not the reader.
    """
    app, h2c, h2_tls = sink_servers
    options: ClientKwargs
    if transport == "h2c":
        base, options = f"ws://127.0.0.1:{h2c.port}", {"http2": True}
    else:
        base, options = f"wss://127.0.0.1:{h2_tls.port}", {"cafile": str(tls_ca_file)}
    path = f"/sync-{transport}-{other_reader}"
    size = 3 * 2**20  # about fifty of hypercorn's 64 KiB stream windows

    with client.Client(**options) as c:
        ws = c.connect(base + path, compression=False, ping_interval=None)
        assert ws.http_version == "HTTP/2"
        waiting = c.connect(base + "/waiting", ping_interval=None)
        outcome: list[BaseException | str | bytes] = []
        reader = threading.Thread(
            target=lambda: outcome.append(_recv_or_error(waiting)), daemon=True
        )
        if other_reader:
            reader.start()
            deadline = time.monotonic() + TIMEOUT
            while not ws._shared._reading:  # it reads for everyone, with no deadline
                assert time.monotonic() < deadline
                time.sleep(0.001)
        sent = threading.Thread(target=ws.send, args=(os.urandom(size),), daemon=True)
        sent.start()
        sent.join(TIMEOUT)
        assert not sent.is_alive(), "the send never returned"
        assert ws.connection.send_window(ws._state.ref) > 0  # nothing left queued
        ws.send("count")
        assert ws.recv(timeout=TIMEOUT) == str(size)
        ws.close()
        if other_reader:
            assert outcome == []  # still waiting: nothing came for it
            waiting.close()
            reader.join(TIMEOUT)
            assert len(outcome) == 1 and isinstance(outcome[0], ConnectionClosedOK)
    assert app.received[path] == size


def _recv_or_error(ws: client.Session) -> BaseException | str | bytes:
    try:
        return ws.recv()
    except BaseException as exc:
        return exc


# -- the pool --------------------------------------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
def test_a_pooled_connection_the_server_closed_while_idle_is_not_reused(http2: bool) -> None:
    """hypercorn closes connections idle for keep_alive_timeout; the next request must not fail."""
    config = Config()
    config.keep_alive_timeout = 0.2
    app = ClientRecorder(SessionApp())
    server = start_hypercorn(app, config=config)
    url = f"http://127.0.0.1:{server.port}/"
    try:
        with client.Client(http2=http2, idle_timeout=None) as c:
            first = c.request("GET", url)
            assert first.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            pooled = c.connections()
            time.sleep(0.6)  # the server's keep-alive timeout passes
            assert c.request("GET", url).status == 200
            assert c.connections() != pooled
            assert not pooled[0].open
            assert c.request("GET", url).status == 200  # this one is reused
            ws = c.connect(f"ws://127.0.0.1:{server.port}/echo", http2=http2)
            exchange(ws, "after the keep-alive timeout")
            ws.close()
    finally:
        server.stop()
    assert len(app.clients("http")) == 2
