"""Per-stream backpressure in the HTTP/2 core: ``pause_stream`` withholds one stream's credit only.

The unit tests drive ``HTTP2Core`` with a real h2 server peer (see
``test_http2``), so the server's own flow-control bookkeeping says what credit
it got; frames the peer would refuse to send are built by hand.  The
integration tests pause WebSockets on a real hypercorn, through both shells.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import h2.events
import pytest
from hypercorn.config import Config
from hyperframe.frame import DataFrame

from mint import http, websocket
from mint.errors import HTTPError, TransportError
from mint.http import aio
from mint.http.events import EOF, STREAM, Data, Done, Error, Event, Ref
from mint.http.http2 import HTTP2Core
from mint.websocket import Binary
from servers import RunningServer, start_hypercorn
from servers.mint_client import Client, Mailbox
from servers.websockets_echo import websockets_echo_server
from test_http2 import (
    ServerPeer,
    assert_failed_with_flow_control_error,
    connected,
    data_frame,
    handshake,
    of,
)

WINDOW = 1 << 20  # HTTP2Core's default receive windows


def stream_credit(events: list[h2.events.Event], stream_id: int) -> list[int]:
    """The increments of the WINDOW_UPDATEs the server got for ``stream_id`` (0: the connection)."""
    return [e.delta for e in of(events, h2.events.WindowUpdated) if e.stream_id == stream_id]


def open_stream(core: HTTP2Core, peer: ServerPeer) -> tuple[Ref, int]:
    """A request with a streamed body, answered without content-length: DATA takes the fast path."""
    ref = core.request("POST", "/", [], STREAM)
    (request,) = of(peer.pull(), h2.events.RequestReceived)
    peer.respond(request.stream_id)
    peer.push()
    return ref, request.stream_id


def send(peer: ServerPeer, stream_id: int, total: int, *, pad: int | None = None) -> int:
    """Make the server send ``total`` payload bytes in 16,000-byte frames; return what they count.

    Padded frames go through h2 (the slow path), plain ones do not.
    """
    counted = 0
    for start in range(0, total, 16_000):
        size = min(16_000, total - start)
        peer.h2.send_data(stream_id, b"x" * size, pad_length=pad)
        counted += size if pad is None else size + pad + 1
    return counted


def padded_frame(stream_id: int, size: int, pad_length: int) -> bytes:
    frame = DataFrame(stream_id, b"p" * size)
    frame.flags.add("PADDED")
    frame.pad_length = pad_length
    return bytes(frame.serialize())


def data_bytes(events: list[Event]) -> int:
    return sum(len(e.data) for e in events if isinstance(e, Data))


def assert_windows_agree(core: HTTP2Core, peer: ServerPeer, stream_id: int) -> None:
    """The core's real receive windows are exactly what the server believes it may send.

    That is ``h2's window - unacknowledged`` (see ``mint.http._h2_data``); any
    credit given twice, or never, shows up here.
    """
    peer.h2.receive_data(core.data_to_send())
    stream = core._streams[stream_id]
    h2_stream = core._h2.streams[stream_id]
    assert (
        h2_stream.inbound_flow_control_window - stream.unacknowledged
        == peer.h2.streams[stream_id].outbound_flow_control_window
    )
    assert (
        core._h2.inbound_flow_control_window - core._credit.connection_unacknowledged
        == peer.h2.outbound_flow_control_window
    )


# -- fast path (plain DATA, taken by the core) --------------------------------------------------


def test_paused_stream_gets_no_stream_credit_until_resumed() -> None:
    core, peer = handshake()
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    core.pause_stream(ref)  # idempotent
    counted = send(peer, stream_id, 900_000)  # far past the half window that calls for credit
    assert data_bytes(peer.push()) == 900_000  # delivered as usual
    server_events = peer.pull()
    assert stream_credit(server_events, stream_id) == []
    assert sum(stream_credit(server_events, 0)) >= WINDOW // 2  # the connection keeps flowing
    assert peer.h2.local_flow_control_window(stream_id) == WINDOW - counted
    assert_windows_agree(core, peer, stream_id)

    core.resume_stream(ref)
    assert stream_credit(peer.pull(), stream_id) == [counted]  # all of it, in one frame
    core.resume_stream(ref)  # idempotent: nothing more is owed
    assert stream_credit(peer.pull(), stream_id) == []
    assert_windows_agree(core, peer, stream_id)


def test_credit_flows_as_usual_after_resume() -> None:
    core, peer = handshake()
    ref, stream_id = open_stream(core, peer)
    core.resume_stream(ref)  # never paused: nothing happens
    assert peer.pull() == []
    core.pause_stream(ref)
    core.resume_stream(ref)  # nothing arrived meanwhile: nothing owed
    assert peer.pull() == []
    send(peer, stream_id, 900_000)
    peer.push()
    assert stream_credit(peer.pull(), stream_id) != []
    assert_windows_agree(core, peer, stream_id)


def test_unpaused_neighbour_is_not_held_back() -> None:
    core, peer = handshake()
    slow, slow_id = open_stream(core, peer)
    _, fast_id = open_stream(core, peer)
    core.pause_stream(slow)
    send(peer, slow_id, 600_000)
    peer.push()
    server_events = peer.pull()
    for _ in range(3):  # 2.1 MB in all on a 1 MiB connection window: only with its credit
        send(peer, fast_id, 500_000)
        peer.push()
        server_events += peer.pull()
    assert stream_credit(server_events, slow_id) == []
    assert stream_credit(server_events, fast_id) != []


def test_data_past_a_paused_streams_window_is_still_a_flow_control_error() -> None:
    core = HTTP2Core("example.test", "https", initial_window_size=1000)
    peer = connected(core)
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    # Unpaused, 600 bytes would leave less than half the window and be given back at once.
    assert core.receive_data(data_frame(stream_id, b"x" * 600)) == [Data(ref, b"x" * 600)]
    events = core.receive_data(data_frame(stream_id, b"y" * 401))
    assert [e.ref for e in events if isinstance(e, Error)] == [ref]
    assert_failed_with_flow_control_error(core, peer, events)


# -- slow path (DATA through h2: padded, END_STREAM, ...) -----------------------------------------


def test_padded_data_gives_connection_credit_at_once_and_stream_credit_on_resume() -> None:
    core, peer = handshake()
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    counted = send(peer, stream_id, 600_000, pad=7)
    assert data_bytes(peer.push()) == 600_000
    server_events = peer.pull()
    assert stream_credit(server_events, stream_id) == []
    assert sum(stream_credit(server_events, 0)) == counted  # nothing kept from other streams
    assert_windows_agree(core, peer, stream_id)

    core.resume_stream(ref)
    assert stream_credit(peer.pull(), stream_id) == [counted]
    assert_windows_agree(core, peer, stream_id)
    # h2's own view of the stream is right again: a whole window more is
    # accepted, and credited as usual.
    send(peer, stream_id, WINDOW - 1000, pad=7)
    assert data_bytes(peer.push()) == WINDOW - 1000
    assert stream_credit(peer.pull(), stream_id) != []
    assert_windows_agree(core, peer, stream_id)


def test_fast_and_slow_credit_come_back_in_one_window_update() -> None:
    core, peer = handshake()
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    counted = send(peer, stream_id, 300_000) + send(peer, stream_id, 300_000, pad=3)
    counted += send(peer, stream_id, 200_000)
    peer.push()
    assert stream_credit(peer.pull(), stream_id) == []
    core.resume_stream(ref)
    assert stream_credit(peer.pull(), stream_id) == [counted]
    assert_windows_agree(core, peer, stream_id)


def test_padded_data_past_a_paused_streams_window_is_still_a_flow_control_error() -> None:
    core = HTTP2Core("example.test", "https", initial_window_size=1000)
    peer = connected(core)
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    events = core.receive_data(padded_frame(stream_id, 590, 9))  # 600 counted
    assert events == [Data(ref, b"p" * 590)]
    events = core.receive_data(padded_frame(stream_id, 391, 9))  # 401 counted
    assert [e.ref for e in events if isinstance(e, Error)] == [ref]
    assert_failed_with_flow_control_error(core, peer, events)


def test_a_paused_stream_ending_leaves_no_connection_credit_behind() -> None:
    core, peer = handshake()
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    peer.h2.send_data(stream_id, b"last" * 1000, end_stream=True)
    assert peer.push() == [Data(ref, b"last" * 1000), Done(ref)]
    server_events = peer.pull()
    assert stream_credit(server_events, 0) == [4000]  # else lost for good once the ref is
    assert stream_credit(server_events, stream_id) == []
    core.resume_stream(ref)  # the response is over: stream credit would be wasted
    assert peer.pull() == []


# -- refs -----------------------------------------------------------------------------------------


def test_unknown_and_finished_refs_are_refused_like_everywhere_else() -> None:
    core, peer = handshake()
    for method in (core.pause_stream, core.resume_stream):
        with pytest.raises(HTTPError) as caught:
            method(Ref())
        assert caught.value.reason == "unknown_ref"
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    peer.h2.send_data(stream_id, b"bye", end_stream=True)
    peer.push()
    core.stream_request_body(ref, EOF)  # both halves over: the ref is forgotten
    for method in (core.pause_stream, core.resume_stream):
        with pytest.raises(HTTPError) as caught:
            method(ref)
        assert caught.value.reason == "unknown_ref"


def test_http1_has_no_per_stream_credit() -> None:
    with websockets_echo_server() as echo, http.connect("http", echo.host, echo.port) as conn:
        for method in (conn.pause_stream, conn.resume_stream):
            with pytest.raises(HTTPError) as caught:
                method(Ref())
            assert caught.value.reason == "not_supported"

        async def asyncio_shell() -> None:
            async with await aio.connect("http", echo.host, echo.port) as async_conn:
                for method in (async_conn.pause_stream, async_conn.resume_stream):
                    with pytest.raises(HTTPError) as caught:
                        method(Ref())
                    assert caught.value.reason == "not_supported"

        asyncio.run(asyncio_shell())


# -- against hypercorn ----------------------------------------------------------------------------

SMALL_WINDOW = 256 * 1024  # a few round trips per MiB, so big echoes stay quick
MESSAGE = bytes(range(256)) * (4 * 4096)  # 4 MiB, every byte value


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    config = Config()
    config.websocket_max_message_size = 64 * 2**20
    server = start_hypercorn(config=config)
    yield server
    server.stop()


def received_bytes(box: Mailbox, ref: Ref) -> int:
    """DATA bytes that arrived for ``ref`` and nobody took yet."""
    return sum(len(e.data) for e in box.inbox.get(ref, []) if isinstance(e, Data))


def pump_until_quiet(box: Mailbox) -> None:
    """Read until the server has nothing more to send for a while."""
    while True:
        try:
            box.pump(timeout=0.5)
        except TransportError as exc:
            if exc.reason == "timeout":
                return
            raise


def test_a_paused_websocket_holds_back_only_its_own_server(server: RunningServer) -> None:
    conn = http.connect(
        "http", "127.0.0.1", server.port, protocols=("http2",), http2_window_size=SMALL_WINDOW
    )
    with conn:
        box = Mailbox(conn)
        paused, flowing = Client.on(box, "ws", "/paused"), Client.on(box, "ws", "/flowing")
        conn.pause_stream(paused.ref)
        paused.send(Binary(MESSAGE))
        flowing.send(Binary(MESSAGE))

        assert flowing.receive() == [Binary(MESSAGE)]  # 16 stream windows' worth
        pump_until_quiet(box)
        assert 0 < received_bytes(box, paused.ref) <= SMALL_WINDOW

        conn.resume_stream(paused.ref)
        assert paused.receive() == [Binary(MESSAGE)]
        for client in (paused, flowing):
            client.close()


def test_pause_and_resume_on_the_asyncio_shell(server: RunningServer) -> None:
    async def main() -> None:
        conn = await aio.connect(
            "http", "127.0.0.1", server.port, protocols=("http2",), http2_window_size=SMALL_WINDOW
        )
        async with conn:
            ref = websocket.upgrade("ws", conn, "/", [])
            match await conn.recv(timeout=10):
                case [http.Status(status=status), http.Headers(headers=headers)]:
                    ws = websocket.new(conn, ref, status, headers)
                case events:
                    raise AssertionError(f"unexpected handshake events {events!r}")
            conn.pause_stream(ref)
            await conn.stream_request_body(ref, ws.encode(Binary(MESSAGE)))

            received = bytearray()
            with pytest.raises(TransportError) as caught:  # silence once the window is spent
                while True:
                    for event in await conn.recv(timeout=0.5):
                        assert isinstance(event, Data)
                        received += event.data
            assert caught.value.reason == "timeout"
            assert 0 < len(received) <= SMALL_WINDOW

            conn.resume_stream(ref)
            frames = list(ws.decode(bytes(received)))
            while not frames:
                for event in await conn.recv(timeout=10):
                    assert isinstance(event, Data)
                    frames.extend(ws.decode(event.data))
            assert frames == [Binary(MESSAGE)]

    asyncio.run(main())
