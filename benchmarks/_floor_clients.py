"""Floor clients for ``bench_sessions``: the least any Python client of each shape can do.

A target stated against picows (compiled with Cython) is only reachable if a
Python client *could* get there.  These two clients answer that: they have
the same API as the benchmark's clients (``send`` a message, ``recv`` the next
one, a blocking one driven by two threads when pipelined, an asyncio one by
two tasks), and do nothing a client could skip:

* every frame sent is built and masked once, before timing starts (a real
  client masks each message; this one reuses the bytes);
* what arrives is read into one buffer and cut into messages by its headers,
  with no validation, no control frames, no limits, no close handshake;
* the blocking client writes each message with one ``sendall`` and reads with
  ``recv`` (the least two threads sharing one socket can do); the asyncio one
  is a bare ``asyncio.Protocol``: ``transport.write`` per message, one future
  per wait.

A third, ``CodecFloorAsync``, is mint's own codec with nothing around it, in
the shape of mint's asyncio shell (the protocol keeps bytes, ``recv``
decodes them): the most mint's asyncio session could reach, which tells a
cost of the codec from a cost of the session.

Nothing here is a client anyone should use.  Written for this benchmark from
RFC 6455 section 5.2 alone.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections import deque
from urllib.parse import urlsplit

from _bare_clients import masked_frame

from mint.websocket import Binary, Ping, Pong, Text, WebSocket

Message = str | bytes
_READ = 256 * 1024


def _upgrade_request(url: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return host, port, request.encode()


def _after_headers(response: bytes) -> bytes:
    """What follows the 101 answer's headers (frames the server sent at once)."""
    head, _, rest = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"the upgrade was refused: {head[:60]!r}")
    return rest


def _cut_messages(buffer: bytearray, out: deque[Message]) -> None:
    """Move every whole (unmasked, unfragmented) frame at the start of ``buffer`` to ``out``."""
    size = len(buffer)
    at = 0
    while size - at >= 2:
        length = buffer[at + 1] & 0x7F
        start = at + 2
        if length == 126:
            length = int.from_bytes(buffer[at + 2 : at + 4], "big")
            start = at + 4
        elif length == 127:
            length = int.from_bytes(buffer[at + 2 : at + 10], "big")
            start = at + 10
        end = start + length
        if end > size:
            break
        payload = bytes(buffer[start:end])
        out.append(payload.decode() if buffer[at] & 0x0F == 0x1 else payload)
        at = end
    if at:
        del buffer[:at]


#: Each distinct message's frame, masked once for the whole run (the warm-up fills it).
_FRAMES: dict[Message, bytes] = {}


def _frame(message: Message) -> bytes:
    frame = _FRAMES.get(message)
    if frame is None:
        frame = _FRAMES[message] = masked_frame(message)
    return frame


class FloorBlocking:
    """Blocking: ``sendall`` per message; ``recv`` reads until a whole frame is in."""

    def __init__(self, url: str) -> None:
        host, port, request = _upgrade_request(url)
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(request)
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("the server closed during the upgrade")
            response += chunk
        self.buffer = bytearray(_after_headers(response))
        self.messages: deque[Message] = deque()
        _cut_messages(self.buffer, self.messages)

    def send(self, message: Message) -> None:
        self.sock.sendall(_frame(message))

    def recv(self) -> Message:
        messages = self.messages
        while not messages:
            data = self.sock.recv(_READ)
            if not data:
                raise RuntimeError("the server closed")
            self.buffer += data
            _cut_messages(self.buffer, messages)
        return messages.popleft()

    def close(self) -> None:
        self.sock.close()


class _UpgradedProtocol(asyncio.Protocol):
    """Waits out the 101 answer's head, then hands what follows to ``frames_received``."""

    def __init__(self) -> None:
        self.head = b""
        self.waiter: asyncio.Future[None] | None = None
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: BaseException | None = None

    def data_received(self, data: bytes) -> None:
        if not self.upgraded.done():
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            try:
                data = _after_headers(self.head)
            except RuntimeError as exc:
                self.upgraded.set_exception(exc)
                return
            self.upgraded.set_result(None)
        self.frames_received(data)

    def frames_received(self, data: bytes) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("the server closed")
        for future in (self.upgraded, self.waiter):
            if future is not None and not future.done():
                future.set_exception(self.lost)


class _FloorProtocol(_UpgradedProtocol):
    def __init__(self) -> None:
        super().__init__()
        self.buffer = bytearray()
        self.messages: deque[Message] = deque()

    def frames_received(self, data: bytes) -> None:
        self.buffer += data
        _cut_messages(self.buffer, self.messages)
        if self.messages:
            self.wake()


class FloorAsync:
    """asyncio: a bare Protocol; ``transport.write`` per message, one future per wait."""

    async def open(self, url: str) -> FloorAsync:
        host, port, request = _upgrade_request(url)
        loop = asyncio.get_running_loop()
        self.transport, self.protocol = await loop.create_connection(_FloorProtocol, host, port)
        self.transport.write(request)
        await self.protocol.upgraded
        return self

    async def send(self, message: Message) -> None:
        self.transport.write(_frame(message))

    async def recv(self) -> Message:
        protocol = self.protocol
        while not protocol.messages:
            if protocol.lost is not None:
                raise protocol.lost
            protocol.waiter = asyncio.get_running_loop().create_future()
            await protocol.waiter
        return protocol.messages.popleft()

    async def close(self) -> None:
        self.transport.close()


class _KeepingProtocol(_UpgradedProtocol):
    """Keeps what arrives for ``recv`` to decode: the shape of mint's own protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def frames_received(self, data: bytes) -> None:
        if data:
            self.chunks.append(data)
            self.wake()


class CodecFloorAsync:
    """asyncio, mint's codec and nothing else: what the session could reach at best.

    The protocol keeps bytes and ``recv`` decodes them with mint's
    ``WebSocket.decode`` (the C decoder, UTF-8 checked); ``send`` is
    ``encode_text`` / ``encode`` and one ``transport.write``.  Pings are
    answered; nothing else a session does (keepalive, limits, backpressure,
    the close handshake, the HTTP/1.1 core) is.
    """

    async def open(self, url: str) -> CodecFloorAsync:
        self.ws = WebSocket(max_frame_size=None, max_message_size=None)
        self.messages: deque[Message] = deque()
        host, port, request = _upgrade_request(url)
        loop = asyncio.get_running_loop()
        self.transport, self.protocol = await loop.create_connection(_KeepingProtocol, host, port)
        self.transport.write(request)
        await self.protocol.upgraded
        return self

    async def send(self, message: Message) -> None:
        ws = self.ws
        if isinstance(message, str):
            self.transport.write(ws.encode_text(message))
        else:
            self.transport.write(ws.encode(Binary(message)))

    async def recv(self) -> Message:
        protocol, messages = self.protocol, self.messages
        while not messages:
            while not protocol.chunks:
                if protocol.lost is not None:
                    raise protocol.lost
                protocol.waiter = asyncio.get_running_loop().create_future()
                await protocol.waiter
            chunks, protocol.chunks = protocol.chunks, []
            for frame in self.ws.decode(chunks[0] if len(chunks) == 1 else b"".join(chunks)):
                if isinstance(frame, (Text, Binary)):
                    messages.append(frame.data)
                elif isinstance(frame, Ping):
                    self.transport.write(self.ws.encode(Pong(frame.data)))
        return messages.popleft()

    async def close(self) -> None:
        self.transport.close()
