"""The README's "Writing an extension" example, negotiated and used against a real socket peer.

``XorExtension`` is a toy (XOR is no security), small enough to show every
part of the API: an offer with a parameter, validation of the answer, a
negotiated instance with its own state, and frame hooks that own an RSV bit.
"""

from __future__ import annotations

import socket

import pytest

from mint import http, websocket
from mint.errors import WebSocketError
from mint.websocket import Binary, Close, Text
from mint.websocket.extensions import RSV2, Extension, Params
from mint.websocket.handshake import accept_for
from servers.mint_client import Client, Mailbox
from servers.websockets_echo import read_request_head, scripted_server


# --- the example, as the README shows it -------------------------------------------------
class XorExtension(Extension):
    """x-xor: every data frame's payload XORed with one byte, flagged by RSV2."""

    name = "x-xor"
    rsv_mask = RSV2

    def __init__(self, key: int = 0x5A) -> None:
        if not 1 <= key <= 255:
            raise ValueError("key must be 1..255")
        self.key = key
        self.table = bytes(value ^ key for value in range(256))

    def offer(self) -> Params:
        return [("key", str(self.key))]

    def accept(self, params: Params) -> Extension:
        answered = dict(params)
        if len(answered) != len(params) or set(answered) - {"key"}:
            raise WebSocketError(f"bad x-xor answer {params}", reason="extension_negotiation")
        value = answered.get("key") or str(self.key)
        if not value.isdigit() or not 1 <= int(value) <= 255:
            raise WebSocketError(f"bad x-xor key {value!r}", reason="extension_negotiation")
        return XorExtension(int(value))  # a fresh instance holds this connection's state

    def encode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, *, transform: bool = True
    ) -> tuple[bytes, int]:
        return payload.translate(self.table), rsv | RSV2

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        if not rsv & RSV2:
            return payload, rsv  # this frame was sent untransformed
        return payload.translate(self.table), rsv & ~RSV2


# -------------------------------------------------------------------------------------------


def _read_frame(connection: socket.socket) -> tuple[int, bytes]:
    """Read one masked client frame (payload < 126 bytes); return (first byte, unmasked payload)."""
    head = connection.recv(2, socket.MSG_WAITALL)
    length = head[1] & 0x7F
    key = connection.recv(4, socket.MSG_WAITALL)
    masked = connection.recv(length, socket.MSG_WAITALL) if length else b""
    return head[0], bytes(byte ^ key[index % 4] for index, byte in enumerate(masked))


def test_example_extension_negotiates_and_transforms_both_ways() -> None:
    seen: dict[str, object] = {}

    def xor_echo_server(connection: socket.socket) -> None:
        head = read_request_head(connection)
        seen["offer"] = head["sec-websocket-extensions"]
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_for(head["sec-websocket-key"]).encode() + b"\r\n"
            b"Sec-WebSocket-Extensions: x-xor; key=7\r\n\r\n"
        )
        first, payload = _read_frame(connection)
        seen["first byte"] = first
        seen["wire payload"] = payload
        # Echo the still-XORed payload back with RSV2, as an x-xor server would.
        connection.sendall(bytes([first, len(payload)]) + payload)
        connection.sendall(b"\x82\x03raw")  # RSV2 clear: the client must leave it alone
        _read_frame(connection)  # the client's close
        connection.sendall(b"\x88\x02\x03\xe8")

    with scripted_server(xor_echo_server) as port:
        conn = http.connect("http", "127.0.0.1", port)
        client = Client.on(Mailbox(conn), "ws", "/", extensions=[XorExtension(0x21)])
        (negotiated,) = client.ws.extensions
        assert isinstance(negotiated, XorExtension) and negotiated.key == 7
        client.send(Text("hello"))
        assert client.receive(2) == [Text("hello"), Binary(b"raw")]
        assert client.close() == Close(1000, "")
        conn.close()
    assert seen["offer"] == "x-xor; key=33"
    assert seen["first byte"] == 0x80 | 0x20 | 0x1  # FIN, RSV2, text
    assert seen["wire payload"] == bytes(byte ^ 7 for byte in b"hello")


def test_example_extension_rejects_a_bad_answer() -> None:
    def bad_answer(connection: socket.socket) -> None:
        head = read_request_head(connection)
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_for(head["sec-websocket-key"]).encode() + b"\r\n"
            b"Sec-WebSocket-Extensions: x-xor; key=700\r\n\r\n"
        )

    with scripted_server(bad_answer) as port:
        conn = http.connect("http", "127.0.0.1", port)
        ref = websocket.upgrade("ws", conn, "/", [], extensions=[XorExtension()])
        status, headers, _, _ = Mailbox(conn).response(ref)
        with pytest.raises(WebSocketError, match="bad x-xor key") as info:
            websocket.new(conn, ref, status, headers)
        assert info.value.reason == "extension_negotiation"
        conn.close()
