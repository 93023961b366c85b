"""A test-side WebSocket client on mint: the DESIGN.md flow with the loops a real client needs.

``Mailbox`` sorts one connection's events by ref, so several WebSockets (and
plain requests) can share an HTTP/2 connection, each test reading only its own.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mint import http, websocket
from mint.http.events import Ref
from mint.websocket import Close, Frame
from mint.websocket.codec import WebSocket


class Mailbox:
    def __init__(self, conn: http.Connection) -> None:
        self.conn = conn
        self.inbox: defaultdict[Ref, list[http.Event]] = defaultdict(list)

    def pump(self, timeout: float = 10) -> None:
        for event in self.conn.recv(timeout=timeout):
            self.inbox[event.ref].append(event)

    def take(self, ref: Ref) -> list[http.Event]:
        return self.inbox.pop(ref, [])

    def next_events(self, ref: Ref) -> list[http.Event]:
        """Events for ``ref`` already received, or else those of the next reads."""
        while not self.inbox.get(ref):
            self.pump()
        return self.take(ref)

    def response(
        self, ref: Ref
    ) -> tuple[int, list[tuple[str, str]], list[bytes], http.Event | None]:
        """Wait for a response head; return status, headers, body bytes so far, and the
        Done or Error that ended the stream if it came with them."""
        status: int | None = None
        headers: list[tuple[str, str]] | None = None
        data: list[bytes] = []
        end: http.Event | None = None
        while headers is None:
            for event in self.next_events(ref):
                match event:
                    case http.Status(status=code):
                        status = code
                    case http.Headers(headers=values):
                        headers = values
                    case http.Data(data=chunk):
                        data.append(chunk)
                    case http.Done():
                        end = event
                    case http.Error(error=error):
                        if headers is None:
                            raise error
                        end = event
        assert status is not None
        return status, headers, data, end

    def full_response(self, ref: Ref) -> tuple[int, bytes]:
        status, _, data, end = self.response(ref)
        if isinstance(end, http.Error):
            raise end.error
        done = end is not None
        while not done:
            for event in self.next_events(ref):
                if isinstance(event, http.Data):
                    data.append(event.data)
                elif isinstance(event, http.Done):
                    done = True
                elif isinstance(event, http.Error):
                    raise event.error
        return status, b"".join(data)


class Client:
    def __init__(self, box: Mailbox, ref: Ref, ws: WebSocket, early: list[Frame]) -> None:
        self.box, self.conn, self.ref, self.ws = box, box.conn, ref, ws
        self.pending = early
        self.ended: http.Event | None = None  # Done or Error for this ref

    @classmethod
    def open(cls, scheme: str, port: int, path: str = "/", **connect_options: Any) -> Client:
        conn = http.connect(
            "https" if scheme == "wss" else "http", "127.0.0.1", port, **connect_options
        )
        return cls.on(Mailbox(conn), scheme, path)

    @classmethod
    def on(cls, box: Mailbox, scheme: str, path: str = "/", **upgrade_options: Any) -> Client:
        """Open a WebSocket on an existing connection (HTTP/2: one more stream)."""
        ref = websocket.upgrade(scheme, box.conn, path, [], **upgrade_options)
        status, headers, early, end = box.response(ref)
        ws = websocket.new(box.conn, ref, status, headers)
        client = cls(box, ref, ws, [frame for data in early for frame in ws.decode(data)])
        client.ended = end
        return client

    @property
    def http2(self) -> bool:
        return self.conn.version == "HTTP/2"

    def send(self, frame: Frame) -> None:
        # Over HTTP/2 a Close leaves with END_STREAM on the same DATA frame: the
        # tunnel's half-close, as TCP's would be after a Close on HTTP/1.1.
        end = self.http2 and isinstance(frame, Close)
        self.conn.stream_request_body(self.ref, self.ws.encode(frame), end_stream=end)

    def receive(self, count: int = 1) -> list[Frame]:
        while len(self.pending) < count:
            events = self.box.take(self.ref)
            if not events:
                if self.ended is not None:
                    raise AssertionError(f"the stream ended with {self.ended}")
                self.box.pump()
                continue
            for event in events:
                if isinstance(event, http.Data):
                    self.pending.extend(self.ws.decode(event.data))
                elif isinstance(event, (http.Done, http.Error)):
                    self.ended = event
        frames, self.pending = self.pending[:count], self.pending[count:]
        return frames

    def wait_end(self) -> http.Event:
        """Read until the server ends this stream; return the Done or Error."""
        while self.ended is None:
            for event in self.box.next_events(self.ref):
                if isinstance(event, http.Data):
                    self.pending.extend(self.ws.decode(event.data))
                elif isinstance(event, (http.Done, http.Error)):
                    self.ended = event
        return self.ended

    def close(self, code: int = 1000, reason: str = "done") -> Close:
        """Run the closing handshake from our side; return the server's Close."""
        self.send(Close(code, reason))
        (reply,) = self.receive()
        assert isinstance(reply, Close)
        assert self.ws.closed
        return reply
