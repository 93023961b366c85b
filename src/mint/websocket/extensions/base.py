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
from typing import ClassVar, TypeAlias

Params: TypeAlias = list[tuple[str, str | None]]
"""Extension parameters in order, e.g. ``[("client_max_window_bits", None)]``; None: no value."""

RSV1: int = 0x40
RSV2: int = 0x20
RSV3: int = 0x10


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
