"""The process-less core driven by trio: the same sans-I/O objects, another event loop.

    python examples/trio_client.py ws://127.0.0.1:9000/chat            # HTTP/1.1
    python examples/trio_client.py ws://127.0.0.1:8000/chat --http2    # h2c, two WebSockets

Nothing of mint's own I/O is used: a trio socket stream carries the bytes,
an HTTP core (``HTTP1Core`` or ``HTTP2Core``) turns them into events, and
``mint.websocket`` does the handshake and the framing.  One task reads and
hands each event to the WebSocket its ref names, through a memory channel;
each WebSocket runs in a task of its own.  Over HTTP/2 two of them share the
connection.
"""

from __future__ import annotations

import contextlib
import math
import sys
from urllib.parse import urlsplit

import trio

from mint import http, websocket
from mint.http.core import HTTPCore
from mint.http.http1 import HTTP1Core
from mint.http.http2 import HTTP2Core
from mint.websocket import Close, Ping, Pong, Text

MESSAGES = ["hello", "from", "trio"]

Inbox = trio.MemorySendChannel[http.Event]


class Link:
    """The socket stream and the core, plus what several tasks need to share them safely."""

    def __init__(self, stream: trio.SocketStream, core: HTTPCore) -> None:
        self.stream = stream
        self.core = core
        self.inboxes: dict[http.Ref, Inbox] = {}
        self.settings = trio.Event()
        self._send_lock = trio.Lock()  # trio allows one send_all at a time per stream

    async def flush(self) -> None:
        async with self._send_lock:
            data = self.core.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def read_forever(self) -> None:
        while True:
            data = await self.stream.receive_some(65536)
            for event in self.core.receive_data(data):
                inbox = self.inboxes.get(event.ref)
                if inbox is not None:
                    inbox.send_nowait(event)
            if getattr(self.core, "remote_settings_received", False):
                self.settings.set()  # extended CONNECT support is known now
            await self.flush()  # ACKs, window updates
            if not data:
                return


async def converse(link: Link, scheme: str, path: str, name: str) -> list[str]:
    """One WebSocket: handshake, a few messages, pings answered, the closing handshake."""
    send_channel, events = trio.open_memory_channel[http.Event](math.inf)
    ref = websocket.upgrade(scheme, link.core, path)
    link.inboxes[ref] = send_channel
    await link.flush()
    http2 = link.core.version == "HTTP/2"
    status = None
    ws = None
    echoes: list[str] = []
    async for event in events:
        frames = []
        match event:
            case http.Status(status=code):
                status = code
            case http.Headers(headers=headers) if ws is None:
                assert status is not None
                ws = websocket.new(link.core, ref, status, headers)
                for message in MESSAGES:
                    link.core.stream_request_body(ref, ws.encode(Text(message)))
                await link.flush()
            case http.Data(data=data) if ws is not None:
                frames = ws.decode(data)
            case http.Done() | http.Error():
                break
        assert ws is not None or not frames
        for frame in frames:
            assert ws is not None
            match frame:
                case Text(data=text):
                    print(f"{name} < {text}")
                    echoes.append(text)
                    if len(echoes) == len(MESSAGES):
                        link.core.stream_request_body(ref, ws.encode(Close(1000)), end_stream=http2)
                case Ping(data=payload):
                    link.core.stream_request_body(ref, ws.encode(Pong(payload)))
                case Close():
                    return echoes
        await link.flush()
    return echoes


async def main(url: str, use_http2: bool) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stream = await trio.open_tcp_stream(host, port)
    authority = f"{host}:{port}"
    core: HTTPCore = HTTP2Core(authority, "http") if use_http2 else HTTP1Core(authority)
    link = Link(stream, core)
    results: dict[str, list[str]] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(link.read_forever)
        await link.flush()  # the HTTP/2 preface and SETTINGS
        if use_http2:
            await link.settings.wait()  # the server's SETTINGS say if RFC 8441 is on
        names = ["one", "two"] if use_http2 else ["one"]

        async def run(name: str) -> None:
            results[name] = await converse(link, parts.scheme, f"{parts.path or '/'}?{name}", name)

        async with trio.open_nursery() as conversations:
            for name in names:
                conversations.start_soon(run, name)
        nursery.cancel_scope.cancel()  # the reader is not needed any more
    core.close()
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await link.flush()  # the GOAWAY, if the server still listens
    await stream.aclose()
    for name, echoes in sorted(results.items()):  # tasks finish in any order
        print(f"{name}: {' '.join(echoes)}")
    if any(echoes != MESSAGES for echoes in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], "--http2" in sys.argv[2:])
