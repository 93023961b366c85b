"""The blocking shell's side of proxies: moving a ``Tunnel``'s bytes, and TLS inside TLS.

Only ``connect`` through a proxy comes here; a direct connection never
touches this module, so its reads and writes cost what they did before.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from typing import TYPE_CHECKING

from mint.http._setup import transport_error
from mint.http.proxy import Proxy, is_ip_address, open_tunnel

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

_READ_SIZE = 64 * 1024


def tunnel_through(
    sock: socket.socket,
    proxy: Proxy,
    proxy_context: ssl.SSLContext | None,
    host: str,
    port: int,
    deadline: float | None,
) -> tuple[socket.socket, bytes]:
    """Turn ``sock`` (connected to ``proxy``) into a tunnel to ``host``:``port``.

    Returns the socket to speak to the target over (the TLS socket to an
    ``https://`` proxy, else ``sock``) and the target's bytes that came
    with the proxy's answer.  Every wait is bounded by ``deadline``.
    Raises ``ProxyError`` when the proxy refuses, ``TransportError`` when the
    network fails, ``ValueError`` for a target the proxy protocol cannot
    name; the socket is closed then.
    """
    try:
        return _tunnel(sock, proxy, proxy_context, host, port, deadline)
    except BaseException:
        sock.close()  # the TLS layer over it, if any, was closed on the way out
        raise


def _tunnel(
    sock: socket.socket,
    proxy: Proxy,
    proxy_context: ssl.SSLContext | None,
    host: str,
    port: int,
    deadline: float | None,
) -> tuple[socket.socket, bytes]:
    doing = f"opening a tunnel through the proxy {proxy.url}"
    try:
        if proxy_context is not None:
            sock.settimeout(_remaining(deadline))
            sock = proxy_context.wrap_socket(sock, server_hostname=proxy.host)
        return _exchange(sock, proxy, host, port, deadline)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ValueError) and not isinstance(exc, ssl.SSLError):
            raise  # a target the proxy protocol cannot name: the caller's argument
        raise transport_error(exc, doing) from exc


def _exchange(
    sock: socket.socket, proxy: Proxy, host: str, port: int, deadline: float | None
) -> tuple[socket.socket, bytes]:
    try:
        if proxy.resolve_locally and not is_ip_address(host):
            host = _resolve(host, port)
        tunnel = open_tunnel(proxy, host, port)
        while True:
            outgoing = tunnel.data_to_send()
            if outgoing:
                sock.settimeout(_remaining(deadline))
                sock.sendall(outgoing)
            if tunnel.ready:
                return sock, tunnel.leftover
            sock.settimeout(_remaining(deadline))
            try:
                data = sock.recv(_READ_SIZE)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b""
            tunnel.receive_data(data)
    except BaseException:
        sock.close()
        raise


def _resolve(host: str, port: int) -> str:
    """The first address ``host`` resolves to, for a ``socks5://`` proxy that gets no names."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise transport_error(exc, f"resolving {host}") from exc
    return str(infos[0][4][0])


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), 0.001)


class TunneledTLSSocket(socket.socket):
    """TLS to the target inside the TLS to an ``https://`` proxy.

    An ``SSLSocket`` cannot wrap another one, so the inner TLS runs in an
    ``ssl.SSLObject`` over memory BIOs whose ciphertext goes through the outer
    ``SSLSocket``.  It is a ``socket.socket`` (over a duplicate of the outer
    socket's descriptor) so that callers who ``poll`` ``conn.socket`` or shut
    it down get the real connection; ``recv``, ``send`` and the blocking mode
    are redirected to the layers.  Non-blocking, it behaves as an
    ``SSLSocket`` does: ``SSLWantReadError`` / ``SSLWantWriteError`` mean
    wait and retry the same call (a send that raised ``SSLWantWriteError``
    has taken its bytes and reports them on the retry).
    """

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext, server_hostname: str) -> None:
        super().__init__(fileno=os.dup(outer.fileno()))
        self._outer = outer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )
        self._unsent = bytearray()
        #: Bytes a ``send`` took whose ciphertext is not all out yet (see the class docstring).
        self._accepted: int | None = None
        #: The inner TLS wanted more than the outer layer had: what ``_incoming``
        #: holds is part of a record, and only the kernel can bring the rest.
        self._starved = False

    # -- blocking mode: the outer socket's is the one that matters ------------------

    def settimeout(self, value: float | None) -> None:
        self._outer.settimeout(value)
        super().settimeout(value)

    def setblocking(self, flag: bool) -> None:
        self._outer.setblocking(flag)
        super().setblocking(flag)

    # -- TLS -----------------------------------------------------------------------

    def do_handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
                continue
            self._flush()
            return

    def selected_alpn_protocol(self) -> str | None:
        return self._tls.selected_alpn_protocol()

    def getpeercert(self) -> dict[str, object] | None:
        cert: dict[str, object] | None = self._tls.getpeercert()  # type: ignore[assignment]
        return cert

    def version(self) -> str | None:
        return self._tls.version()

    def pending(self) -> int:
        """Bytes held above the kernel, plain or encrypted, in either layer: poll misses them.

        Part of a record waiting for its rest does not count: reporting it
        would have a caller that polls first spin until the rest arrived.
        """
        waiting = 0 if self._starved else self._incoming.pending
        return self._tls.pending() + waiting + self._outer.pending()

    # -- I/O -------------------------------------------------------------------------

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        while True:
            try:
                data = self._tls.read(bufsize)
            except ssl.SSLWantReadError:
                if self._incoming.eof:
                    return b""
                self._flush()
                self._fill()
                continue
            except ssl.SSLZeroReturnError:
                return b""
            if self._outgoing.pending:
                self._flush()  # a TLS 1.3 key update answered, say
            return data

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        if self._unsent or self._outgoing.pending:
            if not self._flush():
                raise ssl.SSLWantWriteError("the proxy connection takes no more now")
            if self._accepted is not None:
                taken, self._accepted = self._accepted, None
                return taken
        taken = self._tls.write(data)
        if not self._flush():
            self._accepted = taken
            raise ssl.SSLWantWriteError("the proxy connection takes no more now")
        return taken

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view) :]

    def close(self) -> None:
        self._outer.close()
        super().close()

    def _fill(self) -> None:
        """Move one read of ciphertext from the outer layer into the inner TLS."""
        try:
            data = self._outer.recv(_READ_SIZE)
        except BlockingIOError as exc:
            self._starved = True
            raise ssl.SSLWantReadError("nothing to read from the proxy connection") from exc
        except ssl.SSLWantReadError:
            self._starved = True
            raise
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            data = b""
        self._starved = False
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    def _flush(self) -> bool:
        """Send the inner TLS's ciphertext through the outer layer; False if some must wait."""
        if self._outgoing.pending:
            self._unsent += self._outgoing.read()
        while self._unsent:
            try:
                sent = self._outer.send(self._unsent)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return False
            del self._unsent[:sent]
        return True


def wrap_tunneled(
    sock: socket.socket, context: ssl.SSLContext, server_hostname: str
) -> socket.socket:
    """TLS to the target over ``sock``: an ``SSLSocket``, or the layered one over a TLS proxy."""
    if isinstance(sock, ssl.SSLSocket):
        tls = TunneledTLSSocket(sock, context, server_hostname)
        try:
            tls.do_handshake()
        except BaseException:
            tls.close()
            raise
        return tls
    return context.wrap_socket(sock, server_hostname=server_hostname)


__all__ = ["TunneledTLSSocket", "tunnel_through", "wrap_tunneled"]
