"""The frames a caller encodes and decodes.

Data frames carry ``fin``: ``Text("a", fin=False)`` followed by
``Text("b")`` sends one message in two frames (the encoder turns the second into
a continuation frame), and a WebSocket that delivers fragments returns them the
same way.  Naming the message type on every fragment, instead of a separate
Continuation class, means a caller never has to remember what the first frame
of a message was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Text:
    data: str
    fin: bool = True


@dataclass(frozen=True, slots=True)
class Binary:
    data: bytes
    fin: bool = True


@dataclass(frozen=True, slots=True)
class Ping:
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Pong:
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Close:
    """A close frame.  ``code=None`` is an empty close payload (RFC 6455 1005, "no status")."""

    code: int | None = 1000
    reason: str = ""


Frame: TypeAlias = Text | Binary | Ping | Pong | Close
