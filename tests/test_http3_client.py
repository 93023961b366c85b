"""The session layer over HTTP/3: ``http3=True``, Alt-Svc remembered, bounded fallback to TCP.

Servers on 127.0.0.1: the aioquic HTTP/3 echo (``servers.h3_server``) and,
for the TCP side, a ``websockets`` echo over TLS that may announce the
HTTP/3 server in ``Alt-Svc``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from mint import client
from mint.client import aio as client_aio
from mint.client.altsvc import BROKEN_FOR, AltService, AltSvcMemory, parse_alt_svc
from mint.errors import WebSocketError
from mint.http.http3 import DEFAULT_STREAM_WINDOW
from servers.h3_server import FLOOD_SIZE, RunningH3Server, h3_echo_server
from servers.websockets_echo import RunningServer, websockets_echo_server

T = TypeVar("T")
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def h3(tls_cert_files: tuple[str, str]) -> Iterator[RunningH3Server]:
    with h3_echo_server(*tls_cert_files) as running:
        yield running


@pytest.fixture(scope="module")
def announcing_wss(
    server_ssl_context: ssl.SSLContext, h3: RunningH3Server
) -> Iterator[RunningServer]:
    """A TLS WebSocket echo whose answers say ``Alt-Svc: h3=":<the HTTP/3 server's port>"``."""

    def announce(
        connection: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        response.headers["Alt-Svc"] = f'h3=":{h3.port}"; ma=600, h2=":443"'
        return None

    with websockets_echo_server(ssl_context=server_ssl_context, process_response=announce) as srv:
        yield srv


@pytest.fixture(scope="module")
def plain_wss(server_ssl_context: ssl.SSLContext) -> Iterator[RunningServer]:
    with websockets_echo_server(ssl_context=server_ssl_context) as srv:
        yield srv


# -- Alt-Svc, without I/O -------------------------------------------------------------------------


def test_parse_alt_svc() -> None:
    assert parse_alt_svc(['h3=":443"; ma=86400']) == [AltService(443, 86400.0)]
    assert parse_alt_svc(['h2=":443", h3=":8443"; ma=60; persist=1']) == [AltService(8443, 60.0)]
    assert parse_alt_svc(['h3="other.example:443"']) == []  # another host: not followed
    assert parse_alt_svc(['h3=":0", h3=":x", h3']) == []
    assert parse_alt_svc(["clear"]) is None


def test_alt_svc_memory_expires_and_remembers_failures() -> None:
    origin = ("https", "example.com", 443)
    memory = AltSvcMemory()
    assert memory.http3_port(origin, "auto", 0.0) is None
    assert memory.http3_port(origin, True, 0.0) == 443  # True tries the origin's own port
    memory.learn(origin, [("alt-svc", 'h3=":8443"; ma=10')], 0.0)
    assert memory.http3_port(origin, "auto", 5.0) == 8443
    assert memory.http3_port(origin, False, 5.0) is None
    assert memory.http3_port(origin, "auto", 10.0) is None  # expired
    memory.learn(origin, [("Alt-Svc", 'h3=":8443"')], 20.0)
    memory.mark_broken(origin, 20.0)
    assert memory.http3_port(origin, "auto", 21.0) is None
    assert memory.http3_port(origin, "auto", 20.0 + BROKEN_FOR) == 8443
    memory.learn(origin, [("alt-svc", "clear")], 30.0)
    assert memory.http3_port(origin, "auto", 31.0) is None
    memory.learn(("http", "example.com", 80), [("alt-svc", 'h3=":443"')], 0.0)
    assert memory.http3_port(("http", "example.com", 80), "auto", 1.0) is None


def test_options_are_checked_before_io(client_ssl_context: ssl.SSLContext) -> None:
    with pytest.raises(WebSocketError) as bad:
        client.Client(http3="sometimes")  # type: ignore[arg-type]
    assert bad.value.reason == "invalid_argument"
    with pytest.raises(WebSocketError, match="cafile"):
        client.Client(http3=True, ssl_context=client_ssl_context)
    with pytest.raises(WebSocketError):
        client.Client(http3=True, http3_timeout=0)


# -- blocking -----------------------------------------------------------------------------------


def test_http3_true(h3: RunningH3Server, tls_ca_file: Path) -> None:
    url = f"wss://127.0.0.1:{h3.port}/echo"
    with client.connect(url, http3=True, cafile=tls_ca_file, proxy=None) as ws:
        assert ws.http_version == "HTTP/3"
        assert ws.connection.version == "HTTP/3"
        ws.send("héllo")
        assert ws.recv(timeout=TIMEOUT) == "héllo"
        big = bytes(range(256)) * 4096
        ws.send(big)
        assert ws.recv(timeout=TIMEOUT) == big
        assert ws.ping(timeout=TIMEOUT) >= 0
    assert h3.state.close_codes[-1] == 1000


def test_a_slow_consumer_does_not_stall_a_fast_one(h3: RunningH3Server, tls_ca_file: Path) -> None:
    """The server floods one session; only its stream is held back (QUIC stream credit)."""
    count, max_queue = 2048, 4  # 8 MiB
    # A paused session holds its queue, then at most what aioquic's stream window let in:
    # twice the initial window, since aioquic doubles a window once half of it is used.
    bound = max_queue + 2 * DEFAULT_STREAM_WINDOW // FLOOD_SIZE + 1
    url = f"wss://127.0.0.1:{h3.port}"
    with client.Client(http3=True, cafile=tls_ca_file, proxy=None) as pool:
        slow = pool.connect(f"{url}/flood/{count}", max_queue=max_queue, compression=False)
        fast = pool.connect(f"{url}/echo")
        assert len(pool.connections()) == 1
        for i in range(200):  # the fast session's reads take in the slow one's data too
            fast.send(f"echo {i}")
            assert fast.recv(timeout=TIMEOUT) == f"echo {i}"
            assert len(slow._state.messages) <= bound
        assert slow._state.paused
        held = len(slow._state.messages)
        for i in range(20):
            fast.send(f"more {i}")
            assert fast.recv(timeout=TIMEOUT) == f"more {i}"
        assert len(slow._state.messages) == held  # no credit, nothing more arrived
        for index in range(count):  # everything, in order, none lost
            message = slow.recv(timeout=TIMEOUT)
            assert isinstance(message, bytes)
            assert (len(message), message[:4]) == (FLOOD_SIZE, index.to_bytes(4, "big"))
            assert len(slow._state.messages) <= bound
        assert not slow._state.paused
        slow.send("still works")
        assert slow.recv(timeout=TIMEOUT) == "still works"
        slow.close()
        fast.close()


def test_goaway_sends_later_sessions_to_a_new_connection(
    h3: RunningH3Server, tls_ca_file: Path
) -> None:
    url = f"wss://127.0.0.1:{h3.port}"
    before = h3.state.connections
    with client.Client(http3=True, cafile=tls_ca_file, proxy=None) as pool:
        leaving = pool.connect(f"{url}/goaway")
        leaving.send("one")
        assert leaving.recv(timeout=TIMEOUT) == "one"  # the GOAWAY came with the answer
        fresh = pool.connect(f"{url}/echo")
        assert fresh.connection is not leaving.connection
        assert h3.state.connections == before + 2
        fresh.send("two")
        assert fresh.recv(timeout=TIMEOUT) == "two"
        leaving.send("three")  # the session the server did accept goes on
        assert leaving.recv(timeout=TIMEOUT) == "three"
        leaving.close()
        fresh.close()


def test_many_sessions_share_one_quic_connection(h3: RunningH3Server, tls_ca_file: Path) -> None:
    url = f"wss://127.0.0.1:{h3.port}/echo"
    before = h3.state.connections
    with client.Client(http3=True, cafile=tls_ca_file, proxy=None) as pool:
        sessions = [pool.connect(url) for _ in range(100)]
        assert len(pool.connections()) == 1
        for number, ws in enumerate(sessions):
            ws.send(f"s{number}")
        for number, ws in enumerate(sessions):
            assert ws.recv(timeout=TIMEOUT) == f"s{number}"
        for ws in sessions:
            ws.close()
    assert h3.state.connections == before + 1


def test_alt_svc_moves_later_sessions_to_http3(
    announcing_wss: RunningServer, h3: RunningH3Server, tls_ca_file: Path
) -> None:
    url = f"wss://127.0.0.1:{announcing_wss.port}/echo"
    with client.Client(http3="auto", cafile=tls_ca_file, proxy=None) as pool:
        with pool.connect(url) as first:
            assert first.http_version == "HTTP/1.1"  # nothing known yet: TCP
            assert ("alt-svc", f'h3=":{h3.port}"; ma=600, h2=":443"') in [
                (name.lower(), value) for name, value in first.response_headers
            ]
        with pool.connect(url) as second:
            assert second.http_version == "HTTP/3"
            assert second.connection.port == h3.port
            second.send("over quic")
            assert second.recv(timeout=TIMEOUT) == "over quic"
    with client.Client(cafile=tls_ca_file, proxy=None) as never:  # http3=False: TCP only
        with never.connect(url):
            pass
        with never.connect(url) as again:
            assert again.http_version == "HTTP/1.1"


def test_blocked_udp_falls_back_within_the_bound(
    plain_wss: RunningServer, tls_ca_file: Path
) -> None:
    url = f"wss://127.0.0.1:{plain_wss.port}/echo"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blackhole:
        try:
            blackhole.bind(("127.0.0.1", plain_wss.port))  # UDP swallowed, never answered
        except OSError:
            pytest.skip("the UDP port twin of the TCP port is taken")
        with client.Client(http3=True, http3_timeout=0.5, cafile=tls_ca_file, proxy=None) as pool:
            started = time.monotonic()
            with pool.connect(url) as ws:
                assert ws.http_version == "HTTP/1.1"
                ws.send("tcp")
                assert ws.recv(timeout=TIMEOUT) == "tcp"
            assert 0.5 <= time.monotonic() - started < 5
            started = time.monotonic()
            with pool.connect(url) as ws:  # the failure is remembered: no second wait
                assert ws.http_version == "HTTP/1.1"
            assert time.monotonic() - started < 0.5
        assert blackhole.recv(4096)  # the QUIC attempt did reach the port


def test_nothing_listening_on_udp_falls_back_at_once(
    plain_wss: RunningServer, tls_ca_file: Path
) -> None:
    url = f"wss://127.0.0.1:{plain_wss.port}/echo"
    started = time.monotonic()
    with client.connect(url, http3=True, http3_timeout=5.0, cafile=tls_ca_file, proxy=None) as ws:
        assert ws.http_version == "HTTP/1.1"
    assert time.monotonic() - started < 4  # ICMP port unreachable, not the 5 s bound


def test_a_connection_that_timed_out_idle_is_not_reused(
    tls_cert_files: tuple[str, str], tls_ca_file: Path
) -> None:
    with h3_echo_server(*tls_cert_files, idle_timeout=1.0) as quick:
        url = f"wss://127.0.0.1:{quick.port}/echo"
        with client.Client(http3=True, cafile=tls_ca_file, proxy=None) as pool:
            with pool.connect(url) as ws:
                ws.send("one")
                assert ws.recv(timeout=TIMEOUT) == "one"
            time.sleep(1.5)  # nobody reads: the QUIC idle timeout passes unseen
            started = time.monotonic()
            with pool.connect(url) as ws:
                ws.send("two")
                assert ws.recv(timeout=TIMEOUT) == "two"
            assert time.monotonic() - started < 3
        assert quick.state.connections == 2


# -- asyncio -----------------------------------------------------------------------------------


def run(test: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(test(), 60)

    return asyncio.run(bounded())


def test_async_http3_true(h3: RunningH3Server, tls_ca_file: Path) -> None:
    url = f"wss://127.0.0.1:{h3.port}/echo"

    async def scenario() -> None:
        async with client_aio.Client(http3=True, cafile=tls_ca_file, proxy=None) as pool:
            sessions = [await pool.connect(url) for _ in range(20)]
            assert len(pool.connections()) == 1
            for number, ws in enumerate(sessions):
                await ws.send(f"a{number}")
            for number, ws in enumerate(sessions):
                assert await ws.recv(timeout=TIMEOUT) == f"a{number}"
            assert sessions[0].http_version == "HTTP/3"
            assert await sessions[0].ping(timeout=TIMEOUT) >= 0
            for ws in sessions:
                await ws.close()

    run(scenario)


def test_async_alt_svc_and_fallback(
    announcing_wss: RunningServer, plain_wss: RunningServer, tls_ca_file: Path
) -> None:
    async def scenario() -> None:
        url = f"wss://127.0.0.1:{announcing_wss.port}/echo"
        async with client_aio.Client(http3="auto", cafile=tls_ca_file, proxy=None) as pool:
            async with await pool.connect(url) as first:
                assert first.http_version == "HTTP/1.1"
            async with await pool.connect(url) as second:
                assert second.http_version == "HTTP/3"
                await second.send(b"\x00quic")
                assert await second.recv(timeout=TIMEOUT) == b"\x00quic"
        fallback = f"wss://127.0.0.1:{plain_wss.port}/echo"
        async with (
            client_aio.Client(
                http3=True, http3_timeout=2.0, cafile=tls_ca_file, proxy=None
            ) as pool,
            await pool.connect(fallback) as ws,
        ):
            assert ws.http_version == "HTTP/1.1"

    run(scenario)


def test_async_slow_consumer_is_held_back(h3: RunningH3Server, tls_ca_file: Path) -> None:
    count, max_queue = 2048, 4  # 8 MiB
    bound = max_queue + 2 * DEFAULT_STREAM_WINDOW // FLOOD_SIZE + 1  # as in the blocking test
    url = f"wss://127.0.0.1:{h3.port}"

    async def main() -> None:
        async with client_aio.Client(http3=True, cafile=tls_ca_file, proxy=None) as pool:
            slow = await pool.connect(f"{url}/flood/{count}", max_queue=max_queue)
            fast = await pool.connect(f"{url}/echo")
            for i in range(200):
                await fast.send(f"echo {i}")
                assert await fast.recv(timeout=TIMEOUT) == f"echo {i}"
                assert len(slow._state.messages) <= bound
            assert slow._state.paused
            for index in range(count):
                message = await slow.recv(timeout=TIMEOUT)
                assert isinstance(message, bytes)
                assert message[:4] == index.to_bytes(4, "big")
                assert len(slow._state.messages) <= bound
            assert not slow._state.paused
            await slow.close()
            await fast.close()

    run(main)
