"""Close frame payloads (RFC 6455 sections 5.5.1 and 7.4): which codes may be sent or received.

The rules differ by direction only in what counts as *ours* to refuse: a code
we are asked to send that is not valid raises ``WebSocketError`` (the caller's
mistake); a code received that is not valid is the peer's protocol error
(1002).  The set of valid codes is the same both ways.
"""

from __future__ import annotations

import struct

from mint.errors import ProtocolError, WebSocketError
from mint.websocket.frames import Close

#: Longest control frame payload (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125

_pack_code = struct.Struct("!H").pack


def is_valid_close_code(code: int) -> bool:
    """True for the codes that may appear in a Close frame on the wire.

    1000-1003 and 1007-1014 are defined by RFC 6455 and the IANA registry;
    1004 is reserved, 1005/1006/1015 are reserved for reporting and must never
    be sent; 1016-2999 are reserved for future RFCs; 3000-3999 are registered
    by libraries and frameworks, 4000-4999 are private.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def encode_close_payload(frame: Close) -> bytes:
    """The payload of a Close frame we send, or ``WebSocketError`` if it may not be sent."""
    code, reason = frame.code, frame.reason
    if not isinstance(reason, str):
        raise WebSocketError(
            f"a close reason must be a str, got {type(reason).__name__}", reason="invalid_frame"
        )
    if code is None:
        if reason:
            raise WebSocketError(
                "a Close frame without a status code cannot carry a reason", reason="invalid_frame"
            )
        return b""
    if isinstance(code, bool) or not isinstance(code, int) or not is_valid_close_code(code):
        raise WebSocketError(
            f"close code {code!r} may not be sent (valid: 1000-1003, 1007-1014, 3000-4999)",
            reason="invalid_close_code",
        )
    try:
        encoded_reason = reason.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WebSocketError(
            "the close reason cannot be encoded as UTF-8", reason="invalid_frame"
        ) from exc
    if len(encoded_reason) > MAX_CONTROL_PAYLOAD - 2:
        raise WebSocketError(
            f"the close reason is {len(encoded_reason)} bytes of UTF-8; at most "
            f"{MAX_CONTROL_PAYLOAD - 2} fit in a Close frame",
            reason="control_frame_too_long",
        )
    return _pack_code(code) + encoded_reason


def decode_close_payload(payload: bytes) -> Close:
    """The Close frame the server sent; ``ProtocolError`` (1002 or 1007) if its payload is invalid.

    An empty payload means "no status" (1005), which we report as
    ``Close(None, "")`` rather than as a code the server did not send.
    """
    if not payload:
        return Close(None, "")
    if len(payload) == 1:
        raise ProtocolError("the server sent a 1-byte Close payload", close_code=1002)
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolError(
            f"the server sent a Close frame with the invalid code {code}", close_code=1002
        )
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            "the server sent a Close reason that is not valid UTF-8", close_code=1007
        ) from exc
    return Close(code, reason)
