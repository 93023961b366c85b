"""The WebSocket codec on hand-built bytes: RFC 6455 client rules, limits, fragments, masking."""

from __future__ import annotations

import random
from functools import partial

import pytest

from mint.errors import ProtocolError, WebSocketError
from mint.websocket._frame_slots import SLOTS_OK
from mint.websocket.codec import WebSocket
from mint.websocket.frames import Binary, Close, Frame, Ping, Pong, Text
from test_codec_frames import (
    MASKINGS,
    ClientFrame,
    parse_client_frames,
    server_frame,
    unmask,
    use_masking,
)

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


@pytest.fixture(autouse=True, params=MASKINGS)
def masking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with the pure-Python and the C speedups (when compiled)."""
    name: str = request.param
    use_masking(monkeypatch, name)
    return name


#: Two good frames that precede every faulty frame in the error tests.
PRELUDE = server_frame(TEXT, b"before") + server_frame(PING, b"p")
PRELUDE_FRAMES: list[Frame] = [Text("before"), Ping(b"p")]

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def decode_fault(ws: WebSocket, data: bytes, close_code: int) -> ProtocolError:
    """Decode ``PRELUDE + data``; check the close code and that the prelude frames survived."""
    with pytest.raises(ProtocolError) as info:
        ws.decode(PRELUDE + data)
    assert info.value.close_code == close_code
    assert info.value.frames == PRELUDE_FRAMES
    return info.value


def encoded(ws: WebSocket, frame: Frame, **kwargs: bool) -> ClientFrame:
    [client_frame] = parse_client_frames(ws.encode(frame, **kwargs))
    return client_frame


# -- decoding: the frames a server sends -----------------------------------------------------


def test_decode_each_frame_type() -> None:
    ws = WebSocket()
    data = (
        server_frame(TEXT, "héllo".encode())
        + server_frame(BINARY, b"\x00\xff")
        + server_frame(PING, b"ping")
        + server_frame(PONG, b"")
        + server_frame(TEXT, b"")
        + server_frame(CLOSE, close_payload(1001, "bye ✓".encode()))
    )
    assert ws.decode(data) == [
        Text("héllo"),
        Binary(b"\x00\xff"),
        Ping(b"ping"),
        Pong(b""),
        Text(""),
        Close(1001, "bye ✓"),
    ]
    assert ws.close_received and ws.close_frame == Close(1001, "bye ✓")
    assert not ws.close_sent and not ws.closed


def test_fast_path_frames_are_ordinary_frames() -> None:
    # The small-frame loop fills frame slots directly (_frame_slots); its frames
    # must be indistinguishable from constructed ones.
    assert SLOTS_OK
    text, binary = WebSocket().decode(server_frame(TEXT, b"t") + server_frame(BINARY, b"b"))
    assert type(text) is Text and type(binary) is Binary
    assert (text.data, text.fin, binary.data, binary.fin) == ("t", True, b"b", True)
    assert hash(text) == hash(Text("t")) and repr(binary) == repr(Binary(b"b"))


def test_decode_returns_bytes_for_binary() -> None:
    [frame] = WebSocket().decode(bytearray(server_frame(BINARY, b"abc")))
    assert isinstance(frame, Binary) and type(frame.data) is bytes


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 200_000])
def test_decode_length_encodings(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert WebSocket().decode(server_frame(BINARY, payload)) == [Binary(payload)]


@pytest.mark.parametrize("form", [16, 64])
def test_decode_accepts_non_minimal_lengths(form: int) -> None:
    data = server_frame(TEXT, b"short", length_form=form)
    assert WebSocket().decode(data) == [Text("short")]


def test_empty_close_payload_is_no_status() -> None:
    ws = WebSocket()
    assert ws.decode(server_frame(CLOSE)) == [Close(None, "")]
    assert ws.close_frame == Close(None, "")


@pytest.mark.parametrize("code", VALID_CODES)
def test_decode_valid_close_codes(code: int) -> None:
    assert WebSocket().decode(server_frame(CLOSE, close_payload(code, b"r"))) == [Close(code, "r")]


def test_decode_byte_by_byte() -> None:
    data = (
        server_frame(TEXT, "a split é".encode())
        + server_frame(BINARY, b"x" * 300)
        + server_frame(TEXT, b"frag ", fin=False)
        + server_frame(PING, b"!")
        + server_frame(CONT, "ü".encode(), fin=True)
        + server_frame(BINARY, b"y" * 70_000)
        + server_frame(CLOSE, close_payload(1000))
    )
    ws = WebSocket()
    frames: list[Frame] = []
    for index in range(len(data)):
        frames += ws.decode(data[index : index + 1])
    assert frames == [
        Text("a split é"),
        Binary(b"x" * 300),
        Ping(b"!"),
        Text("frag ü"),
        Binary(b"y" * 70_000),
        Close(1000, ""),
    ]


@pytest.mark.parametrize("seed", range(20))
def test_decode_any_chunking_gives_the_same_frames(seed: int) -> None:
    rng = random.Random(seed)
    data = b"".join(
        [
            server_frame(TEXT, "début ".encode() * 30, fin=False),
            server_frame(PING, b"x" * 125),
            server_frame(CONT, "€ fin".encode()),
            server_frame(BINARY, bytes(range(256)) * 300),
            server_frame(TEXT, b"small"),
            server_frame(BINARY, b"b" * 126, fin=False),
            server_frame(CONT, b"", fin=False),
            server_frame(CONT, b"c" * 70_000),
            server_frame(CLOSE, close_payload(1000, b"done")),
        ]
    )
    expected = WebSocket().decode(data)
    assert len(expected) == 6
    cuts = sorted(rng.sample(range(1, len(data)), 40))
    ws = WebSocket()
    frames: list[Frame] = []
    for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
        frames += ws.decode(data[start:stop])
    assert frames == expected


def test_decode_empty_input() -> None:
    ws = WebSocket()
    assert ws.decode(b"") == []
    assert ws.decode(server_frame(TEXT, b"ok")) == [Text("ok")]


def test_decode_16_mib_frame_in_chunks() -> None:
    payload = bytes(range(256)) * (16 * 2**20 // 256)
    data = server_frame(BINARY, payload) + server_frame(TEXT, b"after")
    ws = WebSocket(max_frame_size=None, max_message_size=None)
    frames: list[Frame] = []
    for start in range(0, len(data), 65536):
        frames += ws.decode(data[start : start + 65536])
    assert frames == [Binary(payload), Text("after")]


# -- decoding: messages and fragments --------------------------------------------------------


def test_fragmented_messages_are_joined() -> None:
    ws = WebSocket()
    data = (
        server_frame(TEXT, b"hel", fin=False)
        + server_frame(PONG, b"interleaved")
        + server_frame(CONT, b"lo", fin=False)
        + server_frame(CONT, b"", fin=True)
        + server_frame(BINARY, b"\x01", fin=False)
        + server_frame(CONT, b"\x02", fin=True)
    )
    assert ws.decode(data) == [Pong(b"interleaved"), Text("hello"), Binary(b"\x01\x02")]


def test_fragmented_message_across_calls() -> None:
    ws = WebSocket()
    assert ws.decode(server_frame(BINARY, b"ab", fin=False)) == []
    assert ws.decode(server_frame(CONT, b"cd", fin=False)) == []
    assert ws.decode(server_frame(CONT, b"ef")) == [Binary(b"abcdef")]
    assert ws.decode(server_frame(TEXT, b"next")) == [Text("next")]


def test_utf8_sequence_split_across_frames() -> None:
    euro = "€".encode()  # 3 bytes
    ws = WebSocket()
    data = (
        server_frame(TEXT, b"a" + euro[:1], fin=False)
        + server_frame(CONT, euro[1:2], fin=False)
        + server_frame(CONT, euro[2:] + b"b")
    )
    assert ws.decode(data) == [Text("a€b")]


def test_fragments_mode_returns_each_frame() -> None:
    euro = "€".encode()
    ws = WebSocket(fragments=True)
    data = (
        server_frame(TEXT, b"a" + euro[:2], fin=False)
        + server_frame(PING)
        + server_frame(CONT, euro[2:] + b"b", fin=False)
        + server_frame(CONT, b"c")
        + server_frame(BINARY, b"1", fin=False)
        + server_frame(CONT, b"2")
        + server_frame(TEXT, b"whole")
        + server_frame(BINARY, b"whole")
    )
    assert ws.decode(data) == [
        Text("a", fin=False),
        Ping(b""),
        Text("€b", fin=False),
        Text("c", fin=True),
        Binary(b"1", fin=False),
        Binary(b"2", fin=True),
        Text("whole"),
        Binary(b"whole"),
    ]


def test_invalid_utf8_fails_at_the_middle_fragment() -> None:
    ws = WebSocket()
    assert ws.decode(server_frame(TEXT, b"fine", fin=False)) == []
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(PING, b"x") + server_frame(CONT, b"\xff", fin=False))
    assert info.value.close_code == 1007
    assert info.value.frames == [Ping(b"x")]


def test_invalid_utf8_fails_in_fragments_mode_too() -> None:
    ws = WebSocket(fragments=True)
    assert ws.decode(server_frame(TEXT, b"ok", fin=False)) == [Text("ok", fin=False)]
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(CONT, b"\xc3\x28", fin=False))
    assert info.value.close_code == 1007


def test_truncated_utf8_at_end_of_final_fragment() -> None:
    ws = WebSocket()
    data = PRELUDE + server_frame(TEXT, b"ok", fin=False) + server_frame(CONT, "€".encode()[:2])
    with pytest.raises(ProtocolError) as info:
        ws.decode(data)
    assert info.value.close_code == 1007
    assert info.value.frames == PRELUDE_FRAMES


@pytest.mark.parametrize("payload", [b"\xff", b"abc\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf"])
def test_invalid_utf8_unfragmented(payload: bytes) -> None:
    decode_fault(WebSocket(), server_frame(TEXT, payload), 1007)


def test_invalid_utf8_on_slow_path() -> None:
    # Over 125 bytes: the general path, not the small-frame loop.
    decode_fault(WebSocket(), server_frame(TEXT, b"a" * 200 + b"\xff"), 1007)


# -- decoding: protocol errors ---------------------------------------------------------------


def test_masked_frame_from_server() -> None:
    decode_fault(WebSocket(), server_frame(TEXT, b"x", mask_key=b"abcd"), 1002)


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
def test_rsv_bits_without_extension(rsv: int) -> None:
    decode_fault(WebSocket(), server_frame(TEXT, b"x", rsv=rsv), 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes(opcode: int) -> None:
    decode_fault(WebSocket(), server_frame(opcode, b"x"), 1002)


@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_fragmented_control_frame(opcode: int) -> None:
    decode_fault(WebSocket(), server_frame(opcode, b"", fin=False), 1002)


@pytest.mark.parametrize("opcode", [CLOSE, PING, PONG])
def test_control_frame_over_125_bytes(opcode: int) -> None:
    # Only the header: the error must not wait for the payload.
    decode_fault(WebSocket(), server_frame(opcode, b"x" * 126)[:4], 1002)


def test_rsv_bit_on_control_frame() -> None:
    decode_fault(WebSocket(), server_frame(PING, b"", rsv=0x40), 1002)


def test_continuation_without_message() -> None:
    decode_fault(WebSocket(), server_frame(CONT, b"x"), 1002)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_new_message_while_fragmented_open(opcode: int) -> None:
    ws = WebSocket()
    with pytest.raises(ProtocolError) as info:
        ws.decode(
            server_frame(BINARY, b"a", fin=False)
            + server_frame(PING, b"p")
            + server_frame(opcode, b"b", fin=True)
        )
    assert info.value.close_code == 1002
    assert info.value.frames == [Ping(b"p")]


def test_64_bit_length_with_top_bit_set() -> None:
    header = bytes((0x82, 127)) + (2**63 + 5).to_bytes(8, "big")
    decode_fault(WebSocket(max_frame_size=None, max_message_size=None), header, 1002)


def test_one_byte_close_payload() -> None:
    decode_fault(WebSocket(), server_frame(CLOSE, b"\x03"), 1002)


@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_close_code_received(code: int) -> None:
    decode_fault(WebSocket(), server_frame(CLOSE, close_payload(code)), 1002)


def test_close_reason_not_utf8() -> None:
    decode_fault(WebSocket(), server_frame(CLOSE, close_payload(1000, b"\xff")), 1007)


@pytest.mark.parametrize(
    "after", [server_frame(TEXT, b"late"), server_frame(PING), server_frame(CLOSE)]
)
def test_frame_after_close(after: bytes) -> None:
    ws = WebSocket()
    assert ws.decode(server_frame(CLOSE, close_payload(1000))) == [Close(1000, "")]
    with pytest.raises(ProtocolError) as info:
        ws.decode(after)
    assert info.value.close_code == 1002


def test_frame_after_close_in_same_input_keeps_the_close() -> None:
    ws = WebSocket()
    with pytest.raises(ProtocolError) as info:
        ws.decode(PRELUDE + server_frame(CLOSE) + server_frame(TEXT, b"late"))
    assert info.value.close_code == 1002
    assert info.value.frames == [*PRELUDE_FRAMES, Close(None, "")]


def test_failed_websocket_stays_failed() -> None:
    ws = WebSocket()
    decode_fault(ws, server_frame(TEXT, b"\xff"), 1007)
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(TEXT, b"fine"))
    assert info.value.close_code == 1007
    assert info.value.frames == []


def test_decode_rejects_str_input() -> None:
    with pytest.raises(WebSocketError):
        WebSocket().decode("text")  # type: ignore[arg-type]


# -- decoding: size limits -------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 200, 70_000])
def test_frame_exactly_at_limit_is_accepted(size: int) -> None:
    ws = WebSocket(max_frame_size=size)
    assert ws.decode(server_frame(BINARY, b"z" * size)) == [Binary(b"z" * size)]


@pytest.mark.parametrize("size", [10, 200, 70_000])
def test_frame_over_limit_fails_on_its_header(size: int) -> None:
    header = server_frame(BINARY, b"z" * (size + 1))[: 2 if size < 125 else 10]
    decode_fault(WebSocket(max_frame_size=size), header, 1009)


def test_message_exactly_at_limit_is_accepted() -> None:
    ws = WebSocket(max_message_size=10)
    data = server_frame(TEXT, b"12345", fin=False) + server_frame(CONT, b"67890")
    assert ws.decode(data) == [Text("1234567890")]
    # The count starts again with each message.
    assert ws.decode(data) == [Text("1234567890")]


def test_message_over_limit_fails_on_the_header_of_the_frame_that_crosses_it() -> None:
    ws = WebSocket(max_message_size=10)
    assert ws.decode(server_frame(BINARY, b"123456", fin=False)) == []
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(PONG, b"q") + server_frame(CONT, b"12345")[:2])
    assert info.value.close_code == 1009
    assert info.value.frames == [Pong(b"q")]


def test_message_limit_in_fragments_mode() -> None:
    ws = WebSocket(max_message_size=4, fragments=True)
    assert ws.decode(server_frame(BINARY, b"abc", fin=False)) == [Binary(b"abc", fin=False)]
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(CONT, b"de"))
    assert info.value.close_code == 1009


def test_unlimited_sizes() -> None:
    ws = WebSocket(max_frame_size=None, max_message_size=None)
    assert ws.decode(server_frame(BINARY, b"q" * 300_000)) == [Binary(b"q" * 300_000)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_frame_size": 0},
        {"max_frame_size": -1},
        {"max_message_size": 1.5},
        {"max_message_size": True},
        {"fragments": 1},
        {"subprotocol": b"chat"},
        {"extensions": [object()]},
        {"extensions": "permessage-deflate"},
    ],
)
def test_constructor_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(WebSocketError):
        WebSocket(**kwargs)  # type: ignore[arg-type]


def test_constructor_exposes_negotiation() -> None:
    ws = WebSocket(subprotocol="chat")
    assert ws.subprotocol == "chat"
    assert ws.extensions == []
    assert repr(ws) == "<WebSocket open extensions=[] subprotocol='chat'>"


# -- encoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 32, 125, 126, 511, 512, 513, 65535, 65536])
def test_encode_binary_round_trip(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    frame = encoded(WebSocket(), Binary(payload))
    assert (frame.fin, frame.rsv, frame.opcode) == (True, 0, BINARY)
    assert unmask(frame) == payload


def test_encode_large_frame_round_trip() -> None:
    payload = bytes(range(251)) * 4200  # not a multiple of 4
    frame = encoded(WebSocket(), Binary(payload))
    assert unmask(frame) == payload


def test_encode_text_round_trip() -> None:
    for text in ["", "hello", "héllo wörld €", "x" * 1000]:
        frame = encoded(WebSocket(), Text(text))
        assert (frame.fin, frame.opcode) == (True, TEXT)
        assert unmask(frame).decode() == text


def test_encode_accepts_bytearray_and_memoryview() -> None:
    ws = WebSocket()
    assert unmask(encoded(ws, Binary(bytearray(b"ab")))) == b"ab"  # type: ignore[arg-type]
    assert unmask(encoded(ws, Ping(memoryview(b"cd")))) == b"cd"  # type: ignore[arg-type]


class _Bytes(bytes):
    pass


def test_a_bytes_subclass_is_taken_as_bytes() -> None:
    """Binary data and ``decode`` input that subclass ``bytes`` are bytes, not refused."""
    ws = WebSocket()
    [frame] = parse_client_frames(ws.encode_binary(_Bytes(b"sub")))
    assert (frame.opcode, unmask(frame)) == (BINARY, b"sub")
    assert unmask(encoded(ws, Binary(_Bytes(b"ab")))) == b"ab"
    assert unmask(encoded(ws, Ping(_Bytes(b"cd")))) == b"cd"
    [message] = ws.decode(_Bytes(server_frame(BINARY, b"in")))
    assert message == Binary(b"in") and type(message.data) is bytes
    with pytest.raises(WebSocketError) as refused:
        ws.encode_binary("text")  # type: ignore[arg-type]
    assert refused.value.reason == "invalid_frame"


def test_encode_control_frames() -> None:
    ws = WebSocket()
    ping = encoded(ws, Ping(b"p" * 125))
    assert (ping.fin, ping.opcode, unmask(ping)) == (True, PING, b"p" * 125)
    pong = encoded(ws, Pong())
    assert (pong.opcode, unmask(pong)) == (PONG, b"")
    close = encoded(ws, Close(1000, "done"))
    assert (close.opcode, unmask(close)) == (CLOSE, close_payload(1000, b"done"))


def test_every_frame_gets_a_fresh_key() -> None:
    ws = WebSocket()
    keys = {encoded(ws, Text("same")).mask_key for _ in range(600)}  # crosses a key-pool refill
    assert len(keys) == 600
    assert len({encoded(WebSocket(), Text("same")).mask_key for _ in range(20)}) == 20


def test_masking_actually_changes_the_payload() -> None:
    frames = [encoded(WebSocket(), Binary(b"\x00" * 8)) for _ in range(8)]
    # A zero payload masked is the key repeated.
    assert all(frame.payload == frame.mask_key * 2 for frame in frames)
    assert any(frame.mask_key != b"\x00" * 4 for frame in frames)


def test_encode_control_payload_over_125() -> None:
    ws = WebSocket()
    for frame in (Ping(b"x" * 126), Pong(b"x" * 126)):
        with pytest.raises(WebSocketError):
            ws.encode(frame)


def test_encode_empty_close() -> None:
    ws = WebSocket()
    frame = encoded(ws, Close(None))
    assert (frame.opcode, frame.payload) == (CLOSE, b"")


@pytest.mark.parametrize("code", VALID_CODES)
def test_encode_valid_close_codes(code: int) -> None:
    assert unmask(encoded(WebSocket(), Close(code, "r"))) == close_payload(code, b"r")


@pytest.mark.parametrize("code", INVALID_CODES)
def test_encode_invalid_close_codes(code: int) -> None:
    ws = WebSocket()
    with pytest.raises(WebSocketError):
        ws.encode(Close(code))
    assert not ws.close_sent


def test_encode_close_reason_limits() -> None:
    assert len(unmask(encoded(WebSocket(), Close(1000, "r" * 123)))) == 125
    for bad in (Close(1000, "r" * 124), Close(1000, "é" * 62), Close(None, "x")):
        with pytest.raises(WebSocketError):
            WebSocket().encode(bad)


def test_nothing_after_close_sent() -> None:
    ws = WebSocket()
    ws.encode(Close())
    assert ws.close_sent and not ws.closed
    for frame in (Text("x"), Binary(b"x"), Ping(), Pong(), Close()):
        with pytest.raises(WebSocketError) as info:
            ws.encode(frame)
        assert info.value.reason == "closed"
    ws.decode(server_frame(CLOSE, close_payload(1000)))
    assert ws.closed


def test_data_may_be_sent_after_close_received() -> None:
    ws = WebSocket()
    ws.decode(server_frame(CLOSE, close_payload(1001)))
    assert unmask(encoded(ws, Text("still here"))) == b"still here"
    ws.encode(Close(1000))
    assert ws.closed


def test_encode_fragmented_message_with_interleaved_control() -> None:
    ws = WebSocket()
    sent: list[Frame] = [
        Text("a", fin=False),
        Ping(b"!"),
        Text("b", fin=False),
        Text("c"),
        Binary(b"d", fin=False),
        Binary(b"e"),
        Text("f"),
    ]
    data = b"".join(ws.encode(frame) for frame in sent)
    frames = parse_client_frames(data)
    assert [(f.fin, f.opcode, unmask(f)) for f in frames] == [
        (False, TEXT, b"a"),
        (True, PING, b"!"),
        (False, CONT, b"b"),
        (True, CONT, b"c"),
        (False, BINARY, b"d"),
        (True, CONT, b"e"),
        (True, TEXT, b"f"),
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [(Text("a", fin=False), Binary(b"b")), (Binary(b"a", fin=False), Text("b"))],
)
def test_encode_other_type_inside_fragmented_message(first: Frame, second: Frame) -> None:
    ws = WebSocket()
    ws.encode(first)
    with pytest.raises(WebSocketError):
        ws.encode(second)


@pytest.mark.parametrize(
    "bad",
    [
        "text",
        b"bytes",
        Text(b"not str"),  # type: ignore[arg-type]
        Binary("not bytes"),  # type: ignore[arg-type]
        Ping("not bytes"),  # type: ignore[arg-type]
        Text("\ud800"),
        Text("x", fin=1),  # type: ignore[arg-type]
        Close("1000"),  # type: ignore[arg-type]
        Close(1000, 5),  # type: ignore[arg-type]
        Close(1000, "\ud800"),
    ],
)
def test_encode_rejects_bad_frames(bad: object) -> None:
    with pytest.raises(WebSocketError):
        WebSocket().encode(bad)  # type: ignore[arg-type]


def test_encode_text_and_binary_entries_match_encode() -> None:
    """``encode_text``/``encode_binary`` make the frames ``encode`` makes of Text/Binary."""
    ws = WebSocket()
    for text in ["", "hello", "héllo wörld €", "x" * 70_000]:
        [frame] = parse_client_frames(ws.encode_text(text))
        assert (frame.fin, frame.rsv, frame.opcode) == (True, 0, TEXT)
        assert unmask(frame).decode() == text
    payloads: list[bytes | bytearray | memoryview] = [
        b"",
        b"\x00\xff",
        bytearray(b"ab"),
        memoryview(b"xyz" * 50_000),
    ]
    for data in payloads:
        [frame] = parse_client_frames(ws.encode_binary(data))
        assert (frame.fin, frame.rsv, frame.opcode) == (True, 0, BINARY)
        assert unmask(frame) == bytes(data)


def test_encode_text_and_binary_entries_keep_the_rules() -> None:
    ws = WebSocket()
    ws.encode(Text("a", fin=False))  # a fragmented message is open: no other message may start
    for send in (partial(ws.encode_text, "b"), partial(ws.encode_binary, b"b")):
        with pytest.raises(WebSocketError) as info:
            send()
        assert info.value.reason == "message_in_progress"
    with pytest.raises(WebSocketError, match="Text data"):
        WebSocket().encode_text(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(WebSocketError, match="Text data"):
        WebSocket().encode_text("\ud800")
    with pytest.raises(WebSocketError, match="Binary data"):
        WebSocket().encode_binary("str")  # type: ignore[arg-type]
    closed = WebSocket()
    closed.encode(Close(1000))
    for send in (partial(closed.encode_text, "late"), partial(closed.encode_binary, b"late")):
        with pytest.raises(WebSocketError) as info:
            send()
        assert info.value.reason == "closed"


def test_round_trip_through_decode() -> None:
    """What the client encodes, a server unmasks and echoes: the codec decodes it back."""
    frames: list[Frame] = [Text("é" * 100), Binary(b"\x00" * 70_000), Ping(b"x"), Close(4000, "ok")]
    sender, receiver = WebSocket(), WebSocket()
    echoed = b"".join(
        server_frame(frame.opcode, unmask(frame), fin=frame.fin)
        for frame in parse_client_frames(b"".join(sender.encode(f) for f in frames))
    )
    assert receiver.decode(echoed) == frames
