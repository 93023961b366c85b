"""HAProxy as a real RFC 8441 front: HTTP/2 WebSockets in, HTTP/1.1 upgrades to a backend out.

HAProxy is what many deployments put in front of WebSocket servers, so a
client that speaks extended CONNECT must work through it, not only through
servers written for tests.  It runs as a child process on 127.0.0.1 with a
config written per fixture; ``./dev test`` installs the Debian package when
it is missing (as root), and ``require_haproxy`` skips the tests with the
reason elsewhere, except in CI where they must run.

Typical use, with a ``websockets`` echo server as the backend::

    with websockets_echo_server() as backend, haproxy_front(backend.port) as port:
        conn = http.connect("http", "127.0.0.1", port, protocols=("http2",))
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Where Debian puts the binary: not on a non-root user's PATH, yet runnable by them.
_SBIN_PATHS = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")


def require_haproxy() -> str:
    """The haproxy binary; a skip with the reason when it is missing (a failure in CI).

    CI must never pass by skipping: a missing HAProxy there means the install
    step broke, and the tests that would have caught a regression did not run.
    """
    binary = shutil.which("haproxy") or next(
        (path for path in _SBIN_PATHS if os.access(path, os.X_OK)), None
    )
    if binary is None:
        reason = (
            "haproxy is not installed (./dev test installs the Debian package when run as root)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true, so the HAProxy tests must run")
        pytest.skip(reason)
    return binary


def _free_port() -> int:
    # HAProxy binds its address itself: a port the kernel just handed out and
    # took back is one no other listener holds (a rare race is retried below).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(port: int, backend_port: int, pem: str | None, extended_connect: bool) -> str:
    bind = f"bind 127.0.0.1:{port} proto h2"  # h2c by prior knowledge, as RFC 8441 clients do
    if pem is not None:
        bind = f"bind 127.0.0.1:{port} ssl crt {pem} alpn h2,http/1.1"
    # The workaround option exists for clients that mishandle RFC 8441: it
    # stops HAProxy from announcing SETTINGS_ENABLE_CONNECT_PROTOCOL (checked
    # on 2.6 on the wire: the setting is gone from its SETTINGS frame), which
    # makes it an h2 server without extended CONNECT that still serves
    # HTTP/1.1 WebSockets: what a client's fallback has to cope with.
    workaround = "" if extended_connect else "    h2-workaround-bogus-websocket-clients\n"
    # Timeouts are long so a slow test machine never sees HAProxy cut a
    # tunnel; the tests bound their own waits.  No "log" line: nothing to say.
    return (
        "global\n"
        f"{workaround}"
        "defaults\n"
        "    mode http\n"
        "    timeout connect 10s\n"
        "    timeout client 1h\n"
        "    timeout server 1h\n"
        "    timeout tunnel 1h\n"
        "frontend websockets\n"
        f"    {bind}\n"
        "    default_backend echo\n"
        "backend echo\n"
        f"    server echo1 127.0.0.1:{backend_port}\n"
    )


class _BindRace(Exception):
    """Another process took the port between ``_free_port`` and HAProxy's bind."""


#: The client connection preface and an empty SETTINGS frame (RFC 9113, 3.4).
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _answers_h2(port: int, tls: bool) -> bool:
    """Whether an HTTP/2 server (HAProxy, not a stray listener) serves ``port`` yet.

    A mere connect is not proof: if another process took the port, the
    connect succeeds into that listener's backlog while HAProxy dies of the
    failed bind.  HAProxy answers the preface with SETTINGS (h2c) or picks
    h2 by ALPN (TLS); a listener that is not an h2 server does neither.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # who signed it is the tests' business
                context.set_alpn_protocols(["h2"])
                with context.wrap_socket(sock) as tls_sock:
                    return tls_sock.selected_alpn_protocol() == "h2"
            sock.sendall(_H2_PREFACE)
            head = sock.recv(9)
            return len(head) > 3 and head[3] == 0x4  # a SETTINGS frame
    except OSError:  # refused, timed out, TLS failed: not (yet) HAProxy
        return False


def _wait_listening(
    port: int, tls: bool, process: subprocess.Popen[bytes], stderr: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = stderr.read_text(errors="replace").strip()
            if "cannot bind socket" in said:
                raise _BindRace(said)
            raise RuntimeError(f"haproxy exited with {process.returncode}:\n{said}")
        if _answers_h2(port, tls):
            return
        time.sleep(0.02)
    raise RuntimeError(f"haproxy did not listen on 127.0.0.1:{port} within {timeout}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM is HAProxy's hard stop: open tunnels are cut, which is what a
    # finished test wants; SIGKILL only if it hangs.
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextlib.contextmanager
def haproxy_front(
    backend_port: int,
    *,
    tls: tuple[str, str] | None = None,
    extended_connect: bool = True,
) -> Iterator[int]:
    """Run HAProxy on 127.0.0.1 in front of ``backend_port``; yields HAProxy's port.

    h2c (prior knowledge) by default; ``tls=(certfile, keyfile)`` serves TLS
    with ALPN h2 and http/1.1 instead.  ``extended_connect=False`` keeps
    HTTP/2 but withholds RFC 8441, to test a client's fallback to HTTP/1.1.
    The backend is spoken to over HTTP/1.1 (an Upgrade per WebSocket).
    """
    binary = require_haproxy()
    with tempfile.TemporaryDirectory(prefix="mint-haproxy-") as folder:
        pem = None
        if tls is not None:
            # HAProxy's "crt" takes the chain and the key in one file.
            certfile, keyfile = tls
            pem = str(Path(folder) / "server.pem")
            chain = Path(certfile).read_bytes().rstrip(b"\n") + b"\n"
            Path(pem).write_bytes(chain + Path(keyfile).read_bytes())
        config = Path(folder) / "haproxy.cfg"
        stderr = Path(folder) / "stderr.log"  # shown only when HAProxy fails to start
        for attempt in range(5):
            port = _free_port()
            config.write_text(_config(port, backend_port, pem, extended_connect))
            with stderr.open("wb") as sink:
                process = subprocess.Popen(
                    [binary, "-f", str(config), "-db"],
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=sink,
                    cwd=folder,
                )
            try:
                _wait_listening(port, tls is not None, process, stderr, 10.0)
            except _BindRace:
                _stop(process)
                if attempt == 4:
                    raise
                continue
            except BaseException:
                _stop(process)
                raise
            break
        try:
            yield port
        finally:
            _stop(process)


__all__ = ["haproxy_front", "require_haproxy"]
