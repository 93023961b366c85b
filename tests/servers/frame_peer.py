"""A scripted HTTP/1.1 WebSocket peer that answers frame by frame, for ``scripted_server``.

``converse(connection, answer)`` completes the handshake, then reads the
client's masked frames as they come and writes whatever ``answer(opcode,
payload)`` returns for each, until the client closes the connection.  With
it a test decides, frame by frame, what a misbehaving or silent server does:
answer pings or not, answer the Close (and then close the connection) or not.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

from .session_servers import accept_websocket, read_until_eof

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class FrameReader:
    """Splits the client's byte stream into whole (opcode, unmasked payload) frames."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        while True:
            frame, used = _parse(self._buffer)
            if frame is None:
                return frames
            frames.append(frame)
            self._buffer = self._buffer[used:]


def _parse(data: bytes) -> tuple[tuple[int, bytes] | None, int]:
    if len(data) < 2:
        return None, 0
    opcode, length, pos = data[0] & 0x0F, data[1] & 0x7F, 2
    if length == 126:
        if len(data) < 4:
            return None, 0
        (length,) = struct.unpack_from("!H", data, 2)
        pos = 4
    elif length == 127:
        if len(data) < 10:
            return None, 0
        (length,) = struct.unpack_from("!Q", data, 2)
        pos = 10
    if len(data) < pos + 4 + length:
        return None, 0
    mask, payload = data[pos : pos + 4], data[pos + 4 : pos + 4 + length]
    unmasked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return (opcode, unmasked), pos + 4 + length


def frame_heads(data: bytes) -> list[tuple[bool, int, bytes]]:
    """(fin, opcode, payload) of each whole client frame; payloads of 126 bytes and more
    (data frames only: control frames are shorter) are left out, as ``b""``, unread."""
    heads: list[tuple[bool, int, bytes]] = []
    pos = 0
    while pos + 2 <= len(data):
        fin, opcode, length = bool(data[pos] & 0x80), data[pos] & 0x0F, data[pos + 1] & 0x7F
        start = pos + 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, start)
            start += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, start)
            start += 8
        end = start + 4 + length
        if end > len(data):
            break
        payload = b""
        if length < 126:
            mask = data[start : start + 4]
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[start + 4 : end]))
        heads.append((fin, opcode, payload))
        pos = end
    return heads


def server_frame(opcode: int, payload: bytes = b"") -> bytes:
    """An unmasked server frame (payloads under 126 bytes: control frames and short texts)."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


def close_frame(code: int) -> bytes:
    return server_frame(CLOSE, struct.pack("!H", code))


def converse(
    connection: socket.socket, answer: Callable[[int, bytes], bytes | None]
) -> list[tuple[int, bytes]]:
    """Accept the upgrade, then answer each client frame until EOF; returns the frames seen.

    Once the client's Close has been answered the conversation is over, as
    RFC 6455 has it: the server closes the TCP connection first (on return).
    """
    accept_websocket(connection)
    reader = FrameReader()
    seen: list[tuple[int, bytes]] = []
    with contextlib.suppress(ConnectionResetError):
        while data := connection.recv(65536):
            for opcode, payload in reader.feed(data):
                seen.append((opcode, payload))
                reply = answer(opcode, payload)
                if reply:
                    connection.sendall(reply)
                    if opcode == CLOSE:
                        return seen
    return seen


class BurstsThenClose:
    """A scripted server for a session's ``recv`` waiting on an HTTP/1.1 tunnel.

    Once ``go`` is set: a ping and the messages ``m0`` to ``m2`` in one write;
    once ``second`` is set: ``m3``, ``m4`` and a Close (1000) in another, then
    the end of TCP (the server closes first, RFC 6455 section 7.1.1).  What the
    client sent meanwhile is kept in ``received``.
    """

    MESSAGES = [f"m{i}" for i in range(5)]

    def __init__(self) -> None:
        self.go = threading.Event()
        self.second = threading.Event()
        self.received = b""

    def __call__(self, connection: socket.socket) -> None:
        accept_websocket(connection)
        self.go.wait(10)
        texts = [server_frame(TEXT, message.encode()) for message in self.MESSAGES]
        connection.sendall(server_frame(PING, b"beat") + b"".join(texts[:3]))
        self.second.wait(10)
        connection.sendall(b"".join(texts[3:]) + close_frame(1000))
        connection.shutdown(socket.SHUT_WR)
        self.received = read_until_eof(connection)

    def release(self) -> None:
        """Let the script run to its end (a failed test must not leave it waiting)."""
        self.go.set()
        self.second.set()


__all__ = [
    "BINARY",
    "CLOSE",
    "PING",
    "PONG",
    "TEXT",
    "BurstsThenClose",
    "FrameReader",
    "close_frame",
    "converse",
    "frame_heads",
    "server_frame",
]
