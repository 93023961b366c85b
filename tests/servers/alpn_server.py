"""A TLS server that picks h2 by ALPN but has no extended CONNECT, and serves WebSockets on h1.

Many HTTP/2 servers are like this: they negotiate ``h2`` with any client
that offers it, never send SETTINGS_ENABLE_CONNECT_PROTOCOL, and take
WebSockets over HTTP/1.1 only.  A client that offers both must notice and
come back with ``http/1.1`` alone.

Each accepted connection is handed by the protocol ALPN chose to:

* ``h2``: the scripted HTTP/2 server of ``h2_scripted`` without extended CONNECT;
* ``http/1.1`` (or no ALPN): ``websocket_echo``, a WebSocket echo driven by
  the ``websockets`` package's sans-I/O ``ServerProtocol`` (text and binary
  messages echoed, pings and the closing handshake answered by the protocol
  itself); usable on its own as a scripted server's script.

``protocols`` records what ALPN chose for each connection, in order.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from .h2_scripted import _serve_connection


@dataclass
class AlpnServer:
    host: str
    port: int
    #: ALPN's choice for each connection ("" when the client offered none)
    protocols: list[str] = field(default_factory=list)


def websocket_echo(sock: socket.socket, seen: list[Frame] | None = None) -> None:
    """Serve one HTTP/1.1 WebSocket on ``sock``: echo messages, record every frame in ``seen``.

    Pings are answered and the closing handshake completed by ``ServerProtocol``.
    """
    protocol = ServerProtocol()
    while protocol.state is not State.CLOSED:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        for event in protocol.events_received():
            if isinstance(event, Request):
                protocol.send_response(protocol.accept(event))
            elif isinstance(event, Frame):
                if seen is not None:
                    seen.append(event)
                if event.fin and event.opcode is Opcode.TEXT:
                    protocol.send_text(event.data)
                elif event.fin and event.opcode is Opcode.BINARY:
                    protocol.send_binary(event.data)
        for chunk in protocol.data_to_send():
            if chunk:
                sock.sendall(chunk)
            else:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
        if not data:
            return


def _serve(
    raw: socket.socket, context: ssl.SSLContext, server: AlpnServer, live: list[socket.socket]
) -> None:
    with raw:
        try:
            sock = context.wrap_socket(raw, server_side=True)  # raw is detached from here on
        except (OSError, ssl.SSLError):
            return
        live.append(sock)
        with sock:
            chosen = sock.selected_alpn_protocol() or ""
            server.protocols.append(chosen)
            if chosen == "h2":
                _serve_connection(sock, False)
            else:
                websocket_echo(sock)


@contextlib.contextmanager
def alpn_server(context: ssl.SSLContext) -> Iterator[AlpnServer]:
    """Serve on 127.0.0.1 (port 0) until the block ends; ``context`` is a server context.

    The context's ALPN protocols are set here to ``h2`` then ``http/1.1``,
    so pass a context of the test's own, not a shared one.
    """
    context.set_alpn_protocols(["h2", "http/1.1"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    server = AlpnServer("127.0.0.1", listener.getsockname()[1])
    stopping = threading.Event()
    workers: list[threading.Thread] = []
    live: list[socket.socket] = []

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(10)
            worker = threading.Thread(target=_serve, args=(raw, context, server, live), daemon=True)
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        stopping.set()
        acceptor.join(5)
        listener.close()
        for sock in live:  # wakes a worker still reading; the plain shutdown, not TLS's
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for worker in workers:
            worker.join(5)


__all__ = ["AlpnServer", "alpn_server", "websocket_echo"]
