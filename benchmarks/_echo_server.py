"""The hypercorn WebSocket echo server of the end-to-end benchmark, run in its own process.

The server lives in a child process so that its CPU time never lands in the
client's ``time.process_time()``: the benchmark measures what a client costs,
and on a 2-core machine the server gets the other core.

The app is written here rather than borrowed from ``tests/servers`` so that a
change to the test fixtures cannot silently change what the benchmark measures.

Compression is switched off on the server side: niquests always offers
permessage-deflate and hypercorn always accepts it, which would make niquests
compress every message while mint and websockets (which offer nothing here)
send them plain; declining on the server keeps every client doing the same
work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_READY_TIMEOUT = 20.0

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI app: accept every WebSocket and send each message back unchanged."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message.get("text") or ""})


def _decline_permessage_deflate() -> None:
    """Make hypercorn answer every permessage-deflate offer with "no"."""
    from hypercorn.protocol import ws_stream
    from wsproto.extensions import PerMessageDeflate

    class NoDeflate(PerMessageDeflate):
        def accept(self, offer: str) -> None:
            return None

    ws_stream.PerMessageDeflate = NoDeflate  # type: ignore[attr-defined]


def _widen_http2_windows(size: int) -> None:
    """Make hypercorn's HTTP/2 receive windows ``size`` bytes instead of 65,535.

    hypercorn keeps RFC 9113's default windows and gives them back 32 KiB at a
    time, so a 1 MiB upload waits for some 32 WINDOW_UPDATE round trips that
    an HTTP/1.1 upload never pays.  A server with wide windows shows what the
    client itself costs per message over HTTP/2.
    """
    import h2.settings
    from hypercorn.protocol import h2 as hypercorn_h2

    original_init = hypercorn_h2.H2Protocol.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        connection = self.connection
        values = dict(connection.local_settings.items())
        values[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = size
        connection.local_settings = h2.settings.Settings(client=False, initial_values=values)
        initiate = connection.initiate_connection

        def initiate_connection() -> None:
            initiate()
            # SETTINGS cover streams; the connection window takes a WINDOW_UPDATE.
            connection.increment_flow_control_window(size - 65_535)

        connection.initiate_connection = initiate_connection

    hypercorn_h2.H2Protocol.__init__ = init  # type: ignore[method-assign]


async def _serve(sock: socket.socket, certfile: str | None) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.errorlog = None
    config.websocket_max_message_size = 64 * 2**20
    if certfile is not None:
        config.certfile = certfile
        config.keyfile = certfile
        config.alpn_protocols = ["h2", "http/1.1"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await serve(echo_app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--certfile", help="PEM with certificate chain and key: serve TLS")
    parser.add_argument("--window", type=int, help="HTTP/2 receive windows, in bytes")
    args = parser.parse_args()
    _decline_permessage_deflate()
    if args.window is not None:
        _widen_http2_windows(args.window)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    asyncio.run(_serve(sock, args.certfile))


# -- the parent's side -----------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """Where the trustme CA and the server's certificate were written."""

    ca_file: str
    server_pem: str


@contextmanager
def certificates() -> Iterator[Certificates]:
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    with tempfile.TemporaryDirectory(prefix="mint-bench-") as folder:
        ca_file = os.path.join(folder, "ca.pem")
        server_pem = os.path.join(folder, "server.pem")
        ca.cert_pem.write_to_path(ca_file)
        cert.private_key_and_cert_chain_pem.write_to_path(server_pem)
        yield Certificates(ca_file=ca_file, server_pem=server_pem)


@contextmanager
def echo_server(certfile: str | None = None, *, window: int | None = None) -> Iterator[int]:
    """Start the echo server in a child process; yield its port; stop it."""
    command = [sys.executable, os.path.abspath(__file__)]
    if certfile is not None:
        command += ["--certfile", certfile]
    if window is not None:
        command += ["--window", str(window)]
    # hypercorn logs a traceback when a client drops an HTTP/2 stream it already
    # forgot (niquests does, on close); that noise is not the benchmark's business.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        port = _read_port(process)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def _read_port(process: subprocess.Popen[str]) -> int:
    """The first line the child prints is its port; don't wait for it forever."""
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(_READY_TIMEOUT):
            raise RuntimeError("the echo server did not start in time")
    line = process.stdout.readline().strip()
    if not line.isdigit():
        raise RuntimeError(f"the echo server failed to start (said {line!r})")
    return int(line)


if __name__ == "__main__":
    _main()
