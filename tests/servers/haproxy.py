"""HAProxy as a real RFC 8441 front: HTTP/2 WebSockets in, HTTP/1.1 upgrades to a backend out.

HAProxy is what many deployments put in front of WebSocket servers, so a
client that speaks extended CONNECT must work through it, not only through
servers written for tests.  It runs as a child process on 127.0.0.1 with a
config written per fixture; ``./dev test`` installs the Debian package when
it is missing (as root), and ``require_haproxy`` skips the tests with the
reason elsewhere, except in CI where they must run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def require_haproxy() -> str:
    """The haproxy binary; a skip with the reason when it is missing (a failure in CI)."""
    binary = shutil.which("haproxy") or next(
        (path for path in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.path.exists(path)),
        None,
    )
    if binary is None:
        reason = (
            "haproxy is not installed (./dev test installs the Debian package when run as root)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the HAProxy tests")
        pytest.skip(reason)
    return binary


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(port: int, backend_port: int, pem: str | None, extended_connect: bool) -> str:
    bind = f"bind 127.0.0.1:{port} proto h2"
    if pem is not None:
        bind = f"bind 127.0.0.1:{port} ssl crt {pem} alpn h2,http/1.1"
    # The workaround option exists for clients that mishandle RFC 8441: it
    # stops HAProxy from announcing SETTINGS_ENABLE_CONNECT_PROTOCOL, which
    # makes it an h2 server without extended CONNECT that still serves
    # HTTP/1.1 WebSockets: what a client's fallback has to cope with.
    workaround = "" if extended_connect else "    h2-workaround-bogus-websocket-clients\n"
    return (
        "global\n"
        f"{workaround}"
        "defaults\n"
        "    mode http\n"
        "    timeout connect 5s\n"
        "    timeout client 1h\n"
        "    timeout server 1h\n"
        "    timeout tunnel 1h\n"
        "frontend websockets\n"
        f"    {bind}\n"
        "    default_backend echo\n"
        "backend echo\n"
        f"    server echo1 127.0.0.1:{backend_port}\n"
    )


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"haproxy exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"haproxy did not listen on {port} within {timeout}s")


@contextlib.contextmanager
def haproxy_front(
    backend_port: int,
    *,
    tls: tuple[str, str] | None = None,
    extended_connect: bool = True,
) -> Iterator[int]:
    """Run HAProxy on 127.0.0.1 in front of ``backend_port``; yields HAProxy's port.

    h2c (prior knowledge) by default; ``tls=(certfile, keyfile)`` serves TLS
    with ALPN h2 and http/1.1 instead.
    """
    binary = require_haproxy()
    with tempfile.TemporaryDirectory(prefix="mint-haproxy-") as folder:
        pem = None
        if tls is not None:
            pem = str(Path(folder) / "server.pem")
            Path(pem).write_bytes(Path(tls[0]).read_bytes() + Path(tls[1]).read_bytes())
        port = _free_port()
        config = Path(folder) / "haproxy.cfg"
        config.write_text(_config(port, backend_port, pem, extended_connect))
        process = subprocess.Popen(
            [binary, "-db", "-q", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_listening(port, process, 10.0)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


__all__ = ["haproxy_front", "require_haproxy"]
