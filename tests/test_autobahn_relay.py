"""The HTTP/2 (and HTTP/3) -> HTTP/1.1 WebSocket relays of the Autobahn runs.

A plain ``h2`` client does the extended CONNECT and writes WebSocket frames by
hand, so a relay bug cannot hide behind (or be blamed on) mint.  Backends are
Autobahn's own echo server (when Python 2.7 is available) and small raw-socket
servers that script the backend side exactly.  The HTTP/3 relay is tested at
the end with mint as its client (no sans-I/O HTTP/3 client besides aioquic's
own, which the relay already shares).
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from tests.autobahn.fuzzing import find_wstest, free_port, start_wstest, wait_for_port
from tests.autobahn.relay import H2WebSocketRelay, accept_key
from tests.autobahn.relay_h3 import H3WebSocketRelay

from mint import http, websocket
from mint.http import Data, Done, Event, Headers, Status
from mint.websocket import Close, Text

TIMEOUT = 10.0


# -- WebSocket frames, written by hand -------------------------------------------------


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 5.2)."""
    first = (0x80 if fin else 0) | opcode
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return head + mask + masked


def parse_server_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Pop every complete unmasked frame off ``buffer`` as (opcode, payload)."""
    frames = []
    while len(buffer) >= 2:
        opcode = buffer[0] & 0x0F
        assert buffer[1] & 0x80 == 0, "a server frame must not be masked"
        length = buffer[1] & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                break
            (length,) = struct.unpack("!H", buffer[2:4])
            offset = 4
        elif length == 127:
            if len(buffer) < 10:
                break
            (length,) = struct.unpack("!Q", buffer[2:10])
            offset = 10
        if len(buffer) < offset + length:
            break
        frames.append((opcode, bytes(buffer[offset : offset + length])))
        del buffer[: offset + length]
    return frames


# -- a minimal blocking HTTP/2 client ----------------------------------------------------


class H2Client:
    """Extended CONNECT over h2c with prior knowledge, driven by hand."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="latin-1")
        )
        self.h2.initiate_connection()
        self.flush()
        self.events: list[h2.events.Event] = []
        self.data: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.settings_received = False
        while not self.settings_received:
            self.read()

    def flush(self) -> None:
        self.sock.sendall(self.h2.data_to_send())

    def read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the relay closed the connection")
        for event in self.h2.receive_data(chunk):
            self.events.append(event)
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings_received = True
            elif isinstance(event, h2.events.DataReceived) and event.stream_id is not None:
                self.data.setdefault(event.stream_id, bytearray()).extend(event.data or b"")
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id is not None:
                self.ended.add(event.stream_id)
        self.flush()

    def connect_websocket(
        self, path: str = "/", extra: list[tuple[str, str]] | None = None
    ) -> tuple[int, dict[str, str]]:
        """Open an extended CONNECT stream; return its id and the response headers."""
        assert self.h2.remote_settings.enable_connect_protocol == 1
        stream_id = self.h2.get_next_available_stream_id()
        headers = [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "127.0.0.1"),
            ("sec-websocket-version", "13"),
            *(extra or []),
        ]
        self.h2.send_headers(stream_id, headers)
        self.flush()
        while True:
            for event in self.events:
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                    return stream_id, {str(k): str(v) for k, v in event.headers or []}
            self.read()

    def send(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Send ``data`` as DATA frames, waiting for window as flow control demands."""
        view = memoryview(data)
        while view:
            window = self.h2.local_flow_control_window(stream_id)
            size = min(window, self.h2.max_outbound_frame_size, len(view))
            if size == 0:
                self.read()
                continue
            self.h2.send_data(stream_id, bytes(view[:size]))
            view = view[size:]
            self.flush()
        if end_stream:
            self.h2.end_stream(stream_id)
            self.flush()

    def read_frames(self, stream_id: int, count: int) -> list[tuple[int, bytes]]:
        frames: list[tuple[int, bytes]] = []
        buffer = self.data.setdefault(stream_id, bytearray())
        while True:
            frames += parse_server_frames(buffer)
            if len(frames) >= count:
                return frames
            self.read()

    def wait_ended(self, stream_id: int) -> None:
        while stream_id not in self.ended:
            self.read()

    def close(self) -> None:
        self.sock.close()


# -- backends ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Autobahn's HTTP/1.1 echo server; its port."""
    wstest = find_wstest()
    if wstest is None:
        pytest.skip("no Python 2.7 found: cannot run Autobahn's echo server")
    port = free_port()
    log_dir: Path = tmp_path_factory.mktemp("echo")
    with (log_dir / "echoserver.log").open("wb") as log:
        process = start_wstest(
            wstest, ["-m", "echoserver", "-w", f"ws://127.0.0.1:{port}", "-u", "0"], log_dir, log
        )
        try:
            wait_for_port("127.0.0.1", port, process)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=TIMEOUT)


class ScriptedBackend:
    """A one-connection TCP server whose behaviour is a function of the accepted socket."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port: int = self.listener.getsockname()[1]
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def _run(self, script: Callable[[socket.socket], None]) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                script(conn)
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join(TIMEOUT)
        self.listener.close()
        assert not self.thread.is_alive(), "the backend script did not finish"
        if self.error is not None:
            raise self.error


def read_request_head(conn: socket.socket) -> dict[str, str]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        assert chunk, "the relay closed before sending its request"
        data += chunk
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {":request-line": lines[0]}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def switching_protocols(request: dict[str, str], extra: str = "") -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(request['sec-websocket-key'])}\r\n{extra}\r\n"
    ).encode("latin-1")


# -- tests ----------------------------------------------------------------------------------


def test_relay_echoes_a_text_frame_through_autobahn_echo_server(echo_server: int) -> None:
    with H2WebSocketRelay("127.0.0.1", echo_server) as relay:
        client = H2Client(relay.port)
        try:
            stream_id, headers = client.connect_websocket("/")
            assert headers[":status"] == "200"
            client.send(stream_id, client_frame(0x1, b"hello, relay"))
            assert client.read_frames(stream_id, 1) == [(0x1, b"hello, relay")]
        finally:
            client.close()


def test_relay_respects_flow_control_both_ways(echo_server: int) -> None:
    """A message several times the default 64 KiB window goes out and comes back whole."""
    payload = os.urandom(300_000)
    with H2WebSocketRelay("127.0.0.1", echo_server) as relay:
        client = H2Client(relay.port)
        try:
            stream_id, headers = client.connect_websocket("/")
            assert headers[":status"] == "200"
            client.send(stream_id, client_frame(0x2, payload))
            assert client.read_frames(stream_id, 1) == [(0x2, payload)]
        finally:
            client.close()


def test_relay_carries_two_streams_on_one_connection(echo_server: int) -> None:
    with H2WebSocketRelay("127.0.0.1", echo_server) as relay:
        client = H2Client(relay.port)
        try:
            first, _ = client.connect_websocket("/")
            second, _ = client.connect_websocket("/")
            client.send(second, client_frame(0x1, b"second"))
            client.send(first, client_frame(0x1, b"first"))
            assert client.read_frames(first, 1) == [(0x1, b"first")]
            assert client.read_frames(second, 1) == [(0x1, b"second")]
        finally:
            client.close()


def test_backend_close_ends_the_stream(echo_server: int) -> None:
    """The echo server answers a Close and drops TCP; the client sees END_STREAM."""
    with H2WebSocketRelay("127.0.0.1", echo_server) as relay:
        client = H2Client(relay.port)
        try:
            stream_id, _ = client.connect_websocket("/")
            client.send(stream_id, client_frame(0x8, struct.pack("!H", 1000)))
            assert client.read_frames(stream_id, 1) == [(0x8, struct.pack("!H", 1000))]
            client.wait_ended(stream_id)
        finally:
            client.close()


def test_end_stream_reaches_backend_and_early_bytes_are_kept() -> None:
    """Bytes sent with the 101 reach the client; the client's END_STREAM is a TCP EOF."""
    seen: dict[str, object] = {}

    def script(conn: socket.socket) -> None:
        request = read_request_head(conn)
        seen["request"] = request
        conn.sendall(
            switching_protocols(request, "Sec-WebSocket-Protocol: chat\r\n") + b"\x81\x02hi"
        )
        received = b""
        while chunk := conn.recv(4096):
            received += chunk
        seen["received"] = received

    backend = ScriptedBackend(script)
    with H2WebSocketRelay("127.0.0.1", backend.port) as relay:
        client = H2Client(relay.port)
        try:
            stream_id, headers = client.connect_websocket(
                "/runCase?case=1&agent=x", [("sec-websocket-protocol", "chat, superchat")]
            )
            assert headers[":status"] == "200"
            assert headers["sec-websocket-protocol"] == "chat"
            assert client.read_frames(stream_id, 1) == [(0x1, b"hi")]
            frame = client_frame(0x1, b"bye")
            client.send(stream_id, frame, end_stream=True)
            backend.join()
        finally:
            client.close()
    request = seen["request"]
    assert isinstance(request, dict)
    assert request[":request-line"] == "GET /runCase?case=1&agent=x HTTP/1.1"
    assert request["upgrade"].lower() == "websocket"
    assert request["sec-websocket-protocol"] == "chat, superchat"
    assert (
        base64.b64decode(request["sec-websocket-key"]) and len(request["sec-websocket-key"]) == 24
    )
    assert seen["received"] == frame


def test_non_101_answer_is_passed_on_and_ends_the_stream() -> None:
    def script(conn: socket.socket) -> None:
        read_request_head(conn)
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    backend = ScriptedBackend(script)
    with H2WebSocketRelay("127.0.0.1", backend.port) as relay:
        client = H2Client(relay.port)
        try:
            stream_id, headers = client.connect_websocket("/")
            assert headers[":status"] == "403"
            client.wait_ended(stream_id)
        finally:
            client.close()
    backend.join()


def test_unreachable_backend_is_a_502() -> None:
    port = free_port()  # released at once: nothing listens there
    with H2WebSocketRelay("127.0.0.1", port) as relay:
        client = H2Client(relay.port)
        try:
            stream_id, headers = client.connect_websocket("/")
            assert headers[":status"] == "502"
            client.wait_ended(stream_id)
        finally:
            client.close()


def test_backend_reset_still_ends_the_stream() -> None:
    """A backend that resets (as Autobahn's server does after a close) ends the stream.

    Autobahn drops the TCP connection with a reset once the close handshake is
    over; the relay must still tell the client, or every case waits for a timeout.
    """

    def script(conn: socket.socket) -> None:
        request = read_request_head(conn)
        conn.sendall(switching_protocols(request))
        conn.recv(4096)
        # SO_LINGER with a zero timeout turns close() into a reset.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    backend = ScriptedBackend(script)
    with H2WebSocketRelay("127.0.0.1", backend.port) as relay:
        client = H2Client(relay.port)
        try:
            stream_id, headers = client.connect_websocket("/")
            assert headers[":status"] == "200"
            client.send(stream_id, client_frame(0x8, struct.pack("!H", 1000)))
            backend.join()
            client.send(stream_id, client_frame(0x1, b"late"), end_stream=True)
            client.wait_ended(stream_id)
        finally:
            client.close()


# -- the HTTP/3 relay -------------------------------------------------------------


@dataclass
class Backend:
    port: int
    received: bytearray = field(default_factory=bytearray)
    saw_eof: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def h3_backend() -> Iterator[Backend]:
    """Upgrades one connection, sends a text frame, records until EOF, then closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    state = Backend(listener.getsockname()[1])

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            lines = head.decode("latin-1").split("\r\n")
            key = next(
                line.split(":", 1)[1].strip()
                for line in lines
                if line.lower().startswith("sec-websocket-key:")
            )
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + accept_key(key).encode()
                + b"\r\n\r\n\x81\x05hello"
            )
            while True:
                data = conn.recv(65536)
                if not data:
                    state.saw_eof.set()
                    break
                state.received += data
            conn.sendall(b"\x88\x02\x03\xe8")  # its Close after ours, then TCP close

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state
    thread.join(TIMEOUT)
    listener.close()


def test_h3_relay_carries_a_websocket_and_its_orderly_end(h3_backend: Backend) -> None:
    """The HTTP/3 relay (``relay_h3``), with mint as its client over a scripted backend."""
    backend = h3_backend
    with H3WebSocketRelay("127.0.0.1", backend.port) as relay:
        conn = http.connect(
            "https",
            relay.host,
            relay.port,
            protocols=("http3",),
            cafile=relay.cafile,
            timeout=TIMEOUT,
        )
        with conn:
            ref = websocket.upgrade("wss", conn, "/runCase?case=1", [])
            events: list[Event] = []
            while not any(isinstance(e, Data) for e in events):
                events += conn.recv(TIMEOUT)
            status = next(e.status for e in events if isinstance(e, Status))
            headers = next(e.headers for e in events if isinstance(e, Headers))
            ws = websocket.new(conn, ref, status, headers)
            frames = [f for e in events if isinstance(e, Data) for f in ws.decode(e.data)]
            assert frames == [Text("hello")]
            close = ws.encode(Close(1000))
            conn.stream_request_body(ref, close, end_stream=True)
            assert backend.saw_eof.wait(TIMEOUT)  # our FIN became the backend's EOF
            assert bytes(backend.received) == close
            rest: list[Event] = []
            while not any(isinstance(e, Done) for e in rest):
                rest += conn.recv(TIMEOUT)
            frames = [f for e in rest if isinstance(e, Data) for f in ws.decode(e.data)]
            assert frames == [Close(1000)]  # and the backend's close became our FIN
