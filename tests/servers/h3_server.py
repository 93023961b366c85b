"""An HTTP/3 WebSocket echo server (RFC 9220) on aioquic's server API, and a lossy UDP relay.

Both run on an asyncio loop in a background thread of the test process, on
127.0.0.1 with port 0.  The WebSocket framing on the server side is
wsproto's (its sans-I/O ``Connection`` without a handshake), so the server
shares no code with the client it tests.

Paths: any path echoes every message (fragments as they arrive), answers
pings and the Close; ``/forbidden`` answers 403; ``/reset`` accepts, then
resets the stream with H3_REQUEST_CANCELLED; ``/flood/N`` accepts, sends N
binary messages of 4 KiB at once (numbered: the first 4 bytes are the index),
then echoes; ``/goaway`` accepts and echoes, and sends GOAWAY naming the next
request stream, whose requests (and later ones) it then leaves unanswered; a
plain GET answers ``hello``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer, serve
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import (
    H3_ALPN,
    ErrorCode,
    FrameType,
    H3Connection,
    Setting,
    encode_frame,
)
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent
from wsproto.connection import Connection as WSConnection
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

#: Each message ``/flood/N`` sends, in bytes.
FLOOD_SIZE = 4096


@dataclass
class H3ServerState:
    """What the server saw, for the tests to check."""

    #: request headers of each WebSocket handshake (pseudo-headers included)
    handshakes: list[dict[str, str]] = field(default_factory=list)
    close_codes: list[int] = field(default_factory=list)
    #: QUIC connections accepted so far
    connections: int = 0
    #: datagrams the lossy relay dropped (both ways)
    dropped: int = 0


@dataclass
class RunningH3Server:
    host: str
    port: int
    state: H3ServerState


class _NoConnectProtocolH3(H3Connection):
    """A server that leaves SETTINGS_ENABLE_CONNECT_PROTOCOL out of its SETTINGS."""

    def _get_local_settings(self) -> dict[int, int]:
        settings = super()._get_local_settings()
        settings.pop(Setting.ENABLE_CONNECT_PROTOCOL, None)
        return settings


class _EchoProtocol(QuicConnectionProtocol):
    def __init__(
        self, *args: Any, state: H3ServerState, enable_connect: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        kind = H3Connection if enable_connect else _NoConnectProtocolH3
        self._http = kind(self._quic)
        self._state = state
        self._sockets: dict[int, WSConnection] = {}
        self._ended: set[int] = set()
        #: After ``/goaway``: requests on streams from this ID on are not processed.
        self._goaway_from: int | None = None
        state.connections += 1

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self._http.handle_event(event):
            self._on_h3_event(h3_event)

    def _on_h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            self._on_headers(event)
        elif isinstance(event, DataReceived):
            self._on_data(event)

    def _on_headers(self, event: HeadersReceived) -> None:
        headers = {name.decode(): value.decode() for name, value in event.headers}
        stream_id = event.stream_id
        if self._goaway_from is not None and stream_id >= self._goaway_from:
            return  # RFC 9114 section 5.2: not processed (the client may retry elsewhere)
        if headers.get(":method") != "CONNECT":
            self._http.send_headers(
                stream_id, [(b":status", b"200"), (b"content-type", b"text/plain")]
            )
            self._http.send_data(stream_id, b"hello", end_stream=True)
            return
        if headers.get(":protocol") != "websocket":
            self._http.send_headers(stream_id, [(b":status", b"400")], end_stream=True)
            return
        self._state.handshakes.append(headers)
        path = headers.get(":path", "/")
        if path.startswith("/forbidden"):
            self._http.send_headers(
                stream_id, [(b":status", b"403"), (b"x-why", b"forbidden")], end_stream=True
            )
            return
        self._http.send_headers(stream_id, [(b":status", b"200")])
        if path.startswith("/reset"):
            self._quic.reset_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
            return
        ws = self._sockets[stream_id] = WSConnection(ConnectionType.SERVER)
        if path.startswith("/goaway"):
            self._goaway_from = stream_id + 4  # the next client-initiated bidirectional stream
            control = self._http._local_control_stream_id  # aioquic sends no GOAWAY itself
            assert control is not None
            goaway = encode_frame(FrameType.GOAWAY, encode_uint_var(self._goaway_from))
            self._quic.send_stream_data(control, goaway)
        if path.startswith("/flood/"):
            count = int(path.rsplit("/", 1)[1])
            flood = b"".join(
                ws.send(BytesMessage(data=index.to_bytes(4, "big") + bytes(FLOOD_SIZE - 4)))
                for index in range(count)
            )
            self._http.send_data(stream_id, flood, end_stream=False)

    def _on_data(self, event: DataReceived) -> None:
        stream_id = event.stream_id
        ws = self._sockets.get(stream_id)
        if ws is None or stream_id in self._ended:
            return
        ws.receive_data(event.data)
        out = bytearray()
        end = False
        for ws_event in ws.events():
            if isinstance(ws_event, (TextMessage, BytesMessage)):
                out += ws.send(
                    type(ws_event)(
                        data=ws_event.data,  # type: ignore[arg-type]
                        message_finished=ws_event.message_finished,
                    )
                )
            elif isinstance(ws_event, Ping):
                out += ws.send(ws_event.response())
            elif isinstance(ws_event, CloseConnection):
                self._state.close_codes.append(ws_event.code)
                out += ws.send(ws_event.response())
                end = True
        if event.stream_ended:
            end = True
        if out or end:
            self._http.send_data(stream_id, bytes(out), end_stream=end)
        if end:
            self._ended.add(stream_id)
            self._sockets.pop(stream_id, None)


class _LossyRelay(asyncio.DatagramProtocol):
    """Forwards datagrams between one client and the server, dropping a seeded fraction."""

    def __init__(
        self, target: tuple[str, int], drop: float, seed: int, state: H3ServerState
    ) -> None:
        self._target = target
        self._state = state
        self._drop = drop
        self._random = random.Random(seed)
        self._client: tuple[str, int] | None = None
        self._front: asyncio.DatagramTransport | None = None
        self._back: asyncio.DatagramTransport | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        front, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        back, _ = await loop.create_datagram_endpoint(lambda: _Back(self), remote_addr=self._target)
        self._front, self._back = front, back
        port: int = front.get_extra_info("sockname")[1]
        return port

    def _lost(self) -> bool:
        if self._random.random() < self._drop:
            self._state.dropped += 1
            return True
        return False

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._client = addr
        if not self._lost() and self._back is not None:
            self._back.sendto(data)

    def from_server(self, data: bytes) -> None:
        if not self._lost() and self._front is not None and self._client is not None:
            self._front.sendto(data, self._client)

    def close(self) -> None:
        for transport in (self._front, self._back):
            if transport is not None:
                transport.close()


class _Back(asyncio.DatagramProtocol):
    def __init__(self, relay: _LossyRelay) -> None:
        self._relay = relay

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._relay.from_server(data)


@contextlib.contextmanager
def h3_echo_server(
    certfile: str,
    keyfile: str,
    *,
    enable_connect: bool = True,
    drop: float = 0.0,
    seed: int = 1,
    idle_timeout: float = 60.0,
    max_datagram_size: int = 1200,
) -> Iterator[RunningH3Server]:
    """Serve the echo above; with ``drop`` > 0 the port given is a relay losing that fraction.

    The relay drops datagrams both ways, handshake included, with a seeded
    random generator so a failure can be replayed.
    """
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    state = H3ServerState()
    started: dict[str, Any] = {}

    def factory(*args: Any, **kwargs: Any) -> _EchoProtocol:
        return _EchoProtocol(*args, state=state, enable_connect=enable_connect, **kwargs)

    async def main() -> None:
        configuration = QuicConfiguration(
            is_client=False,
            alpn_protocols=list(H3_ALPN),
            max_data=64 << 20,
            max_stream_data=1 << 20,
            idle_timeout=idle_timeout,
            max_datagram_size=max_datagram_size,
        )
        configuration.load_cert_chain(certfile, keyfile)
        server: QuicServer = await serve(
            "127.0.0.1", 0, configuration=configuration, create_protocol=factory
        )
        assert server._transport is not None
        port: int = server._transport.get_extra_info("sockname")[1]
        relay: _LossyRelay | None = None
        if drop > 0:
            relay = _LossyRelay(("127.0.0.1", port), drop, seed, state)
            port = await relay.start()
        started["port"] = port
        started["relay"] = relay
        stop: asyncio.Future[None] = loop.create_future()
        started["stop"] = stop
        ready.set()
        await stop
        if relay is not None:
            relay.close()
        server.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the HTTP/3 server did not start"
    try:
        yield RunningH3Server("127.0.0.1", started["port"], state)
    finally:
        stop_future: asyncio.Future[None] = started["stop"]
        setter: Callable[[None], None] = stop_future.set_result
        loop.call_soon_threadsafe(setter, None)
        thread.join(10)
        loop.close()


__all__ = ["H3ServerState", "RunningH3Server", "h3_echo_server"]
