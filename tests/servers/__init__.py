"""Real servers for integration tests, started on 127.0.0.1 with an OS-chosen port.

``start_hypercorn()`` runs hypercorn (HTTP/1.1, h2c by prior knowledge or
Upgrade, HTTP/2 over TLS with ALPN, RFC 8441 WebSockets) in a background
thread with its own event loop and returns at once: the listening socket is
bound and listening before hypercorn starts, so clients may connect
immediately (the kernel queues them).  Typical fixture::

    @pytest.fixture
    def server() -> Iterator[RunningServer]:
        running = start_hypercorn()
        yield running
        running.stop()
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import Framework

from .hypercorn_app import app as default_app
from .hypercorn_app import pattern

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@dataclass
class RunningServer:
    host: str
    port: int
    scheme: str  # "http" or "https"
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _shutdown: asyncio.Event = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask hypercorn to shut down and wait for its thread (bounded by ``timeout``)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._shutdown.set)
            self._thread.join(timeout)


def start_hypercorn(
    app: ASGIApp = default_app,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
    config: Config | None = None,
) -> RunningServer:
    """Start hypercorn on 127.0.0.1, port 0; TLS (ALPN h2, http/1.1) when cert and key are given.

    ``config`` lets a test tune hypercorn (say, ``h2_max_concurrent_streams``);
    its bind addresses and TLS files are overwritten here.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]

    cfg = config if config is not None else Config()
    cfg.bind = [f"fd://{listener.detach()}"]  # hypercorn owns the socket from here on
    cfg.insecure_bind = []
    cfg.certfile = certfile
    cfg.keyfile = keyfile
    cfg.graceful_timeout = 1.0
    cfg.accesslog = None
    cfg.loglevel = "WARNING"
    scheme = "https" if certfile and keyfile else "http"

    loop = asyncio.new_event_loop()
    shutdown = asyncio.Event()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(_serve(app, cfg, shutdown, started))
        finally:
            started.set()
            loop.close()

    thread = threading.Thread(target=run, name=f"hypercorn-{port}", daemon=True)
    thread.start()
    started.wait(10.0)
    return RunningServer("127.0.0.1", port, scheme, loop, shutdown, thread)


async def _serve(
    app: ASGIApp, config: Config, shutdown: asyncio.Event, started: threading.Event
) -> None:
    started.set()
    await serve(cast(Framework, app), config, shutdown_trigger=shutdown.wait, mode="asgi")


__all__ = ["RunningServer", "pattern", "start_hypercorn"]
