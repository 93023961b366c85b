"""Fixtures shared by every test module: TLS material for loopback servers.

Servers themselves are started by the fixtures of the modules that need them,
always on 127.0.0.1 with port 0 so concurrent runs never collide.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from servers.session_servers import write_tls_files

# The session tests' transports (ws, wss, h2c, h2 over TLS) as fixtures any module can ask for.
pytest_plugins = ["servers.client_endpoints", "servers.haproxy_fronts", "servers.proxy_servers"]


#: What urllib-style clients read from the environment (lower and upper case alike):
#: a proxy set on the machine running the tests must not reroute their loopback traffic.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "request_method")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable of the machine leaks into a test (subprocesses inherit the cleaned one)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """A throwaway certificate authority; nothing outside the test run trusts it."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server_cert(tls_ca: trustme.CA) -> trustme.LeafCert:
    return tls_ca.issue_cert("localhost", "127.0.0.1")


@pytest.fixture(scope="session")
def tls_cert_files(
    tls_server_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """The server's certificate chain and key as PEM files, for servers that load files."""
    return write_tls_files(tls_server_cert, tmp_path_factory.mktemp("server-tls"))


@pytest.fixture(scope="session")
def server_ssl_context(tls_server_cert: trustme.LeafCert) -> ssl.SSLContext:
    """A server-side context with no ALPN set; servers that need ALPN set it themselves."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_server_cert.configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context that trusts the test CA only."""
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def tls_ca_file(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The test CA as a PEM file, for ``connect(..., cafile=...)``."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    yield path
