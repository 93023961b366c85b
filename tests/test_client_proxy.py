"""``mint.client``'s ``proxy=`` option and the proxy environment variables, blocking and asyncio.

Every session here runs over a real proxy (pproxy, see ``servers.proxy_servers``)
to the four session transports (ws, wss, h2c, HTTP/2 over TLS with RFC 8441);
which way a connection went is read from its socket's peer: the proxy's port,
or the server's.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from mint import client
from mint.client import aio
from mint.client.options import ConnectKwargs, parse_url
from mint.client.proxies import FROM_ENVIRONMENT, bypassed, proxy_choice
from mint.errors import ProxyError, WebSocketError
from mint.http import Connection
from mint.http._proxy_socket import TunneledTLSSocket
from mint.http.aio import AsyncConnection
from servers import RunningServer
from servers.client_endpoints import Endpoint, closed_port
from servers.proxy_servers import ENCODED_CREDENTIALS, PproxyServer
from servers.session_servers import WebsocketsServer

TIMEOUT = 10.0


def run(main: Callable[[], Awaitable[None]], timeout: float = 60.0) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), timeout)

    asyncio.run(bounded())


def peer_port(conn: Connection | AsyncConnection) -> int:
    if isinstance(conn, Connection):
        port: int = conn.socket.getpeername()[1]
    else:
        port = conn.transport.get_extra_info("peername")[1]
    return port


def server_port(endpoint: Endpoint) -> int:
    return parse_url(endpoint.url(), websocket=True).port


def dead_proxy() -> str:
    """A proxy URL nobody listens on: a connection that tried it would fail."""
    return f"http://127.0.0.1:{closed_port()}"


# -- sessions through proxies --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http", "socks5-auth", "https"])
def test_sessions_on_every_transport_through_a_proxy(
    kind: str, endpoint: Endpoint, request: pytest.FixtureRequest, tls_ca_file: Path
) -> None:
    proxy: PproxyServer = request.getfixturevalue(
        {"http": "http_proxy", "socks5-auth": "socks5_proxy_auth", "https": "https_proxy"}[kind]
    )
    url = proxy.url(ENCODED_CREDENTIALS if kind == "socks5-auth" else None)
    # cafile: the https proxy's CA (the wss servers' too)
    options: ConnectKwargs = {"cafile": str(tls_ca_file), **endpoint.options, "proxy": url}
    with client.connect(endpoint.url("/echo"), **options) as ws:
        assert ws.http_version == endpoint.http_version  # HTTP/2 (ALPN, RFC 8441) in the tunnel
        assert peer_port(ws.connection) == proxy.port
        layered = kind == "https" and endpoint.url().startswith("wss:")
        assert isinstance(ws.connection.socket, TunneledTLSSocket) is layered  # TLS in TLS
        ws.send("through the tunnel")
        assert ws.recv(timeout=TIMEOUT) == "through the tunnel"
        big = os.urandom(1 << 20)  # many TLS records, inside the proxy's TLS for "https"
        ws.send(big)
        assert ws.recv(timeout=TIMEOUT) == big


@pytest.mark.parametrize("kind", ["http", "socks5", "https"])
def test_asyncio_sessions_on_every_transport_through_a_proxy(
    kind: str, endpoint: Endpoint, request: pytest.FixtureRequest, tls_ca_file: Path
) -> None:
    proxy: PproxyServer = request.getfixturevalue(f"{kind}_proxy")
    options: ConnectKwargs = {"cafile": str(tls_ca_file), **endpoint.options}
    options["proxy"] = proxy.url()

    async def main() -> None:
        async with aio.connect(endpoint.url("/echo"), **options) as ws:
            assert ws.http_version == endpoint.http_version
            assert peer_port(ws.connection) == proxy.port
            await ws.send("through the tunnel")
            assert await ws.recv(TIMEOUT) == "through the tunnel"
            big = os.urandom(1 << 20)
            await ws.send(big)
            assert await ws.recv(TIMEOUT) == big

    run(main)


def test_requests_through_a_proxy(http_proxy: PproxyServer, h2c_server: RunningServer) -> None:
    port = h2c_server.port
    with client.Client(proxy=http_proxy.url(), http2=False) as c:
        response = c.request("GET", f"http://127.0.0.1:{port}/")
        assert response.status == 200 and response.body == b"hello"
        assert [peer_port(conn) for conn in c.connections()] == [http_proxy.port]


def test_refused_credentials_are_not_retried_by_reconnecting(
    http_proxy_auth: PproxyServer, ws_server: WebsocketsServer
) -> None:
    port = ws_server.port
    started = time.monotonic()
    sessions = client.connect(
        f"ws://127.0.0.1:{port}/", reconnect=True, proxy=http_proxy_auth.url("alice:wrong")
    )
    with pytest.raises(ProxyError) as caught:
        next(iter(sessions))
    assert caught.value.reason == "proxy_auth_required" and caught.value.status == 407
    assert time.monotonic() - started < 5  # raised, not retried with backoff


def test_a_bad_proxy_option_fails_before_any_io() -> None:
    with pytest.raises(WebSocketError) as caught:
        client.Client(proxy="gopher://127.0.0.1:70")
    assert caught.value.reason == "invalid_argument"
    with pytest.raises(WebSocketError):
        aio.Client(proxy="http://")


# -- the environment -----------------------------------------------------------------------


def test_http_proxy_for_ws_and_https_proxy_for_wss(
    monkeypatch: pytest.MonkeyPatch,
    http_proxy: PproxyServer,
    socks5_proxy: PproxyServer,
    ws_server: WebsocketsServer,
    wss_server: WebsocketsServer,
    tls_ca_file: Path,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url())
    monkeypatch.setenv("HTTPS_PROXY", socks5_proxy.url())
    ws_port, wss_port = ws_server.port, wss_server.port
    with client.connect(f"ws://127.0.0.1:{ws_port}/") as ws:
        assert peer_port(ws.connection) == http_proxy.port
    with client.connect(f"wss://127.0.0.1:{wss_port}/", cafile=tls_ca_file) as ws:
        assert peer_port(ws.connection) == socks5_proxy.port


def test_lower_case_wins_and_all_proxy_is_the_fallback(
    monkeypatch: pytest.MonkeyPatch, http_proxy: PproxyServer, ws_server: WebsocketsServer
) -> None:
    port = ws_server.port
    monkeypatch.setenv("HTTP_PROXY", dead_proxy())
    monkeypatch.setenv("http_proxy", http_proxy.url())
    with client.connect(f"ws://127.0.0.1:{port}/") as ws:
        assert peer_port(ws.connection) == http_proxy.port
    monkeypatch.delenv("http_proxy")
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.setenv("ALL_PROXY", http_proxy.url())
    with client.connect(f"ws://127.0.0.1:{port}/") as ws:
        assert peer_port(ws.connection) == http_proxy.port


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "localhost,127.0.0.0/8", "{port_entry}"])
def test_no_proxy_connects_directly(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, ws_server: WebsocketsServer
) -> None:
    port = ws_server.port
    monkeypatch.setenv("HTTP_PROXY", dead_proxy())
    monkeypatch.setenv("NO_PROXY", no_proxy.format(port_entry=f"other.test, 127.0.0.1:{port}"))
    with client.connect(f"ws://127.0.0.1:{port}/") as ws:
        assert peer_port(ws.connection) == port


def test_no_proxy_for_another_port_still_uses_the_proxy(
    monkeypatch: pytest.MonkeyPatch, http_proxy: PproxyServer, ws_server: WebsocketsServer
) -> None:
    port = ws_server.port
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url())
    monkeypatch.setenv("NO_PROXY", f"127.0.0.1:{port + 1}")
    with client.connect(f"ws://127.0.0.1:{port}/") as ws:
        assert peer_port(ws.connection) == http_proxy.port


def test_proxy_none_and_a_given_proxy_override_the_environment(
    monkeypatch: pytest.MonkeyPatch, http_proxy: PproxyServer, ws_server: WebsocketsServer
) -> None:
    port = ws_server.port
    monkeypatch.setenv("HTTP_PROXY", dead_proxy())
    with client.connect(f"ws://127.0.0.1:{port}/", proxy=None) as ws:
        assert peer_port(ws.connection) == port
    with client.connect(f"ws://127.0.0.1:{port}/", proxy=http_proxy.url()) as ws:
        assert peer_port(ws.connection) == http_proxy.port


def test_asyncio_reads_the_environment_too(
    monkeypatch: pytest.MonkeyPatch, http_proxy: PproxyServer, ws_server: WebsocketsServer
) -> None:
    port = ws_server.port
    monkeypatch.setenv("http_proxy", http_proxy.url())

    async def main() -> None:
        async with aio.connect(f"ws://127.0.0.1:{port}/") as ws:
            assert peer_port(ws.connection) == http_proxy.port
        async with aio.connect(f"ws://127.0.0.1:{port}/", proxy=None) as ws:
            assert peer_port(ws.connection) == port

    run(main)


def test_a_client_reads_the_environment_once(
    monkeypatch: pytest.MonkeyPatch, http_proxy: PproxyServer, ws_server: WebsocketsServer
) -> None:
    port = ws_server.port
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url())
    with client.Client() as c:
        monkeypatch.setenv("HTTP_PROXY", dead_proxy())
        with c.connect(f"ws://127.0.0.1:{port}/") as ws:
            assert peer_port(ws.connection) == http_proxy.port


# -- the pool --------------------------------------------------------------------------------


def test_one_origin_through_two_proxies_shares_no_connection(
    http_proxy: PproxyServer, socks5_proxy: PproxyServer, h2c_server: RunningServer
) -> None:
    url = f"ws://127.0.0.1:{h2c_server.port}/echo"
    with client.Client(http2=True, proxy=http_proxy.url()) as c:
        first = c.connect(url)
        again = c.connect(url)
        assert again.connection is first.connection  # HTTP/2: one connection per pool key
        c._proxies = proxy_choice(socks5_proxy.url())  # as if the proxy setting had changed
        other = c.connect(url)
        assert other.connection is not first.connection
        assert {peer_port(conn) for conn in c.connections()} == {
            http_proxy.port,
            socks5_proxy.port,
        }
        for ws in (first, again, other):
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "hi"
            ws.close()


def test_asyncio_pool_keys_by_proxy(
    http_proxy: PproxyServer, socks5_proxy: PproxyServer, h2c_server: RunningServer
) -> None:
    url = f"ws://127.0.0.1:{h2c_server.port}/echo"

    async def main() -> None:
        async with aio.Client(http2=True, proxy=http_proxy.url()) as c:
            first = await c.connect(url)
            c._proxies = proxy_choice(socks5_proxy.url())
            other = await c.connect(url)
            assert other.connection is not first.connection
            assert peer_port(other.connection) == socks5_proxy.port
            await first.close()
            await other.close()

    run(main)


# -- the rules, without I/O ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "entries", "expected"),
    [
        ("api.example.com", 443, "example.com", True),
        ("api.example.com", 443, ".example.com", True),
        ("example.com", 443, ".example.com", True),
        ("badexample.com", 443, "example.com", False),
        ("EXAMPLE.com", 443, "example.COM", True),
        ("example.com", 443, "example.com:443", True),
        ("example.com", 80, "example.com:443", False),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("::1", 80, "::1", True),
        ("::1", 80, "[::1]:80", True),
        ("::1", 81, "[::1]:80", False),
        ("127.0.0.1", 80, "localhost", False),  # loopback is not exempt unless listed
        ("anything", 1, "a.test, *", True),
        ("example.com", 443, "", False),
    ],
)
def test_no_proxy_rules(host: str, port: int, entries: str, expected: bool) -> None:
    listed = tuple(entry.strip().lower() for entry in entries.split(",") if entry.strip())
    assert bypassed(host, port, listed) is expected


def test_environment_rules() -> None:
    target = parse_url("wss://example.test/", websocket=True)
    plain = parse_url("ws://example.test/", websocket=True)
    choice = proxy_choice(FROM_ENVIRONMENT, {"HTTPS_PROXY": "proxy.test:3128"})
    assert choice.for_target(target) == "http://proxy.test:3128"  # no scheme: http://
    assert choice.for_target(plain) is None
    empty_lower = {"HTTP_PROXY": "http://a.test:1", "http_proxy": ""}
    assert proxy_choice(FROM_ENVIRONMENT, empty_lower).for_target(plain) is None
    cgi = {"HTTP_PROXY": "http://a.test:1", "REQUEST_METHOD": "GET"}
    assert proxy_choice(FROM_ENVIRONMENT, cgi).for_target(plain) is None  # httpoxy
    assert proxy_choice(None).for_target(target) is None
    with pytest.raises(ValueError):
        proxy_choice(FROM_ENVIRONMENT, {"ALL_PROXY": "ftp://x.test"})
