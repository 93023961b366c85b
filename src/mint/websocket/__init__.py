"""mint.websocket: WebSockets over an HTTP/1.1 or HTTP/2 ``mint.http`` connection."""

from mint.websocket.frames import Binary, Close, Frame, Ping, Pong, Text

__all__ = ["Binary", "Close", "Frame", "Ping", "Pong", "Text"]
