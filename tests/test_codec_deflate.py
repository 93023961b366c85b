"""The codec's one-extension fast path, with the real PerMessageDeflate and with test extensions.

A whole message in one frame skips ``_decode_frame`` and goes to the
extension's ``decode_message`` (or an adapter over ``decode_frame``).  These
tests check that this path decodes exactly what the general path does: the
same frames, the same errors with the same frames kept, however the bytes are
cut into reads.  The server is bare zlib (RFC 7692 section 7.2), independent
of the code under test.
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections.abc import Callable

import pytest

from mint.errors import ProtocolError
from mint.websocket.codec import WebSocket
from mint.websocket.extensions import RSV1, PerMessageDeflate
from mint.websocket.extensions.base import Extension, Params
from mint.websocket.frames import Binary, Frame, Ping, Text
from test_codec_frames import MASKINGS, server_frame, use_masking

TEXT, BINARY, CONT, PING = 0x1, 0x2, 0x0, 0x9
TAIL = b"\x00\x00\xff\xff"


@pytest.fixture(autouse=True, params=MASKINGS)
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with the pure-Python and the C speedups (when compiled)."""
    name: str = request.param
    use_masking(monkeypatch, name)
    return name


def negotiated(**options: bool) -> PerMessageDeflate:
    return PerMessageDeflate(**options).accept(
        [("server_no_context_takeover", None)] if options.get("server_no_context_takeover") else []
    )


class Server:
    """Compresses messages as a permessage-deflate server does (RFC 7692 7.2.1) and frames them.

    ``resets``: no context takeover, a fresh compressor per message.  Also used
    by the inflate-hook and differential tests.
    """

    def __init__(self, *, resets: bool = False) -> None:
        self.resets = resets
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, -15)

    def compress(self, message: bytes) -> bytes:
        data = self.compressor.compress(message) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.resets:
            self.compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        assert data.endswith(TAIL)
        return data[:-4]

    def compress_final(self, message: bytes) -> bytes:
        """The message in blocks ending with BFINAL (RFC 7692 7.2.3.4); the stream starts over."""
        data = self.compressor.compress(message) + self.compressor.flush(zlib.Z_FINISH)
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        return data

    def message(self, opcode: int, message: bytes) -> bytes:
        return server_frame(opcode, self.compress(message), rsv=RSV1)

    def fragments(self, opcode: int, message: bytes, parts: int) -> bytes:
        """One compressed message cut into ``parts`` frames (RSV1 on the first only)."""
        payload = self.compress(message)
        cuts = [len(payload) * index // parts for index in range(parts + 1)]
        return b"".join(
            server_frame(
                opcode if index == 0 else CONT,
                payload[cuts[index] : cuts[index + 1]],
                fin=index == parts - 1,
                rsv=RSV1 if index == 0 else 0,
            )
            for index in range(parts)
        )


def conversation(server: Server) -> tuple[bytes, list[Frame]]:
    """Compressed and plain messages of every length form, a fragmented one, a ping."""
    rng = random.Random(7692)
    data = []
    expected: list[Frame] = []
    for size in (0, 1, 60, 125, 126, 400, 5000, 65535, 65536, 100_000):
        text = "".join(rng.choice("abcdéf {}:,\n") for _ in range(size))
        data.append(server.message(TEXT, text.encode()))
        expected.append(Text(text))
        blob = rng.randbytes(size // 3)
        data.append(server.message(BINARY, blob))
        expected.append(Binary(blob))
    data.append(server_frame(BINARY, b"sent plain"))
    expected.append(Binary(b"sent plain"))
    data.append(server.fragments(TEXT, b"in three parts " * 50, 3))
    expected.append(Text("in three parts " * 50))
    data.append(server_frame(PING, b"p"))
    expected.append(Ping(b"p"))
    data.append(server.message(TEXT, "après".encode()))
    expected.append(Text("après"))
    return b"".join(data), expected


def decode_in_reads(ws: WebSocket, data: bytes, sizes: list[int]) -> list[Frame]:
    frames: list[Frame] = []
    pos = 0
    index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        frames.extend(ws.decode(data[pos : pos + size]))
        pos += size
        index += 1
    return frames


@pytest.mark.parametrize(
    "reads",
    [[10**9], [4096], [1], [3], [2, 5, 1, 700], [65536], [126, 127, 4]],
    ids=lambda reads: "-".join(map(str, reads)),
)
@pytest.mark.parametrize("resets", [False, True], ids=["takeover", "no-takeover"])
def test_messages_decode_the_same_however_cut(reads: list[int], resets: bool) -> None:
    data, expected = conversation(Server(resets=resets))
    ws = WebSocket(extensions=[negotiated(server_no_context_takeover=resets)])
    assert decode_in_reads(ws, data, reads) == expected


def test_random_reads() -> None:
    data, expected = conversation(Server())
    rng = random.Random(6455)
    sizes = [rng.randrange(1, 3000) for _ in range(200)]
    assert decode_in_reads(WebSocket(extensions=[negotiated()]), data, sizes) == expected


def test_fragments_mode_delivers_whole_messages_unchanged() -> None:
    data, expected = conversation(Server())
    frames = WebSocket(extensions=[negotiated()], fragments=True).decode(data)
    # expected[-3] is the message sent in three frames: it alone comes in pieces.
    assert frames[:-5] == expected[:-3]
    pieces = frames[-5:-2]
    assert all(type(piece) is Text for piece in pieces)
    assert [piece.fin for piece in pieces] == [False, False, True]  # type: ignore[union-attr]
    assert Text("".join(piece.data for piece in pieces)) == expected[-3]  # type: ignore[union-attr, misc]
    assert frames[-2:] == expected[-2:]


# -- errors on the fast path keep the frames before them --------------------------------------


def test_corrupt_compressed_data_is_1002_with_earlier_frames() -> None:
    server = Server()
    good = server.message(TEXT, b"fine")
    bad = server_frame(BINARY, b"\xff\xff\xff\xff", rsv=RSV1)
    with pytest.raises(ProtocolError) as info:
        WebSocket(extensions=[negotiated()]).decode(good + bad)
    assert info.value.close_code == 1002
    assert info.value.frames == [Text("fine")]


def test_invalid_utf8_after_inflating_is_1007() -> None:
    server = Server()
    data = server.message(BINARY, b"ok") + server.message(TEXT, b"\xff\xfe")
    with pytest.raises(ProtocolError) as info:
        WebSocket(extensions=[negotiated()]).decode(data)
    assert info.value.close_code == 1007
    assert info.value.frames == [Binary(b"ok")]


def test_inflating_past_the_message_limit_is_1009() -> None:
    server = Server()
    data = server.message(TEXT, b"x" * 100) + server.message(BINARY, b"\x00" * 101)
    ws = WebSocket(extensions=[negotiated()], max_message_size=100)
    with pytest.raises(ProtocolError) as info:
        ws.decode(data)
    assert info.value.close_code == 1009
    assert info.value.frames == [Text("x" * 100)]


def test_frame_over_the_frame_limit_fails_on_its_header() -> None:
    """The limit is checked as soon as the length is read, before the payload arrives."""
    frame = Server().message(BINARY, bytes(range(256)) * 4)
    ws = WebSocket(extensions=[negotiated()], max_frame_size=100)
    with pytest.raises(ProtocolError) as info:
        ws.decode(frame[:4])
    assert info.value.close_code == 1009


def test_rsv_bits_the_extension_does_not_own_are_1002() -> None:
    frame = server_frame(BINARY, b"x", rsv=RSV1 | 0x20)
    with pytest.raises(ProtocolError) as info:
        WebSocket(extensions=[negotiated()]).decode(frame)
    assert info.value.close_code == 1002


def test_data_after_a_final_deflate_block_is_1002() -> None:
    # "Hello" in one final fixed-Huffman block, then junk (RFC 7692 7.2.3.4).
    frame = server_frame(TEXT, bytes.fromhex("f348cdc9c90700") + b"junk", rsv=RSV1)
    with pytest.raises(ProtocolError) as info:
        WebSocket(extensions=[negotiated()]).decode(frame)
    assert info.value.close_code == 1002


# -- decode_message is decode_frame for a whole message ------------------------------------------


def outcome(decode: Callable[..., object], *args: object) -> object:
    """The decoded bytes, or the close code and reason of the ProtocolError raised."""
    try:
        result = decode(*args)
    except ProtocolError as exc:
        return (exc.close_code, exc.reason)
    return result[0] if isinstance(result, tuple) else result


@pytest.mark.parametrize("resets", [False, True])
@pytest.mark.parametrize("limit", [None, 10**6, 5000])
def test_decode_message_matches_decode_frame(resets: bool, limit: int | None) -> None:
    server = Server(resets=resets)
    by_frame = negotiated(server_no_context_takeover=resets)
    by_message = negotiated(server_no_context_takeover=resets)
    rng = random.Random(1)
    for size in (0, 10, 3000, 5000, 5001, 20_000):
        message = rng.randbytes(size // 2) + b"a" * (size - size // 2)
        payload = server.compress(message)
        framed = outcome(by_frame.decode_frame, BINARY, payload, RSV1, True, limit)
        whole = outcome(by_message.decode_message, BINARY, payload, RSV1, limit)
        assert framed == whole
        if isinstance(whole, tuple):
            assert limit is not None and size > limit
            return  # both failed alike; a failed stream is not continued
        assert whole == message


def test_decode_message_passes_uncompressed_payloads() -> None:
    assert negotiated().decode_message(TEXT, b"plain", 0, None) == b"plain"


# -- which hook the fast path calls -----------------------------------------------------------


class MessageLoggingExtension(Extension):
    """Claims RSV1 and logs which of its two decode hooks the codec calls."""

    name = "x-log"
    rsv_mask = RSV1

    def __init__(self) -> None:
        self.calls: list[str] = []

    def offer(self) -> Params:
        return []

    def accept(self, params: Params) -> Extension:
        return self

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        self.calls.append("frame")
        return payload.upper(), rsv & ~RSV1

    def decode_message(self, opcode: int, payload: bytes, rsv: int, max_size: int | None) -> bytes:
        self.calls.append("message")
        return payload.upper()


def test_whole_messages_use_decode_message_fragments_decode_frame() -> None:
    extension = MessageLoggingExtension()
    data = (
        server_frame(TEXT, b"one", rsv=RSV1)
        + server_frame(TEXT, b"t", rsv=RSV1, fin=False)
        + server_frame(CONT, b"wo")
        + server_frame(BINARY, b"three" * 100)
        + server_frame(BINARY, b"four" * 20_000, rsv=RSV1)  # 64-bit length: general path
    )
    assert WebSocket(extensions=[extension]).decode(data) == [
        Text("ONE"),
        Text("TWO"),
        Binary(b"THREE" * 100),
        Binary(b"FOUR" * 20_000),
    ]
    assert extension.calls == ["message", "frame", "frame", "message", "frame"]


class BytearrayExtension(MessageLoggingExtension):
    def decode_message(self, opcode: int, payload: bytes, rsv: int, max_size: int | None) -> bytes:
        return bytearray(payload)  # type: ignore[return-value]


def test_decode_message_output_becomes_bytes() -> None:
    [frame] = WebSocket(extensions=[BytearrayExtension()]).decode(
        server_frame(BINARY, b"ab", rsv=RSV1)
    )
    assert type(frame.data) is bytes  # type: ignore[union-attr]


class RaisingExtension(MessageLoggingExtension):
    def decode_message(self, opcode: int, payload: bytes, rsv: int, max_size: int | None) -> bytes:
        raise KeyError("boom")


def test_decode_message_raw_exception_is_1002_with_earlier_frames() -> None:
    data = server_frame(PING, b"p") + server_frame(BINARY, b"ab", rsv=RSV1)
    with pytest.raises(ProtocolError) as info:
        WebSocket(extensions=[RaisingExtension()]).decode(data)
    assert info.value.close_code == 1002
    assert info.value.frames == [Ping(b"p")]
    assert "x-log" in str(info.value)


def test_fast_path_frames_are_ordinary_frozen_dataclasses() -> None:
    server = Server()
    data = server.message(TEXT, b"hi") + server.message(BINARY, b"\x00")
    text, binary = WebSocket(extensions=[negotiated()]).decode(data)
    assert type(text) is Text and type(binary) is Binary
    assert hash(text) == hash(Text("hi")) and hash(binary) == hash(Binary(b"\x00"))
    match text:
        case Text(data="hi", fin=True):
            pass
        case _:
            pytest.fail(f"{text!r} does not match Text('hi')")
    with pytest.raises(dataclasses.FrozenInstanceError):
        text.data = "changed"  # type: ignore[misc]
