"""Blocking sessions when the peer misbehaves: keepalive, close timeouts, fallbacks, reconnects.

Most peers here are scripted (``scripted_server``) so they can do what no
real server does on purpose: stop answering, break the protocol, vanish.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from mint import client
from mint.errors import (
    ConnectionClosedError,
    ConnectionClosedOK,
    TransportError,
    UpgradeFailureError,
    WebSocketError,
)
from servers.alpn_server import alpn_server, websocket_echo
from servers.frame_peer import BurstsThenClose
from servers.h2_scripted import h2_scripted_server
from servers.session_servers import (
    accept_websocket,
    client_frames,
    close_code_of,
    read_until_eof,
    server_context,
    websockets_server,
)
from servers.websockets_echo import read_request_head, scripted_server

TIMEOUT = 10.0
CLOSE, PING = 0x8, 0x9


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll a condition another thread makes true (for states no event announces)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)


def read_until_close_frame(connection: socket.socket) -> list[tuple[int, bytes]]:
    """The client's frames up to its Close (or the end of the connection)."""
    received = b""
    while not any(opcode == CLOSE for opcode, _ in client_frames(received)):
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return client_frames(received)


def close_frame(code: int, reason: str = "") -> bytes:
    payload = code.to_bytes(2, "big") + reason.encode()
    return bytes([0x88, len(payload)]) + payload


class LogFlag(logging.Handler):
    """Sets ``event`` when a record containing ``needle`` is logged (for waiting on a retry)."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.event.set()


@contextlib.contextmanager
def log_flag(needle: str) -> Iterator[LogFlag]:
    logger = logging.getLogger("mint.client")
    flag = LogFlag(needle)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(flag)
    try:
        yield flag
    finally:
        logger.removeHandler(flag)
        logger.setLevel(level)


# -- keepalive and close timeouts ------------------------------------------------------------


def test_keepalive_fails_a_session_whose_peer_stops_answering() -> None:
    received: list[bytes] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        received.append(read_until_eof(connection))  # reads everything, answers nothing

    with scripted_server(script) as port:
        ws = client.connect(f"ws://127.0.0.1:{port}/", ping_interval=0.2, ping_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(ConnectionClosedError) as dead:
            ws.recv(timeout=TIMEOUT)
        assert dead.value.reason == "keepalive_timeout"
        assert dead.value.close_code == 1006  # no Close frame came from the server
        assert time.monotonic() - started >= 0.45  # an interval, then the ping timeout (0.5 s)
        assert ws.closed and ws.close_code == 1006
        with pytest.raises(ConnectionClosedError):
            ws.send("anyone?")
        ws.close()
    frames = client_frames(received[0])
    assert [opcode for opcode, _ in frames] == [PING, CLOSE]
    assert close_code_of(frames[-1][1]) == 1011


def test_keepalive_pings_answered_keep_a_quiet_session_open() -> None:
    seen: list[Frame] = []
    with (
        scripted_server(lambda connection: websocket_echo(connection, seen)) as port,
        client.connect(f"ws://127.0.0.1:{port}/", ping_interval=0.05, ping_timeout=0.5) as ws,
    ):
        with pytest.raises(TransportError) as quiet:
            ws.recv(timeout=0.5)  # nothing to receive; pings go out meanwhile
        assert quiet.value.reason == "timeout"
        assert not ws.closed
        ws.send("alive")
        assert ws.recv(timeout=TIMEOUT) == "alive"
    pings = [frame for frame in seen if frame.opcode is Opcode.PING]
    assert len(pings) >= 4  # about ten (0.5 s / 0.05 s), not one per ping_timeout
    assert seen[-1].opcode is Opcode.CLOSE


def test_close_timeout_ends_a_session_whose_server_never_answers_the_close() -> None:
    received: list[bytes] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        received.append(read_until_eof(connection))

    close_timeout = 0.3
    with scripted_server(script) as port:
        ws = client.connect(f"ws://127.0.0.1:{port}/", close_timeout=close_timeout)
        started = time.monotonic()
        ws.close()
        elapsed = time.monotonic() - started
        assert close_timeout <= elapsed < close_timeout + 2
        assert ws.closed and ws.close_code == 1006
        with pytest.raises(ConnectionClosedError) as timed_out:
            ws.recv(timeout=TIMEOUT)
        assert timed_out.value.reason == "close_timeout"
        assert not ws.connection.open
    frames = client_frames(received[0])
    assert [opcode for opcode, _ in frames] == [CLOSE]
    assert close_code_of(frames[0][1]) == 1000


def test_close_from_another_thread_wakes_a_recv_blocked_on_the_session() -> None:
    """Thread A waits in recv (reading the socket); B's close times out and closes the socket.

    A must be woken by that, not left polling a socket nobody will ever write to.
    """

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        read_until_eof(connection)

    with scripted_server(script) as port:
        ws = client.connect(f"ws://127.0.0.1:{port}/", close_timeout=0.3)
        outcome: list[BaseException] = []

        def receive() -> None:
            try:
                ws.recv(timeout=TIMEOUT)
            except BaseException as exc:
                outcome.append(exc)

        receiver = threading.Thread(target=receive)
        receiver.start()
        wait_until(lambda: ws._shared._reading)  # A is the one polling the socket
        ws.close()
        started = time.monotonic()
        receiver.join(TIMEOUT)
        assert time.monotonic() - started < 2  # woken by the close, not by its own timeout
        [error] = outcome
        assert isinstance(error, ConnectionClosedError)
        assert error.reason == "close_timeout"


def test_open_timeout_bounds_an_unanswered_handshake() -> None:
    def script(connection: socket.socket) -> None:
        read_request_head(connection)
        read_until_eof(connection)

    with scripted_server(script) as port:
        started = time.monotonic()
        with pytest.raises(TransportError) as timed_out:
            client.connect(f"ws://127.0.0.1:{port}/", open_timeout=0.3)
        assert timed_out.value.reason == "timeout"
        assert 0.3 <= time.monotonic() - started < 2.3


# -- HTTP/2 without extended CONNECT ---------------------------------------------------------


def test_h2_without_extended_connect_falls_back_to_http1(
    tls_server_cert: trustme.LeafCert, tls_ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mint.client")
    with alpn_server(server_context(tls_server_cert)) as server:
        url = f"wss://127.0.0.1:{server.port}/chat"
        with client.connect(url, cafile=str(tls_ca_file), http2="auto") as ws:
            assert ws.http_version == "HTTP/1.1"
            # The HTTP/2 connection the fallback left empty was closed, not kept for nobody.
            assert ws._owner is not None
            assert [conn.version for conn in ws._owner.connections()] == ["HTTP/1.1"]
            ws.send("over http/1.1")
            assert ws.recv(timeout=TIMEOUT) == "over http/1.1"
        assert server.protocols == ["h2", "http/1.1"]
        fallbacks = [
            record
            for record in caplog.records
            if record.name == "mint.client" and "without extended CONNECT" in record.getMessage()
        ]
        assert len(fallbacks) == 1
        assert fallbacks[0].levelno == logging.INFO
        assert f"127.0.0.1:{server.port}" in fallbacks[0].getMessage()

        # A client remembers: its next sessions to the origin go straight to HTTP/1.1.
        caplog.clear()
        with client.Client(cafile=str(tls_ca_file)) as c:
            first, second = c.connect(url), c.connect(url)
            for ws in (first, second):
                assert ws.http_version == "HTTP/1.1"
                ws.send(b"\x01")
                assert ws.recv(timeout=TIMEOUT) == b"\x01"
        assert server.protocols == ["h2", "http/1.1", "h2", "http/1.1", "http/1.1"]
        assert len([r for r in caplog.records if "extended CONNECT" in r.getMessage()]) == 1


def test_http2_forced_without_extended_connect_raises() -> None:
    with h2_scripted_server(enable_connect_protocol=False) as port:
        with pytest.raises(WebSocketError) as refused:
            client.connect(f"ws://127.0.0.1:{port}/", http2=True)
        assert refused.value.reason == "extended_connect_disabled"
        with client.Client(http2=True) as c:  # plain requests still use that server
            assert c.request("GET", f"http://127.0.0.1:{port}/").status == 200


def test_http2_stream_end_or_reset_ends_one_session_only() -> None:
    """h2 streams that end (after a message) or are reset; a third session lives on."""
    with client.Client(http2=True) as c:
        with h2_scripted_server(enable_connect_protocol=True) as port:
            alive = c.connect(f"ws://127.0.0.1:{port}/echo")
            ended = c.connect(f"ws://127.0.0.1:{port}/end")  # 200, "bye", END_STREAM
            reset = c.connect(f"ws://127.0.0.1:{port}/reset")  # 200, half a frame, RST_STREAM
            assert alive.connection is ended.connection is reset.connection
            assert ended.recv(timeout=TIMEOUT) == "bye"  # delivered before the end
            with pytest.raises(ConnectionClosedError) as without_close:
                ended.recv(timeout=TIMEOUT)
            assert without_close.value.close_code == 1006
            assert without_close.value.reason == "abnormal_closure"
            with pytest.raises(ConnectionClosedError) as was_reset:
                reset.recv(timeout=TIMEOUT)
            assert was_reset.value.close_code == 1006
            assert was_reset.value.reason == "stream_reset"
            alive.send("still here")
            assert alive.recv(timeout=TIMEOUT) == "ok"  # the scripted server's answer
            assert len(c.connections()) == 1
        # The server dropped its connections: the open session learns it at its next call.
        with pytest.raises(ConnectionClosedError) as lost:
            alive.recv(timeout=TIMEOUT)
        assert lost.value.close_code == 1006
        assert lost.value.reason == "closed"
        assert c.connections() == []


# -- reconnecting ------------------------------------------------------------------------------


def test_reconnect_after_the_server_restarts_on_the_same_port() -> None:
    backoff = client.Backoff(initial=0.05, maximum=0.2)
    with contextlib.ExitStack() as servers, log_flag("retrying") as retried:
        first = servers.enter_context(websockets_server())
        port = first.port
        sessions = iter(client.connect(f"ws://127.0.0.1:{port}/", reconnect=True, backoff=backoff))
        ws = next(sessions)
        ws.send("first")
        assert ws.recv(timeout=TIMEOUT) == "first"

        first.drop_connections()  # no Close frame: the connection is just gone
        with pytest.raises(ConnectionClosedError) as lost:
            ws.recv(timeout=TIMEOUT)
        assert lost.value.close_code == 1006
        servers.close()  # nothing listens on the port now

        def restart_once_a_retry_happened() -> None:
            if retried.event.wait(TIMEOUT):
                servers.enter_context(websockets_server(port=port))

        restarter = threading.Thread(target=restart_once_a_retry_happened)
        restarter.start()
        try:
            again = next(sessions)  # refused, backs off, retries until the server is back
        finally:
            restarter.join(TIMEOUT)
        assert retried.event.is_set()
        assert again is not ws
        again.send("second")
        assert again.recv(timeout=TIMEOUT) == "second"
        again.close()


def test_reconnecting_closes_the_previous_session_when_asked_for_the_next() -> None:
    with websockets_server() as server:
        sessions = iter(client.connect(f"ws://127.0.0.1:{server.port}/", reconnect=True))
        first = next(sessions)
        first.send("one")
        assert first.recv(timeout=TIMEOUT) == "one"
        second = next(sessions)
        assert first.closed and first.close_code == 1000
        assert not first.connection.open
        second.send("two")
        assert second.recv(timeout=TIMEOUT) == "two"
        second.close()
    assert len(set(server.remote_ports)) == 2


def test_reconnect_retries_a_5xx_until_the_server_accepts() -> None:
    refusals: list[str] = []

    def unavailable_twice(connection: ServerConnection, request: Request) -> Response | None:
        if len(refusals) < 2:
            refusals.append(request.path)
            return connection.respond(503, "try later\n")
        return None

    with (
        websockets_server(process_request=unavailable_twice) as server,
        log_flag("retrying") as retried,
    ):
        sessions = client.connect(
            f"ws://127.0.0.1:{server.port}/svc",
            reconnect=True,
            backoff=client.Backoff(initial=0.05, maximum=0.2),
        )
        ws = next(iter(sessions))
        assert refusals == ["/svc", "/svc"]
        assert retried.event.is_set()
        ws.send("in")
        assert ws.recv(timeout=TIMEOUT) == "in"
        ws.close()


def test_reconnect_raises_a_4xx_without_retrying() -> None:
    with websockets_server() as server, log_flag("retrying") as retried:
        sessions = client.connect(
            f"ws://127.0.0.1:{server.port}/forbidden",
            reconnect=True,
            backoff=client.Backoff(initial=0.05, maximum=0.2),
        )
        with pytest.raises(UpgradeFailureError) as refused:
            next(iter(sessions))
        assert refused.value.status == 403
        assert not retried.event.is_set()


# -- the server breaks the conversation ------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(b"\x81\x84\x00\x00\x00\x00oops", id="masked-frame"),
        pytest.param(b"\x83\x00", id="reserved-opcode"),
    ],
)
def test_protocol_violation_closes_with_1002_after_the_good_messages(fault: bytes) -> None:
    received: list[list[tuple[int, bytes]]] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection, b"\x81\x05first" + b"\x82\x02\x00\x01" + fault)
        received.append(client_frames(read_until_eof(connection)))

    with scripted_server(script) as port:
        ws = client.connect(f"ws://127.0.0.1:{port}/")
        assert ws.recv(timeout=TIMEOUT) == "first"
        assert ws.recv(timeout=TIMEOUT) == b"\x00\x01"
        with pytest.raises(ConnectionClosedError) as broken:
            ws.recv(timeout=TIMEOUT)
        assert broken.value.close_code == 1006
        assert broken.value.reason == "protocol_error"
        assert ws.closed
        ws.close()
    [frames] = received
    assert [opcode for opcode, _ in frames] == [CLOSE]
    assert close_code_of(frames[0][1]) == 1002


def test_server_dropping_the_connection_mid_session() -> None:
    def script(connection: socket.socket) -> None:
        accept_websocket(connection, b"\x81\x03one")
        connection.recv(1024)  # wait for the client, answer, then the connection just ends
        connection.sendall(b"\x81\x03two")

    with scripted_server(script) as port:
        ws = client.connect(f"ws://127.0.0.1:{port}/")
        assert ws.recv(timeout=TIMEOUT) == "one"
        ws.send("now")
        assert ws.recv(timeout=TIMEOUT) == "two"
        with pytest.raises(ConnectionClosedError) as lost:
            ws.recv(timeout=TIMEOUT)
        assert lost.value.close_code == 1006
        assert (ws.closed, ws.close_code) == (True, 1006)
        ws.close()


def test_a_recv_waiting_over_http1_answers_pings_keeps_order_and_holds_back() -> None:
    """What ``recv`` does while it waits on an HTTP/1.1 tunnel (its short way, no events).

    The asyncio test's twin (``BurstsThenClose``), with a thread sending
    while ``recv`` waits outside the connection's lock: the message goes
    out, and nothing received is lost or reordered.
    """
    script = BurstsThenClose()
    with scripted_server(script) as port:
        try:
            ws = client.connect(f"ws://127.0.0.1:{port}/", max_queue=2, compression=False)
            first: list[str | bytes] = []
            reader = threading.Thread(target=lambda: first.append(ws.recv(TIMEOUT)))
            reader.start()  # waits with nothing there yet
            time.sleep(0.05)
            ws.send("from another thread while recv waits")
            script.go.set()
            reader.join(TIMEOUT)
            time.sleep(0.1)  # the queue is full now: nothing more is read
            script.second.set()
            messages = first + [ws.recv(TIMEOUT) for _ in range(4)]
            assert messages == BurstsThenClose.MESSAGES
            with pytest.raises(ConnectionClosedOK):
                ws.recv(TIMEOUT)
            ws.close()
        finally:
            script.release()
    frames = client_frames(script.received)
    assert frames[0] == (0x1, b"from another thread while recv waits")
    assert frames[1:] == [(0xA, b"beat"), (CLOSE, b"\x03\xe8")]


def test_messages_before_a_dropped_connection_are_returned_first() -> None:
    def script(connection: socket.socket) -> None:
        accept_websocket(connection, b"\x81\x01a" + b"\x81\x01b" + b"\x82\x01c")

    with scripted_server(script) as port:
        ws = client.connect(f"ws://127.0.0.1:{port}/")
        received: list[str | bytes] = []
        with pytest.raises(ConnectionClosedError) as lost:
            for message in ws:  # an abnormal end is raised, not a quiet stop
                received.append(message)
        assert received == ["a", "b", b"c"]
        assert lost.value.close_code == 1006


@pytest.mark.parametrize(
    ("code", "raised"), [(1000, ConnectionClosedOK), (1011, ConnectionClosedError)]
)
def test_server_close_after_messages_in_one_segment(
    code: int, raised: type[client.ConnectionClosed]
) -> None:
    replies: list[list[tuple[int, bytes]]] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection, b"\x81\x01a" + b"\x81\x01b" + close_frame(code, "done"))
        replies.append(read_until_close_frame(connection))  # then the server closes TCP first

    with scripted_server(script) as port:
        ws = client.connect(f"ws://127.0.0.1:{port}/")
        assert ws.recv(timeout=TIMEOUT) == "a"
        assert ws.recv(timeout=TIMEOUT) == "b"
        with pytest.raises(raised) as closed:
            ws.recv(timeout=TIMEOUT)
        assert (closed.value.close_code, closed.value.close_reason) == (code, "done")
        assert (ws.close_code, ws.close_reason) == (code, "done")
        ws.close()
    [frames] = replies
    assert [opcode for opcode, _ in frames] == [CLOSE]
    assert close_code_of(frames[0][1]) == code  # the code is echoed (RFC 6455 5.5.1)
