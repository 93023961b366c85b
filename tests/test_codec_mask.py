"""Masking, both implementations: the pure-Python reference and the optional C accelerator.

Each is checked against the byte-by-byte oracle of ``test_codec_frames`` (not
against the other), over sizes that cross every internal boundary: the C
loop's 16-byte alignment head, its 64/32/8-byte strides and byte tail; the
Python side's 126-byte integer frame and 512-byte ``translate`` threshold.
"""

from __future__ import annotations

import array
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from mint.websocket import _mask
from test_codec_frames import MASKINGS, parse_client_frames, xor

SIZES = [*range(0, 80), 125, 126, 127, 511, 512, 513, 4099, 65535, 65536, 65537, 70_001]
KEYS = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04", b"\x37\xfa\x21\x3d"]

MaskFunction = Callable[[object, object], bytes]
FrameFunction = Callable[[object, object, object], bytes]


@pytest.fixture(params=MASKINGS)
def mask(request: pytest.FixtureRequest) -> MaskFunction:
    function = _mask.c_mask if request.param == "c" else _mask.python_mask
    return function  # type: ignore[return-value]


@pytest.fixture(params=MASKINGS)
def masked_frame(request: pytest.FixtureRequest) -> FrameFunction:
    function = _mask.c_masked_frame if request.param == "c" else _mask.python_masked_frame
    return function  # type: ignore[return-value]


def payload_of(size: int) -> bytes:
    return bytes((index * 7 + 3) & 0xFF for index in range(size))


# -- mask ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_mask_matches_the_oracle(mask: MaskFunction, size: int) -> None:
    payload = payload_of(size)
    for key in KEYS:
        assert mask(payload, key) == xor(payload, key)


def test_mask_is_its_own_inverse(mask: MaskFunction) -> None:
    payload = os.urandom(100_003)
    key = os.urandom(4)
    masked = mask(payload, key)
    assert masked != payload
    assert mask(masked, key) == payload


@pytest.mark.parametrize("offset", range(17))
def test_mask_at_every_alignment(mask: MaskFunction, offset: int) -> None:
    """Views that start anywhere in a buffer: the C head/tail handling and unaligned loads."""
    backing = bytearray(payload_of(300 + 17))
    view = memoryview(backing)[offset : offset + 300]
    assert mask(view, b"\x37\xfa\x21\x3d") == xor(bytes(view), b"\x37\xfa\x21\x3d")


def test_mask_takes_any_bytes_like(mask: MaskFunction) -> None:
    key = b"\x01\x02\x03\x04"
    raw = payload_of(600)
    strided = memoryview(raw)[::3]  # not contiguous
    words = array.array("I", range(50))  # items of 4 bytes: masked by their raw bytes
    for data, expected in [
        (bytearray(raw), raw),
        (memoryview(raw), raw),
        (strided, strided.tobytes()),
        (words, words.tobytes()),
        (memoryview(raw[:10]).cast("B", (2, 5)), raw[:10]),
    ]:
        result = mask(data, key)
        assert type(result) is bytes
        assert result == xor(expected, key)
    assert mask(payload_of(8), bytearray(key)) == xor(payload_of(8), key)


@pytest.mark.parametrize(
    ("data", "key", "error"),
    [
        (None, b"abcd", TypeError),
        (5, b"abcd", TypeError),
        ("text", b"abcd", TypeError),
        (b"x", None, TypeError),
        (b"x", 1234, TypeError),
        (b"x", b"abc", ValueError),
        (b"x", b"abcde", ValueError),
    ],
)
def test_mask_rejects_bad_arguments(
    mask: MaskFunction, data: object, key: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        mask(data, key)


def test_c_mask_argument_count() -> None:
    if _mask.c_mask is None:
        pytest.skip("_speedups not compiled")
    with pytest.raises(TypeError):
        _mask.c_mask(b"x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _mask.c_mask(b"x", b"abcd", b"")  # type: ignore[call-arg]


# -- masked_frame ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5, 125, 126, 127, 512, 65535, 65536, 70_001])
def test_masked_frame_parses_back(masked_frame: FrameFunction, size: int) -> None:
    payload = payload_of(size)
    for first_byte in (0x81, 0x82, 0x02, 0x80, 0xC1, 0x89):
        key = int.from_bytes(b"\x37\xfa\x21\x3d", "little")
        [frame] = parse_client_frames(masked_frame(first_byte, key, payload))
        assert (frame.fin, frame.rsv, frame.opcode) == (
            bool(first_byte & 0x80),
            first_byte & 0x70,
            first_byte & 0x0F,
        )
        assert frame.mask_key == b"\x37\xfa\x21\x3d"
        assert xor(frame.payload, frame.mask_key) == payload


def test_masked_frame_uses_the_shortest_length_form(masked_frame: FrameFunction) -> None:
    assert masked_frame(0x82, 0, b"\x00" * 125)[:2] == b"\x82\xfd"
    assert masked_frame(0x82, 0, b"\x00" * 126)[:4] == b"\x82\xfe\x00\x7e"
    assert masked_frame(0x82, 0, b"\x00" * 65536)[:10] == b"\x82\xff" + (65536).to_bytes(8, "big")


def test_masked_frame_matches_the_rfc_example(masked_frame: FrameFunction) -> None:
    key = int.from_bytes(bytes.fromhex("37fa213d"), "little")
    assert masked_frame(0x81, key, b"Hello") == bytes.fromhex("818537fa213d7f9f4d5158")


@pytest.mark.parametrize(
    "text", ["", "Hello", "héllo wörld €", "\U0001f600" * 40, "a" * 126, "é" * 70_000]
)
def test_masked_frame_takes_a_str_as_its_utf8(masked_frame: FrameFunction, text: str) -> None:
    """A str payload (``encode_text``'s path) makes the frame its UTF-8 bytes make."""
    key = int.from_bytes(b"\x37\xfa\x21\x3d", "little")
    assert masked_frame(0x81, key, text) == masked_frame(0x81, key, text.encode())


def test_masked_frame_refuses_a_str_that_is_no_utf8(masked_frame: FrameFunction) -> None:
    with pytest.raises(UnicodeEncodeError):
        masked_frame(0x81, 0, "lone \ud800 surrogate")


def test_c_masked_frame_rejects_bad_arguments() -> None:
    frame = _mask.c_masked_frame
    if frame is None:
        pytest.skip("_speedups not compiled")
    cases: list[tuple[tuple[object, ...], type[Exception]]] = [
        ((256, 0, b""), ValueError),
        ((-1, 0, b""), ValueError),
        ((2**70, 0, b""), ValueError),
        ((0x81, 2**32, b""), ValueError),
        ((0x81, -1, b""), ValueError),
        ((0x81, 2**70, b""), ValueError),
        ((1.0, 0, b""), TypeError),
        ((0x81, "key", b""), TypeError),
        ((0x81, 0, bytearray), TypeError),
        ((0x81, 0, None), TypeError),
        ((0x81, 0), TypeError),
    ]
    for args, error in cases:
        with pytest.raises(error):
            frame(*args)  # type: ignore[arg-type]


# -- choosing an implementation ----------------------------------------------------------------


def chosen_in_subprocess(no_speedups: str | None) -> str:
    """What a fresh interpreter picks at import, given MINT_NO_SPEEDUPS (None: unset)."""
    env = {key: value for key, value in os.environ.items() if key != "MINT_NO_SPEEDUPS"}
    if no_speedups is not None:
        env["MINT_NO_SPEEDUPS"] = no_speedups
    code = "from mint.websocket import _mask; print(_mask.SPEEDUPS, _mask.mask.__module__)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_env_var_forces_pure_python() -> None:
    assert chosen_in_subprocess("1") == "False mint.websocket._mask"


@pytest.mark.parametrize("no_speedups", [None, "", "0"])
def test_c_is_chosen_when_compiled(no_speedups: str | None) -> None:
    if _mask.c_mask is None:
        pytest.skip("_speedups not compiled")
    assert chosen_in_subprocess(no_speedups) == "True mint.websocket._speedups"


def test_missing_extension_falls_back_to_pure_python() -> None:
    """As after an install where the optional C build failed."""
    code = (
        "import sys; sys.modules['mint.websocket._speedups'] = None\n"
        "from mint.websocket import _mask, codec\n"
        "assert _mask.c_mask is None and not _mask.SPEEDUPS\n"
        "assert codec.masked_frame is _mask.python_masked_frame\n"
        "ws = codec.WebSocket()\n"
        "print(len(ws.encode(codec.Binary(b'x' * 70000))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(70000 + 14)
