"""Test-side frame tools (build server frames, unmask and parse client frames) and their checks.

Written from RFC 6455 section 5.2 independently of the codec under test, so a
bug in the codec cannot hide behind the same bug here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mint.websocket import _mask, codec


def server_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask_key: bytes | None = None,
    length_form: int | None = None,
) -> bytes:
    """A frame, unmasked unless ``mask_key``; ``length_form`` 7, 16 or 64 forces a length form."""
    size = len(payload)
    if length_form is None:
        length_form = 7 if size < 126 else 16 if size < 65536 else 64
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if mask_key is not None else 0
    if length_form == 7:
        header = bytes((first, mask_bit | size))
    elif length_form == 16:
        header = bytes((first, mask_bit | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + size.to_bytes(8, "big")
    if mask_key is None:
        return header + payload
    return header + mask_key + xor(payload, mask_key)


def xor(data: bytes, key: bytes) -> bytes:
    """Byte-by-byte XOR: slow and obviously right, which is what a test oracle should be."""
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


@dataclass
class ClientFrame:
    fin: bool
    rsv: int
    opcode: int
    mask_key: bytes
    payload: bytes


def parse_client_frames(data: bytes) -> list[ClientFrame]:
    """Parse masked frames as a server would; fail the test on anything unmasked or truncated."""
    frames = []
    pos = 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        assert second & 0x80, "client frames must be masked"
        size = second & 0x7F
        pos += 2
        if size == 126:
            size = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
        elif size == 127:
            size = int.from_bytes(data[pos : pos + 8], "big")
            pos += 8
        key = data[pos : pos + 4]
        pos += 4
        payload = data[pos : pos + size]
        assert len(payload) == size, "truncated client frame"
        pos += size
        frames.append(ClientFrame(bool(first & 0x80), first & 0x70, first & 0x0F, key, payload))
    return frames


def unmask(frame: ClientFrame) -> bytes:
    return xor(frame.payload, frame.mask_key)


# -- both implementations: pure Python and the C speedups ------------------------------------

#: Parameters naming the two implementations; the C one is skipped when not compiled.
MASKINGS = [
    pytest.param("python", id="pure-python"),
    pytest.param(
        "c",
        id="c-speedups",
        marks=pytest.mark.skipif(_mask.c_masked_frame is None, reason="_speedups not compiled"),
    ),
]

#: The C run decoder as the codec loaded it (None when not compiled or MINT_NO_SPEEDUPS=1).
C_DECODE_RUN = codec.c_decode_run


def use_masking(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the codec encode and decode with the named implementation for one test.

    The codec picks one at import (C unless MINT_NO_SPEEDUPS=1); swapping the
    names it calls (``masked_frame`` when encoding, ``c_decode_run`` when a
    WebSocket is built) runs every codec test against both in one session.
    Under MINT_NO_SPEEDUPS=1 the "c" run still masks in C but decodes in
    pure Python: the C decoder was never configured.
    """
    implementation = _mask.c_masked_frame if name == "c" else _mask.python_masked_frame
    assert implementation is not None
    monkeypatch.setattr(codec, "masked_frame", implementation)
    monkeypatch.setattr(codec, "c_decode_run", C_DECODE_RUN if name == "c" else None)


# -- the oracle checked against RFC 6455 section 5.7's examples ---------------------------------


def test_server_frame_matches_rfc_unmasked_hello() -> None:
    assert server_frame(0x1, b"Hello") == bytes.fromhex("810548656c6c6f")


def test_server_frame_matches_rfc_masked_hello() -> None:
    key = bytes.fromhex("37fa213d")
    assert server_frame(0x1, b"Hello", mask_key=key) == bytes.fromhex("818537fa213d7f9f4d5158")


def test_parse_client_frames_reads_rfc_masked_hello() -> None:
    [frame] = parse_client_frames(bytes.fromhex("818537fa213d7f9f4d5158"))
    assert (frame.fin, frame.rsv, frame.opcode) == (True, 0, 0x1)
    assert unmask(frame) == b"Hello"


def test_server_frame_length_forms() -> None:
    assert server_frame(0x2, b"\x00" * 256)[:4] == bytes.fromhex("827e0100")
    assert server_frame(0x2, b"\x00" * 65536)[:10] == bytes.fromhex("827f0000000000010000")
    assert server_frame(0x2, b"ab", length_form=64)[:10] == bytes.fromhex("827f0000000000000002")
