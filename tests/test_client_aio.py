"""asyncio sessions (``mint.client.aio``): conversations on every transport, real servers.

Each test runs on the four transports of ``servers.client_endpoints``: ws://
and wss:// against the ``websockets`` package (HTTP/1.1), h2c and HTTP/2
over TLS (ALPN, ``http2="auto"``) against hypercorn (RFC 8441).  The
``websockets`` servers of this module negotiate permessage-deflate and pick
the first subprotocol offered, like the hypercorn app, so every conversation
goes through the deflate codec on both HTTP versions.

Sharing one connection among many coroutines is in ``test_client_aio_shared``,
failures in ``test_client_aio_failures``.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.typing import Subprotocol

from mint.client import aio
from mint.client.options import ClientKwargs, ConnectKwargs
from mint.errors import ConnectionClosedError, ConnectionClosedOK, TransportError, WebSocketError
from mint.http import Event
from mint.websocket.extensions import PerMessageDeflate
from servers import RunningServer
from servers.asgi_apps import SinkApp
from servers.client_endpoints import Endpoint
from servers.session_servers import WebsocketsServer, websockets_server

TIMEOUT = 10.0


def run(main: Callable[[], Awaitable[None]], timeout: float = 60.0) -> None:
    """Run one test body in a fresh event loop, bounded so a hang fails instead of stalling."""

    async def bounded() -> None:
        await asyncio.wait_for(main(), timeout)

    asyncio.run(bounded())


def _uncompressed(endpoint: Endpoint) -> ConnectKwargs:
    return {**endpoint.options, "compression": False}


def _first_offered(_: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return offered[0] if offered else None


# These override the plugin's servers of the same names for this module (see the module doc).
@pytest.fixture(scope="module")
def ws_server() -> Iterator[WebsocketsServer]:
    with websockets_server(
        compression="deflate", select_subprotocol=_first_offered, max_size=2**24
    ) as server:
        yield server


@pytest.fixture(scope="module")
def wss_server(server_ssl_context: ssl.SSLContext) -> Iterator[WebsocketsServer]:
    with websockets_server(
        ssl_context=server_ssl_context,
        compression="deflate",
        select_subprotocol=_first_offered,
        max_size=2**24,
    ) as server:
        yield server


# -- conversations -----------------------------------------------------------------------------


class _Str(str):
    pass


class _Bytes(bytes):
    pass


def test_echo_fragments_timeout_ping_and_close(endpoint: Endpoint) -> None:
    async def main() -> None:
        async with aio.connect(endpoint.url("/echo"), **endpoint.options) as ws:
            assert ws.http_version == endpoint.http_version
            assert not ws.closed and ws.close_code is None

            await ws.send("text é")
            await ws.send(b"\x00binary\xff")
            assert await ws.recv(TIMEOUT) == "text é"
            assert await ws.recv(TIMEOUT) == b"\x00binary\xff"

            # A list and generators: one fragmented message each, text or binary.
            await ws.send(["frag", "ment", "ed"])
            assert await ws.recv(TIMEOUT) == "fragmented"
            await ws.send(bytes([i]) * 1000 for i in range(5))
            assert await ws.recv(TIMEOUT) == b"".join(bytes([i]) * 1000 for i in range(5))
            await ws.send(f"{i}," for i in range(100))
            assert await ws.recv(TIMEOUT) == "".join(f"{i}," for i in range(100))

            # Larger than hypercorn's 64 KiB stream windows both ways, and than one read.
            big = os.urandom(1 << 20)
            await ws.send(big)
            assert await ws.recv(TIMEOUT) == big

            with pytest.raises(TransportError) as waited:
                await ws.recv(timeout=0.05)
            assert waited.value.reason == "timeout"
            assert not ws.closed
            await ws.send("still usable")
            assert await ws.recv(TIMEOUT) == "still usable"

            # Beyond str and bytes, the send takes the lock's way: the same frames.
            await ws.send(_Str("sub"))
            reply = await ws.recv(TIMEOUT)
            assert reply == "sub" and type(reply) is str
            await ws.send(_Bytes(b"sub"))
            reply = await ws.recv(TIMEOUT)
            assert reply == b"sub" and type(reply) is bytes
            buffer: Any = bytearray(b"ba")  # accepted at run time beyond the annotation
            await ws.send(buffer)
            assert await ws.recv(TIMEOUT) == b"ba"
            wrong: Any = 42
            with pytest.raises(WebSocketError) as refused:
                await ws.send(wrong)
            assert refused.value.reason == "invalid_argument"
            await ws.send(b"after the refusal")
            assert await ws.recv(TIMEOUT) == b"after the refusal"

            latency = await ws.ping()
            assert 0 < latency < TIMEOUT
            assert await ws.ping(timeout=TIMEOUT) > 0
        assert ws.closed
        assert (ws.close_code, ws.close_reason) == (1000, "")
        with pytest.raises(ConnectionClosedOK) as after:
            await ws.recv()
        assert after.value.close_code == 1000
        with pytest.raises(ConnectionClosedOK):
            await ws.send("too late")
        await ws.close()  # idempotent

    run(main)


def test_awaited_connect_and_iteration_until_the_server_closes(endpoint: Endpoint) -> None:
    async def main() -> None:
        ws = await aio.connect(endpoint.url("/iterate"), **endpoint.options)
        try:
            for word in ("one", "two", "close"):  # "close": the server closes, 1000 "bye"
                await ws.send(word)
            received = [message async for message in ws]
            assert received == ["one", "two"]
            assert ws.closed
            assert (ws.close_code, ws.close_reason) == (1000, "bye")
            with pytest.raises(ConnectionClosedOK) as after:
                await ws.recv(TIMEOUT)
            assert (after.value.close_code, after.value.close_reason) == (1000, "bye")
        finally:
            await ws.close()  # after the server's close: only the connection is let go
        assert not ws.connection.open

    run(main)


def test_what_was_negotiated(endpoint: Endpoint) -> None:
    async def main() -> None:
        options: ConnectKwargs = {
            **endpoint.options,
            "subprotocols": ["chat.v2", "chat"],
            "headers": [("X-Test", "1")],
            "origin": "https://example.test",
        }
        async with aio.connect(endpoint.url("/facts"), **options) as ws:
            assert ws.http_version == endpoint.http_version
            assert ws.connection.version == endpoint.http_version
            assert ws.subprotocol == "chat.v2"
            assert [type(e) for e in ws.extensions] == [PerMessageDeflate]
            names = {name.lower() for name, _ in ws.response_headers}
            assert "sec-websocket-protocol" in names
            assert "sec-websocket-extensions" in names
            # RFC 6455's accept key exists over HTTP/1.1 only; RFC 8441 drops it.
            assert ("sec-websocket-accept" in names) == (endpoint.http_version == "HTTP/1.1")
            # A copy: the caller cannot change what the session recorded.
            ws.response_headers.clear()
            assert ws.response_headers
            assert repr(ws) == f"<Session open {endpoint.http_version}>"
            await ws.send("compressed " * 1000)
            assert await ws.recv(TIMEOUT) == "compressed " * 1000

        async with aio.connect(endpoint.url("/plain"), **_uncompressed(endpoint)) as ws:
            assert ws.subprotocol is None
            assert ws.extensions == []
            await ws.send("plain")
            assert await ws.recv(TIMEOUT) == "plain"

    run(main)


def test_sends_on_one_session_never_interleave(endpoint: Endpoint) -> None:
    """Fragmented messages large enough to wait for the transport, with small sends beside them."""
    piece = 256 * 1024

    async def main() -> None:
        async with aio.connect(endpoint.url("/many"), **_uncompressed(endpoint)) as ws:
            expected = {
                b"A" * piece * 4,
                b"B" * piece * 3,
                "small one",
                "small two",
                b"small three",
            }
            await asyncio.gather(
                ws.send([b"A" * piece] * 4),
                ws.send("small one"),
                ws.send(iter([b"B" * piece] * 3)),
                ws.send("small two"),
                ws.send(b"small three"),
            )
            received = {await ws.recv(TIMEOUT) for _ in expected}
            assert received == expected

    run(main)


def test_recv_with_a_zero_timeout_is_a_poll(endpoint: Endpoint) -> None:
    """``recv(timeout=0)`` takes what has arrived; it does not time out without looking."""

    async def main() -> None:
        async with aio.connect(endpoint.url("/poll"), **endpoint.options) as ws:
            with pytest.raises(TransportError) as empty:
                await ws.recv(timeout=0)
            assert empty.value.reason == "timeout"
            await ws.send("polled")
            for _ in range(int(TIMEOUT / 0.01)):  # nobody else reads: only polls bring it in
                try:
                    message = await ws.recv(timeout=0)
                    break
                except TransportError as exc:
                    assert exc.reason == "timeout"
                    await asyncio.sleep(0.01)
            else:
                pytest.fail("recv(timeout=0) never took in the echo")
            assert message == "polled"

    run(main)


def test_a_fragmented_send_that_stops_half_way_fails_the_session(endpoint: Endpoint) -> None:
    """Its missing fragments would otherwise swallow the next message (as their continuation)."""

    def failing_source() -> Iterator[str]:
        yield "first "
        yield "second "
        raise ValueError("the source broke")

    async def main() -> None:
        async with aio.connect(endpoint.url("/broken-source"), **endpoint.options) as ws:
            await _exchange(ws, "before")
            with pytest.raises(ValueError, match="the source broke"):
                await ws.send(failing_source())
            assert ws.closed and ws.close_code == 1006
            with pytest.raises(ConnectionClosedError) as failed:
                await ws.send("next")
            assert failed.value.reason == "send_interrupted"
            with pytest.raises(ConnectionClosedError):
                await ws.recv(TIMEOUT)

        async with aio.connect(endpoint.url("/mixed-pieces"), **endpoint.options) as ws:
            with pytest.raises(WebSocketError) as mixed:
                await ws.send(["text", b"then bytes"])
            assert mixed.value.reason == "invalid_argument"
            assert ws.closed
            # Failing before the first fragment sends nothing: the session goes on.
        async with aio.connect(endpoint.url("/early-failure"), **endpoint.options) as ws:
            with pytest.raises(WebSocketError):
                await ws.send([1, 2])  # type: ignore[list-item]
            assert not ws.closed
            await _exchange(ws, "unharmed")

    run(main)


def test_closing_from_another_task_ends_a_pending_recv(endpoint: Endpoint) -> None:
    async def main() -> None:
        ws = await aio.connect(endpoint.url("/closing"), **endpoint.options)
        await _exchange(ws, "hello")
        receiving = asyncio.create_task(ws.recv())
        iterating = asyncio.create_task(_collect(ws))
        await asyncio.sleep(0)  # both wait: one reads for the other
        assert not receiving.done() and not iterating.done()
        await ws.close(1000, "bye now")
        with pytest.raises(ConnectionClosedOK) as closed:
            await receiving
        assert closed.value.close_code == 1000
        assert await iterating == []  # the iteration just ends
        assert ws.closed and ws.close_code == 1000
        assert not ws.connection.open  # the session's own connection went with it

    run(main)


async def _exchange(ws: aio.Session, message: str) -> None:
    await ws.send(message)
    assert await ws.recv(TIMEOUT) == message


async def _collect(ws: aio.Session) -> list[str | bytes]:
    return [message async for message in ws]


# -- a send held back by HTTP/2 flow control ---------------------------------------------------


@pytest.mark.parametrize("transport", ["h2c", "h2-tls"])
@pytest.mark.parametrize("other_reader", [False, True], ids=["alone", "beside-a-reader"])
def test_a_send_beyond_the_window_returns_once_the_server_took_it(
    sink_servers: tuple[SinkApp, RunningServer, RunningServer],
    tls_ca_file: Path,
    transport: str,
    other_reader: bool,
) -> None:
    """The server answers nothing while it takes the bytes: only its WINDOW_UPDATEs come back.

    ``beside-a-reader``: another session's ``recv`` is reading the connection
    meanwhile, without a timeout, so the sender is not the reader.
    """
    app, h2c, h2_tls = sink_servers
    options: ClientKwargs
    if transport == "h2c":
        base, options = f"ws://127.0.0.1:{h2c.port}", {"http2": True}
    else:
        base, options = f"wss://127.0.0.1:{h2_tls.port}", {"cafile": str(tls_ca_file)}
    path = f"/{transport}-{other_reader}"
    size = 3 * 2**20  # about fifty of hypercorn's 64 KiB stream windows

    async def main() -> None:
        async with aio.Client(**options) as c:
            ws = await c.connect(base + path, compression=False, ping_interval=None)
            assert ws.http_version == "HTTP/2"
            reader: asyncio.Task[str | bytes] | None = None
            if other_reader:
                waiting = await c.connect(base + "/waiting", ping_interval=None)
                reader = asyncio.create_task(waiting.recv())
                await asyncio.sleep(0)  # the task runs up to its first wait
                assert ws._shared._reading  # it reads for everyone, with no deadline
            await asyncio.wait_for(ws.send(os.urandom(size)), TIMEOUT)
            assert ws.connection.send_window(ws._state.ref) > 0  # nothing left queued
            await ws.send("count")
            assert await ws.recv(TIMEOUT) == str(size)
            if reader is not None:
                assert not reader.done()
                reader.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reader
            await ws.close()

    run(main)
    assert app.received[path] == size


def test_a_large_message_comes_the_short_way_read_after_read(ws_server: WebsocketsServer) -> None:
    """Over HTTP/1.1 a message of many reads is read the short way to its end: the general
    path (``recv_once``, events, routing) is not taken once the first read left it partial."""

    async def main() -> None:
        url = f"ws://127.0.0.1:{ws_server.port}/"
        async with aio.connect(url, compression=False, max_size=None) as ws:
            conn = ws.connection
            general: list[float | None] = []
            recv_once = conn.recv_once

            def counting(timeout: float | None = None) -> Coroutine[Any, Any, list[Event]]:
                general.append(timeout)
                return recv_once(timeout)

            conn.recv_once = counting  # type: ignore[method-assign]  # counts, changes nothing
            big = os.urandom(4 << 20)
            for _ in range(2):
                await ws.send(big)
                assert await ws.recv() == big
            assert general == []

    run(main)
