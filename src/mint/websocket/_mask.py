"""Client-side masking (RFC 6455 section 5.3): masking keys, masked payloads, masked frames.

Masking touches every byte a client sends, so it is the one loop where C pays
for itself: ``mint.websocket._speedups`` (optional, built by ``setup.py``)
XORs eight bytes at a time.  When it is missing, or ``MINT_NO_SPEEDUPS=1`` is
set in the environment at import, the pure-Python functions below are used;
they are the reference the C ones are tested against, and stay within a few
nanoseconds a byte with two standard-library tricks, each best in its own
range (measured on CPython 3.11, see ``benchmarks/README.md``):

* small payloads: turn payload and repeated key into integers and XOR them
  (``int.from_bytes`` / ``int.to_bytes`` are C loops; for tens of bytes the
  whole thing is a handful of calls), and a frame of under 126 bytes is a
  single integer (header, key, masked payload) converted once;
* large payloads: ``int.from_bytes`` and ``to_bytes`` cost about 0.6 ns a byte
  each, so instead XOR each of the four byte lanes with ``bytes.translate``
  through a 256-entry table of ``i ^ key_byte``, on strided slices of a
  ``bytearray`` (about twice as fast from a few hundred bytes up).

Keys come from ``os.urandom`` (the operating system's CSPRNG), drawn in bulk
because one ``os.urandom`` call per frame would cost more than masking a small
frame.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import TypeAlias

__all__ = [
    "SPEEDUPS",
    "MaskFunction",
    "MaskedFrameFunction",
    "c_mask",
    "c_masked_frame",
    "fresh_keys",
    "mask",
    "masked_frame",
    "python_mask",
    "python_masked_frame",
]

#: ``mask(payload, key)``: ``payload`` XORed with the 4-byte ``key`` repeated.
MaskFunction: TypeAlias = Callable[[bytes, bytes], bytes]
#: ``masked_frame(first_byte, key, payload)``: a whole client frame, see ``python_masked_frame``.
MaskedFrameFunction: TypeAlias = Callable[[int, int, bytes | str], bytes]

#: Payloads at least this long are masked lane by lane with ``bytes.translate``.
TRANSLATE_THRESHOLD = 512

#: How many random bytes one refill of a key pool draws (256 keys).
POOL_SIZE = 1024

_MASK_BIT = 0x80

#: ``_XOR_TABLES[k]`` maps every byte ``b`` to ``b ^ k``.
_XOR_TABLES: tuple[bytes, ...] = tuple(
    (
        int.from_bytes(bytes(range(256)), "big") ^ int.from_bytes(bytes((key_byte,)) * 256, "big")
    ).to_bytes(256, "big")
    for key_byte in range(256)
)

#: ``key * _KEY_SPREAD[n] & _LOW_BYTES[n]`` is a 4-byte key (as a little-endian int)
#: repeated over n bytes: the mask of an n-byte payload, without building bytes.
_KEY_SPREAD: tuple[int, ...] = tuple(
    sum(1 << (32 * word) for word in range((size + 3) // 4)) for size in range(126)
)
_LOW_BYTES: tuple[int, ...] = tuple((1 << (8 * size)) - 1 for size in range(126))

_pack_u16_header = struct.Struct("!BBH").pack
_pack_u64_header = struct.Struct("!BBQ").pack


def python_mask(payload: bytes, key: bytes) -> bytes:
    """Return ``payload`` XORed with the 4-byte ``key`` repeated (masking and unmasking alike)."""
    if type(payload) is not bytes:
        payload = bytes(memoryview(payload))  # any bytes-like, by its raw bytes, as the C one
    if len(key) != 4:
        raise ValueError(f"mask must be 4 bytes long, not {len(key)}")
    size = len(payload)
    if size < TRANSLATE_THRESHOLD:
        repeated = (key * ((size >> 2) + 1))[:size]
        return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
            size, "little"
        )
    lanes = bytearray(payload)
    tables = _XOR_TABLES
    lanes[0::4] = lanes[0::4].translate(tables[key[0]])
    lanes[1::4] = lanes[1::4].translate(tables[key[1]])
    lanes[2::4] = lanes[2::4].translate(tables[key[2]])
    lanes[3::4] = lanes[3::4].translate(tables[key[3]])
    return bytes(lanes)


def python_masked_frame(first_byte: int, key: int, payload: bytes | str) -> bytes:
    """A whole client frame: ``first_byte``, MASK bit and length, key, masked payload.

    ``first_byte`` carries FIN, RSV and opcode; ``key`` is the little-endian
    integer of the 4 key bytes as they go on the wire (what ``fresh_keys``
    hands out).  The codec builds every frame it sends with this one call.
    A ``str`` payload is sent as its UTF-8 encoding, as the C version does.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    size = len(payload)
    if size < 126:
        # The whole frame is one little-endian integer, from the low end up.
        return (
            first_byte
            | (_MASK_BIT | size) << 8
            | key << 16
            | (int.from_bytes(payload, "little") ^ (key * _KEY_SPREAD[size] & _LOW_BYTES[size]))
            << 48
        ).to_bytes(size + 6, "little")
    if size < 65536:
        header = _pack_u16_header(first_byte, _MASK_BIT | 126, size)
    else:
        header = _pack_u64_header(first_byte, _MASK_BIT | 127, size)
    key_bytes = key.to_bytes(4, "little")
    return b"".join((header, key_bytes, python_mask(payload, key_bytes)))


_unpack_keys = struct.Struct(f"<{POOL_SIZE // 4}I").unpack
FIRST_POOL_KEYS = 8
"""Keys a new WebSocket draws at first: a full pool is some 10 KiB of int objects, which
a thousand mostly quiet WebSockets on one connection would hold for nothing; a busy one
refills with full pools after its first few frames."""
_unpack_first_keys = struct.Struct(f"<{FIRST_POOL_KEYS}I").unpack


def fresh_keys(*, first: bool = False) -> list[int]:
    """A batch of fresh masking keys from ``os.urandom``; pop one per frame, never reuse.

    Each key is the little-endian integer of its 4 wire bytes
    (``key.to_bytes(4, "little")``), the form ``masked_frame`` takes.
    ``first`` gives the small batch a new WebSocket starts with.
    """
    if first:
        return list(_unpack_first_keys(os.urandom(FIRST_POOL_KEYS * 4)))
    return list(_unpack_keys(os.urandom(POOL_SIZE)))


c_mask: MaskFunction | None = None
c_masked_frame: MaskedFrameFunction | None = None
# Checked before the import, so that MINT_NO_SPEEDUPS=1 also gets around a broken build.
if os.environ.get("MINT_NO_SPEEDUPS", "") in ("", "0"):
    try:
        from mint.websocket._speedups import apply_mask as c_mask
        from mint.websocket._speedups import masked_frame as c_masked_frame
    except ImportError:  # not compiled: no C compiler at install time, or another interpreter
        c_mask = c_masked_frame = None

#: True when ``mask`` and ``masked_frame`` are the C versions.
SPEEDUPS = c_mask is not None and c_masked_frame is not None

mask: MaskFunction = c_mask if SPEEDUPS and c_mask is not None else python_mask
masked_frame: MaskedFrameFunction = (
    c_masked_frame if SPEEDUPS and c_masked_frame is not None else python_masked_frame
)
