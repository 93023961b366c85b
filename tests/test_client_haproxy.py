"""Sessions through HAProxy 2.6, a real RFC 8441 front, to a websockets server behind it.

HAProxy turns each extended CONNECT into an HTTP/1.1 upgrade to the backend,
so these tests show mint's HTTP/2 WebSockets working through what people
deploy, not only against servers written for tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from mint import http
from mint.client import Client, aio
from servers.haproxy import haproxy_front, require_haproxy
from servers.session_servers import write_tls_files
from servers.websockets_echo import RunningServer, websockets_echo_server

MIB = 2**20


@pytest.fixture(scope="module")
def backend() -> Iterator[RunningServer]:
    require_haproxy()
    with websockets_echo_server() as server:
        yield server


@pytest.fixture(scope="module")
def tls_files(
    tls_server_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    return write_tls_files(tls_server_cert, tmp_path_factory.mktemp("haproxy-tls"))


@pytest.fixture(scope="module")
def h2c_front(backend: RunningServer) -> Iterator[int]:
    with haproxy_front(backend.port) as port:
        yield port


@pytest.fixture(scope="module")
def tls_front(backend: RunningServer, tls_files: tuple[str, str]) -> Iterator[int]:
    with haproxy_front(backend.port, tls=tls_files) as port:
        yield port


def test_haproxy_announces_extended_connect_and_the_workaround_hides_it(
    backend: RunningServer, h2c_front: int
) -> None:
    with http.connect("http", "127.0.0.1", h2c_front, protocols=("http2",)) as conn:
        assert conn.version == "HTTP/2"
        assert conn.extended_connect_enabled
    with (
        haproxy_front(backend.port, extended_connect=False) as port,
        http.connect("http", "127.0.0.1", port, protocols=("http2",)) as conn,
    ):
        assert conn.version == "HTTP/2"
        assert not conn.extended_connect_enabled


def test_two_sessions_share_one_h2c_connection_through_haproxy(
    backend: RunningServer, h2c_front: int
) -> None:
    handshakes_before = len(backend.handshakes)
    big = bytes(range(256)) * (MIB // 256)
    with Client(http2=True) as c:
        a = c.connect(f"ws://127.0.0.1:{h2c_front}/a")
        b = c.connect(f"ws://127.0.0.1:{h2c_front}/b")
        assert (a.http_version, b.http_version) == ("HTTP/2", "HTTP/2")
        assert len(c.connections()) == 1
        a.send("to a")
        b.send(big)
        b.send("to b")
        assert a.recv(timeout=10) == "to a"
        assert b.recv(timeout=10) == big
        assert b.recv(timeout=10) == "to b"
        a.close()
        b.close()
        assert (a.close_code, b.close_code) == (1000, 1000)
    assert len(backend.handshakes) - handshakes_before == 2  # each became an HTTP/1.1 upgrade


def test_wss_through_haproxy_negotiates_http2_by_alpn(tls_front: int, tls_ca_file: Path) -> None:
    with Client(cafile=tls_ca_file) as c:
        sessions = [c.connect(f"wss://localhost:{tls_front}/s{i}") for i in range(3)]
        for i, session in enumerate(sessions):
            session.send(f"message {i}")
        for i, session in enumerate(sessions):
            assert session.recv(timeout=10) == f"message {i}"
            assert session.http_version == "HTTP/2"
        assert len(c.connections()) == 1
        for session in sessions:
            session.close()
            assert session.close_code == 1000


def test_asyncio_sessions_through_haproxy(h2c_front: int) -> None:
    async def main() -> None:
        async with asyncio.timeout(30), aio.Client(http2=True) as c:
            sessions = [await c.connect(f"ws://127.0.0.1:{h2c_front}/{i}") for i in range(5)]

            async def exchange(i: int, session: aio.Session) -> None:
                await session.send(f"hello {i}")
                assert await session.recv() == f"hello {i}"
                await session.close()
                assert session.close_code == 1000

            await asyncio.gather(*(exchange(i, s) for i, s in enumerate(sessions)))
            assert len(c.connections()) == 1

    asyncio.run(main())


def test_fallback_to_http1_when_haproxy_hides_extended_connect(
    backend: RunningServer,
    tls_files: tuple[str, str],
    tls_ca_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mint.client")
    with (
        haproxy_front(backend.port, tls=tls_files, extended_connect=False) as port,
        Client(cafile=tls_ca_file) as c,
    ):
        ws = c.connect(f"wss://localhost:{port}/fallback")
        assert ws.http_version == "HTTP/1.1"
        ws.send("still works")
        assert ws.recv(timeout=10) == "still works"
        ws.close()
        assert ws.close_code == 1000
        # Requests keep using the HTTP/2 connection; only the session moved.
        assert any(conn.version == "HTTP/2" for conn in c.connections())
        # Our own fallback says nothing of the server: its HTTP/2 dials still queue, so
        # concurrent callers keep sharing one connection.
        assert ("https", "localhost", port) not in c._http1_origins
    records = [r for r in caplog.records if r.name == "mint.client"]
    assert any("extended CONNECT" in record.getMessage() for record in records)
