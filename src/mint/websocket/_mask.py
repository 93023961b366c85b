"""Client-side masking (RFC 6455 section 5.3) at C speed, without a C extension.

A per-byte Python loop costs about 50 ns a byte; masking has to stay within a
few nanoseconds.  Two standard-library tricks do, each best in its own range
(measured on CPython 3.11, see ``benchmarks/README.md``):

* small payloads: turn payload and repeated key into integers and XOR them
  (``int.from_bytes`` / ``int.to_bytes`` are C loops; for tens of bytes the
  whole thing is a handful of calls);
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

#: Payloads at least this long are masked lane by lane with ``bytes.translate``.
TRANSLATE_THRESHOLD = 512

#: ``_XOR_TABLES[k]`` maps every byte ``b`` to ``b ^ k``.
_XOR_TABLES: tuple[bytes, ...] = tuple(
    (
        int.from_bytes(bytes(range(256)), "big") ^ int.from_bytes(bytes((key_byte,)) * 256, "big")
    ).to_bytes(256, "big")
    for key_byte in range(256)
)

#: How many random bytes one refill of a ``MaskKeys`` pool draws (256 keys).
POOL_SIZE = 1024


def mask(payload: bytes, key: bytes) -> bytes:
    """Return ``payload`` XORed with the 4-byte ``key`` repeated (masking and unmasking alike)."""
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


_unpack_keys = struct.Struct(f"<{POOL_SIZE // 4}I").unpack


def fresh_keys() -> list[int]:
    """A batch of fresh masking keys from ``os.urandom``; pop one per frame, never reuse.

    Each key is the little-endian integer of its 4 wire bytes
    (``key.to_bytes(4, "little")``), the form the small-frame encoder XORs with.
    """
    return list(_unpack_keys(os.urandom(POOL_SIZE)))
