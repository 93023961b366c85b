"""Invalid UTF-8 fails while a text frame is still arriving (RFC 6455 8.1; Autobahn 6.4.3-6.4.4)."""

from __future__ import annotations

import itertools

import pytest

from mint.errors import ProtocolError
from mint.websocket.codec import WebSocket
from mint.websocket.frames import Binary, Text
from test_codec_frames import MASKINGS, server_frame, use_masking

TEXT, BINARY, CONT = 0x1, 0x2, 0x0

# Autobahn 6.4.3's payload: valid, then a code point above U+10FFFF, then valid.
VALID = "κόσμε".encode()
INVALID = b"\xf4\x90\x80\x80"
TAIL = b"edited"


@pytest.fixture(autouse=True, params=MASKINGS)
def masking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name: str = request.param
    use_masking(monkeypatch, name)
    return name


def chunks_of(frame: bytes, *cuts: int) -> list[bytes]:
    edges = [0, *cuts, len(frame)]
    return [frame[start:stop] for start, stop in itertools.pairwise(edges)]


def test_invalid_sequence_fails_before_the_frame_ends() -> None:
    ws = WebSocket()
    frame = server_frame(TEXT, VALID + INVALID + TAIL)
    first, second, _third = chunks_of(frame, 2 + len(VALID), 2 + len(VALID) + len(INVALID))
    assert ws.decode(first) == []
    with pytest.raises(ProtocolError) as info:
        ws.decode(second)
    assert info.value.close_code == 1007
    with pytest.raises(ProtocolError):  # the WebSocket stays failed
        ws.decode(_third)


def test_frames_before_the_partial_one_are_kept() -> None:
    ws = WebSocket()
    whole = server_frame(BINARY, b"kept")
    partial = server_frame(TEXT, VALID + INVALID + TAIL)[: 2 + len(VALID) + 2]
    assert ws.decode(whole[:3]) == []
    with pytest.raises(ProtocolError) as info:
        ws.decode(whole[3:] + partial[:-1] + b"\xff")
    assert info.value.close_code == 1007
    assert info.value.frames == [Binary(b"kept")]


def test_code_point_split_across_reads_is_not_an_error() -> None:
    ws = WebSocket()
    frame = server_frame(TEXT, VALID + TAIL)
    reads = [frame[index : index + 1] for index in range(len(frame))]
    frames = [decoded for read in reads for decoded in ws.decode(read)]
    assert frames == [Text((VALID + TAIL).decode())]


def test_long_frame_fails_in_the_chunk_that_breaks_it() -> None:
    ws = WebSocket()
    payload = b"a" * 100_000 + INVALID + b"b" * 100_000
    frame = server_frame(TEXT, payload)
    assert ws.decode(frame[:65536]) == []
    with pytest.raises(ProtocolError) as info:
        ws.decode(frame[65536:131072])
    assert info.value.close_code == 1007


def test_continuation_follows_the_message_state() -> None:
    """The first fragment ends inside a code point; the partial next one breaks it."""
    ws = WebSocket()
    assert ws.decode(server_frame(TEXT, VALID + b"\xf0\x90", fin=False)) == []
    continuation = server_frame(CONT, b"\x80" + b"x" * 200)
    assert ws.decode(continuation[:5]) == []  # \x80 continues the sequence: fine so far
    ws2 = WebSocket()
    assert ws2.decode(server_frame(TEXT, VALID + b"\xf0\x90", fin=False)) == []
    broken = server_frame(CONT, b"A" + b"x" * 200)
    with pytest.raises(ProtocolError) as info:
        ws2.decode(broken[:5])
    assert info.value.close_code == 1007


def test_binary_and_fragmented_delivery_are_not_judged_as_text() -> None:
    ws = WebSocket()
    frame = server_frame(BINARY, INVALID * 50)
    assert ws.decode(frame[:20]) == []
    assert ws.decode(frame[20:]) == [Binary(INVALID * 50)]
    fragments = WebSocket(fragments=True)
    text = server_frame(TEXT, VALID + TAIL)
    assert fragments.decode(text[:4]) == []
    assert fragments.decode(text[4:]) == [Text((VALID + TAIL).decode())]
