"""Sessions (``mint.client``) through HAProxy 2.6, a real RFC 8441 front, to a websockets server.

HAProxy turns each extended CONNECT into an HTTP/1.1 upgrade to the backend,
so these tests show the session layer's pooling, HTTP/2 multiplexing and
fallback working through what people deploy, not only against servers
written for tests.  The fixture itself is proven in test_haproxy.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mint import client
from mint.client import aio
from servers.haproxy import haproxy_front
from servers.websockets_echo import RunningServer

MIB = 2**20
BIG = bytes(range(256)) * (MIB // 256)


@pytest.fixture
def no_extended_connect_front(backend: RunningServer, tls_files: tuple[str, str]) -> Iterator[int]:
    """HTTP/2 by ALPN but no RFC 8441: sessions must fall back to HTTP/1.1 on the same port."""
    with haproxy_front(backend.port, tls=tls_files, extended_connect=False) as port:
        yield port


def _fallback_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "mint.client" and "extended CONNECT" in record.getMessage()
    ]


def test_two_sessions_share_one_h2c_connection(backend: RunningServer, h2c_front: int) -> None:
    handshakes_before = len(backend.handshakes)
    with client.Client(http2=True) as c:
        a = c.connect(f"ws://127.0.0.1:{h2c_front}/a")
        b = c.connect(f"ws://127.0.0.1:{h2c_front}/b")
        assert (a.http_version, b.http_version) == ("HTTP/2", "HTTP/2")
        assert len(c.connections()) == 1
        a.send("to a")
        b.send(BIG)
        b.send("to b")
        a.send(BIG)
        assert b.recv(timeout=10) == BIG
        assert a.recv(timeout=10) == "to a"
        assert b.recv(timeout=10) == "to b"
        assert a.recv(timeout=10) == BIG
        a.close()
        b.close()
        assert (a.close_code, b.close_code) == (1000, 1000)
        assert len(c.connections()) == 1  # closing sessions ends streams, not the connection
    assert len(backend.handshakes) - handshakes_before == 2  # each became an HTTP/1.1 upgrade


def test_wss_sessions_negotiate_http2_by_alpn(tls_front: int, tls_ca_file: Path) -> None:
    with client.Client(cafile=tls_ca_file, http2="auto") as c:
        a = c.connect(f"wss://localhost:{tls_front}/a")
        b = c.connect(f"wss://localhost:{tls_front}/b")
        assert (a.http_version, b.http_version) == ("HTTP/2", "HTTP/2")
        assert len(c.connections()) == 1
        assert c.connections()[0].extended_connect_enabled
        a.send("over TLS")
        b.send(BIG)
        assert a.recv(timeout=10) == "over TLS"
        assert b.recv(timeout=10) == BIG
        a.close()
        b.close()
        assert (a.close_code, b.close_code) == (1000, 1000)


def test_asyncio_sessions_share_one_connection(h2c_front: int) -> None:
    async def main() -> None:
        async with aio.Client(http2=True) as c:
            sessions = [await c.connect(f"ws://127.0.0.1:{h2c_front}/{i}") for i in range(2)]
            assert [s.http_version for s in sessions] == ["HTTP/2", "HTTP/2"]
            assert len(c.connections()) == 1

            async def exchange(i: int, session: aio.Session) -> None:
                await session.send(f"hello {i}")
                await session.send(BIG)
                assert await session.recv() == f"hello {i}"
                assert await session.recv() == BIG
                await session.close()
                assert session.close_code == 1000

            await asyncio.gather(*(exchange(i, s) for i, s in enumerate(sessions)))
            assert len(c.connections()) == 1

    asyncio.run(asyncio.wait_for(main(), 30))


def test_connect_falls_back_to_http1_without_extended_connect(
    no_extended_connect_front: int, tls_ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mint.client")
    url = f"wss://localhost:{no_extended_connect_front}/fallback"
    with client.connect(url, cafile=tls_ca_file) as ws:  # http2="auto": ALPN chose h2
        assert ws.http_version == "HTTP/1.1"
        assert ws.connection.version == "HTTP/1.1"
        ws.send("still works")
        ws.send(BIG)
        assert ws.recv(timeout=10) == "still works"
        assert ws.recv(timeout=10) == BIG
        ws.close()
        assert ws.close_code == 1000
    (record,) = _fallback_records(caplog)
    assert record.levelno == logging.INFO
    assert f"localhost:{no_extended_connect_front}" in record.getMessage()


def test_client_remembers_the_fallback_and_keeps_http2_for_requests(
    no_extended_connect_front: int, tls_ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The origin is learnt once: later sessions go straight to HTTP/1.1, requests stay on h2."""
    caplog.set_level(logging.INFO, logger="mint.client")
    port = no_extended_connect_front
    with client.Client(cafile=tls_ca_file) as c:
        a = c.connect(f"wss://localhost:{port}/a")
        b = c.connect(f"wss://localhost:{port}/b")
        assert (a.http_version, b.http_version) == ("HTTP/1.1", "HTTP/1.1")
        for session in (a, b):
            session.send(f"via {session.http_version}")
            assert session.recv(timeout=10) == "via HTTP/1.1"
        # A plain GET is no WebSocket handshake: the backend refuses it, over HTTP/2.
        response = c.request("GET", f"https://localhost:{port}/", timeout=10)
        assert response.http_version == "HTTP/2"
        assert 400 <= response.status < 500
        a.close()
        b.close()
        assert (a.close_code, b.close_code) == (1000, 1000)
        # The closed sessions took their HTTP/1.1 connections along; the h2 one stays pooled.
        assert [conn.version for conn in c.connections()] == ["HTTP/2"]
    assert len(_fallback_records(caplog)) == 1
