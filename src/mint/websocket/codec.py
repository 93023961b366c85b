"""The WebSocket codec: RFC 6455 framing for a client, sans I/O.

``WebSocket`` turns frames into bytes (``encode``) and bytes into frames
(``decode``); it never reads, writes or answers on its own.  A ping is handed
to the caller, who decides whether and when to send the pong.

Decoding is the measured hot path, so ``decode`` is written for the common
case first: a server that sends many small unfragmented text or binary frames
with no extension.  Those frames are parsed inline in one loop over the input
with local names only.  With exactly one negotiated extension (in practice
permessage-deflate) the common case is a whole message in one frame of under
64 KiB: ``_decode_lean_run`` takes a run of those straight to the
``Extension.decode_message``.  Everything else
(long lengths, fragments, control frames, several extensions, every error)
goes through ``_decode_frame``, one frame per call.

When ``_speedups`` was compiled, both of those runs are walked in C instead
(``decode_run``, see ``_speedups.c``): it takes the same simple frames,
with no extension or one, and also pings, pongs and (with no extension) the
fragments of a message, and stops at the first frame that is anything
else (a Close, a long length, any fault), which ``_decode_frame`` then
handles with all its checks.  The message being received in fragments is
kept in this object's ``_recv_opcode``, ``_parts``, ``_message_size`` and
``_utf8_tail`` by both decoders, so either can take the next frame.  When the
extension offers an ``inflate_hook`` (permessage-deflate does), the C walk
feeds a compressed message to the extension's decompressor itself and calls
the extension's Python code only for what is not routine (the first
message, a finished stream, the limit, an error); see ``InflateHook``.  The
pure-Python loops stay as the fallback and the reference the C one is tested
against (``tests/test_codec_differential.py``): they call ``decode_message``
for every message, so the comparison also checks the hook against it.

Input that ends inside a frame is kept as a list of chunks, untouched until
enough bytes arrived to make progress; once a data frame's header has been
checked, its payload is cut out of those chunks with a single join, so a
16 MiB frame fed in 64 KiB reads is copied once, not once per read.

Encoding builds each frame with one ``masked_frame`` call (header, key and
masked payload in one allocation): C when ``_speedups`` was compiled, pure
Python otherwise (see ``_mask``).
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeAlias

from mint.errors import MintError, ProtocolError, WebSocketError
from mint.websocket._close import (
    MAX_CONTROL_PAYLOAD,
    decode_close_payload,
    encode_close_payload,
)
from mint.websocket._early_utf8 import EarlyUtf8Check
from mint.websocket._frame_slots import (
    SLOTS_OK,
    new_data_frame,
    set_binary_data,
    set_text_data,
)
from mint.websocket._frame_slots import set_binary_fin as set_binary_fin_slot
from mint.websocket._frame_slots import set_text_fin as set_text_fin_slot
from mint.websocket._mask import SPEEDUPS, fresh_keys, masked_frame
from mint.websocket.extensions.base import Extension, InflateHook
from mint.websocket.frames import Binary, Close, Frame, Ping, Pong, Text

__all__ = ["WebSocket"]

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

FIN = 0x80
RSV_BITS = 0x70
MASK_BIT = 0x80

DEFAULT_MAX_SIZE = 64 * 2**20

_unpack_u16 = struct.Struct("!H").unpack_from
_unpack_u64 = struct.Struct("!Q").unpack_from
#: First byte, second byte and the 16-bit extended length that may follow them.
_unpack_short_header = struct.Struct("!BBH").unpack_from
_utf_8_decode = codecs.utf_8_decode

#: ``decode_message(opcode, payload, rsv, max_size) -> bytes``: what the lean decode path
#: calls for a whole message in one frame; see ``Extension.decode_message``.
MessageDecoder: TypeAlias = Callable[[int, bytes, int, "int | None"], bytes]

#: An extension's ``(inflate_hook, inflate_finished, inflate_failed)``: see ``InflateHook``.
InflateMethods: TypeAlias = tuple[
    Callable[[], "InflateHook | None"],
    Callable[[object, bytes, "int | None"], bytes],
    Callable[[Exception], BaseException],
]

#: What ``decode_run`` needs to know of a WebSocket, fixed at its construction:
#: ``(rsv_allowed, frame_limit, max_message_size, decode_message or None,
#: WebSocket._check_decoded, WebSocket._extension_failure, inflate methods or None,
#: fragments)``.
RunConfig: TypeAlias = tuple[
    int,
    int,
    "int | None",
    "MessageDecoder | None",
    Callable[["WebSocket", bytes, int], bytes],
    Callable[["WebSocket", Exception], ProtocolError],
    "InflateMethods | None",
    bool,
]
#: ``decode_run(data, pos, frames, websocket, config) -> (pos, need)``: see ``_speedups.c``.
DecodeRun: TypeAlias = Callable[[bytes, int, list[Frame], "WebSocket", RunConfig], tuple[int, int]]


def _load_decode_run() -> DecodeRun | None:
    """The C run decoder, when compiled, allowed (``MINT_NO_SPEEDUPS``) and fit for the frames."""
    if not SPEEDUPS or not SLOTS_OK:
        return None
    try:
        from mint.websocket._speedups import configure_frames, decode_run
    except ImportError:  # an extension built before decode_run existed
        return None
    try:
        configure_frames(Text, Binary, ProtocolError, Ping, Pong)
    except TypeError:  # the frame classes are not the slotted classes decode_run builds
        return None
    return decode_run


#: What a new ``WebSocket`` decodes its simple-frame runs with; None: the pure-Python loops.
#: Tests set this to None to get a pure-Python WebSocket next to a C one.
c_decode_run: DecodeRun | None = _load_decode_run()


def _check_limit(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WebSocketError(
            f"{name} must be a positive int or None, got {value!r}", reason="invalid_argument"
        )
    return value


class WebSocket:
    """One client-side WebSocket's framing state: what was sent, what is half received.

    Build it with the extensions and subprotocol the handshake negotiated
    (``mint.websocket.new`` does), then ``encode`` frames to send and
    ``decode`` the bytes the server sent.  ``decode`` raises
    ``mint.ProtocolError`` when the server breaks the protocol; its
    ``close_code`` is the code to close with and its ``frames`` the frames
    decoded before the fault.  After that the WebSocket stays failed.
    """

    __slots__ = (
        "_close_frame",
        "_close_sent",
        "_decode_run",
        "_early_utf8",
        "_extensions",
        "_failure",
        "_fast",
        "_fragments",
        "_frame_limit",
        "_lean",
        "_lean_decode",
        "_lean_first_bytes",
        "_mask_keys",
        "_max_frame_size",
        "_max_message_size",
        "_message_size",
        "_need",
        "_parts",
        "_pending",
        "_pending_size",
        "_plain_send",
        "_recv_opcode",
        "_rsv_allowed",
        "_run_config",
        "_send_opcode",
        "_subprotocol",
        "_utf8_tail",
        "_waiting_header",
    )

    def __init__(
        self,
        *,
        extensions: Sequence[Extension] = (),
        subprotocol: str | None = None,
        max_frame_size: int | None = DEFAULT_MAX_SIZE,
        max_message_size: int | None = DEFAULT_MAX_SIZE,
        fragments: bool = False,
    ) -> None:
        if isinstance(extensions, (str, bytes)) or not isinstance(extensions, Sequence):
            raise WebSocketError(
                "extensions must be a sequence of Extension objects", reason="invalid_argument"
            )
        rsv_allowed = 0
        for extension in extensions:
            if not isinstance(extension, Extension):
                raise WebSocketError(
                    f"{extension!r} is not a mint Extension", reason="invalid_argument"
                )
            rsv_allowed |= extension.rsv_mask
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise WebSocketError(
                f"subprotocol must be a str or None, got {subprotocol!r}", reason="invalid_argument"
            )
        if not isinstance(fragments, bool):
            raise WebSocketError(
                f"fragments must be a bool, got {fragments!r}", reason="invalid_argument"
            )
        self._extensions: list[Extension] = list(extensions)
        self._rsv_allowed = rsv_allowed & RSV_BITS
        self._subprotocol = subprotocol
        self._max_frame_size = _check_limit("max_frame_size", max_frame_size)
        self._max_message_size = _check_limit("max_message_size", max_message_size)
        self._fragments = fragments
        # Small unfragmented frames need no limit check when no limit is that small.
        self._fast = (
            SLOTS_OK
            and not self._extensions
            and not fragments
            and (self._max_frame_size is None or self._max_frame_size >= MAX_CONTROL_PAYLOAD)
            and (self._max_message_size is None or self._max_message_size >= MAX_CONTROL_PAYLOAD)
        )
        # One negotiated extension (permessage-deflate, typically): whole messages in
        # one frame go straight to it from _decode_lean_run (see Extension.decode_message).
        self._lean = SLOTS_OK and len(self._extensions) == 1
        self._lean_decode = self._extensions[0].decode_message if self._lean else _untransformed
        # The C walk replaces both pure-Python runs when available (see decode_run).
        self._decode_run = c_decode_run if len(self._extensions) <= 1 else None
        if self._decode_run is not None:
            self._fast = self._lean = False
        self._lean_first_bytes = frozenset(
            FIN | rsv | opcode
            for opcode in (OP_TEXT, OP_BINARY)
            for rsv in range(0, RSV_BITS + 1, 0x10)
            if not rsv & ~self._rsv_allowed
        )
        self._frame_limit = 2**63 if self._max_frame_size is None else self._max_frame_size
        # Unbound methods: a bound one would make a reference cycle through self.
        self._run_config: RunConfig = (
            self._rsv_allowed,
            self._frame_limit,
            self._max_message_size,
            self._extensions[0].decode_message if len(self._extensions) == 1 else None,
            WebSocket._check_decoded,
            WebSocket._extension_failure,
            _inflate_methods(self._extensions),
            fragments,
        )
        self._mask_keys = fresh_keys(first=True)
        self._send_opcode = 0
        # No extension, no fragmented message open, no Close sent: the hot path may skip checks.
        self._plain_send = not self._extensions
        self._close_sent = False
        # Receiving state.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._need = 2
        # Header size of the data frame heading ``_pending`` whose payload is awaited (0: none).
        self._waiting_header = 0
        self._recv_opcode = 0
        self._parts: list[bytes] | list[str] = []
        self._message_size = 0
        # An unfinished UTF-8 sequence at the end of the text fragments so far.
        self._utf8_tail = b""
        self._early_utf8 = EarlyUtf8Check()
        self._close_frame: Close | None = None
        self._failure: ProtocolError | None = None

    # -- state ----------------------------------------------------------------------------

    @property
    def extensions(self) -> list[Extension]:
        """The negotiated extensions, in negotiation order."""
        return list(self._extensions)

    @property
    def subprotocol(self) -> str | None:
        return self._subprotocol

    @property
    def close_sent(self) -> bool:
        """A Close frame was encoded: nothing more may be sent."""
        return self._close_sent

    @property
    def close_received(self) -> bool:
        """The server's Close frame was decoded: nothing more may arrive."""
        return self._close_frame is not None

    @property
    def closed(self) -> bool:
        """Both Close frames went by: the closing handshake is over."""
        return self._close_sent and self._close_frame is not None

    @property
    def close_frame(self) -> Close | None:
        """The Close frame the server sent, if it did."""
        return self._close_frame

    def __repr__(self) -> str:
        state = (
            "failed"
            if self._failure is not None
            else "closed"
            if self.closed
            else "closing"
            if self._close_sent or self._close_frame is not None
            else "open"
        )
        names = [extension.name for extension in self._extensions]
        return f"<WebSocket {state} extensions={names} subprotocol={self._subprotocol!r}>"

    # -- encoding -------------------------------------------------------------------------

    def encode(self, frame: Frame, *, compress: bool = True) -> bytes:
        """The bytes of ``frame``, masked with a fresh key, ready for the wire.

        ``compress=False`` asks the extensions to leave this message as it is
        (permessage-deflate sends it uncompressed).
        """
        if type(frame) is Text:
            try:
                payload = frame.data.encode()
            except (AttributeError, UnicodeEncodeError) as exc:
                raise WebSocketError(
                    f"Text data must be a str encodable as UTF-8, got {frame.data!r:.60}",
                    reason="invalid_frame",
                ) from exc
            opcode = OP_TEXT
        elif type(frame) is Binary:
            payload = frame.data
            if type(payload) is not bytes:
                payload = _as_bytes(payload, "Binary data")
            opcode = OP_BINARY
        else:
            return self._encode_control(frame)
        if self._plain_send and frame.fin is True:
            first_byte = FIN | opcode
        else:
            first_byte, payload = self._start_data_frame(opcode, payload, frame.fin, compress)
        keys = self._mask_keys
        return masked_frame(first_byte, keys.pop() if keys else self._refill_mask_keys(), payload)

    def encode_text(self, text: str, *, compress: bool = True) -> bytes:
        """``encode(Text(text))`` without the frame object: a whole text message.

        For a small message, building the frozen ``Text`` costs about as much
        as encoding it; senders that start from a ``str`` (the session layer,
        most applications) skip that cost here.  Without extensions the
        ``str`` goes to ``masked_frame`` as it is, which masks its UTF-8 form
        directly (in C, with no ``bytes`` object in between).
        """
        if self._plain_send and type(text) is str:
            keys = self._mask_keys
            try:
                return masked_frame(
                    FIN | OP_TEXT, keys.pop() if keys else self._refill_mask_keys(), text
                )
            except UnicodeEncodeError as exc:
                raise WebSocketError(
                    f"Text data must be a str encodable as UTF-8, got {text!r:.60}",
                    reason="invalid_frame",
                ) from exc
        try:
            payload = text.encode()
        except (AttributeError, UnicodeEncodeError) as exc:
            raise WebSocketError(
                f"Text data must be a str encodable as UTF-8, got {text!r:.60}",
                reason="invalid_frame",
            ) from exc
        if self._plain_send:
            first_byte = FIN | OP_TEXT
        else:
            self._check_no_message_open()
            first_byte, payload = self._start_data_frame(OP_TEXT, payload, True, compress)
        keys = self._mask_keys
        return masked_frame(first_byte, keys.pop() if keys else self._refill_mask_keys(), payload)

    def encode_binary(
        self, data: bytes | bytearray | memoryview, *, compress: bool = True
    ) -> bytes:
        """``encode(Binary(data))`` without the frame object: a whole binary message.

        Any bytes-like ``data`` is taken, as ``Binary`` takes it.
        """
        if type(data) is not bytes:
            data = _as_bytes(data, "Binary data")
        if self._plain_send:
            first_byte = FIN | OP_BINARY
        else:
            self._check_no_message_open()
            first_byte, data = self._start_data_frame(OP_BINARY, data, True, compress)
        keys = self._mask_keys
        return masked_frame(first_byte, keys.pop() if keys else self._refill_mask_keys(), data)

    def _check_no_message_open(self) -> None:
        """A whole message cannot go out while a fragmented one is half sent.

        With ``encode`` a same-type frame would be that message's next
        fragment; ``encode_text``/``encode_binary`` promise a message of its own.
        """
        if self._send_opcode and not self._close_sent:
            raise WebSocketError(
                f"a {_kind_name(self._send_opcode)} message is being sent in fragments; finish"
                " it (fin=True) before sending another message",
                reason="message_in_progress",
            )

    def _start_data_frame(
        self, opcode: int, payload: bytes, fin: bool, compress: bool
    ) -> tuple[int, bytes]:
        """Fragmentation state and extensions for a data frame: its first byte and payload."""
        self._check_open()
        if fin is not True and fin is not False:
            raise WebSocketError(f"fin must be a bool, got {fin!r}", reason="invalid_frame")
        open_opcode = self._send_opcode
        if open_opcode:
            if open_opcode != opcode:
                raise WebSocketError(
                    f"a {_kind_name(open_opcode)} message is being sent in fragments; finish it "
                    f"(fin=True) before sending a {_kind_name(opcode)} frame",
                    reason="message_in_progress",
                )
            wire_opcode = OP_CONTINUATION
        else:
            wire_opcode = opcode
        rsv = 0
        if self._extensions:
            payload, rsv = self._encode_extensions(wire_opcode, payload, fin, compress)
        self._send_opcode = 0 if fin else opcode
        self._plain_send = not self._extensions and not self._send_opcode
        return (FIN if fin else 0) | rsv | wire_opcode, payload

    def _check_open(self) -> None:
        if self._close_sent:
            raise WebSocketError(
                "cannot send after a Close frame was sent: the WebSocket is closed",
                reason="closed",
            )

    def _refill_mask_keys(self) -> int:
        keys = self._mask_keys = fresh_keys()
        return keys.pop()

    def _encode_control(self, frame: Frame) -> bytes:
        self._check_open()
        if isinstance(frame, Close):
            payload = encode_close_payload(frame)
            encoded = self._frame(FIN | OP_CLOSE, payload)
            self._close_sent = True
            self._plain_send = False
            return encoded
        if not isinstance(frame, (Ping, Pong)):
            raise WebSocketError(
                f"cannot encode {frame!r:.80}: not a frame", reason="invalid_frame"
            )
        opcode = OP_PING if isinstance(frame, Ping) else OP_PONG
        payload = frame.data
        if type(payload) is not bytes:
            payload = _as_bytes(payload, f"{type(frame).__name__} data")
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise WebSocketError(
                f"a control frame carries at most {MAX_CONTROL_PAYLOAD} bytes, got {len(payload)}",
                reason="control_frame_too_long",
            )
        return self._frame(FIN | opcode, payload)

    def _encode_extensions(
        self, opcode: int, payload: bytes, fin: bool, compress: bool
    ) -> tuple[bytes, int]:
        rsv = 0
        for extension in self._extensions:
            try:
                payload, rsv = extension.encode_frame(opcode, payload, rsv, fin, transform=compress)
            except MintError:
                raise
            except Exception as exc:
                raise WebSocketError(
                    f"extension {extension.name!r} failed to encode a frame: {exc}",
                    reason="extension",
                ) from exc
        if rsv & ~RSV_BITS:
            raise WebSocketError(
                f"the extensions returned RSV bits 0x{rsv:x}, outside 0x70", reason="extension"
            )
        return payload, rsv

    def _frame(self, first_byte: int, payload: bytes) -> bytes:
        keys = self._mask_keys
        return masked_frame(first_byte, keys.pop() if keys else self._refill_mask_keys(), payload)

    # -- decoding -------------------------------------------------------------------------

    def decode(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """The frames completed by ``data`` (bytes the server sent), in order.

        Bytes that end inside a frame are kept for the next call.  Raises
        ``mint.ProtocolError`` if the server broke the protocol; frames decoded
        from ``data`` before the fault are in the exception's ``frames``.
        """
        run = self._decode_run
        if (
            run is not None
            and type(data) is bytes
            and not self._pending
            and self._failure is None
            and self._close_frame is None
        ):
            # The usual read: nothing kept from the last one, and the C walk
            # goes first (most reads end inside it: whole frames it takes).
            # What it leaves goes on in ``_decode_from``, as from any point.
            frames: list[Frame] = []
            try:
                pos, need = run(data, 0, frames, self, self._run_config)
            except UnicodeDecodeError as exc:
                self._fail(_invalid_utf8(), frames, exc)
            except ProtocolError as exc:
                self._fail(exc, frames, None)
            if pos == len(data):
                self._need = need or 2  # whole frames only: the next read starts with a header
                return frames
            return self._decode_from(data, pos, need, frames)
        return self._decode_kept(data)

    def _decode_kept(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """``decode`` with bytes kept from before, or not yet able to use the C walk."""
        if self._failure is not None:
            failure = self._failure
            raise ProtocolError(
                f"the WebSocket already failed: {failure}",
                close_code=failure.close_code,
                reason=failure.reason,
            )
        if type(data) is not bytes:
            data = _as_bytes(data, "decode() input")
        pending = self._pending
        if pending:
            size = self._pending_size + len(data)
            pending.append(data)
            self._pending_size = size
            if size < self._need:
                self._check_partial_text([])
                return []
            self._early_utf8.reset()
            if not self._waiting_header:
                data = b"".join(pending)
                pending.clear()
        elif len(data) < self._need:
            if data:
                pending.append(data)
                self._pending_size = len(data)
                self._check_partial_text([])
            return []

        frames: list[Frame] = []
        if pending:
            try:
                data = self._complete_waiting_frame(frames)
            except UnicodeDecodeError as exc:
                self._fail(_invalid_utf8(), frames, exc)
            except ProtocolError as exc:
                self._fail(exc, frames, None)
        self._waiting_header = 0
        return self._decode_from(data, 0, 0, frames)  # need 0: from the first frame on

    def _decode_from(self, data: bytes, pos: int, need: int, frames: list[Frame]) -> list[Frame]:
        """Go on decoding ``data`` from ``pos``, where the C walk (if any) stopped.

        ``need`` is what the C walk said of the frame at ``pos``: how many
        bytes it needs, or 0 when that frame is not one it takes (or the walk
        has not looked yet: it goes first then).  The Python paths take that
        frame and go on; whatever ends inside a frame is kept.
        """
        append = frames.append
        end = len(data)
        run = self._decode_run if self._close_frame is None else None
        try:
            if run is None or not need:
                run_config = self._run_config
                ready = not self._recv_opcode and self._close_frame is None
                fast = self._fast and ready
                lean = self._lean and ready
                text = Text
                binary = Binary
                new_frame = new_data_frame
                set_text, set_text_fin = set_text_data, set_text_fin_slot
                set_binary, set_binary_fin = set_binary_data, set_binary_fin_slot
                while True:
                    if run is not None:
                        # Appends to frames as it goes, so that when it raises (invalid UTF-8,
                        # an extension's error) the frames before the fault are already there.
                        pos, need = run(data, pos, frames, self, run_config)
                        if need:
                            break
                    elif lean:
                        pos, need = self._decode_lean_run(data, pos, frames)
                        if need:
                            break
                    if end - pos < 2:
                        need = 2
                        break
                    first = data[pos]
                    length = data[pos + 1]
                    # A FIN text or binary frame, no RSV, unmasked, length under 126.
                    if fast and length < 126 and (first == 0x81 or first == 0x82):
                        stop = pos + 2 + length
                        if stop > end:
                            need = 2 + length
                            break
                        # Equivalent to Text(...) / Binary(...); see _frame_slots for why.
                        frame = new_frame(text if first == 0x81 else binary)
                        if first == 0x81:
                            set_text(frame, data[pos + 2 : stop].decode("utf-8"))
                            set_text_fin(frame, True)
                        else:
                            set_binary(frame, data[pos + 2 : stop])
                            set_binary_fin(frame, True)
                        append(frame)
                        pos = stop
                        continue
                    stop = self._decode_frame(data, pos, frames)
                    if stop == pos:
                        need = self._need
                        break
                    pos = stop
                    ready = not self._recv_opcode and self._close_frame is None
                    fast = self._fast and ready
                    lean = self._lean and ready
                    run = self._decode_run if self._close_frame is None else None
        except UnicodeDecodeError as exc:
            self._fail(_invalid_utf8(), frames, exc)
        except ProtocolError as exc:
            self._fail(exc, frames, None)
        if pos < end:
            self._pending.append(data[pos:] if pos else data)
            self._pending_size = end - pos
            self._need = need
            self._check_partial_text(frames)
        else:
            self._pending_size = 0
            self._need = need
        return frames

    def _check_partial_text(self, frames: list[Frame]) -> None:
        """Fail now if the text frame still arriving already holds invalid UTF-8.

        Only without extensions: an extension may transform a frame's payload
        (permessage-deflate's continuation frames carry no RSV bit at all), so
        the raw bytes say nothing until the extension has decoded them.
        """
        if self._extensions or self._close_frame is not None:
            return
        try:
            self._early_utf8.feed(self._pending, self._recv_opcode, self._utf8_tail)
        except UnicodeDecodeError as exc:
            self._fail(_invalid_utf8(), frames, exc)

    def _decode_lean_run(self, data: bytes, pos: int, frames: list[Frame]) -> tuple[int, int]:
        """The hot path with one extension: whole messages in one frame each, from ``pos`` on.

        Takes FIN text and binary frames whose RSV bits the extension may set
        and whose length is under 64 KiB, straight to the extension's message
        decoder (see ``Extension.decode_message``), with none of ``_decode_frame``'s
        per-frame state; only called when no fragmented message is open and
        no Close arrived.  Returns where it stopped and, if it stopped inside
        a frame it would take, how many bytes from there that frame needs
        (else 0: the frame at that position is ``_decode_frame``'s).
        """
        unpack_header = _unpack_short_header
        first_bytes = self._lean_first_bytes
        frame_limit = self._frame_limit
        max_message = self._max_message_size
        decode_message = self._lean_decode
        text, binary, new_frame = Text, Binary, new_data_frame
        set_text, set_text_fin = set_text_data, set_text_fin_slot
        set_binary, set_binary_fin = set_binary_data, set_binary_fin_slot
        append = frames.append
        end = len(data)
        while end - pos >= 4:
            first, length, extended_length = unpack_header(data, pos)
            if length > 126 or first not in first_bytes:
                break
            if length == 126:
                length = extended_length
                start = pos + 4
            else:
                start = pos + 2
            if length > frame_limit:
                break
            stop = start + length
            if stop > end:
                return pos, stop - pos
            opcode = first & 0x0F
            try:
                payload = decode_message(opcode, data[start:stop], first & RSV_BITS, max_message)
            except ProtocolError:
                raise
            except Exception as exc:
                raise self._extension_failure(exc) from exc
            if type(payload) is not bytes or (
                max_message is not None and len(payload) > max_message
            ):
                payload = self._check_decoded(payload, 0)
            # Equivalent to Text(...) / Binary(...); see _frame_slots for why.
            if opcode == OP_TEXT:
                frame = new_frame(text)
                set_text(frame, payload.decode("utf-8"))
                set_text_fin(frame, True)
            else:
                frame = new_frame(binary)
                set_binary(frame, payload)
                set_binary_fin(frame, True)
            append(frame)
            pos = stop
        return pos, 0

    def _fail(
        self, error: ProtocolError, frames: list[Frame], cause: BaseException | None
    ) -> NoReturn:
        """Remember the fault so later calls fail too, and raise it with the frames decoded."""
        error.frames = frames
        self._failure = error
        self._pending.clear()
        self._pending_size = 0
        self._waiting_header = 0
        self._parts = []
        self._early_utf8.reset()
        if cause is not None:
            raise error from cause
        raise error

    def _decode_frame(self, data: bytes, pos: int, frames: list[Frame]) -> int:
        """Decode the frame at ``pos``; return where it ends, or ``pos`` if it is incomplete.

        When the frame is incomplete, ``self._need`` is set to how many bytes
        from ``pos`` are needed before calling again makes progress.  Every
        check that the bytes already seen allow is done before waiting for
        more: a frame over the size limits fails as soon as its length is read.
        """
        available = len(data) - pos
        first = data[pos]
        second = data[pos + 1]
        if self._close_frame is not None:
            raise ProtocolError("the server sent a frame after its Close frame", close_code=1002)
        if second & MASK_BIT:
            raise ProtocolError("the server sent a masked frame", close_code=1002)
        opcode = first & 0x0F
        fin = first & FIN
        rsv = first & RSV_BITS
        length = second
        if opcode >= OP_CLOSE:
            if opcode > OP_PONG:
                raise ProtocolError(
                    f"the server sent the reserved opcode {opcode}", close_code=1002
                )
            if rsv:
                raise ProtocolError("the server set RSV bits on a control frame", close_code=1002)
            if not fin:
                raise ProtocolError("the server fragmented a control frame", close_code=1002)
            if length > MAX_CONTROL_PAYLOAD:
                raise ProtocolError(
                    "the server sent a control frame longer than 125 bytes", close_code=1002
                )
            self._check_frame_size(length)
            stop = pos + 2 + length
            if stop > pos + available:
                self._need = 2 + length
                return pos
            payload = data[pos + 2 : stop]
            if opcode == OP_PING:
                frames.append(Ping(payload))
            elif opcode == OP_PONG:
                frames.append(Pong(payload))
            else:
                close = decode_close_payload(payload)
                self._close_frame = close
                frames.append(close)
            return stop

        if opcode > OP_BINARY:
            raise ProtocolError(f"the server sent the reserved opcode {opcode}", close_code=1002)
        if rsv & ~self._rsv_allowed:
            raise ProtocolError(
                f"the server set RSV bits 0x{rsv:02x} that no negotiated extension uses",
                close_code=1002,
            )
        if opcode == OP_CONTINUATION:
            if not self._recv_opcode:
                raise ProtocolError(
                    "the server sent a continuation frame with no message in progress",
                    close_code=1002,
                )
        elif self._recv_opcode:
            raise ProtocolError(
                "the server started a new message before finishing a fragmented one",
                close_code=1002,
            )

        header_size = 2
        if length == 126:
            if available < 4:
                self._need = 4
                return pos
            length = _unpack_u16(data, pos + 2)[0]
            header_size = 4
        elif length == 127:
            if available < 10:
                self._need = 10
                return pos
            length = _unpack_u64(data, pos + 2)[0]
            if length >> 63:
                raise ProtocolError(
                    "the server sent a frame length with the most significant bit set",
                    close_code=1002,
                )
            header_size = 10
        self._check_frame_size(length)
        max_message_size = self._max_message_size
        if (
            max_message_size is not None
            and not self._extensions
            and self._message_size + length > max_message_size
        ):
            raise _too_big("message", self._message_size + length, max_message_size)
        stop = pos + header_size + length
        if stop > pos + available:
            self._need = header_size + length
            self._waiting_header = header_size
            return pos
        self._deliver(first, data[pos + header_size : stop], frames)
        return stop

    def _complete_waiting_frame(self, frames: list[Frame]) -> bytes:
        """Deliver the data frame whose checked header heads ``_pending``; return what follows it.

        The payload is cut out of the chunks with memoryviews and joined once,
        so a large frame costs one copy, not a join of everything and a slice.
        """
        chunks = [memoryview(chunk) for chunk in self._pending]
        first_byte = chunks[0][0]
        excess = self._pending_size - self._need
        rest = b""
        if excess:
            last = chunks[-1]
            rest = bytes(last[len(last) - excess :])
            chunks[-1] = last[: len(last) - excess]
        skip = self._waiting_header
        index = 0
        while skip:
            chunk = chunks[index]
            if len(chunk) <= skip:
                skip -= len(chunk)
                index += 1
            else:
                chunks[index] = chunk[skip:]
                skip = 0
        payload = b"".join(chunks[index:])
        self._pending.clear()
        self._pending_size = 0
        self._waiting_header = 0
        self._deliver(first_byte, payload, frames)
        return rest

    def _check_frame_size(self, length: int) -> None:
        if self._max_frame_size is not None and length > self._max_frame_size:
            raise _too_big("frame", length, self._max_frame_size)

    def _decode_extensions(self, opcode: int, payload: bytes, rsv: int, fin: bool) -> bytes:
        max_size = self._max_message_size
        if max_size is not None:
            max_size -= self._message_size
        for extension in reversed(self._extensions):
            try:
                payload, rsv = extension.decode_frame(opcode, payload, rsv, fin, max_size)
            except ProtocolError:
                raise
            except Exception as exc:
                raise self._extension_failure(exc, extension) from exc
        return self._check_decoded(payload, rsv)

    def _extension_failure(
        self, exc: Exception, extension: Extension | None = None
    ) -> ProtocolError:
        """A non-mint exception from an extension's decode_frame, as the protocol error it is."""
        name = (extension or self._extensions[0]).name
        return ProtocolError(f"extension {name!r} failed to decode a frame: {exc}", close_code=1002)

    def _check_decoded(self, payload: bytes, rsv: int) -> bytes:
        """What the extensions returned: every RSV bit consumed, and plain bytes."""
        if rsv:
            raise ProtocolError(
                f"the server set RSV bits 0x{rsv:02x} that no negotiated extension consumed",
                close_code=1002,
            )
        if type(payload) is not bytes:
            if not isinstance(payload, bytes | bytearray | memoryview):
                # The extension's bug, not the server's: 1011, "unexpected condition".
                raise ProtocolError(
                    f"an extension decoded a frame into {type(payload).__name__}, not bytes",
                    close_code=1011,
                )
            # A bytearray from an extension would leak into Binary.data.
            payload = bytes(payload)
        max_message_size = self._max_message_size
        if max_message_size is not None and self._message_size + len(payload) > max_message_size:
            raise _too_big("message", self._message_size + len(payload), max_message_size)
        return payload

    def _deliver(self, first_byte: int, payload: bytes, frames: list[Frame]) -> None:
        """Run a checked data frame through the extensions, then into a frame or a message."""
        opcode = first_byte & 0x0F
        fin = bool(first_byte & FIN)
        if self._extensions:
            payload = self._decode_extensions(opcode, payload, first_byte & RSV_BITS, fin)
        self._deliver_message(opcode, payload, fin, frames)

    def _deliver_message(self, opcode: int, payload: bytes, fin: bool, frames: list[Frame]) -> None:
        """Turn a data frame's decoded payload into a frame or part of a message."""
        message_opcode = opcode or self._recv_opcode
        if opcode and fin:
            # An unfragmented message: no incremental state at all.
            self._message_size = 0
            if opcode == OP_TEXT:
                frames.append(Text(payload.decode("utf-8")))
            else:
                frames.append(Binary(payload))
            return
        fragments = self._fragments
        if opcode:
            self._recv_opcode = opcode
            self._parts = []
            self._utf8_tail = b""
        self._message_size += len(payload)
        if message_opcode == OP_TEXT:
            # What an incremental UTF-8 decoder does (the C decoder does the same):
            # an unfinished sequence at the end waits for the next fragment.
            data = self._utf8_tail + payload if self._utf8_tail else payload
            piece, consumed = _utf_8_decode(data, "strict", fin)
            self._utf8_tail = data[consumed:]
            if fragments:
                frames.append(Text(piece, fin))
            else:
                self._parts.append(piece)  # type: ignore[arg-type]
                if fin:
                    frames.append(Text("".join(self._parts)))  # type: ignore[arg-type]
        elif fragments:
            frames.append(Binary(payload, fin))
        else:
            self._parts.append(payload)  # type: ignore[arg-type]
            if fin:
                frames.append(Binary(b"".join(self._parts)))  # type: ignore[arg-type]
        if fin:
            self._recv_opcode = 0
            self._message_size = 0
            self._parts = []


def _inflate_methods(extensions: Sequence[Extension]) -> InflateMethods | None:
    """The single extension's inflate hook methods, when its class offers a hook at all."""
    if len(extensions) != 1:
        return None
    extension = extensions[0]
    if type(extension).inflate_hook is Extension.inflate_hook:
        return None  # would always answer None: not worth asking
    return (extension.inflate_hook, extension.inflate_finished, extension.inflate_failed)


def _untransformed(opcode: int, payload: bytes, rsv: int, max_size: int | None) -> bytes:
    """Stands in for the lean path's message decoder when there is no single extension."""
    return payload


def _invalid_utf8() -> ProtocolError:
    return ProtocolError(
        "the server sent a text frame that is not valid UTF-8",
        close_code=1007,
        reason="invalid_utf8",
    )


def _too_big(what: str, size: int, limit: int) -> ProtocolError:
    return ProtocolError(
        f"the server sent a {what} of {size} bytes, over the limit of {limit}",
        close_code=1009,
        reason="message_too_big",
    )


def _kind_name(opcode: int) -> str:
    return "text" if opcode == OP_TEXT else "binary"


def _as_bytes(value: object, what: str) -> bytes:
    """Plain ``bytes`` of a bytes-like value (a subclass of ``bytes`` included), or the error."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise WebSocketError(
        f"{what} must be bytes, bytearray or memoryview, got {type(value).__name__}",
        reason="invalid_frame",
    )
