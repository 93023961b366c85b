"""The Autobahn test client: an echo client built on mint's public API only.

The fuzzing server drives every case; the client's job is to echo each data
message, answer pings, mirror the close handshake, and fail the connection
with the close code mint names when the server breaks the protocol.  It is
written the way a mint user would write a blocking client (connect, upgrade,
``recv`` loop, ``decode``/``encode``), so a conformance failure points at mint,
not at harness magic.

Each case runs on its own connection, one after the other, without sleeps:
the fuzzing server times some cases and treats slowness as a verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import mint
import mint.http
import mint.websocket
from mint.http import EOF, Connection, Data, Done, Error, Event, Headers, Ref, Status
from mint.websocket import Binary, Close, Frame, Ping, Pong, Text, WebSocket
from mint.websocket.extensions.base import Extension

#: Bound on each blocking read; the slowest cases (9.x, 16 MiB messages) still
#: deliver bytes far more often than this.
RECV_TIMEOUT = 60.0
#: Bound on connecting (and, on HTTP/2, waiting for the server's SETTINGS).
CONNECT_TIMEOUT = 10.0
#: QUIC packet size over loopback: aioquic's cost is per packet, and with the
#: 1200 bytes of the open Internet the compression sections take hours.  The
#: WebSocket bytes are the same; only how many QUIC packets carry them changes.
QUIC_DATAGRAM_SIZE = 16384


class AutobahnClientError(RuntimeError):
    """The harness itself could not talk to the fuzzing server (not a case verdict)."""


def _deflate_offer() -> list[Extension]:
    # Imported here so that runs without compression do not need the module.
    from mint.websocket.extensions.deflate import PerMessageDeflate

    return [PerMessageDeflate()]


@dataclass
class _Session:
    """One WebSocket connection to the fuzzing server, from upgrade to TCP close."""

    conn: Connection
    ref: Ref
    ws: WebSocket
    http2: bool
    echo: bool
    messages: list[Text | Binary] = field(default_factory=list)
    #: Events that arrived in the same reads as the upgrade response (early frames).
    early: list[Event] = field(default_factory=list)
    failed: bool = False
    stream_ended: bool = False
    finished: bool = False

    def send(self, frame: Frame) -> None:
        if self.ws.close_sent or not self.conn.open:
            return
        data = self.ws.encode(frame)
        try:
            self.conn.stream_request_body(self.ref, data)
        except mint.TransportError:
            self.finished = True

    def end_stream_if_closed(self) -> None:
        """HTTP/2: once both Close frames went by, end our half of the stream.

        After a protocol failure the server's Close is never decoded, so the
        stream stays open until the server drops the connection, exactly as
        an HTTP/1.1 client waits for the server's TCP close.
        """
        if self.http2 and not self.stream_ended and self.ws.closed and self.conn.open:
            self.stream_ended = True
            try:
                self.conn.stream_request_body(self.ref, EOF)
            except mint.MintError:
                self.finished = True

    def handle_frames(self, frames: Sequence[Frame]) -> None:
        for frame in frames:
            if isinstance(frame, Text | Binary):
                self.messages.append(frame)
                if self.echo:
                    self.send(frame)
            elif isinstance(frame, Ping):
                self.send(Pong(frame.data))
            elif isinstance(frame, Close):
                # Echo the code only: None (an empty close) answers with an empty close.
                self.send(Close(frame.code))
            # Pong: unsolicited pongs need no answer.

    def handle_data(self, data: bytes) -> None:
        if self.failed:
            return
        try:
            frames = self.ws.decode(data)
        except mint.ProtocolError as exc:
            self.failed = True
            self.handle_frames(exc.frames)
            self.send(Close(exc.close_code))
        else:
            self.handle_frames(frames)
        self.end_stream_if_closed()

    def handle_events(self, events: Sequence[Event]) -> None:
        for event in events:
            if getattr(event, "ref", None) is not self.ref:
                continue
            if isinstance(event, Data):
                self.handle_data(event.data)
            elif isinstance(event, Done | Error):
                self.finished = True

    def run(self) -> None:
        """Serve the connection until the server closes it."""
        try:
            self.handle_events(self.early)
            while not self.finished and self.conn.open:
                try:
                    events = self.conn.recv(timeout=RECV_TIMEOUT)
                except mint.TransportError as exc:
                    if exc.reason == "timeout":
                        raise AutobahnClientError("the fuzzing server went silent") from exc
                    break
                self.handle_events(events)
        finally:
            self.conn.close()


@dataclass
class AutobahnClient:
    """Runs fuzzing-server cases over one transport ("http1", "http2" or "http3").

    HTTP/3 goes over QUIC to the relay, trusting ``cafile`` (its throwaway CA).
    """

    host: str
    port: int
    agent: str
    transport: str = "http1"
    compress: bool = False
    #: Per-case client-side trouble (exceptions), for the failure report.
    notes: dict[int, str] = field(default_factory=dict)
    cafile: str | None = None

    def _open(self, path: str, echo: bool) -> _Session:
        if self.transport == "http3":
            conn = mint.http.connect(
                "https",
                self.host,
                self.port,
                protocols=("http3",),
                cafile=self.cafile,
                timeout=CONNECT_TIMEOUT,
                http3_max_datagram_size=QUIC_DATAGRAM_SIZE,
            )
        else:
            protocols = ("http2",) if self.transport == "http2" else ("http1",)
            conn = mint.http.connect(
                "http", self.host, self.port, protocols=protocols, timeout=CONNECT_TIMEOUT
            )
        scheme = "wss" if self.transport == "http3" else "ws"
        try:
            extensions = _deflate_offer() if self.compress else []
            ref = mint.websocket.upgrade(scheme, conn, path, [], extensions=extensions)
            status: int | None = None
            headers: list[tuple[str, str]] | None = None
            early: list[Event] = []
            while status is None or headers is None:
                for event in conn.recv(timeout=RECV_TIMEOUT):
                    if headers is not None:
                        early.append(event)
                    elif isinstance(event, Status) and event.ref is ref:
                        status = event.status
                    elif isinstance(event, Headers) and event.ref is ref:
                        headers = event.headers
                    elif isinstance(event, Error) and event.ref is ref:
                        raise event.error
                    elif isinstance(event, Done) and event.ref is ref:
                        raise AutobahnClientError(f"{path}: the response ended before its headers")
            ws = mint.websocket.new(conn, ref, status, headers, fragments=False)
        except BaseException:
            conn.close()
            raise
        return _Session(
            conn=conn,
            ref=ref,
            ws=ws,
            http2=conn.version in ("HTTP/2", "HTTP/3"),  # both end the stream after the Close
            echo=echo,
            early=early,
        )

    def case_count(self) -> int:
        session = self._open("/getCaseCount", echo=False)
        session.run()
        for message in session.messages:
            if isinstance(message, Text) and message.data.strip().isdigit():
                return int(message.data)
        raise AutobahnClientError(f"getCaseCount answered {session.messages!r}")

    def run_case(self, number: int) -> None:
        """Run case ``number`` (1-based); the server records the verdict."""
        path = f"/runCase?case={number}&agent={quote(self.agent)}"
        try:
            session = self._open(path, echo=True)
            session.run()
        except (mint.MintError, AutobahnClientError) as exc:
            # The server judges the case from what it saw; keep the client's view too.
            self.notes[number] = f"{type(exc).__name__}: {exc}"

    def update_reports(self) -> None:
        session = self._open(f"/updateReports?agent={quote(self.agent)}", echo=False)
        session.run()

    def run_all(self) -> int:
        """Run every case the server offers, then have it write its reports."""
        count = self.case_count()
        for number in range(1, count + 1):
            self.run_case(number)
        self.update_reports()
        return count
