"""WebSocket extensions: the ``Extension`` API and ``PerMessageDeflate`` (RFC 7692)."""

from mint.websocket.extensions.base import RSV1, RSV2, RSV3, Extension, InflateHook, Params
from mint.websocket.extensions.deflate import PerMessageDeflate

__all__ = ["RSV1", "RSV2", "RSV3", "Extension", "InflateHook", "Params", "PerMessageDeflate"]
