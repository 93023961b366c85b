"""Handing a shared connection's events to the session or request each belongs to.

One HTTP/2 connection carries many streams, but there is one byte stream to
read: whoever reads gets every stream's events.  ``Routes`` sends each event
to the state its ref names, so the reader can be any caller.  It also keeps
the bookkeeping the pool decides with: how many streams are open, and since
when the connection has been idle.  No I/O here either; both shells use it
under their own lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mint.client.session import SessionState
from mint.errors import MintError, TransportError
from mint.http import Data, Done, Error, Event, Headers, Ref, Status


@dataclass(frozen=True, slots=True)
class Response:
    """A whole HTTP response, as ``Client.request`` returns it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), else ``default``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return default


@dataclass(eq=False, slots=True)
class ResponseState:
    """An HTTP response being received: a plain request, or a WebSocket upgrade's answer.

    For an upgrade the head is what matters: ``body`` then holds WebSocket
    bytes that arrived with the head (they must reach the session, not be lost).
    """

    ref: Ref
    max_body: int | None = None
    status: int | None = None
    headers: list[tuple[str, str]] | None = None
    body: list[bytes] = field(default_factory=list)
    body_size: int = 0
    done: bool = False
    error: MintError | None = None

    @property
    def head_ready(self) -> bool:
        return self.headers is not None or self.done or self.error is not None

    @property
    def finished(self) -> bool:
        return self.done or self.error is not None

    def on_event(self, event: Event) -> None:
        if isinstance(event, Status):
            self.status = event.status
        elif isinstance(event, Headers):
            if self.headers is None:
                self.headers = event.headers
            # later Headers are trailers: a response's outcome does not depend on them
        elif isinstance(event, Data):
            self.body_size += len(event.data)
            if self.max_body is not None and self.body_size > self.max_body:
                self.error = TransportError(
                    f"the response body exceeds max_body={self.max_body} bytes",
                    reason="body_too_large",
                )
                return
            self.body.append(event.data)
        elif isinstance(event, Done):
            self.done = True
        elif isinstance(event, Error):
            self.error = event.error

    def take_body(self) -> bytes:
        data = b"".join(self.body)
        self.body.clear()
        return data


Route = SessionState | ResponseState


class Routes:
    """Which state each open ref on one connection belongs to."""

    def __init__(self, now: float) -> None:
        self._routes: dict[Ref, Route] = {}
        #: When the last route left (None while any is open): for the idle timeout.
        self.idle_since: float | None = now

    def __len__(self) -> int:
        return len(self._routes)

    def __contains__(self, ref: Ref) -> bool:
        return ref in self._routes

    def add(self, ref: Ref, route: Route) -> None:
        self._routes[ref] = route
        self.idle_since = None

    def replace(self, ref: Ref, route: Route) -> None:
        """The upgrade succeeded: its session takes over the ref."""
        self._routes[ref] = route

    def remove(self, ref: Ref, now: float) -> None:
        if self._routes.pop(ref, None) is not None and not self._routes:
            self.idle_since = now

    def any_paused(self) -> bool:
        """Whether a session stopped reading (HTTP/1.1 backpressure: its socket is not read)."""
        for route in self._routes.values():  # a loop, not any(): asked before every read
            if isinstance(route, SessionState) and route.paused:
                return True
        return False

    def sessions(self) -> list[SessionState]:
        return [route for route in self._routes.values() if isinstance(route, SessionState)]

    def dispatch(self, events: Iterable[Event], now: float) -> list[SessionState]:
        """Give every event to its route; returns the sessions that received something.

        Events for refs no longer routed (a cancelled stream's stragglers)
        are dropped: their owner has gone.
        """
        touched: list[SessionState] = []
        for event in events:
            route = self._routes.get(event.ref)
            if route is None:
                continue
            if isinstance(route, ResponseState):
                route.on_event(event)
                continue
            if isinstance(event, Data):
                route.receive(event.data, now)
            elif isinstance(event, Done):
                route.receive_end(None, now)
            elif isinstance(event, Error):
                route.receive_end(event.error, now)
            if not touched or touched[-1] is not route:
                touched.append(route)
        return touched

    def fail_all(self, error: MintError, now: float) -> list[SessionState]:
        """The connection is gone: every open route learns it, none is left waiting."""
        touched = []
        for route in self._routes.values():
            if isinstance(route, ResponseState):
                if not route.finished:
                    route.error = error
            elif not route.ended:
                route.receive_end(error, now)
                touched.append(route)
        return touched

    def keepalive_deadline(self) -> float | None:
        deadlines = [
            deadline
            for session in self.sessions()
            if (deadline := session.keepalive_deadline()) is not None
        ]
        return min(deadlines, default=None)


__all__ = ["Response", "ResponseState", "Route", "Routes"]
