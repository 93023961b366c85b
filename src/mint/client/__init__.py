"""mint.client: WebSocket sessions and pooled requests in one line, blocking and asyncio.

The layer over the process-less core (``mint.http``, ``mint.websocket``),
built on its public API only::

    from mint import client

    with client.connect("ws://127.0.0.1:9000/chat") as ws:
        ws.send("hello")
        reply = ws.recv(timeout=5)

    with client.Client() as c:  # one HTTP/2 connection per origin, shared
        a = c.connect("wss://example.test/a")
        b = c.connect("wss://example.test/b")
        r = c.request("GET", "https://example.test/status")

``mint.client.aio`` has the same names for asyncio, awaited.

Like the core, this layer starts no thread and no task.  It waits, answers
pings, sends keepalive pings and reconnects only inside the calls you make:
whichever caller is waiting reads for every session on the connection.
Keepalive pings therefore go out while some caller is inside ``recv``,
``ping``, ``close``, a ``send`` held back by HTTP/2 flow control, or
``Client.request`` (or iterating a session); a program that makes no call
sends no ping, and notices a dead peer at its next call.
"""

from mint.client.options import Backoff
from mint.client.routing import Response
from mint.client.sync import Client, Reconnecting, Session, connect, reconnecting
from mint.errors import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK

__all__ = [
    "Backoff",
    "Client",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Reconnecting",
    "Response",
    "Session",
    "connect",
    "reconnecting",
]
