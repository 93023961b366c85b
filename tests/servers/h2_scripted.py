"""A small HTTP/2 server on h2, for answers hypercorn never gives.

It can leave SETTINGS_ENABLE_CONNECT_PROTOCOL out (the default of most HTTP/2
servers), and its extended CONNECT streams end or reset on command, so tests
can check that one WebSocket's end leaves the others alone.

Paths of extended CONNECT streams:

* ``/end``   -> 200, one unmasked text frame "bye", then END_STREAM
* ``/reset`` -> 200, half of a text frame, then RST_STREAM(CANCEL)
* anything else -> 200; every DATA frame received is answered with the text frame "ok"
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

OK_FRAME = b"\x81\x02ok"
BYE_FRAME = b"\x81\x03bye"


def _send(sock: socket.socket, data: bytes) -> bool:
    """Write, or say the client is gone: a hang-up is the end of a connection, not an error."""
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def _serve_connection(sock: socket.socket, enable_connect_protocol: bool) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    if enable_connect_protocol:
        conn.update_settings({h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    if not _send(sock, conn.data_to_send()):
        return
    paths: dict[int, str] = {}
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                headers = {
                    (k.decode() if isinstance(k, bytes) else k): (
                        v.decode() if isinstance(v, bytes) else v
                    )
                    for k, v in event.headers
                }
                path = headers.get(":path", "/")
                paths[event.stream_id] = path
                if headers.get(":method") != "CONNECT":
                    conn.send_headers(event.stream_id, [(":status", "200")], end_stream=True)
                    continue
                conn.send_headers(event.stream_id, [(":status", "200")])
                if path == "/end":
                    conn.send_data(event.stream_id, BYE_FRAME, end_stream=True)
                elif path == "/reset":
                    conn.send_data(event.stream_id, BYE_FRAME[:3])
                    conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.CANCEL)
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.data and paths.get(event.stream_id) not in ("/end", "/reset"):
                    with contextlib.suppress(Exception):
                        conn.send_data(event.stream_id, OK_FRAME)
            elif isinstance(event, h2.events.StreamEnded):
                with contextlib.suppress(Exception):
                    conn.end_stream(event.stream_id)
        if not _send(sock, conn.data_to_send()):
            return


@contextlib.contextmanager
def h2_scripted_server(*, enable_connect_protocol: bool) -> Iterator[int]:
    """Serve connections on 127.0.0.1 (port 0) until the block ends; yield the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stopping = threading.Event()
    workers: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(10)
            sockets.append(sock)
            worker = threading.Thread(
                target=_serve_connection, args=(sock, enable_connect_protocol), daemon=True
            )
            worker.start()
            workers.append(worker)

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield port
    finally:
        stopping.set()
        acceptor.join(5)
        listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for worker in workers:
            worker.join(5)
