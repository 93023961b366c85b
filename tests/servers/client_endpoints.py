"""The four transports the session tests run on, as pytest fixtures (a plugin, see conftest).

ws:// and wss:// against the ``websockets`` package (HTTP/1.1); h2c by prior
knowledge and HTTP/2 over TLS (chosen by ALPN) against hypercorn (RFC 8441).
Servers start on first use and live for the test module.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from mint.client.options import ConnectKwargs

from . import RunningServer, start_hypercorn
from .asgi_apps import SinkApp
from .session_servers import SessionApp, WebsocketsServer, websockets_server, write_tls_files


@dataclass(frozen=True)
class Endpoint:
    """Where a transport's server listens and how to reach it."""

    name: str
    base: str  # scheme://host:port, no path
    options: ConnectKwargs
    http_version: str

    def url(self, path: str = "/") -> str:
        return self.base + path


@pytest.fixture(scope="module")
def tls_files(
    tls_server_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    return write_tls_files(tls_server_cert, tmp_path_factory.mktemp("client-sync-tls"))


@pytest.fixture(scope="module")
def ws_server() -> Iterator[WebsocketsServer]:
    with websockets_server() as server:
        yield server


@pytest.fixture(scope="module")
def wss_server(server_ssl_context: ssl.SSLContext) -> Iterator[WebsocketsServer]:
    with websockets_server(ssl_context=server_ssl_context) as server:
        yield server


@pytest.fixture(scope="module")
def h2c_server() -> Iterator[RunningServer]:
    server = start_hypercorn(SessionApp())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def h2_tls_server(tls_files: tuple[str, str]) -> Iterator[RunningServer]:
    server = start_hypercorn(SessionApp(), certfile=tls_files[0], keyfile=tls_files[1])
    yield server
    server.stop()


@pytest.fixture(params=["ws", "wss", "h2c", "h2-tls"])
def endpoint(request: pytest.FixtureRequest, tls_ca_file: Path) -> Endpoint:
    """One transport, its server started on first use (module-wide)."""
    name: str = request.param
    cafile = str(tls_ca_file)
    if name == "ws":
        port = request.getfixturevalue("ws_server").port
        return Endpoint(name, f"ws://127.0.0.1:{port}", {}, "HTTP/1.1")
    if name == "wss":
        port = request.getfixturevalue("wss_server").port
        # "auto" offers h2 by ALPN; the websockets server takes HTTP/1.1 only.
        return Endpoint(
            name, f"wss://127.0.0.1:{port}", {"cafile": cafile, "http2": "auto"}, "HTTP/1.1"
        )
    if name == "h2c":
        port = request.getfixturevalue("h2c_server").port
        return Endpoint(name, f"ws://127.0.0.1:{port}", {"http2": True}, "HTTP/2")
    port = request.getfixturevalue("h2_tls_server").port
    return Endpoint(name, f"wss://127.0.0.1:{port}", {"cafile": cafile, "http2": "auto"}, "HTTP/2")


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


__all__ = ["Endpoint", "closed_port"]


@pytest.fixture(scope="module")
def sink_servers(
    tls_files: tuple[str, str],
) -> Iterator[tuple[SinkApp, RunningServer, RunningServer]]:
    """One ``SinkApp`` served over h2c and over TLS: sends held back by HTTP/2 flow control."""
    app = SinkApp()
    h2c = start_hypercorn(app)
    h2_tls = start_hypercorn(app, certfile=tls_files[0], keyfile=tls_files[1])
    yield app, h2c, h2_tls
    h2c.stop()
    h2_tls.stop()
