"""Which origins to try over HTTP/3: ``Alt-Svc`` answers remembered, failed attempts too.

A server reached over TCP announces HTTP/3 with ``Alt-Svc: h3=":443";
ma=86400`` (RFC 7838, RFC 9114 section 3.1.1).  The client remembers it per
origin, so later sessions to that origin dial QUIC first.  An attempt that
fails (UDP blocked, nothing listening, a QUIC handshake that never ends) is
remembered as well, for a while, so every later session does not pay the
same bounded wait again before falling back to TCP.

No I/O and no clock: ``now`` comes from the caller, as everywhere in the
session layer's sans-I/O parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from mint.errors import WebSocketError

#: False: never; True: always try HTTP/3 first on https; "auto": only where Alt-Svc announced it.
HTTP3Preference: TypeAlias = bool | Literal["auto"]

Origin = tuple[str, str, int]

#: RFC 7838 section 3.1: ``ma`` defaults to 24 hours.
DEFAULT_MAX_AGE = 86400.0
#: How long an origin whose HTTP/3 attempt failed goes straight to TCP.
BROKEN_FOR = 300.0


@dataclass(frozen=True, slots=True)
class AltService:
    """One ``h3`` alternative: the UDP port to dial on the same host, and for how long."""

    port: int
    max_age: float


def parse_alt_svc(values: Sequence[str]) -> list[AltService] | None:
    """The ``h3`` alternatives of ``Alt-Svc`` header values; ``None`` for ``clear``.

    Only alternatives on the origin's own host are kept (``h3=":8443"``, or
    ``h3="example.com:8443"`` naming the same host is not checked here: an
    authority with a host is skipped): connecting elsewhere would need the
    certificate checks RFC 7838 section 2.1 describes, for little gain.
    Malformed entries are skipped, never fatal: the header is advice.
    """
    found: list[AltService] = []
    for value in values:
        if value.strip().lower() == "clear":
            return None
        for entry in _split_outside_quotes(value, ","):
            parts = [part.strip() for part in _split_outside_quotes(entry, ";")]
            if not parts or "=" not in parts[0]:
                continue
            protocol, _, authority = parts[0].partition("=")
            if protocol.strip() != "h3":
                continue
            authority = authority.strip().strip('"')
            host, _, port_text = authority.rpartition(":")
            if host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
                continue
            max_age = DEFAULT_MAX_AGE
            for parameter in parts[1:]:
                name, _, number = parameter.partition("=")
                if name.strip().lower() == "ma":
                    try:
                        max_age = float(int(number.strip().strip('"')))
                    except ValueError:
                        continue
            found.append(AltService(int(port_text), max_age))
    return found


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return [piece for piece in pieces if piece.strip()]


class AltSvcMemory:
    """Per origin: the announced HTTP/3 port (until it expires), and recent failures."""

    def __init__(self) -> None:
        self._h3: dict[Origin, tuple[int, float]] = {}
        self._broken: dict[Origin, float] = {}

    def learn(self, origin: Origin, headers: Sequence[tuple[str, str]], now: float) -> None:
        """Read a response's ``Alt-Svc`` (https origins only: QUIC is always TLS)."""
        if origin[0] != "https":
            return
        values = [value for name, value in headers if name.lower() == "alt-svc"]
        if not values:
            return
        services = parse_alt_svc(values)
        if not services:
            self._h3.pop(origin, None)  # "clear", or nothing usable any more
            return
        service = services[0]  # the server lists them in its order of preference
        self._h3[origin] = (service.port, now + service.max_age)

    def announced_port(self, origin: Origin, now: float) -> int | None:
        entry = self._h3.get(origin)
        if entry is None:
            return None
        if now >= entry[1]:
            del self._h3[origin]
            return None
        return entry[0]

    def mark_broken(self, origin: Origin, now: float) -> None:
        self._broken[origin] = now + BROKEN_FOR

    def http3_port(self, origin: Origin, preference: HTTP3Preference, now: float) -> int | None:
        """The UDP port to try HTTP/3 on for ``origin`` now, or None to go over TCP."""
        if preference is False or origin[0] != "https":
            return None
        until = self._broken.get(origin)
        if until is not None:
            if now < until:
                return None
            del self._broken[origin]
        announced = self.announced_port(origin, now)
        if announced is not None:
            return announced
        return origin[2] if preference is True else None


def check_preference(http3: object) -> HTTP3Preference:
    """The ``http3=`` option, checked before any I/O like ``http2=``."""
    if http3 is True or http3 is False:
        return http3
    if http3 == "auto":
        return "auto"
    raise WebSocketError(
        f"http3 must be True, False or 'auto', not {http3!r}", reason="invalid_argument"
    )


__all__ = [
    "BROKEN_FOR",
    "AltService",
    "AltSvcMemory",
    "HTTP3Preference",
    "check_preference",
    "parse_alt_svc",
]
