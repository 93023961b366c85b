"""The process-less core driven by the stdlib ``selectors`` module: your loop, mint's protocol.

    python examples/selectors_client.py ws://127.0.0.1:9000/chat            # HTTP/1.1
    python examples/selectors_client.py ws://127.0.0.1:8000/chat --http2    # h2c, two WebSockets

No ``recv`` from mint and no session layer: the loop waits on the socket
with a selector, reads what is there itself and hands it to
``conn.stream(data)``, which returns events (``Status``, ``Headers``,
``Data``, ...) tagged with the ref of the request they belong to.  With
``--http2`` two WebSockets share the one connection and the same loop.
Each sends a few messages, answers pings, prints the echoes, then closes.
"""

from __future__ import annotations

import selectors
import ssl
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mint import http, websocket
from mint.websocket import Close, Ping, Pong, Text, WebSocket

MESSAGES = ["hello", "from", "selectors"]


@dataclass
class Conversation:
    """One WebSocket's progress: its handshake answer, then its codec and what it received."""

    name: str
    ref: http.Ref
    status: int | None = None
    ws: WebSocket | None = None
    early: list[bytes] = field(default_factory=list)
    echoes: list[str] = field(default_factory=list)
    done: bool = False


def main(url: str, use_http2: bool) -> int:
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    host = parts.hostname or "127.0.0.1"
    protocols = ("http2",) if use_http2 else ("http1",)
    conn = http.connect(scheme, host, parts.port, protocols=protocols)
    names = ["one", "two"] if conn.version == "HTTP/2" else ["one"]
    talks = {}
    for name in names:
        ref = websocket.upgrade(parts.scheme, conn, f"{parts.path or '/'}?{name}")
        talks[ref] = Conversation(name, ref)
    print(f"connected over {conn.version}: {len(talks)} WebSocket(s) on one connection")

    selector = selectors.DefaultSelector()
    selector.register(conn.socket, selectors.EVENT_READ)
    while not all(talk.done for talk in talks.values()):
        tls_pending = isinstance(conn.socket, ssl.SSLSocket) and conn.socket.pending()
        if not tls_pending and not selector.select(timeout=10):
            print("no answer within 10 s", file=sys.stderr)
            return 1
        try:
            data = conn.socket.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError):
            continue
        for event in conn.stream(data):
            talk = talks.get(event.ref)
            if talk is not None:
                on_event(conn, talk, event)
        if not data:
            print("the server closed the connection", file=sys.stderr)
            return 1
    conn.close()
    for talk in talks.values():
        print(f"{talk.name}: {' '.join(talk.echoes)}")
    return 0


def on_event(conn: http.Connection, talk: Conversation, event: http.Event) -> None:
    match event:
        case http.Status(status=status):
            talk.status = status
        case http.Headers(headers=headers) if talk.ws is None:
            assert talk.status is not None
            talk.ws = websocket.new(conn, talk.ref, talk.status, headers)
            for message in MESSAGES:
                conn.stream_request_body(talk.ref, talk.ws.encode(Text(message)))
            for data in talk.early:
                on_bytes(conn, talk, data)
        case http.Data(data=data) if talk.ws is None:
            talk.early.append(data)  # WebSocket bytes glued to the handshake answer
        case http.Data(data=data):
            on_bytes(conn, talk, data)
        case http.Done() | http.Error():
            talk.done = True


def on_bytes(conn: http.Connection, talk: Conversation, data: bytes) -> None:
    assert talk.ws is not None
    ws = talk.ws
    for frame in ws.decode(data):
        match frame:
            case Text(data=text):
                print(f"{talk.name} < {text}")
                talk.echoes.append(text)
                if len(talk.echoes) == len(MESSAGES):
                    # END_STREAM rides on the Close over HTTP/2 (RFC 8441's orderly end).
                    end = conn.version == "HTTP/2"
                    conn.stream_request_body(talk.ref, ws.encode(Close(1000)), end_stream=end)
            case Ping(data=payload):
                conn.stream_request_body(talk.ref, ws.encode(Pong(payload)))
            case Close():
                talk.done = True  # both Close frames went by: the conversation is over


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], "--http2" in sys.argv[2:]))
