"""The opening handshake: what the client asks for, and whether the answer is acceptable.

Pure functions over headers, free of I/O, so every rule can be tested with
hand-written header lists.  HTTP/1.1 (RFC 6455 section 4) and HTTP/2 (RFC 8441)
share everything except the key/accept exchange and the success status.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mint.errors import UpgradeFailureError, WebSocketError
from mint.websocket.extensions.base import Extension, Params

WEBSOCKET_VERSION = "13"
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Headers the handshake owns; a caller who passes one of these would silently
# break the negotiation, so it is refused instead.
_RESERVED_HEADERS = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-accept",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def generate_key() -> str:
    """Sixteen bytes from the OS CSPRNG, base64-encoded, as RFC 6455 4.1 requires."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept value a server must answer for ``key``."""
    digest = hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(slots=True)
class UpgradeRequest:
    """What ``upgrade`` offered, kept until ``new`` checks the server's answer."""

    http2: bool
    key: str | None
    subprotocols: tuple[str, ...]
    extensions: tuple[Extension, ...]
    headers: list[tuple[str, str]] = field(default_factory=list)


def _is_token(value: str) -> bool:
    return bool(value) and all(char in _TOKEN_CHARS for char in value)


def _check_user_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    checked: list[tuple[str, str]] = []
    for item in headers:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"headers must be (name, value) pairs of str, got {item!r}")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header names and values must be str, got {item!r}")
        if name.lower() in _RESERVED_HEADERS:
            raise WebSocketError(
                f"the {name!r} header is set by the handshake itself; use upgrade()'s "
                "subprotocols= and extensions= arguments instead",
                reason="reserved_header",
            )
        checked.append((name, value))
    return checked


def format_extension_offers(extensions: Sequence[Extension]) -> str:
    """Render offers as one Sec-WebSocket-Extensions value, in preference order."""
    return ", ".join(_format_extension(ext.name, ext.offer()) for ext in extensions)


def _format_extension(name: str, params: Params) -> str:
    parts = [name]
    for key, value in params:
        parts.append(key if value is None else f"{key}={value}")
    return "; ".join(parts)


def build_request(
    *,
    http2: bool,
    headers: Iterable[tuple[str, str]],
    subprotocols: Sequence[str],
    extensions: Sequence[Extension],
) -> UpgradeRequest:
    """Build the handshake headers for one upgrade and remember what was offered."""
    user_headers = _check_user_headers(headers)
    for protocol in subprotocols:
        if not isinstance(protocol, str) or not _is_token(protocol):
            raise WebSocketError(
                f"subprotocol {protocol!r} is not a valid HTTP token", reason="bad_subprotocol"
            )
    for extension in extensions:
        if not isinstance(extension, Extension):
            raise TypeError(f"extensions must be Extension instances, got {extension!r}")

    key: str | None
    if http2:
        # RFC 8441 section 5: no Upgrade, Connection or Sec-WebSocket-Key on HTTP/2.
        key = None
        handshake = [("sec-websocket-version", WEBSOCKET_VERSION)]
        if subprotocols:
            handshake.append(("sec-websocket-protocol", ", ".join(subprotocols)))
        if extensions:
            handshake.append(("sec-websocket-extensions", format_extension_offers(extensions)))
    else:
        key = generate_key()
        handshake = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", WEBSOCKET_VERSION),
        ]
        if subprotocols:
            handshake.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
        if extensions:
            handshake.append(("Sec-WebSocket-Extensions", format_extension_offers(extensions)))
    return UpgradeRequest(
        http2=http2,
        key=key,
        subprotocols=tuple(subprotocols),
        extensions=tuple(extensions),
        headers=handshake + user_headers,
    )


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    subprotocol: str | None
    extensions: list[Extension]


def check_response(
    request: UpgradeRequest, status: int, headers: Sequence[tuple[str, str]]
) -> HandshakeResult:
    """Validate the server's answer to ``request``; return what was agreed.

    Raises ``UpgradeFailureError`` for a refusal (so the caller can read the
    status and headers) and ``WebSocketError`` for an answer that claims success
    but breaks the protocol.
    """
    if request.http2:
        if not 200 <= status < 300:
            raise UpgradeFailureError(status, headers)
    else:
        if status != 101:
            raise UpgradeFailureError(status, headers)
        _check_h1_upgrade_headers(request, headers)
    subprotocol = _check_subprotocol(
        request.subprotocols, _values(headers, "sec-websocket-protocol")
    )
    extensions = negotiate_extensions(
        request.extensions, _values(headers, "sec-websocket-extensions")
    )
    return HandshakeResult(subprotocol=subprotocol, extensions=extensions)


def _values(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def _tokens(values: list[str]) -> list[str]:
    return [token.strip().lower() for value in values for token in value.split(",")]


def _check_h1_upgrade_headers(request: UpgradeRequest, headers: Sequence[tuple[str, str]]) -> None:
    if "websocket" not in _tokens(_values(headers, "upgrade")):
        raise WebSocketError(
            "the 101 response has no 'Upgrade: websocket' header", reason="bad_upgrade_header"
        )
    if "upgrade" not in _tokens(_values(headers, "connection")):
        raise WebSocketError(
            "the 101 response has no 'Connection: Upgrade' header", reason="bad_connection_header"
        )
    accepts = _values(headers, "sec-websocket-accept")
    assert request.key is not None
    expected = accept_for(request.key)
    if len(accepts) != 1 or accepts[0].strip() != expected:
        raise WebSocketError(
            f"Sec-WebSocket-Accept is {accepts!r}, expected {expected!r}: the server did not "
            "answer this handshake",
            reason="bad_accept",
        )


def _check_subprotocol(offered: tuple[str, ...], values: list[str]) -> str | None:
    if not values:
        return None
    chosen = [token.strip() for value in values for token in value.split(",")]
    if len(chosen) != 1:
        raise WebSocketError(
            f"the server chose several subprotocols {chosen!r}; it must choose one",
            reason="bad_subprotocol",
        )
    if chosen[0] not in offered:
        raise WebSocketError(
            f"the server chose subprotocol {chosen[0]!r}, which was not offered "
            f"(offered: {list(offered)!r})",
            reason="bad_subprotocol",
        )
    return chosen[0]


def parse_extensions(values: list[str]) -> list[tuple[str, Params]]:
    """Parse Sec-WebSocket-Extensions values (RFC 6455 section 9.1 grammar).

    Quoted parameter values are unquoted here, so extensions compare plain
    strings whichever form the server used (RFC 6455 9.1 allows both).
    """
    result: list[tuple[str, Params]] = []
    text = ",".join(values)
    position = 0
    length = len(text)

    def fail(why: str) -> WebSocketError:
        return WebSocketError(
            f"malformed Sec-WebSocket-Extensions {text!r}: {why}", reason="extension_negotiation"
        )

    def skip_spaces() -> None:
        nonlocal position
        while position < length and text[position] in " \t":
            position += 1

    def read_token() -> str:
        nonlocal position
        start = position
        while position < length and text[position] in _TOKEN_CHARS:
            position += 1
        if start == position:
            raise fail(f"expected a token at offset {start}")
        return text[start:position]

    def read_quoted() -> str:
        nonlocal position
        position += 1  # opening quote
        chars: list[str] = []
        while position < length and text[position] != '"':
            if text[position] == "\\":
                position += 1
                if position >= length:
                    break
            chars.append(text[position])
            position += 1
        if position >= length:
            raise fail("unterminated quoted string")
        position += 1  # closing quote
        return "".join(chars)

    while True:
        skip_spaces()
        if position < length and text[position] == ",":
            position += 1  # empty list elements are allowed by the # rule
            continue
        if position >= length:
            break
        name = read_token()
        params: Params = []
        skip_spaces()
        while position < length and text[position] == ";":
            position += 1
            skip_spaces()
            key = read_token()
            skip_spaces()
            value: str | None = None
            if position < length and text[position] == "=":
                position += 1
                skip_spaces()
                if position < length and text[position] == '"':
                    value = read_quoted()
                    if not _is_token(value):
                        raise fail(f"quoted value {value!r} of {key!r} is not a token")
                else:
                    value = read_token()
                skip_spaces()
            params.append((key, value))
        result.append((name, params))
        skip_spaces()
        if position < length and text[position] != ",":
            raise fail(f"unexpected {text[position]!r} at offset {position}")
    return result


def negotiate_extensions(offered: Sequence[Extension], values: list[str]) -> list[Extension]:
    """Match the server's answer against the offers; return the negotiated extensions.

    Each answered extension is tried against the offers of the same name, in
    the order they were offered, so a fallback list (the same extension offered
    twice with different parameters) is decided by the server's answer.
    """
    answered = parse_extensions(values)
    negotiated: list[Extension] = []
    seen: set[str] = set()
    claimed_rsv = 0
    for name, params in answered:
        if name in seen:
            raise WebSocketError(
                f"the server accepted extension {name!r} twice", reason="extension_negotiation"
            )
        seen.add(name)
        candidates = [ext for ext in offered if ext.name == name]
        if not candidates:
            raise WebSocketError(
                f"the server accepted extension {name!r}, which was not offered",
                reason="extension_negotiation",
            )
        errors: list[WebSocketError] = []
        for candidate in candidates:
            try:
                accepted = candidate.accept(list(params))
            except WebSocketError as exc:
                errors.append(exc)
                continue
            break
        else:
            raise errors[-1]
        if accepted.rsv_mask & claimed_rsv:
            raise WebSocketError(
                f"extension {name!r} uses RSV bits another negotiated extension already uses",
                reason="extension_negotiation",
            )
        claimed_rsv |= accepted.rsv_mask
        negotiated.append(accepted)
    return negotiated
