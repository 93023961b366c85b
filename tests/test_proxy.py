"""``mint.http.connect(..., proxy=...)``, blocking and asyncio, through real proxies on loopback.

pproxy (a subprocess) is the HTTP CONNECT, TLS and SOCKS5 proxy; the
scripted proxy (``servers.proxy_servers``) refuses, hangs up, answers
garbage, and records what the client sent before it answered.  The
targets are hypercorn (HTTP/1.1, h2c, HTTP/2 over TLS by ALPN) and the
scripted HTTP/2 server, which speaks first.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mint import http
from mint.errors import MintError, ProxyError, TransportError
from mint.http import aio
from mint.http.proxy import HTTPConnectTunnel, SOCKS5Tunnel, parse_proxy
from servers import RunningServer
from servers.client_endpoints import closed_port
from servers.h2_scripted import h2_scripted_server
from servers.proxy_servers import (
    CREDENTIALS,
    ENCODED_CREDENTIALS,
    PproxyServer,
    ScriptedProxy,
)

SHELLS = ["blocking", "asyncio"]


def fetch(shell: str, scheme: str, port: int, **options: Any) -> tuple[str, int, dict[str, str]]:
    """Connect (maybe through a proxy), GET /, and return the version, status and headers."""
    if shell == "blocking":
        return _fetch_blocking(scheme, port, **options)
    return asyncio.run(_fetch_async(scheme, port, **options))


def _fetch_blocking(scheme: str, port: int, **options: Any) -> tuple[str, int, dict[str, str]]:
    with http.connect(scheme, "127.0.0.1", port, timeout=10, **options) as conn:
        conn.request("GET", "/", [])
        return conn.version, *_response(conn.recv, 5)


async def _fetch_async(scheme: str, port: int, **options: Any) -> tuple[str, int, dict[str, str]]:
    async with await aio.connect(scheme, "127.0.0.1", port, timeout=10, **options) as conn:
        conn.request("GET", "/", [])
        events: list[http.Event] = []
        while not any(isinstance(event, http.Done) for event in events):
            events += await conn.recv(timeout=5)
        return conn.version, *_summary(events)


def _response(recv: Any, timeout: float) -> tuple[int, dict[str, str]]:
    events: list[http.Event] = []
    while not any(isinstance(event, http.Done) for event in events):
        events += recv(timeout=timeout)
    return _summary(events)


def _summary(events: list[http.Event]) -> tuple[int, dict[str, str]]:
    status = next(event.status for event in events if isinstance(event, http.Status))
    headers = next(event.headers for event in events if isinstance(event, http.Headers))
    return status, dict(headers)


def connect_error(shell: str, scheme: str, port: int, **options: Any) -> BaseException:
    """The exception a connect raises (the test fails if it succeeds)."""
    with pytest.raises(MintError) as caught:
        fetch(shell, scheme, port, **options)
    return caught.value


@pytest.fixture
def proxy_url(request: pytest.FixtureRequest) -> str:
    """Each kind of real proxy, by name."""
    kind: str = request.param
    if kind == "http":
        server: PproxyServer = request.getfixturevalue("http_proxy")
        return server.url()
    if kind == "http-auth":
        return str(request.getfixturevalue("http_proxy_auth").url(ENCODED_CREDENTIALS))
    if kind == "https":
        return str(request.getfixturevalue("https_proxy").url())
    if kind == "socks5":
        return str(request.getfixturevalue("socks5_proxy").url())
    if kind == "socks5h":
        return str(request.getfixturevalue("socks5_proxy").url(scheme="socks5h"))
    assert kind == "socks5-auth"
    return str(request.getfixturevalue("socks5_proxy_auth").url(ENCODED_CREDENTIALS))


@pytest.fixture
def closed_port_number() -> int:
    return closed_port()


PROXIES = ["http", "http-auth", "https", "socks5", "socks5h", "socks5-auth"]


# -- through every proxy, to every kind of server ------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("proxy_url", PROXIES, indirect=True)
def test_http2_over_tls_chosen_by_alpn_through_the_tunnel(
    shell: str, proxy_url: str, h2_tls_server: RunningServer, tls_ca_file: Path
) -> None:
    version, status, headers = fetch(
        shell,
        "https",
        h2_tls_server.port,
        protocols=("http2", "http1"),
        cafile=tls_ca_file,
        proxy=proxy_url,
    )
    assert (version, status, headers["x-http-version"]) == ("HTTP/2", 200, "2")


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("proxy_url", PROXIES, indirect=True)
def test_http1_and_h2c_in_the_clear_through_the_tunnel(
    shell: str, proxy_url: str, h2c_server: RunningServer, tls_ca_file: Path
) -> None:
    # cafile verifies the https proxy; the servers here speak no TLS.
    h1 = fetch(shell, "http", h2c_server.port, cafile=tls_ca_file, proxy=proxy_url)
    assert (h1[0], h1[1], h1[2]["x-http-version"]) == ("HTTP/1.1", 200, "1.1")
    h2 = fetch(
        shell, "http", h2c_server.port, protocols=("http2",), cafile=tls_ca_file, proxy=proxy_url
    )
    assert (h2[0], h2[1], h2[2]["x-http-version"]) == ("HTTP/2", 200, "2")


@pytest.mark.parametrize("shell", SHELLS)
def test_an_https_proxy_is_verified_with_its_own_context_when_given(
    shell: str, https_proxy: PproxyServer, h2c_server: RunningServer, tls_ca_file: Path
) -> None:
    # Without the test CA the proxy's certificate is refused...
    error = connect_error(shell, "http", h2c_server.port, proxy=https_proxy.url())
    assert isinstance(error, TransportError) and error.reason == "tls"
    # ...and proxy_ssl_context is what trusts it, apart from the server's settings.
    context = ssl.create_default_context(cafile=str(tls_ca_file))
    version, status, _ = fetch(
        shell, "http", h2c_server.port, proxy=https_proxy.url(), proxy_ssl_context=context
    )
    assert (version, status) == ("HTTP/1.1", 200)


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("credentials", [None, "alice:wrong"])
def test_missing_or_wrong_credentials_get_407(
    shell: str, credentials: str | None, http_proxy_auth: PproxyServer, h2c_server: RunningServer
) -> None:
    error = connect_error(shell, "http", h2c_server.port, proxy=http_proxy_auth.url(credentials))
    assert isinstance(error, ProxyError)
    assert (error.reason, error.status, error.reply_code) == ("proxy_auth_required", 407, None)


@pytest.mark.parametrize("shell", SHELLS)
def test_wrong_socks_credentials_are_refused(
    shell: str, socks5_proxy_auth: PproxyServer, h2c_server: RunningServer
) -> None:
    url = socks5_proxy_auth.url("alice:wrong")
    error = connect_error(shell, "http", h2c_server.port, proxy=url)
    assert isinstance(error, ProxyError) and error.reason == "socks_auth_failed"


@pytest.mark.parametrize("shell", SHELLS)
def test_socks_without_credentials_where_they_are_needed(
    shell: str, socks5_proxy_auth: PproxyServer, h2c_server: RunningServer
) -> None:
    # pproxy hangs up rather than answering "no acceptable method" (0xFF, see the unit test).
    error = connect_error(shell, "http", h2c_server.port, proxy=socks5_proxy_auth.url())
    assert isinstance(error, ProxyError) and error.reason == "proxy_closed"


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("reply", "reason", "status"),
    [
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "proxy_refused", 403),
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\nupstream down", "proxy_refused", 502),
        (
            b"HTTP/1.0 407 Who are you\r\nProxy-Authenticate: Basic\r\n\r\n",
            "proxy_auth_required",
            407,
        ),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "proxy_protocol", None),
        (b"HTTP/1.1 200 OK\r\n", "proxy_closed", None),  # cut short, then closed
        (b"", "proxy_closed", None),  # closed without a word
    ],
)
def test_a_refused_tunnel_sends_nothing_past_the_connect_request(
    shell: str,
    reply: bytes,
    reason: str,
    status: int | None,
    scripted_proxy: list[ScriptedProxy],
    h2c_server: RunningServer,
) -> None:
    proxy = ScriptedProxy(reply)
    scripted_proxy.append(proxy)
    error = connect_error(
        shell, "http", h2c_server.port, protocols=("http2",), proxy=f"{proxy.url}"
    )
    assert isinstance(error, ProxyError) and error.reason == reason and error.status == status
    [visit] = proxy.visits
    assert visit.head.startswith(f"CONNECT 127.0.0.1:{h2c_server.port} HTTP/1.1\r\n".encode())
    assert f"host: 127.0.0.1:{h2c_server.port}\r\n".encode() in visit.head.lower()
    assert visit.early == b""


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("protocols", [("http1",), ("http2",)])
def test_nothing_reaches_the_server_before_the_proxy_answered(
    shell: str,
    protocols: tuple[str, ...],
    scripted_proxy: list[ScriptedProxy],
    h2c_server: RunningServer,
) -> None:
    # The proxy holds its 200 back for 0.3s: an h2c client eager to send its
    # preface, or a request sent early, would show up in ``early``.
    proxy = ScriptedProxy(b"HTTP/1.1 200 Connection established\r\n\r\n", relay=True, hold=0.3)
    scripted_proxy.append(proxy)
    version, status, _ = fetch(shell, "http", h2c_server.port, protocols=protocols, proxy=proxy.url)
    assert status == 200 and version == ("HTTP/2" if protocols == ("http2",) else "HTTP/1.1")
    [visit] = proxy.visits
    assert visit.early == b""


@pytest.mark.parametrize("shell", SHELLS)
def test_credentials_are_percent_decoded_into_proxy_authorization(
    shell: str, scripted_proxy: list[ScriptedProxy], h2c_server: RunningServer
) -> None:
    proxy = ScriptedProxy(b"HTTP/1.1 200 OK\r\n\r\n", relay=True, hold=0)
    scripted_proxy.append(proxy)
    url = f"http://{ENCODED_CREDENTIALS}@127.0.0.1:{proxy.port}"
    assert fetch(shell, "http", h2c_server.port, proxy=url)[1] == 200
    token = base64.b64encode(":".join(CREDENTIALS).encode()).decode()
    assert f"Proxy-Authorization: Basic {token}\r\n".encode() in proxy.visits[0].head


@pytest.mark.parametrize("shell", SHELLS)
def test_server_bytes_glued_to_the_proxy_answer_are_not_lost(
    shell: str, scripted_proxy: list[ScriptedProxy]
) -> None:
    # The scripted HTTP/2 server sends its SETTINGS (with extended CONNECT on)
    # as soon as it accepts; the proxy sends them in the same write as its 200.
    with h2_scripted_server(enable_connect_protocol=True) as port:
        proxy = ScriptedProxy(b"HTTP/1.1 200 OK\r\n\r\n", relay=True, hold=0, glue=1.0)
        scripted_proxy.append(proxy)
        if shell == "blocking":
            with http.connect(
                "http", "127.0.0.1", port, protocols=("http2",), proxy=proxy.url
            ) as conn:
                assert conn.extended_connect_enabled
                conn.request("GET", "/", [])
                status, _ = _response(conn.recv, 5)
        else:

            async def go() -> int:
                conn = await aio.connect(
                    "http", "127.0.0.1", port, protocols=("http2",), proxy=proxy.url
                )
                async with conn:
                    assert conn.extended_connect_enabled
                    conn.request("GET", "/", [])
                    events: list[http.Event] = []
                    while not any(isinstance(event, http.Done) for event in events):
                        events += await conn.recv(timeout=5)
                    return _summary(events)[0]

            status = asyncio.run(go())
    assert status == 200
    assert proxy.glued[0] > 0  # the test proves something only if bytes were glued


@pytest.mark.parametrize("shell", SHELLS)
def test_bytes_after_the_answer_before_tls_are_refused(
    shell: str, scripted_proxy: list[ScriptedProxy], tls_ca_file: Path
) -> None:
    proxy = ScriptedProxy(b"HTTP/1.1 200 OK\r\n\r\nnot a TLS record")
    scripted_proxy.append(proxy)
    error = connect_error(shell, "https", 443, cafile=tls_ca_file, proxy=proxy.url)
    assert isinstance(error, ProxyError) and error.reason == "proxy_protocol"


@pytest.mark.parametrize("shell", SHELLS)
def test_timeout_bounds_the_tunnel_setup(
    shell: str, scripted_proxy: list[ScriptedProxy], h2c_server: RunningServer
) -> None:
    proxy = ScriptedProxy(b"", hold=5)  # reads the request, never answers in time
    scripted_proxy.append(proxy)
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        if shell == "blocking":
            http.connect("http", "127.0.0.1", h2c_server.port, timeout=0.5, proxy=proxy.url)
        else:
            asyncio.run(
                aio.connect("http", "127.0.0.1", h2c_server.port, timeout=0.5, proxy=proxy.url)
            )
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("shell", SHELLS)
def test_a_proxy_nobody_listens_on_is_refused(shell: str, closed_port_number: int) -> None:
    error = connect_error(shell, "http", 80, proxy=f"http://127.0.0.1:{closed_port_number}")
    assert isinstance(error, TransportError) and not isinstance(error, ProxyError)
    assert error.reason == "refused"


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:21",
        "127.0.0.1:8080",
        "http://",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:8080/path",
        "http://127.0.0.1:8080?q=1",
        "socks4://127.0.0.1:1080",
        42,
    ],
)
@pytest.mark.parametrize("shell", SHELLS)
def test_a_bad_proxy_url_is_a_value_error_before_any_io(shell: str, url: object) -> None:
    with pytest.raises(ValueError, match="proxy"):
        fetch(shell, "http", 1, proxy=url)


def test_socks_without_socksio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "socksio", None)
    with pytest.raises(MintError, match=r"mint-websocket\[socks\]") as caught:
        http.connect("http", "127.0.0.1", 1, proxy="socks5://127.0.0.1:1080")
    assert caught.value.reason == "missing_dependency"
    assert not isinstance(caught.value, TransportError)  # retrying cannot install it
    assert parse_proxy("http://127.0.0.1:3128").port == 3128  # other proxies need no socksio


def test_parse_proxy_defaults_and_credentials() -> None:
    proxy = parse_proxy(f"socks5h://{ENCODED_CREDENTIALS}@[::1]")
    assert (proxy.scheme, proxy.host, proxy.port) == ("socks5h", "::1", 1080)
    assert (proxy.username, proxy.password) == CREDENTIALS
    assert not proxy.resolve_locally and parse_proxy("socks5://h").resolve_locally
    assert "s3cret" not in repr(proxy) and proxy.url == "socks5h://[::1]:1080"
    assert parse_proxy("HTTPS://proxy.example").port == 443
    assert parse_proxy("http://user@proxy.example").password == ""


# -- the exchanges, bytes in and errors out ------------------------------------------------


def test_http_connect_answer_read_byte_by_byte_keeps_what_follows() -> None:
    tunnel = HTTPConnectTunnel(parse_proxy("http://p:1"), "::1", 443)
    assert tunnel.data_to_send() == b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"
    head = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nVia: p\r\n\r\n"
    for index in range(len(head) - 1):
        tunnel.receive_data(head[index : index + 1])
        assert not tunnel.ready
    tunnel.receive_data(head[-1:] + b"\x00\x01rest")  # the server's first bytes, glued on
    assert tunnel.ready and tunnel.leftover == b"\x00\x01rest"


def test_http_connect_head_too_large_is_garbage() -> None:
    tunnel = HTTPConnectTunnel(parse_proxy("http://p:1"), "h", 1)
    with pytest.raises(ProxyError) as caught:
        tunnel.receive_data(b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70_000)
    assert caught.value.reason == "proxy_protocol"


def _socks(url: str = "socks5h://p:1", host: str = "example.test") -> SOCKS5Tunnel:
    tunnel = SOCKS5Tunnel(parse_proxy(url), host, 443)
    return tunnel


def test_socks5_exchange_with_credentials_and_a_domain_reply_split_anywhere() -> None:
    tunnel = _socks("socks5h://bob:pw@p:1")
    assert tunnel.data_to_send() == b"\x05\x02\x00\x02"
    tunnel.receive_data(b"\x05")
    tunnel.receive_data(b"\x02")
    assert tunnel.data_to_send() == b"\x01\x03bob\x02pw"
    tunnel.receive_data(b"\x01\x00")
    assert tunnel.data_to_send() == b"\x05\x01\x00\x03\x0cexample.test\x01\xbb"
    reply = b"\x05\x00\x00\x03\x04host\x00\x50" + b"early"
    for byte in reply[:-6]:
        tunnel.receive_data(bytes([byte]))
        assert not tunnel.ready
    tunnel.receive_data(reply[-6:])
    assert tunnel.ready and tunnel.leftover == b"early"


def test_socks5_sends_addresses_as_addresses() -> None:
    tunnel = _socks(host="[::1]")
    tunnel.data_to_send()
    tunnel.receive_data(b"\x05\x00")
    assert tunnel.data_to_send() == b"\x05\x01\x00\x04" + b"\x00" * 15 + b"\x01\x01\xbb"


@pytest.mark.parametrize(
    ("replies", "reason", "code"),
    [
        ([b"\x05\xff"], "socks_auth_required", None),
        ([b"\x05\x02", b"\x01\x01"], "socks_auth_failed", None),
        ([b"\x05\x00", b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00"], "socks_connection_refused", 5),
        ([b"\x05\x00", b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00"], "socks_not_allowed", 2),
        ([b"\x05\x00", b"\x05\x00\x00\x09\x00"], "proxy_protocol", None),
        ([b"HTTP/1.1 400"], "proxy_protocol", None),
        ([b"\x05\x00", b""], "proxy_closed", None),
    ],
)
def test_socks5_failures(replies: list[bytes], reason: str, code: int | None) -> None:
    tunnel = _socks("socks5h://bob:pw@p:1")
    with pytest.raises(ProxyError) as caught:
        for reply in replies:
            tunnel.receive_data(reply)
    assert (caught.value.reason, caught.value.reply_code) == (reason, code)


@pytest.mark.parametrize("shell", SHELLS)
def test_socks5_resolves_names_here_and_socks5h_at_the_proxy(
    shell: str,
    socks5_proxy: PproxyServer,
    h2c_server: RunningServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only this process knows the name: the proxy (another process) cannot resolve it.
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo("127.0.0.1" if host == NAME_ONLY_WE_KNOW else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    version, status, _ = fetch_host(shell, NAME_ONLY_WE_KNOW, h2c_server.port, socks5_proxy.url())
    assert (version, status) == ("HTTP/1.1", 200)
    with pytest.raises(TransportError):  # pproxy says yes, then hangs up: it found no such host
        fetch_host(shell, NAME_ONLY_WE_KNOW, h2c_server.port, socks5_proxy.url(scheme="socks5h"))


NAME_ONLY_WE_KNOW = "mint-proxy-test.invalid"


def fetch_host(shell: str, host: str, port: int, proxy: str) -> tuple[str, int, dict[str, str]]:
    """``fetch`` to a host name rather than 127.0.0.1."""

    async def fetch_async() -> tuple[str, int, dict[str, str]]:
        async with await aio.connect("http", host, port, timeout=5, proxy=proxy) as conn:
            conn.request("GET", "/", [])
            events: list[http.Event] = []
            while not any(isinstance(event, http.Done) for event in events):
                events += await conn.recv(timeout=5)
            return conn.version, *_summary(events)

    if shell == "asyncio":
        return asyncio.run(fetch_async())
    with http.connect("http", host, port, timeout=5, proxy=proxy) as conn:
        conn.request("GET", "/", [])
        return conn.version, *_response(conn.recv, 5)
