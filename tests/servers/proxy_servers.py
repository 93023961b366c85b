"""Proxies for the proxy tests, as pytest fixtures (a plugin, see conftest): real ones on loopback.

``pproxy`` runs in a subprocess as an HTTP CONNECT proxy (plain or over
TLS) and a SOCKS5 proxy, with and without credentials.  ``--auth 0``
matters: pproxy otherwise remembers an address that authenticated once and
waves its later connections through, which would let a wrong-credentials
test pass for the wrong reason.

``ScriptedProxy`` is a small proxy written here, for what no real proxy
does on demand: refuse with a chosen answer, answer garbage, hang up early,
glue the target's first bytes to its ``200``, and record every byte the
client sent before it answered (which must be the CONNECT request alone).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from .session_servers import write_tls_files

CREDENTIALS = ("alice", "s3cret:+/ é")
"""A password with characters that must be percent-encoded in a URL, to test the decoding."""

ENCODED_CREDENTIALS = "alice:s3cret%3A%2B%2F%20%C3%A9"


@dataclass
class PproxyServer:
    """One pproxy process; ``url(auth)`` is how a client names it."""

    scheme: str  # http, https or socks5 (the client's scheme for it)
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)

    def url(self, credentials: str | None = None, scheme: str | None = None) -> str:
        userinfo = "" if credentials is None else f"{credentials}@"
        return f"{scheme or self.scheme}://{userinfo}127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start_pproxy(
    scheme: str,
    *,
    auth: bool = False,
    tls_files: tuple[str, str] | None = None,
    credentials: tuple[str, str] = CREDENTIALS,
) -> PproxyServer:
    """Start pproxy listening on 127.0.0.1 and wait until it accepts connections.

    With ``auth`` it wants ``credentials`` (the tests' own by default).
    """
    listen = {"http": "http", "https": "http+ssl", "socks5": "socks5"}[scheme]
    port = _free_port()
    uri = f"{listen}://127.0.0.1:{port}"
    if auth:
        uri += f"#{credentials[0]}:{credentials[1]}"
    command = [sys.executable, "-m", "pproxy", "-l", uri, "--auth", "0"]
    if tls_files is not None:
        command += ["--ssl", f"{tls_files[0]},{tls_files[1]}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"pproxy did not start: {command}") from None
            time.sleep(0.05)
    return PproxyServer(scheme, port, process)


@pytest.fixture(scope="module")
def http_proxy() -> Iterator[PproxyServer]:
    server = start_pproxy("http")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http_proxy_auth() -> Iterator[PproxyServer]:
    server = start_pproxy("http", auth=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def socks5_proxy() -> Iterator[PproxyServer]:
    server = start_pproxy("socks5")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def socks5_proxy_auth() -> Iterator[PproxyServer]:
    server = start_pproxy("socks5", auth=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def https_proxy(
    tls_server_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PproxyServer]:
    """An HTTP CONNECT proxy spoken to over TLS, with the test CA's certificate."""
    files = write_tls_files(tls_server_cert, Path(tmp_path_factory.mktemp("proxy-tls")))
    server = start_pproxy("https", tls_files=files)
    yield server
    server.stop()


# -- the scripted proxy ----------------------------------------------------------------


@dataclass
class Visit:
    """What one client did at the scripted proxy."""

    head: bytes = b""
    #: Bytes the client sent after its CONNECT head and before the proxy answered.
    early: bytes = b""


class ScriptedProxy:
    """An HTTP CONNECT proxy that answers as told, on 127.0.0.1.

    ``reply`` is sent after the CONNECT head (and ``hold`` seconds of
    listening for anything more).  With ``relay=True`` it is a working
    proxy: it dials the target named in CONNECT, waits up to ``glue``
    seconds for the target's first bytes and sends them in the same write as
    ``reply``, then relays both ways.  Otherwise it closes after ``reply``
    (an empty ``reply`` is a hang-up without answer).
    """

    def __init__(
        self, reply: bytes, *, relay: bool = False, hold: float = 0.2, glue: float = 0.0
    ) -> None:
        self.reply = reply
        self.relay = relay
        self.hold = hold
        self.glue = glue
        self.visits: list[Visit] = []
        #: How many of the target's bytes went out with each ``reply`` (``glue``).
        self.glued: list[int] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._stopping = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in [self._acceptor, *self._threads]:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, client: socket.socket) -> None:
        visit = Visit()
        self.visits.append(visit)
        try:
            client.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            visit.head, _, visit.early = data.partition(b"\r\n\r\n")
            visit.head += b"\r\n\r\n"
            visit.early += self._listen_for(client, self.hold)
            if not self.relay:
                if self.reply:
                    client.sendall(self.reply)
                return
            target = visit.head.split(b" ")[1].decode()
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
            self._sockets.append(upstream)
            first = self._listen_for(upstream, self.glue) if self.glue else b""
            self.glued.append(len(first))
            client.sendall(self.reply + first)
            _pipe(client, upstream)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                client.close()

    @staticmethod
    def _listen_for(sock: socket.socket, seconds: float) -> bytes:
        """Whatever ``sock`` sends within ``seconds`` (stopping at EOF)."""
        received = b""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        sock.settimeout(5)
        return received


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Relay bytes both ways until either side closes."""
    a.setblocking(True)
    b.setblocking(True)
    a.settimeout(None)
    b.settimeout(None)
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while True:
            for key, _ in selector.select(timeout=30):
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                sink: socket.socket = key.data
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)


@pytest.fixture
def scripted_proxy() -> Iterator[list[ScriptedProxy]]:
    """A list to put ``ScriptedProxy`` objects in; each is closed after the test."""
    made: list[ScriptedProxy] = []
    yield made
    for proxy in made:
        proxy.close()


__all__ = [
    "CREDENTIALS",
    "ENCODED_CREDENTIALS",
    "PproxyServer",
    "ScriptedProxy",
    "Visit",
    "start_pproxy",
]
