"""The C run decoder against the pure-Python decoder on fragmented messages and control frames.

``_speedups.decode_run`` also takes the fragments of a message (with no
extension), pings and pongs, sharing the message in progress with
``codec.py`` through the WebSocket's ``_recv_opcode``, ``_parts``,
``_message_size`` and ``_utf8_tail``; it hands Close frames, 64-bit lengths
and every fault back to ``_decode_frame``.  As in ``test_codec_differential``,
two WebSockets, one per implementation, must return the same frames, raise
the same errors and be left in the same state (that message state included)
after every read: here on streams of fragmented messages with control frames
between the fragments, invalid UTF-8 cut at every byte, faults inside an open
message and limits reached mid-message, cut into reads of every size.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mint.websocket import codec
from mint.websocket.extensions import RSV1
from mint.websocket.extensions.base import RSV2, RSV3
from mint.websocket.frames import Binary, Ping, Pong, Text
from test_codec_deflate import Server as DeflateServer
from test_codec_differential import Case, check_agreement, new_websocket, outcome, state
from test_codec_frames import C_DECODE_RUN, server_frame

pytestmark = pytest.mark.skipif(
    C_DECODE_RUN is None, reason="_speedups not compiled, or MINT_NO_SPEEDUPS=1"
)

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
LIMITS = [None, None, 1, 5, 64, 125, 126, 200, 300, 1000]
MESSAGE_SIZES = [0, 1, 2, 3, 4, 7, 30, 64, 125, 126, 200, 700]
CONTROL_SIZES = [0, 1, 4, 64, 124, 125]
ALPHABET = "ab {}:,\n\u00e9\u20ac\U0001f600"
#: Invalid UTF-8: bad start bytes, lone continuation, overlong forms, surrogates, code
#: points over U+10FFFF, and sequences cut short (then followed by something else).
BAD_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xe0\x9f\xbf",
    b"\xf0\x80\x80\xaf",
    b"\xf0\x8f\xbf\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
]
FAULTS = [
    "orphan_continuation",
    "masked",
    "fragmented_control",
    "long_control",
    "control_rsv",
    "reserved_opcode",
    "unfinished",
    "garbage",
]
CLOSE_PAYLOADS = [
    b"",
    b"\x03",
    (1000).to_bytes(2, "big"),
    (1001).to_bytes(2, "big") + "bye \u20ac".encode(),
    (4999).to_bytes(2, "big") + b"ok",
    (999).to_bytes(2, "big"),
    (1005).to_bytes(2, "big"),
    (5000).to_bytes(2, "big"),
    (1000).to_bytes(2, "big") + b"\xed\xa0\x80",
]


def text_payload(rng: random.Random, size: int) -> bytes:
    return "".join(rng.choice(ALPHABET) for _ in range(size // 2)).encode()


def control_frame(draw: st.DrawFn, rng: random.Random, noise: bool) -> bytes:
    opcode = draw(st.sampled_from([PING, PING, PONG, PONG, CLOSE] if noise else [PING, PONG]))
    if opcode == CLOSE:
        return server_frame(CLOSE, draw(st.sampled_from(CLOSE_PAYLOADS)))
    size = draw(st.sampled_from(CONTROL_SIZES))
    return server_frame(opcode, rng.randbytes(size))


def fault(draw: st.DrawFn, rng: random.Random) -> bytes:
    kind = draw(st.sampled_from(FAULTS))
    if kind == "orphan_continuation":
        return server_frame(CONT, rng.randbytes(draw(st.integers(0, 30))), fin=draw(st.booleans()))
    if kind == "masked":
        opcode = draw(st.sampled_from([TEXT, BINARY, CONT, PING]))
        return server_frame(opcode, b"masked", mask_key=rng.randbytes(4))
    if kind == "fragmented_control":
        return server_frame(draw(st.sampled_from([PING, PONG, CLOSE])), b"", fin=False)
    if kind == "long_control":
        return server_frame(draw(st.sampled_from([PING, PONG, CLOSE])), b"x" * 126)
    if kind == "control_rsv":
        rsv = draw(st.sampled_from([RSV1, RSV2, RSV3]))
        return server_frame(draw(st.sampled_from([PING, PONG])), b"r", rsv=rsv)
    if kind == "reserved_opcode":
        opcode = draw(st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]))
        return server_frame(opcode, b"reserved")
    if kind == "unfinished":  # a message left open: the next message start is a fault
        return server_frame(draw(st.sampled_from([TEXT, BINARY])), b"open", fin=False)
    return rng.randbytes(draw(st.integers(1, 12)))


@st.composite
def fragment_cases(
    draw: st.DrawFn,
    noise: bool = True,
    extensions: tuple[str, ...] = ("none", "none", "deflate", "deflate_resets"),
) -> Case:
    """Fragmented messages (1 to 6 fragments, some empty) with control frames between them."""
    extension = draw(st.sampled_from(extensions))
    options: dict[str, object] = {
        "max_frame_size": draw(st.sampled_from(LIMITS)),
        "max_message_size": draw(st.sampled_from(LIMITS)),
        "fragments": draw(st.booleans()),
    }
    rng = random.Random(draw(st.integers(0, 2**32)))
    server = DeflateServer(resets=extension == "deflate_resets")
    kinds = ["message", "message", "message", "control", "fault"] if noise else ["message"]
    parts: list[bytes] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(kinds))
        if kind == "control":
            parts.append(control_frame(draw, rng, noise))
            continue
        if kind == "fault":
            parts.append(fault(draw, rng))
            continue
        opcode = draw(st.sampled_from([TEXT, TEXT, BINARY]))
        size = draw(st.sampled_from(MESSAGE_SIZES))
        payload = text_payload(rng, size) if opcode == TEXT else rng.randbytes(size)
        if opcode == TEXT and noise and draw(st.integers(0, 3)) == 0:
            cut = rng.randrange(len(payload) + 1)
            payload = payload[:cut] + draw(st.sampled_from(BAD_UTF8)) + payload[cut:]
        if opcode == TEXT and noise and draw(st.integers(0, 5)) == 0:
            # Cut anywhere, most likely inside a sequence: the message ends unfinished.
            payload = payload[: rng.randrange(len(payload) + 1)]
        compressed = extension != "none" and draw(st.booleans())
        wire = server.compress(payload) if compressed else payload
        count = draw(st.integers(1, 6))
        cuts = sorted(draw(st.lists(st.integers(0, len(wire)), min_size=count - 1)))[: count - 1]
        edges = [0, *cuts, len(wire)]
        pieces = [wire[start:stop] for start, stop in itertools.pairwise(edges)]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            rsv = RSV1 if compressed and index == 0 else 0
            if noise and draw(st.integers(0, 15)) == 0:  # RSV bits where they may not be
                rsv = draw(st.sampled_from([RSV1, RSV2, RSV3, 0x70]))
            form = draw(st.sampled_from([None, None, None, 16, 64]))
            if form == 16 and len(piece) > 65535:
                form = None
            parts.append(
                server_frame(
                    opcode if index == 0 else CONT, piece, fin=last, rsv=rsv, length_form=form
                )
            )
            if not last:
                for _ in range(draw(st.integers(0, 2))):
                    parts.append(control_frame(draw, rng, noise))
    stream = b"".join(parts)
    if noise and draw(st.integers(0, 4)) == 0:
        stream = stream[: draw(st.integers(0, len(stream)))]
    read_sizes = draw(
        st.lists(st.integers(1, 400) | st.sampled_from([1, 2, 3, 4096]), min_size=1, max_size=8)
    )
    reads = []
    pos = index = 0
    while pos < len(stream):
        size = read_sizes[index % len(read_sizes)]
        reads.append(stream[pos : pos + size])
        pos += size
        index += 1
    return Case(stream, reads, extension, options)


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@examples(500)
@given(fragment_cases())
def test_c_and_python_agree_on_fragmented_streams(case: Case) -> None:
    check_agreement(case)


@examples(300)
@given(fragment_cases(noise=False))
def test_c_and_python_agree_on_well_formed_fragmented_streams(case: Case) -> None:
    """No faults but the limits: long runs of fragmented messages, in any reads."""
    check_agreement(case)


def test_the_generator_reaches_both_outcomes() -> None:
    seen = set()

    @settings(max_examples=200, deadline=None, database=None)
    @given(fragment_cases())
    def collect(case: Case) -> None:
        ws = new_websocket(case, C_DECODE_RUN)
        for data in case.reads:
            kind = outcome(ws, data)
            seen.add(kind[0])
            if kind[0] != "frames":
                break

    collect()
    assert {"frames", "error"} <= seen


# -- the C decoder really takes these frames ----------------------------------------------------


def fragmented(opcode: int, payload: bytes, cuts: list[int], between: bytes = b"") -> bytes:
    edges = [0, *cuts, len(payload)]
    frames = [
        server_frame(opcode if index == 0 else CONT, payload[start:stop], fin=stop == len(payload))
        for index, (start, stop) in enumerate(itertools.pairwise(edges))
    ]
    return between.join(frames)


@pytest.mark.parametrize("limit", [None, 11])
@pytest.mark.parametrize("fragments", [False, True])
def test_fragments_and_pings_are_decoded_in_c(
    fragments: bool, limit: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No frame of these messages reaches ``_decode_frame``: the C walk takes them all.

    With ``limit``, the text message is exactly as long as the limits allow.
    """
    options: dict[str, object] = {
        "fragments": fragments,
        "max_frame_size": limit,
        "max_message_size": limit,
    }
    ws = new_websocket(Case(b"", [], "none", options), C_DECODE_RUN)

    def python_decoder_called(*args: object) -> int:
        raise AssertionError("_decode_frame was called")

    monkeypatch.setattr(codec.WebSocket, "_decode_frame", python_decoder_called)
    ping, pong = server_frame(PING, b"p"), server_frame(PONG, b"q")
    stream = (
        fragmented(TEXT, "h\u00e9llo \u20ac!".encode(), [2, 3, 3, 9], ping)
        + pong
        + fragmented(BINARY, b"\x00bin", [1], ping + pong)
    )
    frames = [frame for index in range(len(stream)) for frame in ws.decode(stream[index:][:1])]
    if fragments:
        assert frames == [
            Text("h", False),
            Ping(b"p"),
            Text("\u00e9", False),
            Ping(b"p"),
            Text("", False),
            Ping(b"p"),
            Text("llo ", False),
            Ping(b"p"),
            Text("\u20ac!"),
            Pong(b"q"),
            Binary(b"\x00", False),
            Ping(b"p"),
            Pong(b"q"),
            Binary(b"bin"),
        ]
    else:
        assert frames == [
            *[Ping(b"p")] * 4,
            Text("h\u00e9llo \u20ac!"),
            Pong(b"q"),
            Ping(b"p"),
            Pong(b"q"),
            Binary(b"\x00bin"),
        ]
    assert (ws._recv_opcode, ws._parts, ws._message_size, ws._utf8_tail) == (0, [], 0, b"")


def test_the_message_state_is_shared_mid_message() -> None:
    """C stops inside a message; the state it leaves is the one Python leaves."""
    stream = fragmented(TEXT, "\u20ac\u20ac\u20ac".encode(), [1, 4, 8])[:-4]
    c_ws = new_websocket(Case(b"", [], "none", {}), C_DECODE_RUN)
    python_ws = new_websocket(Case(b"", [], "none", {}), None)
    assert c_ws.decode(stream) == python_ws.decode(stream) == []
    assert state(c_ws) == state(python_ws)
    assert (c_ws._recv_opcode, c_ws._parts, c_ws._message_size, c_ws._utf8_tail) == (
        TEXT,
        ["", "\u20ac"],
        4,
        b"\xe2",
    )


# -- deterministic sweeps -------------------------------------------------------------------


def reads_of(stream: bytes) -> list[list[bytes]]:
    """The stream whole, a byte at a time, and cut in two at every position."""
    cuts = [[stream[:index], stream[index:]] for index in range(1, len(stream))]
    return [[stream], [bytes((byte,)) for byte in stream], *cuts]


@pytest.mark.parametrize("bad", BAD_UTF8)
@pytest.mark.parametrize("fragments", [False, True])
def test_invalid_utf8_cut_at_every_byte(bad: bytes, fragments: bool) -> None:
    """Invalid UTF-8 across fragment boundaries (and a ping among them), in every reading.

    The bad sequence is in the middle of the message and at its very end (where an
    unfinished sequence only fails at the last fragment).
    """
    ping = server_frame(PING, b"!")
    head, tail = "a\u00e9".encode(), "z\u20ac".encode()
    for payload in (head + bad + tail, head + bad):
        for cut in range(len(payload) + 1):
            for cuts in ([cut], [cut, min(cut + 1, len(payload))], [0, cut, len(payload)]):
                stream = fragmented(TEXT, payload, cuts, ping) + server_frame(BINARY, b"after")
                for reads in reads_of(stream):
                    check_agreement(Case(stream, reads, "none", {"fragments": fragments}))


@pytest.mark.parametrize("fragments", [False, True])
def test_valid_utf8_cut_at_every_byte(fragments: bool) -> None:
    payload = "\u00e9\u20ac\U0001f600x".encode()
    for first, second in itertools.combinations(range(len(payload) + 1), 2):
        stream = fragmented(TEXT, payload, [first, second], server_frame(PONG, b""))
        check_agreement(Case(stream, [stream], "none", {"fragments": fragments}))
        check_agreement(Case(stream, [stream[:first], stream[first:]], "none", {}))


@pytest.mark.parametrize("extension", ["none", "deflate"])
@pytest.mark.parametrize("opened", [TEXT, BINARY])
def test_every_header_inside_a_message(extension: str, opened: int) -> None:
    """Each first byte with each kind of second byte, while a fragmented message is open."""
    payloads = {0: b"", 5: "\u00e9abc".encode(), 125: b"m" * 125}
    for first in range(256):
        for second in (0, 5, 125, 126, 127, 0x80 | 5, 0x80 | 126):
            size = second & 0x7F
            if size == 126:
                body = (300).to_bytes(2, "big") + b"w" * 300
            elif size == 127:
                body = (7).to_bytes(8, "big") + b"q" * 7
            else:
                body = payloads.get(size, b"x" * size)
            if second & 0x80:
                body = b"\x01\x02\x03\x04" + body
            stream = server_frame(opened, b"o\xc3", fin=False) + bytes((first, second)) + body
            stream += server_frame(CONT, b"\xa9nd") + server_frame(BINARY, b"after")
            for reads in ([stream], [stream[:5], stream[5:9], stream[9:]]):
                check_agreement(Case(stream, reads, extension, {}))


@pytest.mark.parametrize("fragments", [False, True])
@pytest.mark.parametrize("limit", [1, 2, 63, 64, 65, 125, 126, 127, 300])
def test_message_limit_reached_mid_message(limit: int, fragments: bool) -> None:
    for size in (limit - 1, limit, limit + 1, 2 * limit + 1):
        for opcode in (TEXT, BINARY):
            payload = b"a" * size
            for cuts in ([size // 2], [size // 3, 2 * size // 3], [0, size]):
                stream = fragmented(opcode, payload, cuts, server_frame(PING, b"p"))
                stream += server_frame(BINARY, b"next")
                for reads in ([stream], [stream[:3], stream[3:]]):
                    options: dict[str, object] = {
                        "max_message_size": limit,
                        "fragments": fragments,
                    }
                    check_agreement(Case(stream, reads, "none", options))


@pytest.mark.parametrize("limit", [1, 2, 4, 5, 124, 125, 126])
def test_frame_limit_on_control_frames_and_fragments(limit: int) -> None:
    for size in (0, limit - 1, limit, limit + 1):
        for opcode in (PING, PONG):
            control = server_frame(opcode, b"c" * min(size, 125))
            stream = fragmented(TEXT, b"x" * (2 * limit), [limit], control)
            for reads in ([stream], [stream[:1], stream[1:]]):
                check_agreement(Case(stream, reads, "none", {"max_frame_size": limit}))


@pytest.mark.parametrize("payload", CLOSE_PAYLOADS)
def test_close_between_fragments(payload: bytes) -> None:
    """A Close (valid or not) inside a message, then the rest of the message."""
    close = server_frame(CLOSE, payload)
    stream = fragmented(TEXT, b"abcdef", [2, 4], close) + server_frame(PING, b"late")
    for reads in reads_of(stream):
        check_agreement(Case(stream, reads, "none", {}))


@pytest.mark.parametrize("form", [16, 64])
def test_python_takes_a_fragment_then_c_goes_on(form: int) -> None:
    """A fragment with a 64-bit length goes to _decode_frame mid-message, then back to C."""
    payload = "\u20ac".encode() * 50
    frames = [
        server_frame(TEXT, payload[:41], fin=False),
        server_frame(CONT, payload[41:101], fin=False, length_form=form),
        server_frame(PING, b"p"),
        server_frame(CONT, payload[101:]),
    ]
    stream = b"".join(frames)
    for fragments in (False, True):
        for reads in reads_of(stream):
            check_agreement(Case(stream, reads, "none", {"fragments": fragments}))


@pytest.mark.parametrize("resets", [False, True])
@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_compressed_fragments_with_pings(parts: int, resets: bool) -> None:
    """permessage-deflate: fragments stay Python's, pings between them are C's."""
    server = DeflateServer(resets=resets)
    message = server.fragments(TEXT, "h\u00e9llo ".encode() * 20, parts)
    stream = message + server_frame(PING, b"p") + server.fragments(BINARY, b"\x00" * 300, parts)
    stream += server.message(TEXT, b"whole")
    extension = "deflate_resets" if resets else "deflate"
    for reads in reads_of(stream)[::3]:
        check_agreement(Case(stream, reads, extension, {}))
