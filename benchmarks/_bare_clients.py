"""Bare echo clients: the least a Python client can do to echo through hypercorn.

A 1 MiB upload over HTTP/2 against hypercorn's 65,535-byte windows goes in 32
steps, each waiting for the server's WINDOW_UPDATEs; over HTTP/1.1 it is one
write.  How much of mint's HTTP/2 cost is those waits, and how much is mint?
These clients answer by doing the same exchange with no library at all: the
WebSocket frame is built and masked once, before timing starts; HTTP/2 frames
are cut from it with one ``struct`` call each; what comes back is read into
one reused buffer and only counted (frame headers parsed, payload bytes
skipped), never joined, decoded or compared.  They keep every rule the server
can see (flow-control windows, frame size limits, SETTINGS acknowledged), so
they sleep as often as any correct client must, and no more (see ``_Wire``).

Nothing here is a client anyone should use: it checks byte counts only.  What
it is for is ``bench_e2e``'s two comparisons: the bare clients' own HTTP/2 ÷
HTTP/1.1 ratio is what HTTP/2 costs on that server when the client costs
nothing (above 2x, no client meets the target there), and mint's CPU over the
bare client's on the same transport is mint's own share.  Written for this
benchmark, from RFC 6455, RFC 9113 (frame layout) and RFC 7541 (literal header
fields) alone.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import ssl
import struct
from collections.abc import Iterator, Sequence

from _echo_clients import HOST, TIMEOUT, Message

_READ_BUFFER = 256 * 1024
#: The most plaintext one TLS record carries, and (with header, tag and a
#: margin) the most bytes it takes on the wire.
_TLS_RECORD = 16 * 1024
_TLS_RECORD_ON_WIRE = _TLS_RECORD + 256
_MAX_LOW_WATER = 4 * 2**20
_MASK = b"\x37\xfa\x21\x3d"

# -- WebSocket frames (RFC 6455 section 5.2) --------------------------------------------


def masked_frame(message: Message) -> bytes:
    """The client's one unfragmented frame for ``message``: FIN, opcode, mask, payload."""
    payload = message.encode() if isinstance(message, str) else message
    opcode = 0x1 if isinstance(message, str) else 0x2
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    key = int.from_bytes((_MASK * (size // 4 + 1))[:size], "little")
    masked = (int.from_bytes(payload, "little") ^ key).to_bytes(size, "little")
    return header + _MASK + masked


def echoed_frame_size(message: Message) -> int:
    """Bytes of the server's unmasked frame echoing ``message`` (one frame: hypercorn's way)."""
    size = len(message.encode() if isinstance(message, str) else message)
    header = 2 if size < 126 else 4 if size < 1 << 16 else 10
    return header + size


def _connect(port: int, ca_file: str | None, alpn: str) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ca_file is None:
        return sock
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols([alpn])
    tls = context.wrap_socket(sock, server_hostname=HOST)
    if tls.selected_alpn_protocol() != alpn:
        raise RuntimeError(f"the server chose {tls.selected_alpn_protocol()!r}, not {alpn!r}")
    return tls


class _Wire:
    """A non-blocking socket that sleeps only once enough bytes can have arrived.

    A client that goes back to sleep the moment it has read what was there
    is woken again for every piece the server writes: read at once, a 1 MiB
    echo that hypercorn writes 16 KiB at a time costs some 50 sleeps.  Knowing
    how many bytes are still to come, ``receive`` sets ``SO_RCVLOWAT`` so that
    the kernel wakes the client once for all of them.  Over TLS the count is
    cut by a record, which OpenSSL may already hold in part.
    """

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.tls = sock if isinstance(sock, ssl.SSLSocket) else None
        self.gather = self.tls is None and hasattr(sock, "sendmsg")
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)
        self.buffer = memoryview(bytearray(_READ_BUFFER))
        self.low_water = 1

    def receive(self, coming: int) -> Iterator[memoryview]:
        """Sleep until ``coming`` more bytes can be read (at least one), then read them.

        Reading stops at the first read that did not fill its buffer (over
        TLS: a record): the socket was empty then, and trying once more would
        only cost a failed system call and an exception.
        """
        if not (self.tls is not None and self.tls.pending()):  # poll cannot see decrypted bytes
            self._wait(coming)
        full = len(self.buffer) if self.tls is None else _TLS_RECORD
        while True:
            try:
                count = self.sock.recv_into(self.buffer)
            except (BlockingIOError, ssl.SSLWantReadError):
                return
            if not count:
                raise RuntimeError("the server closed the connection")
            yield self.buffer[:count]
            if count < full and not (self.tls is not None and self.tls.pending()):
                return

    def _wait(self, coming: int) -> None:
        if self.tls is not None:
            coming -= _TLS_RECORD_ON_WIRE  # OpenSSL may hold part of a record already
        low_water = max(1, min(coming, _MAX_LOW_WATER))
        if low_water != self.low_water:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, low_water)
            self.low_water = low_water
        if not self.poller.poll(int(TIMEOUT * 1000)):
            raise RuntimeError("timed out waiting for the server")

    def send(self, pieces: Sequence[bytes | memoryview]) -> None:
        """Write ``pieces`` in order: a gather write on TCP, one joined write over TLS."""
        if self.gather and len(pieces) > 1:
            sent = self.sock.sendmsg(pieces)
            total = sum(map(len, pieces))
            if sent == total:
                return
            rest = memoryview(b"".join(pieces))[sent:]
        else:
            rest = memoryview(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        while rest:
            try:
                rest = rest[self.sock.send(rest) :]
            except (BlockingIOError, ssl.SSLWantWriteError):
                select.select([], [self.sock], [], TIMEOUT)

    def close(self) -> None:
        self.sock.close()


class _Prepared:
    """The frame for the message being echoed, built on first use and kept."""

    def __init__(self) -> None:
        self.message: Message | None = None
        self.frame = b""
        self.echo_size = 0

    def prepare(self, message: Message) -> None:
        if message is not self.message:
            self.message = message
            self.frame = masked_frame(message)
            self.echo_size = echoed_frame_size(message)


# -- HTTP/1.1 ------------------------------------------------------------------------------


class BareHTTP1Session:
    """Upgrade, then: one write of the prepared frame, count bytes until the echo is in."""

    def __init__(self, port: int, *, ca_file: str | None) -> None:
        sock = _connect(port, ca_file, "http/1.1")
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /echo HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        answer = bytearray()
        while (end := answer.find(b"\r\n\r\n")) < 0:
            if not (piece := sock.recv(4096)):
                raise RuntimeError("the server closed the connection during the upgrade")
            answer += piece
        head, early = answer[:end], answer[end + 4 :]
        if not head.startswith(b"HTTP/1.1 101 "):
            raise RuntimeError(f"upgrade refused: {head[:40]!r}")
        self.received = len(early)
        self.wire = _Wire(sock)
        self.prepared = _Prepared()

    def echo(self, message: Message) -> None:
        prepared, wire = self.prepared, self.wire
        prepared.prepare(message)
        wire.send((prepared.frame,))
        while self.received < prepared.echo_size:
            for data in wire.receive(prepared.echo_size - self.received):
                self.received += len(data)
        self.received -= prepared.echo_size

    def close(self) -> None:
        self.wire.close()


# -- HTTP/2 --------------------------------------------------------------------------------

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEADER = struct.Struct("!BHBBL")  # length (24 bits as 8 + 16), type, flags, stream id
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
_END_HEADERS, _ACK, _PADDED = 0x4, 0x1, 0x8
_INITIAL_WINDOW_SIZE, _MAX_FRAME_SIZE = 0x4, 0x5
_MAX_WINDOW = 2**31 - 1
#: RFC 9113's initial windows and frame size, until SETTINGS say otherwise.
_DEFAULT_WINDOW = 65_535
_DEFAULT_MAX_FRAME = 16_384
_WINDOW_UPDATE_SIZE = 13
_STREAM = 1
#: HPACK static table entry 8 (RFC 7541 appendix A), sent as an indexed field.
_STATUS_200 = 0x88


def _frame_header(length: int, kind: int, flags: int, stream: int) -> bytes:
    return _HEADER.pack(length >> 16, length & 0xFFFF, kind, flags, stream)


def _literal(name: str, value: str) -> bytes:
    """A header field literal without indexing, new name, no Huffman (RFC 7541 section 6.2.2)."""
    encoded_name, encoded_value = name.encode(), value.encode()
    assert len(encoded_name) < 127 and len(encoded_value) < 127
    return (
        bytes([0, len(encoded_name)]) + encoded_name + bytes([len(encoded_value)]) + encoded_value
    )


class BareHTTP2Session:
    """Extended CONNECT (RFC 8441), then the prepared frame as DATA the windows allow.

    Its own receive windows are the largest allowed, so it never has to send a
    WINDOW_UPDATE: no client can do less on the way back.
    """

    def __init__(self, port: int, *, ca_file: str | None) -> None:
        sock = _connect(port, ca_file, "h2")
        self.prepared = _Prepared()
        #: Send windows (RFC 9113 section 6.9): the connection's and our stream's.
        self.connection_window = _DEFAULT_WINDOW
        self.stream_window = _DEFAULT_WINDOW
        self.initial_window = _DEFAULT_WINDOW
        self.max_frame = _DEFAULT_MAX_FRAME
        #: Received: DATA payload bytes not yet matched to an echo, the DATA payload
        #: still to skip, and the bytes of a frame header or control frame read so far.
        self.received = 0
        self.skip = 0
        self.partial = bytearray()
        self.response_status: int | None = None
        #: Control frames to answer (SETTINGS and PING acknowledgements).
        self.answers: list[bytes] = []
        settings = struct.pack("!HL", _INITIAL_WINDOW_SIZE, _MAX_WINDOW)
        headers = b"".join(
            _literal(name, value)
            for name, value in (
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http" if ca_file is None else "https"),
                (":path", "/echo"),
                (":authority", f"{HOST}:{port}"),
                ("sec-websocket-version", "13"),
            )
        )
        sock.sendall(
            _PREFACE
            + _frame_header(len(settings), _SETTINGS, 0, 0)
            + settings
            + _frame_header(4, _WINDOW_UPDATE, 0, 0)
            + struct.pack("!L", _MAX_WINDOW - _DEFAULT_WINDOW)
            + _frame_header(len(headers), _HEADERS, _END_HEADERS, _STREAM)
            + headers
        )
        self.wire = _Wire(sock)
        while self.response_status is None:
            self._receive(1)
        if self.response_status != 200:
            raise RuntimeError(f"extended CONNECT refused (status index {self.response_status})")

    def echo(self, message: Message) -> None:
        prepared = self.prepared
        prepared.prepare(message)
        frame = memoryview(prepared.frame)
        offset, total = 0, len(frame)
        while offset < total:
            allowed = min(self.connection_window, self.stream_window, total - offset)
            if allowed <= 0:
                self._receive(_WINDOW_UPDATE_SIZE)  # nothing smaller opens a window
                continue
            pieces: list[bytes | memoryview] = []
            end = offset + allowed
            while offset < end:
                size = min(self.max_frame, end - offset)
                pieces.append(_frame_header(size, _DATA, 0, _STREAM))
                pieces.append(frame[offset : offset + size])
                offset += size
            self.connection_window -= allowed
            self.stream_window -= allowed
            self.wire.send(pieces)
        while self.received < prepared.echo_size:
            self._receive(prepared.echo_size - self.received)
        self.received -= prepared.echo_size

    def close(self) -> None:
        self.wire.close()

    def _receive(self, coming: int) -> None:
        """Sleep until ``coming`` bytes can be read, then account for what was."""
        for data in self.wire.receive(coming):
            self._account(data)
        if self.answers:
            self.wire.send(self.answers)
            self.answers = []

    def _account(self, data: memoryview) -> None:
        """Walk the frames in ``data``: skip DATA payload, keep control frames whole."""
        count, position = len(data), 0
        while position < count:
            if self.skip:
                taken = min(self.skip, count - position)
                self.skip -= taken
                self.received += taken
                position += taken
                continue
            needed = 9 - len(self.partial)
            if needed > 0:
                taken = min(needed, count - position)
                self.partial += data[position : position + taken]
                position += taken
                if len(self.partial) < 9:
                    return
            high, low, kind, flags, stream = _HEADER.unpack_from(self.partial)
            length = high << 16 | low
            if kind == _DATA:
                if flags & _PADDED or stream != _STREAM:
                    raise RuntimeError("unexpected DATA frame (padded, or on another stream)")
                self.skip = length
                del self.partial[:]
                continue
            taken = min(9 + length - len(self.partial), count - position)
            self.partial += data[position : position + taken]
            position += taken
            if len(self.partial) == 9 + length:
                self._control(kind, flags, stream, bytes(self.partial[9:]))
                del self.partial[:]

    def _control(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        if kind == _WINDOW_UPDATE:
            (increment,) = struct.unpack("!L", payload)
            if stream == 0:
                self.connection_window += increment & _MAX_WINDOW
            elif stream == _STREAM:
                self.stream_window += increment & _MAX_WINDOW
        elif kind == _SETTINGS and not flags & _ACK:
            for offset in range(0, len(payload), 6):
                code, value = struct.unpack_from("!HL", payload, offset)
                if code == _INITIAL_WINDOW_SIZE:
                    self.stream_window += value - self.initial_window
                    self.initial_window = value
                elif code == _MAX_FRAME_SIZE:
                    self.max_frame = value
            self.answers.append(_frame_header(0, _SETTINGS, _ACK, 0))
        elif kind == _PING and not flags & _ACK:
            self.answers.append(_frame_header(8, _PING, _ACK, 0) + payload)
        elif kind == _HEADERS and stream == _STREAM and self.response_status is None:
            if not flags & _END_HEADERS:
                raise RuntimeError("the response headers came in CONTINUATION frames")
            self.response_status = 200 if payload[0] == _STATUS_200 else payload[0]
        elif kind in (_HEADERS, _RST_STREAM, _GOAWAY):
            raise RuntimeError(f"the server ended the exchange (frame type {kind})")
