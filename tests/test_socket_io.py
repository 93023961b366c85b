"""The blocking shell's non-blocking socket I/O, against real loopback peers (plain and TLS)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import select
import socket
import ssl
import struct
import termios
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from mint import http
from mint.errors import TransportError
from mint.http._socket_io import NonBlockingSocket


@contextmanager
def peer_pair(
    serve: Callable[[socket.socket], object],
    *,
    server_context: ssl.SSLContext | None = None,
    client_context: ssl.SSLContext | None = None,
) -> Iterator[NonBlockingSocket]:
    """A connected client socket (maybe TLS) whose server side runs ``serve`` in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    failures: list[BaseException] = []

    def run() -> None:
        try:
            conn, _ = listener.accept()
            if server_context is not None:
                conn = server_context.wrap_socket(conn, server_side=True)
            with conn:
                serve(conn)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if client_context is not None:
        sock = client_context.wrap_socket(sock, server_hostname="localhost")
    try:
        yield NonBlockingSocket(sock)
    finally:
        sock.close()
        thread.join(10)
        listener.close()
    assert not failures, failures


def wait_readable(sock: socket.socket) -> None:
    """Until the kernel holds bytes for ``sock``: a sleep guesses, and guesses wrong when loaded."""
    readable, _, _ = select.select([sock], [], [], 5)
    assert readable, "nothing arrived"


def wait_hang_up(sock: socket.socket) -> None:
    """Until the peer's FIN has arrived (POLLRDHUP), without reading anything."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)
    assert poller.poll(5000), "no FIN arrived"


def soon(seconds: float) -> float:
    return time.monotonic() + seconds


def wait_queued(sock: socket.socket, size: int) -> None:
    """Until the kernel holds at least ``size`` bytes for ``sock`` (readability shows only one)."""
    give_up = soon(5)
    while queued(sock) < size:
        assert time.monotonic() < give_up, "the bytes did not all arrive"
        time.sleep(0.001)


def queued(sock: socket.socket) -> int:
    value: int = struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"))[0]
    return value


def tls13_wire_size(plaintext: int) -> int:
    """What one TLS 1.3 write of ``plaintext`` bytes takes on the wire (AEAD, no padding).

    The write becomes 16 KiB records and a last shorter one; each adds a 5-byte
    header, the 1-byte inner content type and a 16-byte tag.
    """
    records = -(-plaintext // 16384)
    return plaintext + 22 * records


@contextmanager
def tls_records_waiting(
    payload: bytes, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> Iterator[NonBlockingSocket]:
    """A TLS client whose socket already holds all of ``payload``, sent by the peer in one write."""

    def serve(conn: socket.socket) -> None:
        conn.sendall(payload)
        conn.recv(1)

    with peer_pair(serve, server_context=server_context, client_context=client_context) as io:
        assert isinstance(io.sock, ssl.SSLSocket) and io.sock.version() == "TLSv1.3"
        wait_queued(io.sock, tls13_wire_size(len(payload)))
        yield io
        io.send_all(b"!", soon(5))  # lets the peer finish


def read_exactly(
    io: NonBlockingSocket, size: int, deadline: float, *, chunk_size: int = 65536
) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = io.recv(min(chunk_size, size - len(received)), deadline)
        assert chunk, "EOF before all bytes arrived"
        received += chunk
    return bytes(received)


def test_the_socket_is_left_non_blocking() -> None:
    with peer_pair(lambda conn: None) as io:
        assert not io.sock.getblocking()
        assert io.sock.gettimeout() == 0.0


def test_recv_waits_for_bytes_that_come_later() -> None:
    reading = threading.Event()

    def serve(conn: socket.socket) -> None:
        reading.wait(5)
        time.sleep(0.2)
        conn.sendall(b"late")

    with peer_pair(serve) as io:
        started = time.monotonic()
        reading.set()
        assert io.recv(100, soon(5)) == b"late"
        assert time.monotonic() - started >= 0.15


def test_recv_times_out_then_still_reads() -> None:
    released = threading.Event()

    def serve(conn: socket.socket) -> None:
        released.wait(5)
        conn.sendall(b"after")

    with peer_pair(serve) as io:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            io.recv(100, soon(0.2))
        assert 0.15 <= time.monotonic() - started < 2
        released.set()
        assert io.recv(100, soon(5)) == b"after"


def test_spent_deadline_is_a_poll() -> None:
    done = threading.Event()

    def serve(conn: socket.socket) -> None:
        conn.sendall(b"here")
        done.wait(5)

    with peer_pair(serve) as io:
        wait_readable(io.sock)
        started = time.monotonic()
        assert io.recv(100, started - 1) == b"here"
        with pytest.raises(TimeoutError):
            io.recv(100, time.monotonic() - 1)
        assert time.monotonic() - started < 1  # no waiting (generous for a loaded machine)
        done.set()


class CountingSocket(socket.socket):
    """A real TCP socket that counts its ``recv`` calls: a failed try is one more."""

    recv_calls = 0

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.recv_calls += 1
        return super().recv(bufsize, flags)


@contextmanager
def counted_pair() -> Iterator[tuple[NonBlockingSocket, CountingSocket, socket.socket]]:
    """The reader under test (over a counting socket) and its plain peer, on loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = CountingSocket(socket.AF_INET, socket.SOCK_STREAM)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        yield NonBlockingSocket(client), client, server


def test_after_a_short_read_the_next_one_waits_before_trying() -> None:
    with counted_pair() as (io, client, server):
        server.sendall(b"first")
        assert io.recv(100, soon(5)) == b"first"  # short: the kernel had no more
        calls = client.recv_calls
        timer = threading.Timer(0.1, server.sendall, [b"second"])
        timer.start()
        assert io.recv(100, soon(5)) == b"second"
        timer.join()
        assert client.recv_calls == calls + 1  # no try that could only fail


def test_after_a_full_read_the_next_one_tries_at_once() -> None:
    with counted_pair() as (io, client, server):
        server.sendall(b"x" * 150)
        wait_readable(client)
        assert io.recv(100, soon(5)) == b"x" * 100  # full: more may be there
        assert io.recv(100, soon(5)) == b"x" * 50
        assert client.recv_calls == 2


def test_after_a_short_read_a_spent_deadline_still_reads_what_arrived() -> None:
    with counted_pair() as (io, _, server):
        server.sendall(b"one")
        assert io.recv(100, soon(5)) == b"one"
        server.sendall(b"two")
        wait_readable(io.sock)
        assert io.recv(100, time.monotonic() - 1) == b"two"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            io.recv(100, time.monotonic() - 1)
        assert time.monotonic() - started < 1  # no waiting (generous for a loaded machine)


def test_decrypted_bytes_waiting_in_tls_are_read_without_polling(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    def serve(conn: socket.socket) -> None:
        conn.sendall(b"z" * 30)  # one record
        conn.recv(1)

    with peer_pair(
        serve, server_context=server_ssl_context, client_context=client_ssl_context
    ) as io:
        assert io.recv(10, soon(5)) == b"z" * 10  # the other 20 wait decrypted in the TLS object
        # A short read before them would make the next read poll first; poll
        # cannot see these bytes (the socket is empty), so it must not run.
        io._drained = True
        started = time.monotonic()
        assert io.recv(100, soon(2)) == b"z" * 20
        assert time.monotonic() - started < 0.5
        io.send_all(b"!", soon(5))


def test_a_full_tls_record_is_not_a_short_read(
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An SSLSocket read returns one record at most (16 KiB of plaintext);
    # reading record by record, a full one must not count as "the socket is
    # empty", or every next read would poll first.
    payload = os.urandom(4 * 16384)
    with tls_records_waiting(payload, server_ssl_context, client_ssl_context) as io:
        waits: list[int] = []
        wait = io._wait

        def counted_wait(events: int, deadline: float | None) -> None:
            waits.append(events)
            wait(events, deadline)

        monkeypatch.setattr(io, "_wait", counted_wait)
        assert read_exactly(io, len(payload), soon(5), chunk_size=16384) == payload
        assert waits == []  # every read found its record without polling first


def test_a_tls_read_takes_the_records_already_waiting(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    # Four full records and a short one; one read takes all that is there, up
    # to the size asked for, so a large message costs the caller a few reads
    # rather than one per record.
    payload = os.urandom(4 * 16384 + 1000)
    with tls_records_waiting(payload, server_ssl_context, client_ssl_context) as io:
        first = io.recv(3 * 16384 + 10, soon(5))  # stops at the size asked for
        assert first == payload[: 3 * 16384 + 10]
        rest = read_exactly(io, len(payload) - len(first), soon(5), chunk_size=1 << 20)
        assert rest == payload[len(first) :]


def test_after_taking_every_waiting_tls_record_the_next_read_waits_before_trying(
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = os.urandom(2 * 16384)  # two full records: only a failed try shows the end
    send_more = threading.Event()

    def serve(conn: socket.socket) -> None:
        conn.sendall(payload)
        send_more.wait(5)
        conn.sendall(b"more")
        conn.recv(1)

    with peer_pair(
        serve, server_context=server_ssl_context, client_context=client_ssl_context
    ) as io:
        assert isinstance(io.sock, ssl.SSLSocket) and io.sock.version() == "TLSv1.3"
        wait_queued(io.sock, tls13_wire_size(len(payload)))
        assert io.recv(1 << 20, soon(5)) == payload
        reads: list[int] = []
        recv = io.sock.recv

        def counted_recv(size: int, flags: int = 0) -> bytes:
            reads.append(size)
            return recv(size, flags)

        wait = io._wait

        def wait_then_send(events: int, deadline: float | None) -> None:
            send_more.set()  # only now, or the bytes could be there before the first try
            wait(events, deadline)

        monkeypatch.setattr(io.sock, "recv", counted_recv)
        monkeypatch.setattr(io, "_wait", wait_then_send)
        assert io.recv(1 << 20, soon(5)) == b"more"
        assert len(reads) == 1  # it polled first: no try that could only fail
        io.send_all(b"!", soon(5))


def test_tls_records_before_an_eof_are_returned_first(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    payload = os.urandom(3 * 16384)
    done = threading.Event()

    def serve(conn: socket.socket) -> None:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)  # a FIN with no close_notify: a ragged EOF
        done.wait(5)  # closing now could reset the connection under the client

    with peer_pair(
        serve, server_context=server_ssl_context, client_context=client_ssl_context
    ) as io:
        wait_hang_up(io.sock)  # the records and the FIN are all in our buffer
        assert io.recv(1 << 20, soon(5)) == payload  # gathering met the EOF: held back
        assert io.recv(1 << 20, soon(5)) == b""
        done.set()


def test_tls_records_before_a_broken_record_are_returned_first(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    payload = os.urandom(2 * 16384)
    # An application-data record whose tag cannot check out.
    forged = bytes([23, 3, 3, 0, 17]) + bytes(17)
    forged_sent = threading.Event()

    def serve(conn: socket.socket) -> None:
        conn.sendall(payload)
        os.write(conn.fileno(), forged)  # straight onto the TCP stream, after the records
        forged_sent.set()
        with contextlib.suppress(ssl.SSLError):
            conn.recv(1)  # the client's alert, "bad record mac"

    with peer_pair(
        serve, server_context=server_ssl_context, client_context=client_ssl_context
    ) as io:
        assert isinstance(io.sock, ssl.SSLSocket) and io.sock.version() == "TLSv1.3"
        assert forged_sent.wait(5)
        wait_queued(io.sock, tls13_wire_size(len(payload)) + len(forged))
        assert io.recv(1 << 20, soon(5)) == payload  # the failure is held back
        with pytest.raises(ssl.SSLError):
            io.recv(1 << 20, soon(5))


def test_eof_reads_as_empty_bytes() -> None:
    with peer_pair(lambda conn: conn.sendall(b"bye")) as io:
        assert read_exactly(io, 3, soon(5)) == b"bye"
        assert io.recv(100, soon(5)) == b""


def test_send_all_writes_everything_to_a_slow_reader() -> None:
    payload = os.urandom(8 << 20)
    digest: list[str] = []

    def serve(conn: socket.socket) -> None:
        received = bytearray()
        while len(received) < len(payload):
            time.sleep(0.001)  # let the client's buffers fill so it must wait
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            received += chunk
        digest.append(hashlib.sha256(received).hexdigest())

    with peer_pair(serve) as io:
        io.send_all(payload, soon(30))
        io.sock.shutdown(socket.SHUT_WR)
        io.sock.close()
    assert digest == [hashlib.sha256(payload).hexdigest()]


def test_send_all_times_out_against_a_peer_that_never_reads() -> None:
    stop = threading.Event()

    with peer_pair(lambda conn: stop.wait(10)) as io:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            io.send_all(b"x" * (64 << 20), soon(0.3))
        assert time.monotonic() - started < 5
        stop.set()


def test_send_after_the_peer_closed_raises_the_socket_error() -> None:
    connected = threading.Event()
    closed = threading.Event()

    def serve(conn: socket.socket) -> None:
        # accept() can return before the client's connect() has read its result;
        # a reset sent then would fail connect() instead of the write under test.
        connected.wait(5)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        closed.set()  # closing with linger 0 sends RST

    with peer_pair(serve) as io:
        connected.set()
        assert closed.wait(5)
        give_up = soon(10)
        with pytest.raises(OSError) as info:
            while time.monotonic() < give_up:  # the RST arrives after a write or two
                io.send_all(b"y" * 65536, soon(5))
                time.sleep(0.01)
        assert not isinstance(info.value, TimeoutError)


def test_tls_both_ways_and_buffered_records(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    upload = os.urandom(3 << 20)
    download = os.urandom(3 << 20)

    def serve(conn: socket.socket) -> None:
        received = bytearray()
        while len(received) < len(upload):
            received += conn.recv(1 << 16)
        assert received == upload
        conn.sendall(download)
        # Small records in one write: once the first read has taken part of
        # them, the rest sit decrypted in the TLS object, not in the socket.
        conn.sendall(b"a" * 10 + b"b" * 10 + b"c" * 10)
        conn.recv(1)  # wait for the client to finish

    with peer_pair(
        serve, server_context=server_ssl_context, client_context=client_ssl_context
    ) as io:
        io.send_all(upload, soon(30))
        assert read_exactly(io, len(download), soon(30)) == download
        wait_readable(io.sock)  # the small records have arrived
        tail = [io.recv(10, time.monotonic() - 1) for _ in range(3)]  # no waiting allowed
        assert tail == [b"a" * 10, b"b" * 10, b"c" * 10]
        io.send_all(b"!", soon(5))


def test_connection_write_timeout_is_a_transport_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        conn = http.connect("http", "127.0.0.1", listener.getsockname()[1], timeout=0.3)
        assert not conn.socket.getblocking()
        ref = conn.request("POST", "/upload", [], http.STREAM)
        started = time.monotonic()
        with pytest.raises(TransportError) as info:
            for _ in range(10_000):  # nobody reads: the buffers fill, then the write times out
                conn.stream_request_body(ref, b"z" * (1 << 20))
        assert info.value.reason == "timeout"
        assert time.monotonic() - started < 10
        assert not conn.open
    finally:
        thread.join(5)
        for sock in accepted:
            sock.close()
        listener.close()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_send_buffers_keeps_order_through_partial_writes(
    tls: bool, server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    # 1,500 pieces (more than one sendmsg takes), empty ones among them, some
    # memoryviews: the slow reader makes writes stop part-way through pieces.
    pieces: list[bytes | memoryview] = []
    for index in range(1500):
        size = (index * 7919) % 20_000
        piece = os.urandom(size)
        pieces.append(memoryview(piece)[1:] if index % 3 == 0 and size else piece)
    expected = b"".join(pieces)
    digest: list[str] = []
    done = threading.Event()

    def serve(conn: socket.socket) -> None:
        received = bytearray()
        while len(received) < len(expected):
            time.sleep(0.0005)
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            received += chunk
        digest.append(hashlib.sha256(received).hexdigest())
        done.set()

    contexts = (server_ssl_context, client_ssl_context) if tls else (None, None)
    with peer_pair(serve, server_context=contexts[0], client_context=contexts[1]) as io:
        io.send_buffers(pieces, soon(60))
        # Closing now could reset the connection (TLS 1.3 session tickets sit
        # unread in our receive buffer) and cut off what is still in flight.
        assert done.wait(60)
    assert digest == [hashlib.sha256(expected).hexdigest()]


def test_a_large_tls_write_of_many_pieces_makes_whole_records(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    # What an HTTP/2 upload hands over: 9-byte frame headers between payload
    # pieces.  However the pieces fall, every record but the last is full,
    # as if the write had been joined first.
    pieces: list[bytes | memoryview] = []
    for index in range(40):
        pieces.append(os.urandom(9))
        payload = os.urandom(5_000 + 997 * index)
        pieces.append(memoryview(payload) if index % 2 else payload)
    expected = b"".join(pieces)
    records: list[int] = []
    received = bytearray()
    done = threading.Event()

    def serve(conn: socket.socket) -> None:
        while len(received) < len(expected):
            record = conn.recv(1 << 20)  # an SSLSocket read returns one record
            if not record:
                break
            records.append(len(record))
            received.extend(record)
        done.set()

    with peer_pair(
        serve, server_context=server_ssl_context, client_context=client_ssl_context
    ) as io:
        io.send_buffers(pieces, soon(30))
        assert done.wait(30)
    assert received == expected
    assert all(size == 16384 for size in records[:-1]), records
    assert len(records) == -(-len(expected) // 16384)


def test_send_buffers_times_out_against_a_peer_that_never_reads() -> None:
    stop = threading.Event()
    with peer_pair(lambda conn: stop.wait(10)) as io:
        with pytest.raises(TimeoutError):
            io.send_buffers([b"h" * 9, b"x" * (32 << 20), b"t" * 9], soon(0.3))
        stop.set()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_tunnel_writes_keep_order_through_partial_sends_and_time_out_when_unread(
    tls: bool, server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    """``Connection.stream_request_body`` on an open HTTP/1.1 tunnel tries one ``send``
    first: a slow reader makes that send stop part-way, and the rest must follow it in
    order; a reader that stops makes the rest time out, with the connection closed."""
    chunks = [os.urandom(300_000 + index) for index in range(12)]
    expected = b"".join(chunks)
    digest: list[str] = []
    stop_reading = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        raw, _ = listener.accept()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        conn = server_ssl_context.wrap_socket(raw, server_side=True) if tls else raw
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n"
            )
            received = bytearray()
            while len(received) < len(expected):
                time.sleep(0.0005)
                received += conn.recv(1 << 16)
            digest.append(hashlib.sha256(received).hexdigest())
            stop_reading.wait(10)  # then reads nothing more

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        conn = http.connect(
            "https" if tls else "http",
            "127.0.0.1",
            listener.getsockname()[1],
            timeout=0.5,
            ssl_context=client_ssl_context if tls else None,
            server_hostname="localhost" if tls else None,
        )
        ref = conn.request("GET", "/", [("Upgrade", "test"), ("Connection", "Upgrade")])
        events: list[http.Event] = []
        while not any(isinstance(event, http.Status) for event in events):
            events += conn.recv(timeout=5)
        assert conn.passes_through(ref)
        conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)  # sends stop part-way
        for chunk in chunks:
            conn.stream_request_body(ref, chunk)
        deadline = soon(10)
        while not digest and time.monotonic() < deadline:
            time.sleep(0.01)
        assert digest == [hashlib.sha256(expected).hexdigest()]
        with pytest.raises(TransportError) as info:
            for _ in range(1000):  # nobody reads now: the buffers fill, then a write times out
                conn.stream_request_body(ref, chunks[0])
        assert info.value.reason == "timeout"
        assert not conn.open
    finally:
        stop_reading.set()
        thread.join(10)
        listener.close()
