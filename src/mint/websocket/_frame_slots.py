"""Building decoded Text and Binary frames without running their dataclass ``__init__``.

``Text`` and ``Binary`` are frozen slotted dataclasses, so their generated
``__init__`` is a Python function that stores each field through
``object.__setattr__``.  Per frame, on CPython 3.11 (a 100-byte Binary):

* ``Binary(data)`` or ``Binary(data, True)``: about 315 ns;
* ``object.__new__(Binary)`` then ``object.__setattr__`` for each field:
  about 245 ns (each call goes through the generic attribute lookup);
* ``object.__new__(Binary)`` then each slot's member descriptor ``__set__``
  (what this module provides): about 185 ns.

The last is the fastest clean way in pure Python: no private attribute, no
copy of the class's internals, and the objects are the very same frozen,
hashable, ``match``-able dataclass instances (the descriptors are the ones
the class itself uses).  The decoder uses it on its hot paths only.

The shortcut is only valid while the frames keep exactly the fields ``data``
and ``fin`` stored in slots; that is checked here at import, and when it does
not hold ``SLOTS_OK`` is False and the decoder uses the constructors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MemberDescriptorType
from typing import cast

from mint.websocket.frames import Binary, Text

SlotSetter = Callable[[object, object], None]


def _slot_setters(cls: type) -> tuple[SlotSetter, SlotSetter] | None:
    if [field.name for field in dataclasses.fields(cls)] != ["data", "fin"]:
        return None
    data, fin = cls.__dict__.get("data"), cls.__dict__.get("fin")
    if not isinstance(data, MemberDescriptorType) or not isinstance(fin, MemberDescriptorType):
        return None
    return data.__set__, fin.__set__


def _unused_setter(instance: object, value: object) -> None:
    raise AssertionError("frame slots are unavailable: SLOTS_OK is False")


_text_setters = _slot_setters(Text)
_binary_setters = _slot_setters(Binary)

#: True when the setters below may be used.
SLOTS_OK = _text_setters is not None and _binary_setters is not None

set_text_data, set_text_fin = _text_setters or (_unused_setter, _unused_setter)
set_binary_data, set_binary_fin = _binary_setters or (_unused_setter, _unused_setter)

#: ``object.__new__``, typed for the two frame classes it allocates.
new_data_frame = cast("Callable[[type[Text] | type[Binary]], Text | Binary]", object.__new__)
