"""An h2c relay that puts RFC 8441 in front of an HTTP/1.1-only WebSocket server.

The Autobahn fuzzing server speaks HTTP/1.1 only.  To test mint's HTTP/2 path
against it, this relay accepts extended CONNECT streams (``:protocol
websocket``) and, for each, opens a TCP connection to the backend, performs an
RFC 6455 upgrade for the same path, and then shuttles bytes both ways.  The
WebSocket frames themselves pass through untouched: masking and framing are
end to end between mint and the fuzzing server.

What Autobahn checks about closes depends on timing, so the relay never holds
more than it must: backend bytes are read only while the client's HTTP/2
window (plus one read's worth) can take them, client DATA is acknowledged only
once written to the backend, and a client END_STREAM or RST_STREAM reaches the
backend as a TCP shutdown at once.

It runs an asyncio loop in a background thread so tests can use it from
blocking code; it is test infrastructure, not part of mint.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

_WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Bytes read from the backend per read, and the most queued for the client
#: beyond what its flow-control window takes right now.
_READ_SIZE = 65536
#: The longest HTTP/1.1 response head accepted from the backend.
_MAX_RESPONSE_HEAD = 65536
#: Request headers forwarded from the CONNECT to the backend's upgrade.
_FORWARDED_REQUEST_HEADERS = ("sec-websocket-protocol", "sec-websocket-extensions", "origin")
#: Response headers forwarded from the backend's 101 to the client's 200.
_FORWARDED_RESPONSE_HEADERS = ("sec-websocket-protocol", "sec-websocket-extensions")


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value a server must answer for ``key`` (RFC 6455 4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + _WEBSOCKET_GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def _parse_response_head(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    """Status code and lowercase headers of an HTTP/1.1 response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ValueError(f"bad status line from the backend: {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad header line from the backend: {line!r}")
        headers.append((name.strip().lower(), value.strip()))
    return int(parts[1]), headers


@dataclass(eq=False)
class _Tunnel:
    """One extended CONNECT stream and the backend TCP connection behind it."""

    stream_id: int
    path: str
    request_headers: list[tuple[str, str]]
    #: Client DATA to write (bytes), flow-control credit to return once the
    #: bytes before it are written (int), or the client's END_STREAM (None).
    to_backend: asyncio.Queue[bytes | int | None] = field(default_factory=asyncio.Queue)
    to_client: bytearray = field(default_factory=bytearray)
    #: Set whenever the client-bound buffer has room again.
    client_room: asyncio.Event = field(default_factory=asyncio.Event)
    backend_writer: asyncio.StreamWriter | None = None
    backend_eof: bool = False
    end_sent: bool = False
    closed: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def abort_backend(self) -> None:
        self.closed = True
        if self.backend_writer is not None:
            self.backend_writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class _ClientConnection:
    """One HTTP/2 client connection to the relay and all its tunnels."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        backend: tuple[str, int],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._backend = backend
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self._h2 = h2.connection.H2Connection(config=config)
        self._tunnels: dict[int, _Tunnel] = {}
        # Strong references: a tunnel may be forgotten while its tasks still run.
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        # In the first SETTINGS frame, not a later update: clients decide from
        # that one whether extended CONNECT is available.
        initial: dict[h2.settings.SettingCodes, int] = {
            h2.settings.SettingCodes(code): value for code, value in self._h2.local_settings.items()
        }
        initial[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
        self._h2.local_settings = h2.settings.Settings(client=False, initial_values=initial)
        self._h2.initiate_connection()
        self._flush_h2()
        try:
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    break
                try:
                    events = self._h2.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self._flush_h2()
                    break
                for event in events:
                    self._handle(event)
                self._flush_h2()
        except (ConnectionError, OSError):
            pass
        finally:
            for tunnel in list(self._tunnels.values()):
                tunnel.abort_backend()
            self._tunnels.clear()
            self._writer.transport.abort()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _flush_h2(self) -> None:
        data = self._h2.data_to_send()
        if data and not self._writer.transport.is_closing():
            self._writer.write(data)

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._on_request(event.stream_id, event.headers or [])
        elif isinstance(event, h2.events.DataReceived):
            tunnel = self._tunnels.get(event.stream_id)
            if tunnel is None or tunnel.closed:
                self._acknowledge(event.stream_id, event.flow_controlled_length)
            else:
                tunnel.to_backend.put_nowait(event.data or b"")
                tunnel.to_backend.put_nowait(event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded):
            tunnel = self._tunnels.get(event.stream_id)
            if tunnel is not None:
                tunnel.to_backend.put_nowait(None)
        elif isinstance(event, h2.events.StreamReset):
            tunnel = self._tunnels.pop(event.stream_id, None)
            if tunnel is not None:
                tunnel.abort_backend()
        elif isinstance(event, h2.events.WindowUpdated):
            if event.stream_id == 0:
                for tunnel in list(self._tunnels.values()):
                    self._send_to_client(tunnel)
            elif event.stream_id in self._tunnels:
                self._send_to_client(self._tunnels[event.stream_id])
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            for tunnel in list(self._tunnels.values()):
                self._send_to_client(tunnel)
        elif isinstance(event, h2.events.ConnectionTerminated):
            for tunnel in list(self._tunnels.values()):
                tunnel.abort_backend()
            self._tunnels.clear()

    def _acknowledge(self, stream_id: int, length: int) -> None:
        if length <= 0:
            return
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._h2.acknowledge_received_data(length, stream_id)
        self._flush_h2()

    def _respond(self, stream_id: int, status: int, end_stream: bool = True) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._h2.send_headers(stream_id, [(":status", str(status))], end_stream=end_stream)
        self._flush_h2()

    def _on_request(self, stream_id: int, raw_headers: Iterable[tuple[bytes, bytes]]) -> None:
        headers = [
            (bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1"))
            for name, value in raw_headers
        ]
        pseudo = {name: value for name, value in headers if name.startswith(":")}
        if pseudo.get(":method") != "CONNECT" or pseudo.get(":protocol") != "websocket":
            self._respond(stream_id, 400 if pseudo.get(":method") == "CONNECT" else 404)
            return
        tunnel = _Tunnel(
            stream_id=stream_id,
            path=pseudo.get(":path", "/"),
            request_headers=[
                (name, value) for name, value in headers if name in _FORWARDED_REQUEST_HEADERS
            ],
        )
        self._tunnels[stream_id] = tunnel
        self._start_task(tunnel, self._run_tunnel(tunnel))

    def _start_task(self, tunnel: _Tunnel, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        for owner in (tunnel.tasks, self._tasks):
            owner.add(task)
            task.add_done_callback(owner.discard)

    async def _run_tunnel(self, tunnel: _Tunnel) -> None:
        try:
            reader = await self._open_backend(tunnel)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self._respond(tunnel.stream_id, 502)
            self._forget(tunnel)
            return
        if reader is None:
            return
        self._start_task(tunnel, self._pump_to_backend(tunnel))
        await self._pump_to_client(tunnel, reader)

    async def _open_backend(self, tunnel: _Tunnel) -> asyncio.StreamReader | None:
        """Upgrade a fresh backend connection; None when the backend refused (already answered)."""
        host, port = self._backend
        reader, writer = await asyncio.open_connection(host, port, limit=_MAX_RESPONSE_HEAD)
        tunnel.backend_writer = writer
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
        # readuntil leaves any bytes after the head (early frames) in the reader.
        head = await reader.readuntil(b"\r\n\r\n")
        status, headers = _parse_response_head(head)
        if status != 101:
            writer.transport.abort()
            self._respond(tunnel.stream_id, status)
            self._forget(tunnel)
            return None
        accepts = [value for name, value in headers if name == "sec-websocket-accept"]
        if accepts != [accept_key(key)]:
            raise ValueError("the backend answered a wrong Sec-WebSocket-Accept")
        response = [(":status", "200")]
        response += [
            (name, value) for name, value in headers if name in _FORWARDED_RESPONSE_HEADERS
        ]
        try:
            self._h2.send_headers(tunnel.stream_id, response)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            tunnel.abort_backend()
            self._forget(tunnel)
            return None
        self._flush_h2()
        return reader

    async def _pump_to_backend(self, tunnel: _Tunnel) -> None:
        """Client DATA -> backend TCP; END_STREAM -> shut down the backend's write side.

        A failed write (the backend reset the connection) ends the writing
        only: the reading side still sees the reset and ends the stream, so
        the client learns that the server closed, as it would over TCP.
        """
        writer = tunnel.backend_writer
        assert writer is not None
        writable = True
        while True:
            item = await tunnel.to_backend.get()
            try:
                if item is None:
                    if writable and writer.can_write_eof():
                        writer.write_eof()
                    return
                if isinstance(item, int):
                    # Credit goes back only once the backend took the bytes, so a
                    # slow backend slows the client instead of growing a buffer here.
                    if writable:
                        await writer.drain()
                    self._acknowledge(tunnel.stream_id, item)
                elif item and writable:
                    writer.write(item)
            except (ConnectionError, OSError):
                writable = False
                if isinstance(item, int):
                    self._acknowledge(tunnel.stream_id, item)

    async def _pump_to_client(self, tunnel: _Tunnel, reader: asyncio.StreamReader) -> None:
        """Backend TCP -> client DATA within flow control; backend EOF -> END_STREAM."""
        try:
            while not tunnel.closed:
                while len(tunnel.to_client) >= _READ_SIZE and not tunnel.closed:
                    tunnel.client_room.clear()
                    await tunnel.client_room.wait()
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                tunnel.to_client += data
                self._send_to_client(tunnel)
        except (ConnectionError, OSError):
            pass
        tunnel.backend_eof = True
        self._send_to_client(tunnel)

    def _send_to_client(self, tunnel: _Tunnel) -> None:
        if tunnel.closed:
            return
        try:
            while tunnel.to_client:
                window = self._h2.local_flow_control_window(tunnel.stream_id)
                size = min(window, self._h2.max_outbound_frame_size, len(tunnel.to_client))
                if size <= 0:
                    break
                self._h2.send_data(tunnel.stream_id, bytes(tunnel.to_client[:size]))
                del tunnel.to_client[:size]
            if not tunnel.to_client and tunnel.backend_eof and not tunnel.end_sent:
                tunnel.end_sent = True
                self._h2.end_stream(tunnel.stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            tunnel.to_client.clear()
            tunnel.abort_backend()
            self._forget(tunnel)
        if len(tunnel.to_client) < _READ_SIZE:
            tunnel.client_room.set()
        self._flush_h2()
        if tunnel.end_sent and tunnel.backend_eof:
            self._forget_when_done(tunnel)

    def _forget_when_done(self, tunnel: _Tunnel) -> None:
        """Drop a tunnel both of whose directions are finished."""
        stream = self._h2.streams.get(tunnel.stream_id)
        if stream is None or stream.closed:
            self._forget(tunnel)

    def _forget(self, tunnel: _Tunnel) -> None:
        if self._tunnels.get(tunnel.stream_id) is tunnel:
            del self._tunnels[tunnel.stream_id]


class H2WebSocketRelay:
    """The relay, on 127.0.0.1 with an OS-chosen port; use as a context manager.

    ``backend`` is the HTTP/1.1 WebSocket server every stream is relayed to.
    """

    def __init__(self, backend_host: str, backend_port: int) -> None:
        self._backend = (backend_host, backend_port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.host = "127.0.0.1"
        self.port = 0

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._accept, self.host, 0)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="h2-websocket-relay", daemon=True)
        self._thread.start()
        if not started.wait(timeout=10) or failure:
            raise RuntimeError(f"the relay did not start: {failure}")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await _ClientConnection(reader, writer, self._backend).serve()
        except asyncio.CancelledError:
            # Stopping the relay cancels this task; asyncio's stream server would
            # log a cancelled handler as an error, so end it normally instead.
            writer.transport.abort()
        finally:
            self._connections.discard(task)

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

    def __enter__(self) -> H2WebSocketRelay:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
