"""Types of the optional C accelerator ``_speedups.c``; see ``_mask.py`` and ``codec.py``."""

from collections.abc import Callable
from typing import Any, TypeVar

from typing_extensions import Buffer

from mint.websocket.frames import Frame

_Owner = TypeVar("_Owner")

def apply_mask(data: Buffer, mask: Buffer, /) -> bytes: ...
def masked_frame(first_byte: int, key: int, payload: Buffer | str, /) -> bytes: ...
def configure_frames(
    text: type[object],
    binary: type[object],
    protocol_error: type[BaseException],
    ping: type[object],
    pong: type[object],
    /,
) -> None: ...
def decode_run(
    data: bytes,
    pos: int,
    frames: list[Frame],
    owner: _Owner,
    config: tuple[
        int,
        int,
        int | None,
        Callable[[int, bytes, int, int | None], bytes] | None,
        Callable[[_Owner, bytes, int], bytes],
        Callable[[_Owner, Exception], BaseException],
        tuple[
            Callable[[], tuple[int, Any, bytes] | None],
            Callable[[Any, bytes, int | None], bytes],
            Callable[[Exception], BaseException],
        ]
        | None,
        bool,
    ],
    /,
) -> tuple[int, int]: ...
