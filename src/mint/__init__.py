"""mint: a process-less WebSocket client over HTTP/1.1 and HTTP/2.

The library never starts a thread, task or timer.  All state lives in plain
objects the caller holds; the caller owns I/O, concurrency and failure policy.
"""

from mint.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HTTPError,
    MintError,
    ProtocolError,
    ProxyError,
    TransportError,
    UpgradeFailureError,
    WebSocketError,
)

__version__ = "0.1.0"

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HTTPError",
    "MintError",
    "ProtocolError",
    "ProxyError",
    "TransportError",
    "UpgradeFailureError",
    "WebSocketError",
    "__version__",
]
