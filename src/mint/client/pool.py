"""The pool's decisions, shared by the blocking and asyncio clients: no I/O, no locks.

Which pooled connection may take one more session or request, which idle
ones to close, and how an upgrade's answer becomes a session.  The shells do
the dialing, waiting and closing around these answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from mint import websocket
from mint.client.options import SessionOptions
from mint.client.routing import ResponseState, Routes
from mint.client.session import SessionState
from mint.errors import MintError
from mint.http import Ref


class ConnectionFacts(Protocol):
    """What the pool reads of a ``mint.http`` connection, blocking or asyncio."""

    @property
    def open(self) -> bool: ...

    @property
    def version(self) -> str: ...

    @property
    def extended_connect_enabled(self) -> bool: ...

    @property
    def server_settings(self) -> dict[str, int]: ...

    @property
    def core(self) -> object: ...


Conn = TypeVar("Conn", bound=ConnectionFacts)


class PooledConnection(Generic[Conn]):
    """A connection in the pool, with the routes of the streams it carries.

    Each shell subclasses it with its own waiting and writing; the pool
    decides with what is here.
    """

    def __init__(self, conn: Conn, origin: tuple[str, str, int], now: float) -> None:
        self.conn = conn
        self.origin = origin
        #: Streams multiplexed on one connection: HTTP/2, or HTTP/3 which the
        #: pool and the sessions treat alike (extended CONNECT, FIN as the
        #: orderly end, cancel to let go of a stream, send windows).
        self.http2 = conn.version in ("HTTP/2", "HTTP/3")
        self.http3 = conn.version == "HTTP/3"
        #: Per-stream backpressure (``pause_stream``): HTTP/2's and HTTP/3's.
        self.can_pause = self.http2
        self.routes = Routes(now)
        #: Why the connection can carry nothing more (it is closed then).
        self.failure: MintError | None = None


Pooled = TypeVar("Pooled", bound=PooledConnection[Any])


def earliest(*moments: float | None) -> float | None:
    """The earliest of the moments given (None: no moment), or None when there is none.

    A reader's wake-up: the caller's deadline, the keepalive's, QUIC's timers.
    """
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


def has_room(shared: PooledConnection[Any], *, websocket_session: bool) -> bool:
    """Whether ``shared`` can take one more stream of this kind now."""
    conn = shared.conn
    if shared.failure is not None or not conn.open:
        return False
    if not shared.http2:
        return not shared.routes  # one exchange at a time; a tunnel keeps it for good
    if websocket_session and not conn.extended_connect_enabled:
        return False
    if getattr(conn.core, "goaway_received", False):
        return False
    limit = conn.server_settings.get("max_concurrent_streams")
    return limit is None or len(shared.routes) < limit


def pick(
    candidates: Iterable[Pooled], protocols: Sequence[str], *, websocket_session: bool
) -> Pooled | None:
    """The first pooled connection of an allowed HTTP version with room, if any."""
    for shared in candidates:
        if _label(shared) in protocols and has_room(shared, websocket_session=websocket_session):
            return shared
    return None


def _label(shared: PooledConnection[Any]) -> str:
    return "http3" if shared.http3 else "http2" if shared.http2 else "http1"


def sweep(
    conns: Iterable[Pooled], now: float, idle_timeout: float | None
) -> tuple[list[Pooled], list[Pooled]]:
    """Split a pool into the connections to keep and the idle ones to close.

    Dead connections are in neither list: there is nothing left to close.
    """
    keep: list[Pooled] = []
    close: list[Pooled] = []
    for shared in conns:
        if not shared.conn.open or shared.failure is not None:
            continue
        idle = shared.routes.idle_since
        if idle_timeout is not None and idle is not None and now - idle >= idle_timeout:
            close.append(shared)
        else:
            keep.append(shared)
    return keep, close


def start_session(
    conn: object, ref: Ref, response: ResponseState, options: SessionOptions, now: float
) -> SessionState:
    """Check the upgrade's answer and make the session, fed what came with the answer.

    Raises what ``mint.websocket.new`` raises for a refused or broken
    handshake; the caller then drops the stream.
    """
    assert response.status is not None
    ws = websocket.new(
        conn,
        ref,
        response.status,
        response.headers or [],
        max_frame_size=options.max_size,
        max_message_size=options.max_size,
    )
    state = SessionState(
        ws,
        ref,
        max_queue=options.max_queue,
        ping_interval=options.ping_interval,
        ping_timeout=options.ping_timeout,
        now=now,
    )
    early = response.take_body()
    if early:
        state.receive(early, now)  # frames glued to the answer belong to the session
    if response.finished:
        state.receive_end(response.error, now)
    return state


__all__ = ["ConnectionFacts", "PooledConnection", "has_room", "pick", "start_session", "sweep"]
