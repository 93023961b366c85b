"""The extension API: what an RFC 6455 extension declares and how the codec calls it.

Mint.WebSocket models an extension as a behaviour with a name, offer
parameters, a negotiation callback and encode/decode callbacks.  Here it is an
abstract class whose instances play two roles:

* an *offer*: built by the caller (``PerMessageDeflate(client_max_window_bits=10)``),
  it says which parameters go into ``Sec-WebSocket-Extensions``;
* a *negotiated extension*: returned by ``accept`` once the server answered,
  it holds the per-connection state (a zlib context, say) and transforms
  frames.

Several offers may name the same extension (a fallback list); the server's
answer decides which offer's ``accept`` wins.

Frame hooks work on raw values, not objects, because they sit on the codec's
hot path.  They see data frames only (opcodes 0x0 continuation, 0x1 text,
0x2 binary), in wire order; control frames never carry extension bits.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, NamedTuple, TypeAlias

Params: TypeAlias = list[tuple[str, str | None]]
"""Extension parameters in order, e.g. ``[("client_max_window_bits", None)]``; None: no value."""

RSV1: int = 0x40
RSV2: int = 0x20
RSV3: int = 0x10


class InflateHook(NamedTuple):
    """How a whole compressed message decodes without the extension's Python code.

    An extension returns one from ``Extension.inflate_hook`` when, for a
    message that comes in one frame, ``decode_message`` amounts to feeding a
    streaming decompressor (``zlib.decompressobj()`` and the like: a
    ``decompress(data, max_length)`` method and an ``eof`` attribute).  The
    C run decoder then decodes such a message itself, which saves the Python
    call, its frame and one of two copies of the payload per message.  With
    ``max_size`` the limit ``decode_message`` would get, a frame whose RSV
    bits are exactly ``rsv`` decodes as::

        try:
            data = decompressor.decompress(payload + tail, max_size + 1)
            # decompressor.decompress(payload + tail) when max_size is None
            # or not below sys.maxsize
        except Exception as exc:
            replacement = extension.inflate_failed(exc)
            if replacement is exc:
                raise
            raise replacement from exc
        if (max_size is not None and len(data) > max_size) or decompressor.eof:
            data = extension.inflate_finished(decompressor, data, max_size)

    and a frame with no RSV bit at all is the message as it came.  Any other
    frame still goes to ``decode_message``.  The extension guarantees that
    this is what ``decode_message`` returns or raises, with the same effect
    on its state.
    """

    #: The RSV bits that mark a compressed message (``RSV1`` for permessage-deflate).
    rsv: int
    #: The decompressor the next compressed message goes through.
    decompressor: Any
    #: Bytes appended to each payload before decompressing it.
    tail: bytes


class Extension(abc.ABC):
    """Subclass this to write an extension; see the README's "Writing an extension"."""

    #: The extension token, as it appears in ``Sec-WebSocket-Extensions``.
    name: ClassVar[str]
    #: The RSV bits (``RSV1 | RSV2 | RSV3`` values, as in the frame's first byte)
    #: this extension may set.  A received frame with any other RSV bit set is a
    #: protocol error (1002).
    rsv_mask: ClassVar[int] = 0

    @abc.abstractmethod
    def offer(self) -> Params:
        """The parameters of this offer, in the order they should be sent."""

    @abc.abstractmethod
    def accept(self, params: Params) -> Extension:
        """Validate the server's answer to this offer and return the negotiated extension.

        Raise ``mint.WebSocketError`` (reason ``"extension_negotiation"``) for a
        parameter that was not offered, a repeated one, or an invalid value.
        """

    def encode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, *, transform: bool = True
    ) -> tuple[bytes, int]:
        """Transform an outgoing data frame; return its new payload and RSV bits.

        ``transform=False`` asks for this message to go out untransformed (for
        permessage-deflate: uncompressed), which the caller chooses per message
        with ``WebSocket.encode(frame, compress=False)``.  It is only meaningful
        on a message's first frame; the extension remembers its choice for the
        continuations.
        """
        return payload, rsv

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        """Transform an incoming data frame; return its new payload and RSV bits.

        The extension clears the RSV bits it consumed.  ``max_size`` is how many
        bytes this frame may still produce before the message goes over the
        WebSocket's ``max_message_size`` (``None``: no limit).  An extension that
        expands data must enforce it while expanding and raise
        ``mint.ProtocolError`` with ``close_code=1009`` instead of allocating
        more.  Other failures raise ``ProtocolError`` with 1002 or 1007.
        """
        return payload, rsv

    def decode_message(self, opcode: int, payload: bytes, rsv: int, max_size: int | None) -> bytes:
        """Decode a whole message that came in one frame; the codec's hot path.

        When this is the only negotiated extension, the codec calls it for a
        FIN text or binary frame that starts no fragmented message and whose
        RSV bits are within ``rsv_mask``.  It must return what
        ``decode_frame(opcode, payload, rsv, True, max_size)`` would, with every
        RSV bit consumed.  This default does exactly that; an extension may
        override it to skip per-fragment bookkeeping (``PerMessageDeflate`` does).
        """
        payload, rsv = self.decode_frame(opcode, payload, rsv, True, max_size)
        if rsv:
            # Imported here: mint.errors imports the frames, which import nothing of ours.
            from mint.errors import ProtocolError

            raise ProtocolError(
                f"the server set RSV bits 0x{rsv:02x} that no negotiated extension consumed",
                close_code=1002,
            )
        return payload

    def inflate_hook(self) -> InflateHook | None:
        """How the next whole message may be decoded without Python code, if it may.

        ``None`` (this default): every message goes through ``decode_message``.
        A decompressing extension may return an ``InflateHook`` (see there) for
        its current state.  The codec asks again after every call it makes into
        the extension (``decode_message``, ``inflate_finished``,
        ``inflate_failed``) and at the start of every ``decode``, and never
        uses a hook after the extension's state may have changed, so an
        extension that replaces its decompressor (a reset, a finished stream,
        an error) just returns the new state next time.
        """
        return None

    def inflate_finished(self, decompressor: Any, data: bytes, max_size: int | None) -> bytes:
        """The hooked decompressor produced more than ``max_size`` bytes or reached ``eof``.

        Return the message's bytes, or raise as ``decode_message`` would have
        (``ProtocolError`` 1009 over the limit).  This default enforces the
        limit and ignores the end of the stream.
        """
        if max_size is not None and len(data) > max_size:
            from mint.errors import ProtocolError

            raise ProtocolError(
                f"a compressed message inflates past the {max_size} bytes left "
                "under the message size limit",
                close_code=1009,
                reason="message_too_big",
            )
        return data

    def inflate_failed(self, exc: Exception) -> BaseException:
        """The hooked decompressor raised ``exc``: what ``decode_message`` would raise instead.

        Return ``exc`` itself to let it go on (the codec makes any exception
        that is not a ``ProtocolError`` a 1002 failure of the extension), or
        the exception to raise from it.  This default returns ``exc``.
        """
        return exc
