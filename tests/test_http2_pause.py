"""Per-stream backpressure in the HTTP/2 core: ``pause_stream`` withholds a stream's credit only."""

from __future__ import annotations

import asyncio

import h2.events
import pytest

from mint import http
from mint.errors import HTTPError
from mint.http import aio
from mint.http.events import STREAM, Data, Ref
from mint.http.http2 import HTTP2Core
from servers.websockets_echo import websockets_echo_server
from test_http2 import ServerPeer, handshake, of


def window_updates(events: list[h2.events.Event], stream_id: int) -> int:
    """The credit the server received for ``stream_id`` (0: the connection) in ``events``."""
    return sum(
        event.delta for event in of(events, h2.events.WindowUpdated) if event.stream_id == stream_id
    )


def open_stream(core: HTTP2Core, peer: ServerPeer) -> tuple[Ref, int]:
    ref = core.request("GET", "/", [], STREAM)
    (request,) = of(peer.pull(), h2.events.RequestReceived)
    peer.respond(request.stream_id)
    peer.push()
    return ref, request.stream_id


def send(peer: ServerPeer, stream_id: int, total: int, *, pad: int | None = None) -> int:
    """Make the server send ``total`` payload bytes in 16 KiB frames; returns what they count."""
    counted = 0
    for start in range(0, total, 16_000):
        size = min(16_000, total - start)
        peer.h2.send_data(stream_id, b"x" * size, pad_length=pad)
        counted += size + (pad + 1 if pad is not None else 0)
    return counted


def test_paused_fast_path_stream_gets_no_credit_until_resumed() -> None:
    core, peer = handshake()
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    core.pause_stream(ref)  # idempotent
    counted = send(peer, stream_id, 900_000)
    events = peer.push()
    assert sum(len(e.data) for e in events if isinstance(e, Data)) == 900_000
    server_events = peer.pull()
    assert window_updates(server_events, stream_id) == 0
    assert window_updates(server_events, 0) > 0  # the connection keeps flowing
    core.resume_stream(ref)
    assert window_updates(peer.pull(), stream_id) == counted  # everything withheld, at once
    core.resume_stream(ref)  # idempotent: nothing more owed
    assert window_updates(peer.pull(), stream_id) == 0


def test_credit_flows_as_usual_after_resume() -> None:
    core, peer = handshake()
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    core.resume_stream(ref)
    send(peer, stream_id, 900_000)
    peer.push()
    assert window_updates(peer.pull(), stream_id) > 0


def test_unpaused_neighbour_is_not_held_back() -> None:
    core, peer = handshake()
    slow, slow_id = open_stream(core, peer)
    _, fast_id = open_stream(core, peer)
    core.pause_stream(slow)
    send(peer, slow_id, 600_000)
    peer.push()
    server_events = peer.pull()  # connection credit for the paused stream's bytes
    for _ in range(3):  # more than one connection window in all: only possible with that credit
        send(peer, fast_id, 500_000)
        peer.push()
        server_events += peer.pull()
    assert window_updates(server_events, slow_id) == 0
    assert window_updates(server_events, fast_id) > 0


def test_frames_through_h2_are_held_too_and_given_back_on_resume() -> None:
    core, peer = handshake()
    ref, stream_id = open_stream(core, peer)
    core.pause_stream(ref)
    counted = send(peer, stream_id, 600_000, pad=7)  # padded frames go through h2
    events = peer.push()
    assert sum(len(e.data) for e in events if isinstance(e, Data)) == 600_000
    assert window_updates(peer.pull(), stream_id) == 0
    core.resume_stream(ref)
    # h2 gives credit back in its own batches: at least the half window it waits for.
    returned = window_updates(peer.pull(), stream_id)
    assert 0 < returned <= counted


def test_unknown_ref_is_refused() -> None:
    core, _ = handshake()
    with pytest.raises(HTTPError) as caught:
        core.pause_stream(Ref())
    assert caught.value.reason == "unknown_ref"


def test_http1_has_no_per_stream_credit() -> None:
    with websockets_echo_server() as server, http.connect("http", server.host, server.port) as conn:
        for method in (conn.pause_stream, conn.resume_stream):
            with pytest.raises(HTTPError) as caught:
                method(Ref())
            assert caught.value.reason == "not_supported"

        async def asyncio_shell() -> None:
            async with await aio.connect("http", server.host, server.port) as async_conn:
                with pytest.raises(HTTPError) as caught:
                    async_conn.pause_stream(Ref())
                assert caught.value.reason == "not_supported"

        asyncio.run(asyncio_shell())
