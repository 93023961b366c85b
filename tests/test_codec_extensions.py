"""The codec's extension hooks, driven by small test extensions that claim RSV bits."""

from __future__ import annotations

import pytest

from mint.errors import ProtocolError, WebSocketError
from mint.websocket.codec import WebSocket
from mint.websocket.extensions.base import RSV1, RSV2, RSV3, Extension, Params
from mint.websocket.frames import Binary, Ping, Text
from test_codec_frames import MASKINGS, parse_client_frames, server_frame, unmask, use_masking

TEXT, BINARY, PING, CONT = 0x1, 0x2, 0x9, 0x0


@pytest.fixture(autouse=True, params=MASKINGS)
def masking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with the pure-Python and the C speedups (when compiled)."""
    name: str = request.param
    use_masking(monkeypatch, name)
    return name


Call = tuple[object, ...]


class XorExtension(Extension):
    """XORs payloads with one byte and flags transformed frames with RSV2."""

    name = "x-xor"
    rsv_mask = RSV2

    def __init__(self, log: list[Call], byte: int = 0x55) -> None:
        self.log = log
        self.byte = byte
        self.transform_message = True

    def offer(self) -> Params:
        return []

    def accept(self, params: Params) -> Extension:
        return self

    def encode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, *, transform: bool = True
    ) -> tuple[bytes, int]:
        self.log.append(("encode", self.name, opcode, payload, rsv, fin, transform))
        if opcode:
            self.transform_message = transform
        if not self.transform_message:
            return payload, rsv
        return bytes(value ^ self.byte for value in payload), rsv | RSV2

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        self.log.append(("decode", self.name, opcode, payload, rsv, fin, max_size))
        if not rsv & RSV2:
            return payload, rsv
        return bytes(value ^ self.byte for value in payload), rsv & ~RSV2


class ReverseExtension(Extension):
    """Reverses payloads flagged with RSV3 (applied after XorExtension when both are negotiated)."""

    name = "x-reverse"
    rsv_mask = RSV3

    def __init__(self, log: list[Call]) -> None:
        self.log = log

    def offer(self) -> Params:
        return []

    def accept(self, params: Params) -> Extension:
        return self

    def encode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, *, transform: bool = True
    ) -> tuple[bytes, int]:
        self.log.append(("encode", self.name, opcode, payload, rsv, fin, transform))
        return payload[::-1], rsv | RSV3

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        self.log.append(("decode", self.name, opcode, payload, rsv, fin, max_size))
        if not rsv & RSV3:
            return payload, rsv
        return payload[::-1], rsv & ~RSV3


class DoublingExtension(Extension):
    """Expands every flagged payload to twice its size, like a decompressor would."""

    name = "x-double"
    rsv_mask = RSV1

    def offer(self) -> Params:
        return []

    def accept(self, params: Params) -> Extension:
        return self

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        return payload * 2, rsv & ~RSV1


class IdleExtension(Extension):
    """Claims RSV1 but never consumes it."""

    name = "x-idle"
    rsv_mask = RSV1

    def offer(self) -> Params:
        return []

    def accept(self, params: Params) -> Extension:
        return self


class FailingExtension(Extension):
    name = "x-failing"
    rsv_mask = RSV1

    def __init__(self, error: Exception) -> None:
        self.error = error

    def offer(self) -> Params:
        return []

    def accept(self, params: Params) -> Extension:
        return self

    def encode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, *, transform: bool = True
    ) -> tuple[bytes, int]:
        raise self.error

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        if payload == b"boom":
            raise self.error
        return payload, rsv & ~RSV1


def xored(data: bytes, byte: int = 0x55) -> bytes:
    return bytes(value ^ byte for value in data)


def test_encode_calls_extensions_in_negotiation_order() -> None:
    log: list[Call] = []
    ws = WebSocket(extensions=[XorExtension(log), ReverseExtension(log)])
    assert [type(e) for e in ws.extensions] == [XorExtension, ReverseExtension]
    [frame] = parse_client_frames(ws.encode(Text("abc")))
    assert frame.rsv == RSV2 | RSV3
    assert unmask(frame) == xored(b"abc")[::-1]
    assert log == [
        ("encode", "x-xor", TEXT, b"abc", 0, True, True),
        ("encode", "x-reverse", TEXT, xored(b"abc"), RSV2, True, True),
    ]


def test_encode_passes_continuation_opcode_and_compress_flag() -> None:
    log: list[Call] = []
    ws = WebSocket(extensions=[XorExtension(log)])
    data = ws.encode(Binary(b"ab", fin=False), compress=False) + ws.encode(Binary(b"cd"))
    frames = parse_client_frames(data)
    assert [(f.opcode, f.fin, f.rsv, unmask(f)) for f in frames] == [
        (BINARY, False, 0, b"ab"),
        (CONT, True, 0, b"cd"),
    ]
    assert [call[2] for call in log] == [BINARY, CONT]
    assert log[0][-1] is False


def test_control_frames_skip_extensions() -> None:
    log: list[Call] = []
    ws = WebSocket(extensions=[XorExtension(log)])
    [frame] = parse_client_frames(ws.encode(Ping(b"x")))
    assert (frame.rsv, unmask(frame)) == (0, b"x")
    assert ws.decode(server_frame(PING, b"y")) == [Ping(b"y")]
    assert log == []


def test_decode_calls_extensions_in_reverse_order() -> None:
    log: list[Call] = []
    ws = WebSocket(extensions=[XorExtension(log), ReverseExtension(log)], max_message_size=100)
    wire = xored(b"hello")[::-1]
    assert ws.decode(server_frame(TEXT, wire, rsv=RSV2 | RSV3)) == [Text("hello")]
    assert log == [
        ("decode", "x-reverse", TEXT, wire, RSV2 | RSV3, True, 100),
        ("decode", "x-xor", TEXT, xored(b"hello"), RSV2, True, 100),
    ]


def test_decode_fragmented_message_through_extension() -> None:
    log: list[Call] = []
    ws = WebSocket(extensions=[XorExtension(log)], max_message_size=10)
    data = server_frame(TEXT, xored(b"abc"), fin=False, rsv=RSV2) + server_frame(
        CONT, xored(b"de"), rsv=RSV2
    )
    assert ws.decode(data) == [Text("abcde")]
    # max_size is what is left of the message budget when each frame arrives.
    assert [(call[2], call[-1]) for call in log] == [(TEXT, 10), (CONT, 7)]


def test_unclaimed_rsv_bits_are_rejected() -> None:
    ws = WebSocket(extensions=[XorExtension([])])
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(PING, b"p") + server_frame(TEXT, b"x", rsv=RSV1))
    assert info.value.close_code == 1002
    assert info.value.frames == [Ping(b"p")]


def test_claimed_rsv_bit_on_control_frame_is_rejected() -> None:
    ws = WebSocket(extensions=[XorExtension([])])
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(TEXT, xored(b"ok"), rsv=RSV2) + server_frame(PING, rsv=RSV2))
    assert info.value.close_code == 1002
    assert info.value.frames == [Text("ok")]


def test_rsv_bit_no_extension_consumed_is_rejected() -> None:
    ws = WebSocket(extensions=[IdleExtension()])
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(BINARY, b"x", rsv=RSV1))
    assert info.value.close_code == 1002


def test_decoded_size_counts_against_the_message_limit() -> None:
    ws = WebSocket(extensions=[DoublingExtension()], max_message_size=8)
    assert ws.decode(server_frame(BINARY, b"abcd", rsv=RSV1)) == [Binary(b"abcdabcd")]
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(PING) + server_frame(BINARY, b"abcde", rsv=RSV1))
    assert info.value.close_code == 1009
    assert info.value.frames == [Ping(b"")]


def test_extension_protocol_error_carries_earlier_frames() -> None:
    error = ProtocolError("bad deflate data", close_code=1007)
    ws = WebSocket(extensions=[FailingExtension(error)])
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(TEXT, b"fine") + server_frame(BINARY, b"boom", rsv=RSV1))
    assert info.value is error
    assert info.value.close_code == 1007
    assert info.value.frames == [Text("fine")]


def test_extension_raw_exception_becomes_protocol_error() -> None:
    ws = WebSocket(extensions=[FailingExtension(ValueError("oops"))])
    with pytest.raises(ProtocolError) as info:
        ws.decode(server_frame(TEXT, b"fine") + server_frame(BINARY, b"boom"))
    assert info.value.close_code == 1002
    assert info.value.frames == [Text("fine")]
    assert isinstance(info.value.__cause__, ValueError)


def test_extension_raw_exception_on_encode_becomes_websocket_error() -> None:
    ws = WebSocket(extensions=[FailingExtension(ValueError("oops"))])
    with pytest.raises(WebSocketError) as info:
        ws.encode(Text("x"))
    assert info.value.reason == "extension"


def test_extension_mint_error_on_encode_passes_through() -> None:
    error = WebSocketError("refused by the extension", reason="custom")
    ws = WebSocket(extensions=[FailingExtension(error)])
    with pytest.raises(WebSocketError) as info:
        ws.encode(Binary(b"x"))
    assert info.value is error


class BytearrayExtension(IdleExtension):
    """Consumes RSV1 and hands back a bytearray, as a careless decompressor might."""

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        return bytearray(payload), rsv & ~RSV1  # type: ignore[return-value]


def test_extension_output_becomes_bytes() -> None:
    ws = WebSocket(extensions=[BytearrayExtension()])
    [frame] = ws.decode(server_frame(BINARY, b"abc", rsv=RSV1))
    assert isinstance(frame, Binary) and type(frame.data) is bytes


class StrExtension(IdleExtension):
    """Hands back text where bytes belong: an extension bug mint must report, not crash on."""

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        return payload.decode("latin-1"), rsv & ~RSV1  # type: ignore[return-value]

    def decode_message(self, opcode: int, payload: bytes, rsv: int, max_size: int | None) -> bytes:
        if not rsv:
            return payload
        return payload.decode("latin-1")  # type: ignore[return-value]


def test_extension_output_that_is_not_bytes_is_a_protocol_error() -> None:
    ws = WebSocket(extensions=[StrExtension()])
    first = server_frame(BINARY, b"kept")  # no RSV1: not handed to the extension's decode
    with pytest.raises(ProtocolError) as info:
        ws.decode(first + server_frame(BINARY, b"abc", rsv=RSV1))
    assert info.value.close_code == 1011
    assert "str" in str(info.value)
    assert info.value.frames == [Binary(b"kept")]


class WildRsvExtension(IdleExtension):
    def encode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, *, transform: bool = True
    ) -> tuple[bytes, int]:
        return payload, 0x100


def test_extension_rsv_outside_the_rsv_bits_is_refused() -> None:
    with pytest.raises(WebSocketError) as info:
        WebSocket(extensions=[WildRsvExtension()]).encode(Text("x"))
    assert info.value.reason == "extension"
