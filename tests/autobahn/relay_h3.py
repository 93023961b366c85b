"""An HTTP/3 relay that puts RFC 9220 in front of an HTTP/1.1-only WebSocket server.

The HTTP/3 twin of ``relay.H2WebSocketRelay``: it accepts extended CONNECT
streams (``:protocol websocket``) over QUIC, with aioquic's server API and a
throwaway ``trustme`` certificate, and for each opens a TCP connection to
the backend, performs an RFC 6455 upgrade for the same path, and then
shuttles bytes both ways.  The WebSocket frames pass through untouched.

What Autobahn checks about closes depends on timing, so nothing is held
back: the client's FIN reaches the backend as a TCP shutdown at once, a
reset as an abort, and the backend's EOF becomes the stream's FIN.  QUIC's
flow control towards the client is aioquic's (it buffers what the client's
windows do not take yet).

It runs an asyncio loop in a background thread, like the HTTP/2 relay; it
is test infrastructure, not part of mint.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset
from tests.autobahn.relay import _parse_response_head as parse_response_head
from tests.autobahn.relay import accept_key

_READ_SIZE = 65536
_RUNNING: set[asyncio.Task[None]] = set()
_MAX_RESPONSE_HEAD = 65536
_FORWARDED_REQUEST_HEADERS = ("sec-websocket-protocol", "sec-websocket-extensions", "origin")
_FORWARDED_RESPONSE_HEADERS = ("sec-websocket-protocol", "sec-websocket-extensions")


@dataclass(eq=False)
class _Tunnel:
    stream_id: int
    path: str
    request_headers: list[tuple[str, str]]
    #: Client bytes to write, or None for the client's FIN.
    to_backend: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    writer: asyncio.StreamWriter | None = None
    closed: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def abort(self) -> None:
        self.closed = True
        if self.writer is not None:
            self.writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class _RelayProtocol(QuicConnectionProtocol):
    """One QUIC connection from the client and its tunnels."""

    def __init__(self, *args: Any, backend: tuple[str, int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = H3Connection(self._quic)
        self._backend = backend
        self._tunnels: dict[int, _Tunnel] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self._http.handle_event(event):
            self._on_h3_event(h3_event)
        if isinstance(event, StreamReset):
            tunnel = self._tunnels.pop(event.stream_id, None)
            if tunnel is not None:
                tunnel.abort()
        elif isinstance(event, ConnectionTerminated):
            for tunnel in self._tunnels.values():
                tunnel.abort()
            self._tunnels.clear()

    def _on_h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            headers = [
                (name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers
            ]
            fields = dict(headers)
            if fields.get(":method") != "CONNECT" or fields.get(":protocol") != "websocket":
                self._respond(event.stream_id, 400)
                return
            forwarded = [(n, v) for n, v in headers if n in _FORWARDED_REQUEST_HEADERS]
            tunnel = _Tunnel(event.stream_id, fields.get(":path", "/"), forwarded)
            self._tunnels[event.stream_id] = tunnel
            self._start(tunnel, self._run_tunnel(tunnel))
        elif isinstance(event, DataReceived):
            found = self._tunnels.get(event.stream_id)
            if found is None:
                return
            if event.data:
                found.to_backend.put_nowait(event.data)
            if event.stream_ended:
                found.to_backend.put_nowait(None)

    def _respond(self, stream_id: int, status: int) -> None:
        with contextlib.suppress(Exception):  # the stream may be gone already
            self._http.send_headers(
                stream_id, [(b":status", str(status).encode())], end_stream=True
            )
        self.transmit()

    def _start(self, tunnel: _Tunnel, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        tunnel.tasks.add(task)
        task.add_done_callback(tunnel.tasks.discard)
        # A strong reference until it ends: a forgotten tunnel must not drop a running task.
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)

    async def _run_tunnel(self, tunnel: _Tunnel) -> None:
        try:
            reader = await self._open_backend(tunnel)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self._respond(tunnel.stream_id, 502)
            self._tunnels.pop(tunnel.stream_id, None)
            return
        if reader is None:
            return
        self._start(tunnel, self._pump_to_backend(tunnel))
        await self._pump_to_client(tunnel, reader)

    async def _open_backend(self, tunnel: _Tunnel) -> asyncio.StreamReader | None:
        host, port = self._backend
        reader, writer = await asyncio.open_connection(host, port, limit=_MAX_RESPONSE_HEAD)
        tunnel.writer = writer
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = [
            f"GET {tunnel.path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        lines += [f"{name}: {value}" for name, value in tunnel.request_headers]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status, headers = parse_response_head(head)
        if status != 101:
            writer.transport.abort()
            self._respond(tunnel.stream_id, status)
            self._tunnels.pop(tunnel.stream_id, None)
            return None
        if [v for n, v in headers if n == "sec-websocket-accept"] != [accept_key(key)]:
            raise ValueError("the backend answered a wrong Sec-WebSocket-Accept")
        response = [(b":status", b"200")]
        response += [
            (name.encode(), value.encode("latin-1"))
            for name, value in headers
            if name in _FORWARDED_RESPONSE_HEADERS
        ]
        self._http.send_headers(tunnel.stream_id, response)
        self.transmit()
        return reader

    async def _pump_to_backend(self, tunnel: _Tunnel) -> None:
        writer = tunnel.writer
        assert writer is not None
        while True:
            item = await tunnel.to_backend.get()
            try:
                if item is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(item)
                await writer.drain()
            except (ConnectionError, OSError):
                return

    async def _pump_to_client(self, tunnel: _Tunnel, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while not tunnel.closed:
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                self._send(tunnel, data, end=False)
        if not tunnel.closed:
            self._send(tunnel, b"", end=True)
        self._tunnels.pop(tunnel.stream_id, None)
        # The backend hung up (the fuzzing server closes both ways): nothing more to write.
        current = asyncio.current_task()
        for task in list(tunnel.tasks):
            if task is not current:
                task.cancel()
        if tunnel.writer is not None:
            tunnel.writer.close()

    def _send(self, tunnel: _Tunnel, data: bytes, *, end: bool) -> None:
        try:
            self._http.send_data(tunnel.stream_id, data, end_stream=end)
        except Exception:  # the client reset the stream meanwhile
            tunnel.abort()
            return
        self.transmit()


class H3WebSocketRelay:
    """The relay on 127.0.0.1 (UDP, OS-chosen port); ``cafile`` is what to trust.

    ``backend`` is the HTTP/1.1 WebSocket server every stream is relayed to.
    """

    def __init__(self, backend_host: str, backend_port: int) -> None:
        self._backend = (backend_host, backend_port)
        self._folder = Path(tempfile.mkdtemp(prefix="mint-h3-relay-"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: QuicServer | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.cafile = str(self._folder / "ca.pem")

    def _configuration(self) -> QuicConfiguration:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(self.cafile)
        cert, key = self._folder / "cert.pem", self._folder / "key.pem"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(cert), append=True)
        leaf.private_key_pem.write_to_path(str(key))
        configuration = QuicConfiguration(
            is_client=False,
            alpn_protocols=list(H3_ALPN),
            max_data=64 << 20,
            max_datagram_size=16384,  # loopback: fewer, larger packets (see client.py)
        )
        configuration.load_cert_chain(str(cert), str(key))
        return configuration

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []
        configuration = self._configuration()
        backend = self._backend

        def factory(*args: Any, **kwargs: Any) -> _RelayProtocol:
            return _RelayProtocol(*args, backend=backend, **kwargs)

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    serve(self.host, 0, configuration=configuration, create_protocol=factory)
                )
                transport = self._server._transport
                assert transport is not None
                self.port = transport.get_extra_info("sockname")[1]
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="h3-websocket-relay", daemon=True)
        self._thread.start()
        if not started.wait(timeout=10) or failure:
            raise RuntimeError(f"the HTTP/3 relay did not start: {failure}")

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def __enter__(self) -> H3WebSocketRelay:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["H3WebSocketRelay"]
