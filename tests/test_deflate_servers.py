"""PerMessageDeflate against real servers: `websockets` over HTTP/1.1 (and hypercorn over HTTP/2).

Each server echoes what it receives, so one exchange checks both directions:
the server inflates what mint deflated, mint inflates what the server deflated.
The server configurations cover every permessage-deflate parameter
`websockets` accepts, including an 8-bit client window that its zlib
decompressor enforces.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

import mint.http
import mint.websocket
from mint.websocket import Binary, Close, Frame, Text
from mint.websocket.extensions import RSV1, PerMessageDeflate
from servers import RunningServer, start_hypercorn

TIMEOUT = 5.0


async def _echo(connection: ServerConnection) -> None:
    try:
        async for message in connection:
            await connection.send(message)
    except ConnectionClosed:
        pass


class ServerPool:
    """Echo servers on 127.0.0.1 in one background event loop, one per configuration."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: dict[str, Server] = {}

    def port(self, key: str, **options: Any) -> int:
        if key not in self._servers:

            async def start() -> Server:
                return await serve(_echo, "127.0.0.1", 0, max_size=None, **options)

            future: Future[Server] = asyncio.run_coroutine_threadsafe(start(), self._loop)
            self._servers[key] = future.result(TIMEOUT)
        port: int = self._servers[key].sockets[0].getsockname()[1]
        return port

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers.values():
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)
        self._loop.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    pool = ServerPool()
    yield pool
    pool.close()


class Client:
    """A mint WebSocket on a blocking connection, driven the way DESIGN.md shows."""

    def __init__(self, port: int, offer: PerMessageDeflate | None, version: str = "http1") -> None:
        self.conn = mint.http.connect("http", "127.0.0.1", port, protocols=(version,), timeout=5)
        extensions = [offer] if offer is not None else []
        self.ref = mint.websocket.upgrade("ws", self.conn, "/", [], extensions=extensions)
        status: int | None = None
        headers: list[tuple[str, str]] | None = None
        leftover = b""
        while headers is None:
            for event in self.conn.recv(timeout=TIMEOUT):
                match event:
                    case mint.http.Status(ref=ref, status=code) if ref == self.ref:
                        status = code
                    case mint.http.Headers(ref=ref, headers=values) if ref == self.ref:
                        headers = list(values)
                    case mint.http.Data(ref=ref, data=data) if ref == self.ref:
                        leftover += data
        assert status is not None
        self.response_headers = headers
        self.ws = mint.websocket.new(self.conn, self.ref, status, headers)
        self.pending: list[Frame] = self.ws.decode(leftover) if leftover else []
        self.first_bytes: list[int] = []

    def send(self, *frames: Frame, compress: bool = True) -> None:
        for frame in frames:
            self.conn.stream_request_body(self.ref, self.ws.encode(frame, compress=compress))

    def receive(self) -> Frame:
        """The next message; records the first byte of each reply frame."""
        starting = not self.pending
        while not self.pending:
            for event in self.conn.recv(timeout=TIMEOUT):
                if isinstance(event, mint.http.Data) and event.ref == self.ref:
                    if starting and event.data:
                        # the server answers only after our request, so this read
                        # begins with the first byte of the reply frame
                        self.first_bytes.append(event.data[0])
                        starting = False
                    self.pending.extend(self.ws.decode(event.data))
        return self.pending.pop(0)

    def close(self) -> None:
        try:
            self.send(Close())
        finally:
            self.conn.close()


def _messages() -> list[Frame]:
    json_like = '{"id": %d, "user": "user-%d", "tags": ["alpha", "beta", "gamma"], "ok": true}'
    return [
        Text("hello world"),
        Text(""),
        Binary(b""),
        Text("é" * 5000),
        Binary(bytes(range(256)) * 1000),  # 256 KiB, matches across the whole window
        *(Text(json_like % (i, i % 7)) for i in range(20)),  # context takeover pays off
        Binary(bytes(300_000)),
    ]


def _exchange(client: Client, compressed: bool) -> None:
    for message in _messages():
        client.send(message)
        assert client.receive() == message
    # a fragmented message, sent as three frames, comes back whole
    client.send(Text("frag", fin=False), Text("ment", fin=False), Text("ed"))
    assert client.receive() == Text("fragmented")
    # compress=False: the server still echoes it (compressed, if it compresses)
    client.send(Binary(b"not compressed " * 100), compress=False)
    assert client.receive() == Binary(b"not compressed " * 100)
    # a compressing server marks its replies with RSV1 (websockets compresses them all)
    assert len(client.first_bytes) == len(_messages()) + 2
    assert all(bool(byte & RSV1) == compressed for byte in client.first_bytes)


SERVER_CONFIGS = [
    {
        "server_no_context_takeover": snct,
        "client_no_context_takeover": cnct,
        "server_max_window_bits": sbits,
        "client_max_window_bits": cbits,
    }
    for snct, cnct, sbits, cbits in itertools.product(
        [False, True], [False, True], [None, 9, 12], [None, 8, 11]
    )
]

CLIENT_OFFERS = {
    "default": {},
    "no_client_bits": {"client_max_window_bits": None},
    "client_bits_10": {"client_max_window_bits": 10},
    "client_bits_8": {"client_max_window_bits": 8},
    "client_bits_9": {"client_max_window_bits": 9},
    "server_bits_10": {"server_max_window_bits": 10},
    "no_takeover": {"client_no_context_takeover": True, "server_no_context_takeover": True},
    "level_9_threshold": {"compression_level": 9, "memory_level": 9, "compress_threshold": 64},
}


def _config_id(config: dict[str, Any]) -> str:
    return "-".join(
        f"{key.split('_max_')[0][:1]}{key[-4:]}={value}" for key, value in config.items()
    )


@pytest.mark.parametrize("config", SERVER_CONFIGS, ids=[_config_id(c) for c in SERVER_CONFIGS])
@pytest.mark.parametrize("offer", CLIENT_OFFERS.values(), ids=CLIENT_OFFERS.keys())
def test_echo_through_websockets_server(
    servers: ServerPool, config: dict[str, Any], offer: dict[str, Any]
) -> None:
    port = servers.port(_config_id(config), extensions=[ServerPerMessageDeflateFactory(**config)])
    client = Client(port, PerMessageDeflate(**offer))
    try:
        (negotiated,) = client.ws.extensions
        assert isinstance(negotiated, PerMessageDeflate) and negotiated.negotiated
        if config["client_max_window_bits"] is not None and "client_max_window_bits" not in offer:
            assert negotiated.client_window_bits == config["client_max_window_bits"]
        if config["server_no_context_takeover"] or offer.get("server_no_context_takeover"):
            assert negotiated.server_resets
        _exchange(client, compressed=True)
    finally:
        client.close()


def test_echo_with_websockets_default_compression(servers: ServerPool) -> None:
    client = Client(servers.port("default", compression="deflate"), PerMessageDeflate())
    try:
        (negotiated,) = client.ws.extensions
        assert isinstance(negotiated, PerMessageDeflate)
        _exchange(client, compressed=True)
    finally:
        client.close()


def test_echo_with_compression_off(servers: ServerPool) -> None:
    client = Client(servers.port("off", compression=None), PerMessageDeflate())
    try:
        assert client.ws.extensions == []
        _exchange(client, compressed=False)
    finally:
        client.close()


def test_server_refusing_every_offer_leaves_compression_off(servers: ServerPool) -> None:
    """A server that requires client_max_window_bits declines an offer without it."""
    factory = ServerPerMessageDeflateFactory(
        client_max_window_bits=10, require_client_max_window_bits=True
    )
    client = Client(
        servers.port("require", extensions=[factory]),
        PerMessageDeflate(client_max_window_bits=None),
    )
    try:
        assert client.ws.extensions == []
        _exchange(client, compressed=False)
    finally:
        client.close()


# -- hypercorn: wsproto's permessage-deflate, over HTTP/1.1 and HTTP/2 (RFC 8441) ----------


@pytest.fixture(scope="module")
def hypercorn_server() -> Iterator[RunningServer]:
    server = start_hypercorn()
    yield server
    server.stop()


HYPERCORN_OFFERS = {
    key: CLIENT_OFFERS[key]
    for key in ("default", "no_client_bits", "client_bits_9", "server_bits_10", "no_takeover")
}


@pytest.mark.parametrize("version", ["http1", "http2"])
@pytest.mark.parametrize("offer", HYPERCORN_OFFERS.values(), ids=HYPERCORN_OFFERS.keys())
def test_echo_through_hypercorn(
    hypercorn_server: RunningServer, version: str, offer: dict[str, Any]
) -> None:
    client = Client(hypercorn_server.port, PerMessageDeflate(**offer), version)
    try:
        assert client.conn.version == ("HTTP/2" if version == "http2" else "HTTP/1.1")
        (negotiated,) = client.ws.extensions
        assert isinstance(negotiated, PerMessageDeflate) and negotiated.negotiated
        _exchange(client, compressed=True)
    finally:
        client.close()


@pytest.mark.parametrize("version", ["http1", "http2"])
def test_hypercorn_declining_an_8_bit_window_leaves_compression_off(
    hypercorn_server: RunningServer, version: str
) -> None:
    """wsproto accepts client windows of 9 to 15 only: it declines the offer, not the handshake."""
    client = Client(hypercorn_server.port, PerMessageDeflate(client_max_window_bits=8), version)
    try:
        assert client.ws.extensions == []
        _exchange(client, compressed=False)
    finally:
        client.close()
