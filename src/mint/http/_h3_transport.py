"""The blocking HTTP/3 shell: a connected UDP socket around ``HTTP3Core``.

The TCP ``Connection``'s API and promises (no thread, no timer, writes
inside the call that made them), with QUIC's one addition: the core has
deadlines (retransmissions, delayed ACKs, the idle timeout) that must be
honoured even when nothing arrives.  The shell honours them only while the
caller is inside ``recv``: each wait on the socket lasts until the earlier
of the caller's timeout and the core's next deadline, and the core is
given the deadline when it comes.  Between calls nothing runs; QUIC copes
(a late ACK is a slower ACK, and an idle timeout longer than the caller's
pauses is the caller's choice).  A caller with its own loop waits on
``conn.socket`` until ``conn.next_deadline()`` itself and calls
``conn.stream(datagram)`` / ``conn.handle_deadline()``.

The UDP socket is ``connect``-ed to the server, so only its datagrams are
read, and an ICMP "port unreachable" surfaces as ``ConnectionRefusedError``
on the next read: the quick answer to "is UDP blocked?" when there is one.
"""

from __future__ import annotations

import contextlib
import errno
import math
import select
import socket
import time
from collections.abc import Sequence
from types import TracebackType

from mint.errors import MintError, TransportError
from mint.http._setup import ConnectionFacts, ConnectPlan, authority, transport_error
from mint.http.events import Body, Chunk, Event, Ref
from mint.http.http3 import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_DATAGRAM_SIZE,
    HTTP3Core,
    client_configuration,
)
from mint.http.transport import Connection

#: Enough for a burst of full-size QUIC datagrams; the kernel may cap it lower.
_SOCKET_BUFFER = 4 << 20
#: Datagrams read per wake-up before the core's answers (ACKs) go out.
_READ_BATCH = 256
_MAX_DATAGRAM = 65536
#: Send failures that mean "the kernel dropped it": QUIC retransmits, as after any loss.
_DROPPED = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS)


class UDPConnection(Connection):
    """One HTTP/3 connection: a UDP socket and the core speaking QUIC and HTTP/3 over it.

    A ``Connection`` to its callers (``mint.http.connect`` returns one, and
    code typed for ``Connection`` keeps working): it overrides every public
    method, so none of the TCP shell's byte-stream machinery is used or even
    set up; ``ConnectionFacts`` supplies the read-only side.
    ``mint.websocket.upgrade``/``new`` work on it unchanged.
    """

    def __init__(
        self,
        sock: socket.socket,
        core: HTTP3Core,
        *,
        scheme: str,
        host: str,
        port: int,
        peer: tuple[object, ...],
    ) -> None:
        # Not Connection.__init__: it would wrap the socket for TCP reads and writes.
        ConnectionFacts.__init__(
            self, core, scheme=scheme, host=host, port=port, alpn_protocol="h3"
        )
        self._h3 = core
        self._socket = sock
        self._peer = peer
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self._pending: list[Event] = []
        self._socket_closed = False

    # -- facts -----------------------------------------------------------

    @property
    def socket(self) -> socket.socket:
        return self._socket

    def fileno(self) -> int:
        return self._socket.fileno()

    @property
    def open(self) -> bool:
        return not self._socket_closed and self._h3.open

    def next_deadline(self) -> float | None:
        """When (``time.monotonic()``) ``handle_deadline`` is due, for callers with own loops."""
        return self._h3.next_deadline()

    # -- requests --------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: Body = None,
        *,
        protocol: str | None = None,
    ) -> Ref:
        self._check_socket()
        ref = self._h3.request(method, path, headers, body, protocol=protocol)
        self._transmit()
        return ref

    def stream_request_body(self, ref: Ref, chunk: Chunk, *, end_stream: bool = False) -> None:
        """Write body or tunnel bytes; what congestion control holds back leaves from ``recv``.

        aioquic buffers the rest; ``send_window(ref)`` bounds it for callers who care.
        """
        self._check_socket()
        self._h3.stream_request_body(ref, chunk, end_stream=end_stream)
        self._transmit()

    def cancel_request(self, ref: Ref) -> None:
        """Reset one request or tunnel with H3_REQUEST_CANCELLED; no event follows for it."""
        self._check_socket()
        self._h3.cancel_request(ref)
        self._transmit()

    def ping(self) -> Ref:
        """Send a QUIC PING; its acknowledgement arrives as ``Pong(ref)`` from ``recv``."""
        self._check_socket()
        ref = self._h3.ping()
        self._transmit()
        return ref

    def pause_stream(self, ref: Ref) -> None:
        self._h3.pause_stream(ref)

    def resume_stream(self, ref: Ref) -> None:
        self._h3.resume_stream(ref)
        self._transmit()  # the credit the server has been waiting for

    # -- responses -------------------------------------------------------

    def recv(self, timeout: float | None = None) -> list[Event]:
        """Wait until the core yields at least one event, honouring its deadlines meanwhile.

        Errors as the TCP shell's: ``TransportError(reason="timeout")`` (the
        connection stays usable) or the reason the connection ended.
        """
        if self._pending:
            events, self._pending = self._pending, []
            return events
        self._check_socket()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            events = self._pump(deadline)
            if events:
                return events
            if not self._h3.open:
                self._close_socket()
                raise self._ended()
            if deadline is not None and time.monotonic() >= deadline:
                raise TransportError("no response event before the timeout", reason="timeout")

    def stream(self, data: bytes) -> list[Event]:
        """Feed one datagram the caller read from ``conn.socket``; may return no events.

        UDP has no end of stream, so ``b""`` is not EOF here: it only flushes
        the core's answers.
        """
        self._check_socket()
        events, self._pending = self._pending, []
        if data:
            events.extend(self._h3.receive_datagram(data, self._peer, time.monotonic()))
        events.extend(self._h3.handle_deadline(time.monotonic()))
        self._transmit()
        return events

    def handle_deadline(self) -> list[Event]:
        """For callers with their own loop: the time ``next_deadline()`` named has come."""
        return self.stream(b"")

    # -- closing -----------------------------------------------------------

    def close(self) -> None:
        """Send CONNECTION_CLOSE (best effort, UDP promises nothing) and close the socket."""
        if self._socket_closed:
            return
        try:
            self._h3.close()
            self._transmit()
        except (OSError, MintError):
            pass
        finally:
            self._close_socket()

    def __enter__(self) -> UDPConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------

    def _handshake(self, deadline: float | None) -> None:
        """Run the QUIC handshake until the server's HTTP/3 SETTINGS arrived (bounded).

        As on HTTP/2, extended CONNECT is only known from those SETTINGS.
        Events seen meanwhile wait for the first ``recv``.
        """
        try:
            self._transmit()
            while not self._h3.remote_settings_received:
                if not self._h3.open:
                    raise self._ended()
                if deadline is not None and time.monotonic() >= deadline:
                    raise TransportError(
                        "no HTTP/3 answer before the timeout (is UDP blocked?)", reason="timeout"
                    )
                self._pending.extend(self._pump(deadline))
        except BaseException:
            self.close()
            raise

    def _pump(self, deadline: float | None) -> list[Event]:
        """One wait: until a datagram, the core's deadline or ``deadline``, whichever is first."""
        wake = self._h3.next_deadline()
        if deadline is not None and (wake is None or deadline < wake):
            wake = deadline
        wait_ms = None if wake is None else max(0, math.ceil((wake - time.monotonic()) * 1000))
        ready = bool(self._poll.poll(wait_ms))
        # A deadline that passed while the caller was away is handled before the
        # datagrams that waited meanwhile: fed first, they would look fresh and
        # keep alive a connection whose idle timeout already ended it.
        events = self._h3.handle_deadline(time.monotonic())
        if ready:
            events.extend(self._read_all())
        events.extend(self._h3.handle_deadline(time.monotonic()))
        self._transmit()
        return events

    def _read_all(self) -> list[Event]:
        events: list[Event] = []
        sock, core, peer = self._socket, self._h3, self._peer
        for _ in range(_READ_BATCH):
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                events.extend(core.receive_data(b""))
                self._close_socket()
                raise transport_error(exc, "reading from the server") from exc
            events.extend(core.receive_datagram(data, peer, time.monotonic()))
        return events

    def _transmit(self) -> None:
        if self._socket_closed:
            return
        sock = self._socket
        for data, _ in self._h3.datagrams_to_send(time.monotonic()):
            try:
                sock.send(data)
            except OSError as exc:
                if exc.errno in _DROPPED:
                    continue
                if isinstance(exc, ConnectionRefusedError):
                    # An earlier datagram's ICMP error: reported by the next read.
                    continue
                self._close_socket()
                raise transport_error(exc, "writing to the server") from exc

    def _ended(self) -> MintError:
        failure = self._h3.failure
        if failure is None:
            return TransportError("the connection is closed", reason="closed")
        copy = type(failure)(str(failure), reason=failure.reason)
        copy.__cause__ = failure
        return copy

    def _check_socket(self) -> None:
        if self._socket_closed:
            raise TransportError("the connection is closed", reason="closed")

    def _close_socket(self) -> None:
        if not self._socket_closed:
            self._socket_closed = True
            with contextlib.suppress(OSError, KeyError, ValueError):
                self._poll.unregister(self._socket.fileno())
            with contextlib.suppress(OSError):
                self._socket.close()


def enlarge_buffers(sock: socket.socket) -> None:
    """Room for a congestion window's burst: the kernel's default drops datagrams early."""
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, _SOCKET_BUFFER)


def open_udp_socket(host: str, port: int) -> tuple[socket.socket, tuple[object, ...]]:
    """A non-blocking UDP socket connected to the first address ``host`` resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise transport_error(exc, f"resolving {host}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        enlarge_buffers(sock)
        sock.connect(address)
        sock.setblocking(False)
        peer: tuple[object, ...] = sock.getpeername()
    except OSError as exc:
        sock.close()
        raise transport_error(exc, f"connecting to {host}:{port}") from exc
    return sock, peer


def make_http3_core(
    plan: ConnectPlan,
    *,
    verify: bool,
    server_hostname: str | None,
    idle_timeout: float,
    max_datagram_size: int,
) -> HTTP3Core:
    configuration = client_configuration(
        server_hostname or plan.host,
        cafile=plan.cafile,
        verify=verify,
        idle_timeout=idle_timeout,
        max_datagram_size=max_datagram_size,
    )
    return HTTP3Core(authority(plan.scheme, plan.host, plan.port), configuration)


def connect_http3(
    plan: ConnectPlan,
    *,
    timeout: float | None,
    verify: bool,
    server_hostname: str | None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
) -> UDPConnection:
    """``mint.http.connect`` for ``protocols=("http3",)``: QUIC handshake and SETTINGS, bounded."""
    deadline = None if timeout is None else time.monotonic() + timeout
    core = make_http3_core(
        plan,
        verify=verify,
        server_hostname=server_hostname,
        idle_timeout=idle_timeout,
        max_datagram_size=max_datagram_size,
    )
    sock, peer = open_udp_socket(plan.host, plan.port)
    core.start(peer, time.monotonic())
    conn = UDPConnection(sock, core, scheme=plan.scheme, host=plan.host, port=plan.port, peer=peer)
    conn._handshake(deadline)
    return conn


__all__ = [
    "UDPConnection",
    "connect_http3",
    "enlarge_buffers",
    "make_http3_core",
    "open_udp_socket",
]
