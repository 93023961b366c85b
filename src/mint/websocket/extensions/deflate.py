"""permessage-deflate (RFC 7692): compress each WebSocket message with DEFLATE.

One class plays both roles of the extension API: built by the caller it is an
*offer*; ``accept`` checks the server's answer against it and returns a
*negotiated* instance that owns the zlib streams of one connection.

Decisions worth knowing, with the rule each follows:

* **An 8-bit client window is compressed with zlib's 9-bit window.**  zlib
  refuses ``wbits=-8`` for raw deflate (``deflateInit2`` returns
  Z_STREAM_ERROR since zlib 1.2.9; older versions silently used 9).  What the
  peer needs from ``client_max_window_bits=8`` is that no back-reference
  reaches more than 256 bytes back (RFC 7692 section 7.1.2.2 limits the LZ77
  sliding window).  zlib never emits a distance above ``w_size - 262``
  (``MAX_DIST`` in deflate.c: window minus the minimum lookahead), which is
  250 for a 512-byte window, so a 9-bit zlib stream always fits an 8-bit
  window.  The tests decode our output with ``decompressobj(wbits=-8)`` across
  messages, where a too-far reference would fail.
* **The server's window is honoured exactly when decompressing**, 8 included:
  zlib's inflate accepts 8, a larger window would only waste memory, and a
  server that reaches further back than it promised is caught as corrupt data.
* **No context takeover on our side is a full flush, not a new compressor.**
  ``Z_FULL_FLUSH`` at the end of each message forgets every earlier match
  (the zlib manual: decompression can restart from that point), which is what
  RFC 7692 section 7.2.1 asks for, without reallocating ~256 KiB of deflate
  state per message.
* **When the server does no context takeover, we drop our decompressor after
  each message.**  RFC 7692 section 7.2.2 makes the reset optional: a stream
  that never refers to earlier messages decodes the same with or without
  history.  Keeping the history would be safe only if the server kept its
  promise and never ended its DEFLATE stream; resetting catches a server that
  refers back anyway (corrupt data, 1002) and frees the inflate window
  between messages.
* **A DEFLATE block with BFINAL set ends the stream** (RFC 7692 section
  7.2.3.4): the message decodes, then the decompressor starts afresh, since a
  finished DEFLATE stream cannot be continued.  Anything after the final
  block other than the empty block the RFC's example carries is a protocol
  error rather than silently dropped data.
* **Corrupt compressed data closes with 1002** (protocol error), not 1007:
  RFC 6455 section 7.4.1 keeps 1007 for a payload that decoded but does not
  fit its message type (bad UTF-8 in a text message); a DEFLATE stream that
  does not decode breaks the transformation the handshake negotiated, a
  protocol violation like a bad RSV bit (RFC 7692 section 6.1 fails the
  connection for those), and no application data was ever produced to be
  "inconsistent".
* **Decompression is bounded**: at most ``max_size + 1`` bytes are produced per
  call, so a few KiB that would inflate to gigabytes cost at most the limit.
  A limit of ``sys.maxsize`` or more is no bound at all (no message can reach
  it, and one more does not fit zlib's ``max_length``).
* **The C decoder inflates the routine message without this module's Python
  code**, through ``inflate_hook`` (see ``InflateHook``): the inflater, the
  tail to append, and RSV1.  A hook exists exactly while an inflater does and
  the server keeps its context; it is made with each new inflater and
  dropped with it (``_drop_inflater``), and the codec asks for it again
  after every call into this class, so it never feeds a replaced inflater.
  The first message (which creates the inflater), a finished stream, the
  limit, zlib errors and per-message resets stay here, in Python.
"""

from __future__ import annotations

import re
import sys
import zlib
from typing import Any, ClassVar

from mint.errors import ProtocolError, WebSocketError
from mint.websocket.extensions.base import RSV1, Extension, InflateHook, Params

__all__ = ["PerMessageDeflate"]

# The empty stored block a sync flush ends with; removed by the sender and
# restored by the receiver (RFC 7692 sections 7.2.1 and 7.2.2).
_TAIL = b"\x00\x00\xff\xff"
# What may follow a DEFLATE block with BFINAL set once _TAIL is appended:
# nothing, or the RFC 7.2.3.4 example's padding octet.
_AFTER_FINAL_BLOCK = (_TAIL, b"\x00" + _TAIL)
# Window bits as RFC 7692 section 7.1.2 writes them: 8 to 15, plain digits.
_WINDOW_BITS = re.compile(r"(?:8|9|1[0-5])\Z")
_NEGOTIATION = "extension_negotiation"
# A limit this high cannot be reached (no bytes object is longer), and one more
# than it does not fit decompress()'s max_length: such limits inflate unbounded.
_UNBOUNDED = sys.maxsize

# What an outgoing or incoming message is doing, between its frames.
_IDLE = 0
_DEFLATED = 1
_PLAIN = 2


def _check_window_bits(name: str, value: object, *, allow_bare: bool) -> None:
    if value is None or (allow_bare and isinstance(value, bool)):
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int between 8 and 15, not {value!r}")
    if not 8 <= value <= 15:
        raise ValueError(f"{name} must be between 8 and 15, not {value}")


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, not {value}")


def _negotiation_error(message: str) -> WebSocketError:
    return WebSocketError(f"permessage-deflate: {message}", reason=_NEGOTIATION)


class PerMessageDeflate(Extension):
    """The permessage-deflate offer and, once accepted, its per-connection zlib state.

    ``client_max_window_bits``: ``True`` offers the bare parameter (the server
    may then choose our window), an int 8-15 offers it with that value (a
    hint the server may lower), ``None``/``False`` leaves it out (the server
    may then not limit our window).  ``server_max_window_bits`` asks the
    server to use at most that window.  The ``*_no_context_takeover`` flags
    ask for each side to compress every message on its own.
    ``compress_threshold``: messages whose first frame is shorter go out
    uncompressed (RFC 7692 section 6 leaves compressing each message to the
    sender), since deflating a few bytes costs more than it saves.
    """

    name: ClassVar[str] = "permessage-deflate"
    rsv_mask: ClassVar[int] = RSV1

    def __init__(
        self,
        *,
        client_max_window_bits: int | bool | None = True,
        server_max_window_bits: int | None = None,
        client_no_context_takeover: bool = False,
        server_no_context_takeover: bool = False,
        compression_level: int = 6,
        memory_level: int = 8,
        compress_threshold: int = 0,
    ) -> None:
        _check_window_bits("client_max_window_bits", client_max_window_bits, allow_bare=True)
        _check_window_bits("server_max_window_bits", server_max_window_bits, allow_bare=False)
        for flag_name, flag in (
            ("client_no_context_takeover", client_no_context_takeover),
            ("server_no_context_takeover", server_no_context_takeover),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{flag_name} must be a bool, not {flag!r}")
        _check_int("compression_level", compression_level, -1, 9)
        _check_int("memory_level", memory_level, 1, 9)
        _check_int("compress_threshold", compress_threshold, 0, None)
        self.client_max_window_bits: int | bool = (
            False if client_max_window_bits is None else client_max_window_bits
        )
        self.server_max_window_bits = server_max_window_bits
        self.client_no_context_takeover = client_no_context_takeover
        self.server_no_context_takeover = server_no_context_takeover
        self.compression_level = compression_level
        self.memory_level = memory_level
        self.compress_threshold = compress_threshold

        # Negotiated state; an offer keeps these defaults and cannot code frames.
        self.negotiated = False
        #: The server's answer, as accepted (empty for an offer).
        self.agreed: Params = []
        #: Window bits each side compresses with, as agreed (RFC 7692 7.1.2).
        self.client_window_bits = 15
        self.server_window_bits = 15
        #: Whether each side starts every message with an empty window.
        self.client_resets = False
        self.server_resets = False
        self._deflater: Any = None
        self._inflater: Any = None
        # What inflate_hook() returns: set with each new inflater, cleared with it.
        self._hook: InflateHook | None = None
        self._end_flush = zlib.Z_SYNC_FLUSH
        self._send_state = _IDLE
        self._receive_state = _IDLE

    def __repr__(self) -> str:
        if self.negotiated:
            return (
                f"PerMessageDeflate(negotiated, client_window_bits={self.client_window_bits}, "
                f"server_window_bits={self.server_window_bits}, "
                f"client_resets={self.client_resets}, server_resets={self.server_resets})"
            )
        return f"PerMessageDeflate(offer={self.offer()!r})"

    # -- negotiation ----------------------------------------------------------

    def offer(self) -> Params:
        """Parameters in RFC 7692 section 7.1 order: context takeover first, then windows."""
        params: Params = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append(("client_max_window_bits", None))
        elif self.client_max_window_bits is not False:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params

    def accept(self, params: Params) -> PerMessageDeflate:
        """Check the server's answer against this offer (RFC 7692 section 7.1).

        Every rule broken raises ``WebSocketError(reason="extension_negotiation")``
        so the handshake can try the next offer or fail the connection.
        """
        seen: set[str] = set()
        answer_server_resets = False
        answer_client_resets = False
        answer_server_bits: int | None = None
        answer_client_bits: int | None = None
        for name, value in params:
            if name in seen:
                raise _negotiation_error(f"the server's answer repeats {name}")
            seen.add(name)
            if name in ("server_no_context_takeover", "client_no_context_takeover"):
                if value is not None:
                    raise _negotiation_error(f"{name} takes no value, got {value!r}")
                if name == "server_no_context_takeover":
                    answer_server_resets = True
                else:
                    answer_client_resets = True
            elif name in ("server_max_window_bits", "client_max_window_bits"):
                if value is None or not _WINDOW_BITS.match(value):
                    raise _negotiation_error(
                        f"{name} in an answer must be an integer from 8 to 15 written "
                        f"as plain digits, got {value!r}"
                    )
                if name == "server_max_window_bits":
                    answer_server_bits = int(value)
                else:
                    answer_client_bits = int(value)
            else:
                raise _negotiation_error(f"unknown parameter {name!r} in the server's answer")

        # RFC 7692 7.1.1.1: a server accepting server_no_context_takeover echoes it.
        if self.server_no_context_takeover and not answer_server_resets:
            raise _negotiation_error(
                "the offer asked for server_no_context_takeover and the answer lacks it"
            )
        # RFC 7692 7.1.2.1: a server accepting server_max_window_bits echoes it, same or smaller.
        offered_server_bits = self.server_max_window_bits
        if offered_server_bits is not None:
            if answer_server_bits is None:
                raise _negotiation_error(
                    f"the offer asked for server_max_window_bits={offered_server_bits} "
                    "and the answer lacks it"
                )
            if answer_server_bits > offered_server_bits:
                raise _negotiation_error(
                    f"the answer's server_max_window_bits={answer_server_bits} is larger "
                    f"than the {offered_server_bits} offered"
                )
        # RFC 7692 7.1.2.2: client_max_window_bits only in answer to an offer carrying it.
        offered_client_bits = self.client_max_window_bits
        client_bits = 15 if isinstance(offered_client_bits, bool) else offered_client_bits
        if answer_client_bits is not None:
            if offered_client_bits is False:
                raise _negotiation_error(
                    "the answer limits client_max_window_bits, which the offer did not include"
                )
            # The offered value is a hint the server may ignore; the smaller bound holds.
            client_bits = min(client_bits, answer_client_bits)

        accepted = type(self)(
            client_max_window_bits=self.client_max_window_bits,
            server_max_window_bits=self.server_max_window_bits,
            client_no_context_takeover=self.client_no_context_takeover,
            server_no_context_takeover=self.server_no_context_takeover,
            compression_level=self.compression_level,
            memory_level=self.memory_level,
            compress_threshold=self.compress_threshold,
        )
        accepted.negotiated = True
        accepted.agreed = list(params)
        accepted.client_window_bits = client_bits
        accepted.server_window_bits = 15 if answer_server_bits is None else answer_server_bits
        # Offering client_no_context_takeover is our promise (7.1.1.2) even if not echoed.
        accepted.client_resets = self.client_no_context_takeover or answer_client_resets
        accepted.server_resets = answer_server_resets
        accepted._end_flush = zlib.Z_FULL_FLUSH if accepted.client_resets else zlib.Z_SYNC_FLUSH
        return accepted

    # -- zlib streams, created on first use ----------------------------------

    def _require_negotiated(self) -> None:
        if not self.negotiated:
            raise WebSocketError(
                "this PerMessageDeflate is an offer; use the instance accept() returned",
                reason="not_negotiated",
            )

    def _new_deflater(self) -> Any:
        self._require_negotiated()
        # 9 stands in for 8: see the module docstring.
        wbits = max(self.client_window_bits, 9)
        self._deflater = zlib.compressobj(
            self.compression_level, zlib.DEFLATED, -wbits, self.memory_level
        )
        return self._deflater

    def _new_inflater(self) -> Any:
        self._require_negotiated()
        inflater = self._inflater = zlib.decompressobj(-self.server_window_bits)
        # Resetting after every message is decode_message's job: no hook then.
        self._hook = None if self.server_resets else InflateHook(RSV1, inflater, _TAIL)
        return inflater

    def _drop_inflater(self) -> None:
        """Forget the inflater (and the hook on it): the next compressed message starts afresh."""
        self._inflater = None
        self._hook = None

    # -- frame hooks (hot path) ----------------------------------------------

    def encode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, *, transform: bool = True
    ) -> tuple[bytes, int]:
        """Deflate a message frame by frame, RSV1 on its first frame only (RFC 7692 6.1)."""
        if opcode:
            if not transform or len(payload) < self.compress_threshold:
                self._send_state = _IDLE if fin else _PLAIN
                return payload, rsv
            rsv |= RSV1
            if not fin:
                self._send_state = _DEFLATED
        else:
            state = self._send_state
            if state != _DEFLATED:
                if state == _IDLE:
                    raise WebSocketError(
                        "a continuation frame was encoded outside a fragmented message",
                        reason="unexpected_continuation",
                    )
                if fin:
                    self._send_state = _IDLE
                return payload, rsv
        deflater = self._deflater or self._new_deflater()
        if fin:
            self._send_state = _IDLE
            # Each flush ends with _TAIL; a message's last one loses it (7.2.1),
            # which leaves a single 0x00 for an empty message (7.2.3.6).
            return (deflater.compress(payload) + deflater.flush(self._end_flush))[:-4], rsv
        return deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH), rsv

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        """Inflate a compressed message frame by frame, never past ``max_size`` bytes."""
        if opcode:
            if not rsv & RSV1:
                self._receive_state = _IDLE if fin else _PLAIN
                return payload, rsv
            rsv &= ~RSV1
            self._receive_state = _IDLE if fin else _DEFLATED
        else:
            if rsv & RSV1:
                raise ProtocolError(
                    "RSV1 set on a continuation frame: permessage-deflate marks only a "
                    "message's first frame (RFC 7692 section 6.1)",
                    close_code=1002,
                )
            if self._receive_state != _DEFLATED:
                if fin:
                    self._receive_state = _IDLE
                return payload, rsv
            if fin:
                self._receive_state = _IDLE
        return self._inflate(payload + _TAIL if fin else payload, fin, max_size), rsv

    def decode_message(self, opcode: int, payload: bytes, rsv: int, max_size: int | None) -> bytes:
        """``decode_frame`` for a whole message in one frame: the codec's hot path.

        The codec calls this, when present, for a FIN text or binary frame
        that starts no fragmented message and carries no RSV bit but RSV1;
        the result is what ``decode_frame(opcode, payload, rsv, True,
        max_size)[0]`` returns, minus the fragment bookkeeping, the tuple, one
        argument and a call: per 1 KiB message this extension adds about
        0.25 µs to zlib's work this way, against 0.5 µs through
        ``decode_frame``.  The C decoder skips even that for most messages:
        it inflates through ``inflate_hook`` and comes back here only when
        there is no hook (see there).  Whatever it does must stay what this
        method does; ``inflate_finished`` and ``inflate_failed`` are this
        method's two unusual ends.
        """
        self._receive_state = _IDLE
        if not rsv:
            return payload
        inflater = self._inflater
        if inflater is None or max_size is None:
            return self._inflate(payload + _TAIL, True, max_size)
        # _inflate, inlined for the common case: saves a call per message.
        try:
            data: bytes = inflater.decompress(payload + _TAIL, max_size + 1)
        except zlib.error as exc:
            raise self._corrupt(exc) from exc
        except OverflowError:
            # max_size + 1 is no Py_ssize_t, so nothing was inflated: a limit no
            # message can reach, which _inflate treats as none (no test per message).
            return self._inflate(payload + _TAIL, True, max_size)
        if len(data) > max_size or inflater.eof or self.server_resets:
            self._settle(inflater, len(data), True, max_size)
        return data

    # -- the C run decoder's way in (see InflateHook) ----------------------------

    def inflate_hook(self) -> InflateHook | None:
        """The current inflater for the codec to feed whole messages to, if there is one.

        ``None`` before the first compressed message (``decode_message``
        creates the inflater), after a finished or failed stream, and always
        when the server resets its context per message.
        """
        return self._hook

    def inflate_finished(self, decompressor: Any, data: bytes, max_size: int | None) -> bytes:
        """``decode_message``'s end for a message over the limit or a finished DEFLATE stream."""
        self._settle(decompressor, len(data), True, max_size)
        return data

    def inflate_failed(self, exc: Exception) -> BaseException:
        """``decode_message``'s end for a zlib error (1002); anything else goes on as it is."""
        if isinstance(exc, zlib.error):
            return self._corrupt(exc)
        return exc

    def _inflate(self, payload: bytes, fin: bool, max_size: int | None) -> bytes:
        """Inflate a frame's payload (``_TAIL`` added on a message's last), up to ``max_size``."""
        inflater = self._inflater or self._new_inflater()
        try:
            # One byte more than allowed tells "too big" from "exactly at the limit";
            # a max_length of 0 is no limit.
            data: bytes = inflater.decompress(
                payload, 0 if max_size is None or max_size >= _UNBOUNDED else max_size + 1
            )
        except zlib.error as exc:
            raise self._corrupt(exc) from exc
        self._settle(inflater, len(data), fin, max_size)
        return data

    def _corrupt(self, exc: zlib.error) -> ProtocolError:
        self._drop_inflater()
        return ProtocolError(
            f"invalid permessage-deflate data: {exc}",
            close_code=1002,
            reason="decompression_failed",
        )

    def _settle(self, inflater: Any, size: int, fin: bool, max_size: int | None) -> None:
        """After inflating ``size`` bytes: enforce the limit, handle a finished stream or reset."""
        if max_size is not None and size > max_size:
            self._drop_inflater()
            raise ProtocolError(
                f"a compressed message inflates past the {max_size} bytes left "
                "under the message size limit",
                close_code=1009,
                reason="message_too_big",
            )
        if inflater.eof:
            self._finish_stream(inflater, fin)
        elif fin and self.server_resets:
            self._drop_inflater()

    def _finish_stream(self, inflater: Any, fin: bool) -> None:
        """The server ended its DEFLATE stream with a BFINAL block (RFC 7692 7.2.3.4)."""
        if not fin:
            return  # later fragments pile up in unused_data and are checked at the end
        self._drop_inflater()
        if inflater.unused_data not in _AFTER_FINAL_BLOCK:
            raise ProtocolError(
                "data follows the final DEFLATE block of a compressed message",
                close_code=1002,
                reason="decompression_failed",
            )
