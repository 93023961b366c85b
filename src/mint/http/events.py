"""Response events and request references shared by every HTTP core and shell.

Events are small frozen dataclasses so callers can ``match`` on them
(``case Data(ref=r, data=data) if r == ref``), as Mint's tuples are matched in
Elixir.  Header names are lowercase ``str``; values are ``str`` decoded as
latin-1, which round-trips any byte the wire may carry.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final, TypeAlias

from mint.errors import MintError

_ref_counter = itertools.count(1)


class Ref:
    """Names one request (one HTTP/2 stream) on a connection.

    Equality is identity: a ref is only ever equal to itself, like an Erlang
    reference, so refs from two connections never collide.
    """

    __slots__ = ("__weakref__", "_number")

    def __init__(self) -> None:
        self._number = next(_ref_counter)

    def __repr__(self) -> str:
        return f"<Ref #{self._number}>"


@dataclass(frozen=True, slots=True)
class Status:
    ref: Ref
    status: int


@dataclass(frozen=True, slots=True)
class Headers:
    ref: Ref
    headers: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Data:
    ref: Ref
    data: bytes


@dataclass(frozen=True, slots=True)
class Done:
    """The server finished this response (HTTP/2: END_STREAM; HTTP/1.1 tunnel: EOF)."""

    ref: Ref


@dataclass(frozen=True, slots=True)
class Error:
    """This request failed; other requests on the connection are not affected."""

    ref: Ref
    error: MintError


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to ``Connection.ping`` (HTTP/2 only)."""

    ref: Ref


Event: TypeAlias = Status | Headers | Data | Done | Error | Pong


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"mint.http.{self._name}"


STREAM: Final = _Marker("STREAM")
"""Pass as ``body`` to ``request`` to send the body later with ``stream_request_body``."""

EOF: Final = _Marker("EOF")
"""Pass to ``stream_request_body`` to end a streamed request body."""

Body: TypeAlias = bytes | _Marker | None
Chunk: TypeAlias = bytes | _Marker
