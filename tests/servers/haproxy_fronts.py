"""HAProxy fronts before a ``websockets`` echo backend, as pytest fixtures (a plugin, see conftest).

For the tests that go through HAProxy with the core API (``test_haproxy``)
and with sessions (``test_client_haproxy``).  ``backend`` skips the module
with the reason when HAProxy is missing (except in CI), before anything
starts.  ``tls_files`` is the TLS fixture of ``client_endpoints``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .haproxy import haproxy_front, require_haproxy
from .websockets_echo import RunningServer, websockets_echo_server


@pytest.fixture(scope="module")
def backend() -> Iterator[RunningServer]:
    require_haproxy()  # before starting anything: a skip should cost nothing
    with websockets_echo_server() as server:
        yield server


@pytest.fixture(scope="module")
def h2c_front(backend: RunningServer) -> Iterator[int]:
    with haproxy_front(backend.port) as port:
        yield port


@pytest.fixture(scope="module")
def tls_front(backend: RunningServer, tls_files: tuple[str, str]) -> Iterator[int]:
    with haproxy_front(backend.port, tls=tls_files) as port:
        yield port
