"""PerMessageDeflate without a network: negotiation, framing rules, limits.

The server side is simulated with bare zlib, following RFC 7692 section 7.2
(compress, sync flush, drop the tail; append the tail, decompress), so each
test checks our bytes against what any conforming peer would do.
"""

from __future__ import annotations

import itertools
import json
import random
import tracemalloc
import zlib

import pytest

from mint.errors import ProtocolError, WebSocketError
from mint.websocket.extensions import RSV1, PerMessageDeflate
from mint.websocket.extensions.base import Params

TAIL = b"\x00\x00\xff\xff"
TEXT, BINARY, CONT = 1, 2, 0


class ServerPeer:
    """The server half of a negotiated permessage-deflate, built on bare zlib."""

    def __init__(
        self,
        *,
        server_bits: int = 15,
        client_bits: int = 15,
        server_resets: bool = False,
        client_resets: bool = False,
    ) -> None:
        self.server_bits = server_bits
        self.client_bits = client_bits
        self.server_resets = server_resets
        self.client_resets = client_resets
        self._new_compressor()
        self._new_decompressor()

    def _new_compressor(self) -> None:
        # zlib cannot deflate raw with an 8-bit window; 9 keeps distances <= 250.
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, -max(self.server_bits, 9))

    def _new_decompressor(self) -> None:
        # Exactly the agreed client window: a reference further back must fail here.
        self.decompressor = zlib.decompressobj(-self.client_bits)

    def compress(self, message: bytes) -> bytes:
        data = self.compressor.compress(message) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        if self.server_resets:
            self._new_compressor()
        assert data.endswith(TAIL)
        return data[:-4]

    def decompress(self, payload: bytes) -> bytes:
        data = self.decompressor.decompress(payload + TAIL)
        assert not self.decompressor.unconsumed_tail
        if self.client_resets:
            self._new_decompressor()
        return data


def negotiate(answer: Params | None = None, **offer: object) -> PerMessageDeflate:
    return PerMessageDeflate(**offer).accept(answer or [])  # type: ignore[arg-type]


def messages(seed: int, count: int = 20) -> list[bytes]:
    """JSON-ish messages that repeat themselves at short and long distances."""
    rng = random.Random(seed)
    words = [bytes(rng.randrange(97, 123) for _ in range(rng.randrange(3, 9))) for _ in range(60)]
    noise = bytes(rng.randrange(256) for _ in range(600))
    result = []
    for index in range(count):
        body = b" ".join(rng.choice(words) for _ in range(rng.randrange(0, 300)))
        # the same 600 random bytes in every message: matches up to the whole window away
        result.append(
            b'{"n": %d, "text": "%s", "blob": "%s"}' % (index, body, noise.hex().encode())
        )
    return result


# -- the offer -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, [("client_max_window_bits", None)]),
        ({"client_max_window_bits": None}, []),
        ({"client_max_window_bits": False}, []),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "10")]),
        ({"client_max_window_bits": 8}, [("client_max_window_bits", "8")]),
        (
            {"server_max_window_bits": 12},
            [("server_max_window_bits", "12"), ("client_max_window_bits", None)],
        ),
        (
            {
                "client_max_window_bits": 9,
                "server_max_window_bits": 15,
                "client_no_context_takeover": True,
                "server_no_context_takeover": True,
            },
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "15"),
                ("client_max_window_bits", "9"),
            ],
        ),
        (
            {"client_no_context_takeover": True, "client_max_window_bits": None},
            [("client_no_context_takeover", None)],
        ),
        (
            {"server_no_context_takeover": True, "client_max_window_bits": None},
            [("server_no_context_takeover", None)],
        ),
    ],
)
def test_offer_parameters_in_canonical_order(kwargs: dict[str, object], expected: Params) -> None:
    assert PerMessageDeflate(**kwargs).offer() == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"client_max_window_bits": 7}, ValueError),
        ({"client_max_window_bits": 16}, ValueError),
        ({"client_max_window_bits": "10"}, TypeError),
        ({"server_max_window_bits": 7}, ValueError),
        ({"server_max_window_bits": 16}, ValueError),
        ({"server_max_window_bits": True}, TypeError),
        ({"server_max_window_bits": 10.0}, TypeError),
        ({"client_no_context_takeover": 1}, TypeError),
        ({"server_no_context_takeover": "yes"}, TypeError),
        ({"compression_level": 10}, ValueError),
        ({"compression_level": -2}, ValueError),
        ({"memory_level": 0}, ValueError),
        ({"memory_level": 10}, ValueError),
        ({"compress_threshold": -1}, ValueError),
        ({"compress_threshold": 1.5}, TypeError),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        PerMessageDeflate(**kwargs)  # type: ignore[arg-type]


# -- the answer ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer", "answer", "message"),
    [
        ({}, [("x_unknown", None)], "unknown parameter"),
        ({}, [("server_no_context_takeover", None)] * 2, "repeats"),
        ({}, [("client_max_window_bits", "10")] * 2, "repeats"),
        ({}, [("server_no_context_takeover", "1")], "takes no value"),
        ({}, [("client_no_context_takeover", "")], "takes no value"),
        ({}, [("server_max_window_bits", None)], "plain digits"),
        ({}, [("server_max_window_bits", "7")], "plain digits"),
        ({}, [("server_max_window_bits", "16")], "plain digits"),
        ({}, [("server_max_window_bits", "010")], "plain digits"),
        ({}, [("server_max_window_bits", "+9")], "plain digits"),
        ({}, [("server_max_window_bits", "-9")], "plain digits"),
        ({}, [("server_max_window_bits", " 9")], "plain digits"),
        ({}, [("server_max_window_bits", "9\n")], "plain digits"),
        ({}, [("server_max_window_bits", "٩")], "plain digits"),
        ({}, [("client_max_window_bits", None)], "plain digits"),
        ({}, [("client_max_window_bits", "08")], "plain digits"),
        ({"client_max_window_bits": None}, [("client_max_window_bits", "10")], "did not include"),
        ({"server_max_window_bits": 10}, [("server_max_window_bits", "11")], "larger"),
        ({"server_max_window_bits": 10}, [], "lacks it"),
        ({"server_no_context_takeover": True}, [], "lacks it"),
    ],
)
def test_bad_answers_are_refused(offer: dict[str, object], answer: Params, message: str) -> None:
    with pytest.raises(WebSocketError, match=message) as caught:
        PerMessageDeflate(**offer).accept(answer)  # type: ignore[arg-type]
    assert caught.value.reason == "extension_negotiation"


@pytest.mark.parametrize(
    ("offer", "answer", "expected"),
    [
        ({}, [], (15, 15, False, False)),
        ({}, [("client_max_window_bits", "8")], (8, 15, False, False)),
        ({"client_max_window_bits": 10}, [], (10, 15, False, False)),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "9")], (9, 15, False, False)),
        # a server may ignore our hint; the smaller bound still holds for us
        (
            {"client_max_window_bits": 10},
            [("client_max_window_bits", "12")],
            (10, 15, False, False),
        ),
        (
            {"client_max_window_bits": None},
            [("server_max_window_bits", "9")],
            (15, 9, False, False),
        ),
        ({"server_max_window_bits": 10}, [("server_max_window_bits", "8")], (15, 8, False, False)),
        # unrequested no-context-takeover answers bind the side they name
        ({}, [("client_no_context_takeover", None)], (15, 15, True, False)),
        ({}, [("server_no_context_takeover", None)], (15, 15, False, True)),
        # offering client_no_context_takeover is our own promise, echoed or not
        ({"client_no_context_takeover": True}, [], (15, 15, True, False)),
    ],
)
def test_good_answers_decide_the_parameters(
    offer: dict[str, object], answer: Params, expected: tuple[int, int, bool, bool]
) -> None:
    offered = PerMessageDeflate(**offer)  # type: ignore[arg-type]
    accepted = offered.accept(answer)
    assert accepted is not offered and accepted.negotiated and not offered.negotiated
    assert (
        accepted.client_window_bits,
        accepted.server_window_bits,
        accepted.client_resets,
        accepted.server_resets,
    ) == expected
    assert accepted.agreed == answer


def test_an_offer_cannot_code_frames() -> None:
    with pytest.raises(WebSocketError, match="offer") as caught:
        PerMessageDeflate().encode_frame(TEXT, b"hello", 0, True)
    assert caught.value.reason == "not_negotiated"


# -- round trips against a zlib peer -----------------------------------------

CONTEXT_CASES = list(itertools.product([False, True], repeat=2))


@pytest.mark.parametrize(
    ("client_bits", "server_bits"),
    [(b, 15) for b in range(8, 16)] + [(15, b) for b in range(8, 15)] + [(8, 8), (9, 9), (12, 10)],
)
@pytest.mark.parametrize(("client_resets", "server_resets"), CONTEXT_CASES)
def test_round_trip_every_window_and_context_setting(
    client_bits: int, server_bits: int, client_resets: bool, server_resets: bool
) -> None:
    answer: Params = [("client_max_window_bits", str(client_bits))]
    if server_bits != 15:
        answer.append(("server_max_window_bits", str(server_bits)))
    if client_resets:
        answer.append(("client_no_context_takeover", None))
    if server_resets:
        answer.append(("server_no_context_takeover", None))
    ext = PerMessageDeflate().accept(answer)
    server = ServerPeer(
        server_bits=server_bits,
        client_bits=client_bits,
        server_resets=server_resets,
        client_resets=client_resets,
    )
    for message in messages(client_bits * 100 + server_bits):
        payload, rsv = ext.encode_frame(BINARY, message, 0, True)
        assert rsv == RSV1
        assert server.decompress(payload) == message
        data, rsv = ext.decode_frame(BINARY, server.compress(message), RSV1, True, None)
        assert (data, rsv) == (message, 0)


def test_an_8_bit_window_is_really_respected() -> None:
    """Our output must decode with an 8-bit window across messages, where zlib checks distances.

    The control shows that the check can fail: a 15-bit stream whose second
    message refers 600 bytes back does not decode with an 8-bit window.
    """
    rng = random.Random(8)
    block = bytes(rng.randrange(256) for _ in range(600))
    control = zlib.compressobj(6, zlib.DEFLATED, -15)
    peer = zlib.decompressobj(-8)
    peer.decompress(control.compress(block) + control.flush(zlib.Z_SYNC_FLUSH))
    with pytest.raises(zlib.error, match="too far back"):
        peer.decompress(control.compress(block) + control.flush(zlib.Z_SYNC_FLUSH))

    ext = PerMessageDeflate().accept([("client_max_window_bits", "8")])
    server = ServerPeer(client_bits=8)
    for _ in range(5):
        payload, _ = ext.encode_frame(BINARY, block, 0, True)
        assert server.decompress(payload) == block


def test_rfc_7692_examples_decode() -> None:
    """The payloads of RFC 7692 section 7.2.3, one fresh extension each."""
    examples = [
        bytes.fromhex("f248cdc9c90700"),  # 7.2.3.1 "Hello"
        bytes.fromhex("000500faff48656c6c6f00"),  # 7.2.3.3 stored block
        bytes.fromhex("f348cdc9c9070000"),  # 7.2.3.4 BFINAL set
        bytes.fromhex("f248050000 00ffffcac9c90700".replace(" ", "")),  # 7.2.3.5 two blocks
    ]
    for payload in examples:
        ext = negotiate()
        assert ext.decode_frame(TEXT, payload, RSV1, True, None) == (b"Hello", 0)
        # the stream goes on after every form, BFINAL included
        assert ext.decode_frame(TEXT, bytes.fromhex("f248cdc9c90700"), RSV1, True, None) == (
            b"Hello",
            0,
        )


def test_rfc_7692_shared_window_example() -> None:
    """7.2.3.2: the second "Hello" refers back into the first message."""
    ext = negotiate()
    first, _ = ext.encode_frame(TEXT, b"Hello", 0, True)
    second, _ = ext.encode_frame(TEXT, b"Hello", 0, True)
    assert first == bytes.fromhex("f248cdc9c90700")
    assert second == bytes.fromhex("f200110000")
    receiver = negotiate()
    assert receiver.decode_frame(TEXT, first, RSV1, True, None)[0] == b"Hello"
    assert receiver.decode_frame(TEXT, second, RSV1, True, None)[0] == b"Hello"


def test_data_after_a_final_block_is_refused() -> None:
    ext = negotiate()
    with pytest.raises(ProtocolError) as caught:
        ext.decode_frame(TEXT, bytes.fromhex("f348cdc9c90700") + b"junk", RSV1, True, None)
    assert caught.value.close_code == 1002


def test_context_takeover_kept_compresses_repeats_smaller() -> None:
    ext = negotiate()
    message = messages(1, 1)[0]
    first, _ = ext.encode_frame(TEXT, message, 0, True)
    second, _ = ext.encode_frame(TEXT, message, 0, True)
    assert len(second) < len(first) // 4
    server = ServerPeer()
    assert server.decompress(first) == server.decompress(second) == message


def test_no_client_context_takeover_makes_messages_independent() -> None:
    ext = negotiate([("client_no_context_takeover", None)])
    message = messages(2, 1)[0]
    first, _ = ext.encode_frame(TEXT, message, 0, True)
    second, _ = ext.encode_frame(TEXT, message, 0, True)
    assert len(second) == len(first)
    # each message decodes with a fresh decompressor: no reference to earlier ones
    for payload in (first, second):
        assert zlib.decompressobj(-15).decompress(payload + TAIL) == message


def test_server_no_context_takeover_resets_our_decompressor() -> None:
    """A server that promised resets but refers back is caught, not silently trusted."""
    ext = negotiate([("server_no_context_takeover", None)])
    cheater = ServerPeer()  # keeps its context despite the promise
    message = b"a fairly long message that repeats " * 4
    assert ext.decode_frame(TEXT, cheater.compress(message), RSV1, True, None)[0] == message
    with pytest.raises(ProtocolError) as caught:
        ext.decode_frame(TEXT, cheater.compress(message), RSV1, True, None)
    assert caught.value.close_code == 1002


# -- fragmentation -------------------------------------------------------------


def test_fragmented_compressed_message_received() -> None:
    ext = negotiate()
    server = ServerPeer()
    message = b"".join(messages(3, 3))
    payload = server.compress(message)
    cut1, cut2 = len(payload) // 3, 2 * len(payload) // 3
    parts = [
        ext.decode_frame(TEXT, payload[:cut1], RSV1, False, None),
        ext.decode_frame(CONT, payload[cut1:cut2], 0, False, None),
        ext.decode_frame(CONT, payload[cut2:], 0, True, None),
    ]
    assert all(rsv == 0 for _, rsv in parts)
    assert b"".join(data for data, _ in parts) == message
    # the next message decodes too
    assert ext.decode_frame(TEXT, server.compress(b"next"), RSV1, True, None) == (b"next", 0)


def test_fragmented_message_sent_marks_only_the_first_frame() -> None:
    ext = negotiate()
    server = ServerPeer()
    chunks = [b"first part, ", b"second part, ", b"", b"last part"]
    frames = [
        ext.encode_frame(TEXT if i == 0 else CONT, chunk, 0, i == len(chunks) - 1)
        for i, chunk in enumerate(chunks)
    ]
    assert [rsv for _, rsv in frames] == [RSV1, 0, 0, 0]
    assert server.decompress(b"".join(p for p, _ in frames)) == b"".join(chunks)


def test_empty_final_fragment_sent() -> None:
    ext = negotiate()
    first, _ = ext.encode_frame(BINARY, b"payload", 0, False)
    last, _ = ext.encode_frame(CONT, b"", 0, True)
    assert last == b"\x00"
    assert ServerPeer().decompress(first + last) == b"payload"


def test_rsv1_on_a_continuation_frame_is_a_protocol_error() -> None:
    ext = negotiate()
    ext.decode_frame(TEXT, ServerPeer().compress(b"abc")[:2], RSV1, False, None)
    with pytest.raises(ProtocolError) as caught:
        ext.decode_frame(CONT, b"\x00", RSV1, True, None)
    assert caught.value.close_code == 1002


def test_uncompressed_fragmented_message_passes_through() -> None:
    ext = negotiate()
    assert ext.decode_frame(TEXT, b"plain ", 0, False, None) == (b"plain ", 0)
    assert ext.decode_frame(CONT, b"text", 0, True, None) == (b"text", 0)


def test_continuation_without_a_message_is_refused_on_encode() -> None:
    with pytest.raises(WebSocketError, match="continuation"):
        negotiate().encode_frame(CONT, b"x", 0, True)


# -- empty messages, threshold, transform=False -------------------------------


def test_empty_message_compresses_to_one_zero_byte() -> None:
    ext = negotiate()
    assert ext.encode_frame(TEXT, b"", 0, True) == (b"\x00", RSV1)
    assert ext.decode_frame(TEXT, b"\x00", RSV1, True, None) == (b"", 0)
    assert ext.decode_frame(TEXT, b"\x00", RSV1, True, 0) == (b"", 0)


def test_threshold_sends_small_messages_uncompressed() -> None:
    ext = negotiate(compress_threshold=64)
    assert ext.encode_frame(TEXT, b"short", 0, True) == (b"short", 0)
    # the decision holds for the whole fragmented message
    assert ext.encode_frame(TEXT, b"x" * 10, 0, False) == (b"x" * 10, 0)
    assert ext.encode_frame(CONT, b"y" * 100, 0, True) == (b"y" * 100, 0)
    payload, rsv = ext.encode_frame(TEXT, b"z" * 64, 0, True)
    assert rsv == RSV1 and ServerPeer().decompress(payload) == b"z" * 64


def test_transform_false_sends_the_message_uncompressed() -> None:
    ext = negotiate()
    assert ext.encode_frame(BINARY, b"raw" * 50, 0, False, transform=False) == (b"raw" * 50, 0)
    assert ext.encode_frame(CONT, b"tail", 0, True) == (b"tail", 0)
    payload, rsv = ext.encode_frame(BINARY, b"deflated", 0, True)
    assert rsv == RSV1 and ServerPeer().decompress(payload) == b"deflated"


def test_other_rsv_bits_are_kept() -> None:
    ext = negotiate()
    assert ext.encode_frame(TEXT, b"a", 0x20, True)[1] == 0x20 | RSV1
    payload = ServerPeer().compress(b"a")
    assert ext.decode_frame(TEXT, payload, RSV1 | 0x10, True, None) == (b"a", 0x10)


# -- hostile input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xff\xff\xff",  # reserved block type
        b"\x07",  # reserved block type, final
        bytes.fromhex("0005000000") + b"Hello",  # stored block whose NLEN is not ~LEN
        bytes.fromhex("f200110000"),  # RFC 7.2.3.2's second "Hello": refers before the start
    ],
)
def test_corrupt_data_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        negotiate().decode_frame(BINARY, payload, RSV1, True, None)
    assert caught.value.close_code == 1002
    assert isinstance(caught.value.__cause__, zlib.error)


def test_exactly_at_the_limit_is_accepted_one_more_byte_is_not() -> None:
    limit = 100_000
    message = json.dumps(list(range(30_000))).encode()[:limit]
    assert len(message) == limit
    server = ServerPeer()
    assert negotiate().decode_frame(TEXT, server.compress(message), RSV1, True, limit)[0] == message
    with pytest.raises(ProtocolError) as caught:
        negotiate().decode_frame(TEXT, ServerPeer().compress(message), RSV1, True, limit - 1)
    assert caught.value.close_code == 1009


def test_limit_counts_across_fragments() -> None:
    """The codec passes what is left of the limit; each fragment is held to it."""
    ext = negotiate()
    payload = ServerPeer().compress(b"x" * 1000)
    half = len(payload) // 2
    first, _ = ext.decode_frame(BINARY, payload[:half], RSV1, False, 1000)
    rest, _ = ext.decode_frame(CONT, payload[half:], 0, True, 1000 - len(first))
    assert first + rest == b"x" * 1000
    ext = negotiate()
    first, _ = ext.decode_frame(BINARY, payload[:half], RSV1, False, 999)
    with pytest.raises(ProtocolError) as caught:
        ext.decode_frame(CONT, payload[half:], 0, True, 999 - len(first))
    assert caught.value.close_code == 1009


def test_decompression_bomb_is_refused_with_bounded_memory() -> None:
    limit = 1 << 20
    bomber = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
    mebibyte = bytes(1 << 20)
    first, steady = (bomber.compress(mebibyte) + bomber.flush(zlib.Z_SYNC_FLUSH) for _ in "12")
    # after a sync flush every further MiB of zeros compresses to the same bytes
    bomb = first + steady * 1100 + b"\x00"  # > 1 GiB of zeros; 0x00 + tail ends it
    assert len(bomb) < 1_200_000  # deflate tops out near 1032:1
    small_bomb = bomb[: 10 * 1024]  # ~10 KiB: still inflates to ~10 MiB, 10x the limit
    for payload in (small_bomb, bomb):
        ext = negotiate()
        tracemalloc.start()
        tracemalloc.reset_peak()
        try:
            with pytest.raises(ProtocolError) as caught:
                ext.decode_frame(BINARY, payload, RSV1, True, limit)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert caught.value.close_code == 1009
        # Output is capped at the limit (plus the copy bytes() makes of its blocks);
        # input may be copied twice (tail appended, zlib's unconsumed_tail):
        # memory follows limit and input, never the inflated size.
        assert peak < 2 * limit + 2 * len(payload) + 256 * 1024
