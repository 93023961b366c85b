"""Socket-free harnesses for aiohttp's and picows's WebSocket code, shared by the codec benchmarks.

Neither library offers a sans-I/O codec, so each is driven through the objects its own client
uses, with stand-ins for the socket side:

- aiohttp: ``WebSocketReader`` (its Cython reader when compiled) fed bytes, messages taken from
  its ``WebSocketDataQueue`` with ``await queue.read()``; ``WebSocketWriter.send_frame`` over a
  transport that only counts bytes.  Coroutines that never suspend are run by ``run_sync``
  without an event loop (it raises if one ever does suspend).
- picows: ``picows.picows.WSProtocol`` (not exported, but what ``ws_connect`` builds), given a
  fake transport, a completed handshake, then server bytes through ``get_buffer`` /
  ``buffer_updated`` as asyncio's buffered-protocol read loop does.  Frames go to a
  ``WSListener``; it sends through its ``WSTransport``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

from aiohttp import WSMsgType
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp._websocket.writer import WebSocketWriter
from aiohttp.base_protocol import BaseProtocol
from picows import WSAutoPingStrategy, WSFrame, WSListener, WSTransport
from picows import WSMsgType as PicowsMsgType
from picows.picows import WSProtocol  # type: ignore[attr-defined]  # picows's api.py does the same

T = TypeVar("T")

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that completes without suspending (no event loop needed)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise RuntimeError("the coroutine suspended: it needs an event loop")


class _FakeSocket:
    def fileno(self) -> int:
        return -1

    def setsockopt(self, *args: object) -> None:
        pass

    def getsockopt(self, *args: object) -> int:
        return 0


class SinkTransport:
    """Stands in for an asyncio transport: counts the bytes written, sends nothing.

    ``get_write_buffer_size`` answers 1 so that picows always hands its frames to ``write``
    (as it does under TLS or with data queued) instead of calling ``send()`` on the socket.
    """

    def __init__(self) -> None:
        self.size = 0
        self.writes = 0
        self.captured: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.size += len(data)
        self.writes += 1
        if self.captured is not None:
            self.captured.append(bytes(data))

    def writelines(self, lines: list[bytes | bytearray | memoryview]) -> None:
        for data in lines:
            self.write(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 1

    def get_extra_info(self, name: str, default: object = None) -> object:
        if name == "socket":
            return _FakeSocket()
        if name in ("peername", "sockname"):
            return ("127.0.0.1", 0)
        return default

    def reset(self) -> None:
        self.size = self.writes = 0


class _FakeProtocol:
    """The few attributes aiohttp's queue and writer read from the connection protocol."""

    _reading_paused = False
    _paused = False

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False


_loop: asyncio.AbstractEventLoop | None = None


def _idle_loop() -> asyncio.AbstractEventLoop:
    """A loop that objects may hold (futures, error timers); it is never run after setup."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    return _loop


# -- aiohttp ------------------------------------------------------------------------------


class AiohttpReceiver:
    """aiohttp's client reading side: reader + queue, the way ``ClientWebSocketResponse`` has it."""

    def __init__(self, max_size: int, *, compress: bool = False) -> None:
        # As aiohttp's ws_connect: the queue's limit is DEFAULT_CHUNK_SIZE (256 KiB), text decoded.
        self.queue = WebSocketDataQueue(
            cast(BaseProtocol, _FakeProtocol()), 2**18, loop=_idle_loop()
        )
        self.reader = WebSocketReader(self.queue, max_size, compress=compress, decode_text=True)


def aiohttp_writer(sink: SinkTransport, *, compress: int = 0) -> WebSocketWriter:
    """aiohttp's client writer (masking on), as ``ws_connect`` makes it, over ``sink``."""
    return WebSocketWriter(
        cast(BaseProtocol, _FakeProtocol()),
        cast(asyncio.Transport, sink),
        use_mask=True,
        compress=compress,
    )


AIOHTTP_TEXT = WSMsgType.TEXT
AIOHTTP_BINARY = WSMsgType.BINARY
AIOHTTP_PING = WSMsgType.PING
AIOHTTP_PONG = WSMsgType.PONG


# -- picows -------------------------------------------------------------------------------

PICOWS_TEXT = PicowsMsgType.TEXT
PICOWS_BINARY = PicowsMsgType.BINARY
PICOWS_CONTINUATION = PicowsMsgType.CONTINUATION


class PicowsReceiver(WSListener):
    """What a picows user writes to get whole messages: text as ``str``, fragments joined."""

    def __init__(self) -> None:
        self.messages = 0
        self.size = 0
        self._text = False
        self._parts: list[bytes] = []

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is PICOWS_CONTINUATION:
            self._parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                data = b"".join(self._parts)
                self._parts = []
                self.size += len(data.decode() if self._text else data)
                self.messages += 1
        elif frame.fin:
            if msg_type is PICOWS_TEXT:
                self.size += len(frame.get_payload_as_utf8_text())
            elif msg_type is PICOWS_BINARY:
                self.size += len(frame.get_payload_as_bytes())
            else:
                raise AssertionError(f"unexpected frame {frame}")
            self.messages += 1
        else:
            self._text = msg_type is PICOWS_TEXT
            self._parts = [frame.get_payload_as_bytes()]


class PicowsClient:
    """A picows client connection after its handshake, on a ``SinkTransport``."""

    def __init__(self, max_frame_size: int) -> None:
        self.sink = SinkTransport()
        self.sink.captured = []

        async def make() -> Any:
            # The arguments ws_connect passes, with its defaults; no handshake timeout, no
            # auto-ping, auto-pong on.
            return WSProtocol(
                "localhost",
                "/",
                True,
                PicowsReceiver,
                logging.getLogger("picows.client"),
                True,
                None,
                False,
                10,
                10,
                WSAutoPingStrategy.PING_WHEN_IDLE,
                True,
                max_frame_size,
                None,
                16 * 1024,
            )

        self.protocol: Any = _idle_loop().run_until_complete(make())
        self.protocol.connection_made(self.sink)
        request = b"".join(self.sink.captured)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.feed(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.listener: PicowsReceiver = self.protocol.listener
        assert isinstance(self.listener, PicowsReceiver), "picows handshake failed"
        self.transport: WSTransport = self.protocol.transport
        self.sink.captured = None
        self.sink.reset()

    def feed(self, data: bytes) -> None:
        """Server bytes in, as asyncio's buffered-protocol read loop passes them."""
        get_buffer, buffer_updated = self.protocol.get_buffer, self.protocol.buffer_updated
        view = memoryview(data)
        while view:
            buffer = get_buffer(-1)
            size = min(len(buffer), len(view))
            buffer[:size] = view[:size]
            buffer_updated(size)
            view = view[size:]
