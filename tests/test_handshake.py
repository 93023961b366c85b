"""The opening handshake's rules, checked on hand-written header lists."""

from __future__ import annotations

import base64

import pytest

from mint.errors import UpgradeFailureError, WebSocketError
from mint.websocket.extensions.base import RSV1, RSV2, Extension, Params
from mint.websocket.handshake import (
    accept_for,
    build_request,
    check_response,
    generate_key,
    negotiate_extensions,
    parse_extensions,
)


class Tagging(Extension):
    """A test extension that accepts only answers naming a parameter it offered."""

    name = "x-tag"
    rsv_mask = RSV2

    def __init__(self, *params: str) -> None:
        self.params = params
        self.accepted: Params | None = None

    def offer(self) -> Params:
        return [(param, None) for param in self.params]

    def accept(self, params: Params) -> Extension:
        for key, _ in params:
            if key not in self.params:
                raise WebSocketError(f"unoffered {key}", reason="extension_negotiation")
        negotiated = Tagging(*self.params)
        negotiated.accepted = params
        return negotiated


class OtherRsv1(Extension):
    name = "x-other"
    rsv_mask = RSV1

    def offer(self) -> Params:
        return []

    def accept(self, params: Params) -> Extension:
        return self


class ClashingRsv2(OtherRsv1):
    name = "x-clash"
    rsv_mask = RSV2


def test_rfc6455_sample_accept_value() -> None:
    # RFC 6455 section 1.3's worked example.
    assert accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_keys_are_sixteen_random_bytes() -> None:
    keys = {generate_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(base64.b64decode(key)) == 16 for key in keys)


def test_http1_request_headers_in_conventional_casing() -> None:
    request = build_request(
        http2=False,
        headers=[("Origin", "http://example.test")],
        subprotocols=["chat", "superchat"],
        extensions=[Tagging("a")],
    )
    names = [name for name, _ in request.headers]
    assert names == [
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Origin",
    ]
    values = dict(request.headers)
    assert values["Sec-WebSocket-Key"] == request.key
    assert values["Sec-WebSocket-Version"] == "13"
    assert values["Sec-WebSocket-Protocol"] == "chat, superchat"
    assert values["Sec-WebSocket-Extensions"] == "x-tag; a"


def test_http2_request_has_no_key_nor_upgrade() -> None:
    request = build_request(http2=True, headers=[], subprotocols=["chat"], extensions=[])
    assert request.key is None
    assert request.headers == [("sec-websocket-version", "13"), ("sec-websocket-protocol", "chat")]


@pytest.mark.parametrize("name", ["Sec-WebSocket-Key", "upgrade", "Sec-WebSocket-Extensions"])
def test_reserved_headers_are_refused(name: str) -> None:
    with pytest.raises(WebSocketError) as info:
        build_request(http2=False, headers=[(name, "x")], subprotocols=[], extensions=[])
    assert info.value.reason == "reserved_header"


def test_bad_subprotocol_token_is_refused() -> None:
    with pytest.raises(WebSocketError):
        build_request(http2=False, headers=[], subprotocols=["two words"], extensions=[])


def _h1_answer(key: str, **extra: str) -> list[tuple[str, str]]:
    headers = [
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-accept", accept_for(key)),
    ]
    headers += [(name.replace("_", "-"), value) for name, value in extra.items()]
    return headers


def test_http1_success() -> None:
    request = build_request(http2=False, headers=[], subprotocols=["chat"], extensions=[])
    assert request.key is not None
    result = check_response(request, 101, _h1_answer(request.key, sec_websocket_protocol="chat"))
    assert result.subprotocol == "chat"
    assert result.extensions == []


def test_http1_refusal_keeps_status_and_headers() -> None:
    request = build_request(http2=False, headers=[], subprotocols=[], extensions=[])
    with pytest.raises(UpgradeFailureError) as info:
        check_response(request, 403, [("content-type", "text/plain")])
    assert info.value.status == 403
    assert info.value.headers == [("content-type", "text/plain")]


def test_http1_200_is_a_failure() -> None:
    request = build_request(http2=False, headers=[], subprotocols=[], extensions=[])
    with pytest.raises(UpgradeFailureError):
        check_response(request, 200, [])


def test_wrong_accept_key() -> None:
    request = build_request(http2=False, headers=[], subprotocols=[], extensions=[])
    with pytest.raises(WebSocketError) as info:
        check_response(request, 101, _h1_answer(generate_key()))
    assert info.value.reason == "bad_accept"


@pytest.mark.parametrize("drop", ["upgrade", "connection", "sec-websocket-accept"])
def test_missing_upgrade_headers(drop: str) -> None:
    request = build_request(http2=False, headers=[], subprotocols=[], extensions=[])
    assert request.key is not None
    headers = [item for item in _h1_answer(request.key) if item[0] != drop]
    with pytest.raises(WebSocketError):
        check_response(request, 101, headers)


def test_http2_accepts_any_2xx_without_accept_key() -> None:
    request = build_request(http2=True, headers=[], subprotocols=[], extensions=[])
    assert check_response(request, 200, []).subprotocol is None
    with pytest.raises(UpgradeFailureError):
        check_response(request, 403, [])


@pytest.mark.parametrize("answer", ["other", "chat, superchat"])
def test_unoffered_or_multiple_subprotocols(answer: str) -> None:
    request = build_request(
        http2=True, headers=[], subprotocols=["chat", "superchat"], extensions=[]
    )
    with pytest.raises(WebSocketError) as info:
        check_response(request, 200, [("sec-websocket-protocol", answer)])
    assert info.value.reason == "bad_subprotocol"


def test_parse_extensions_grammar() -> None:
    parsed = parse_extensions(
        ['permessage-deflate; client_max_window_bits="10" ; server_no_context_takeover', "x-a"]
    )
    assert parsed == [
        (
            "permessage-deflate",
            [("client_max_window_bits", "10"), ("server_no_context_takeover", None)],
        ),
        ("x-a", []),
    ]


@pytest.mark.parametrize("value", ["a;", "a b", "a; b=", 'a; b="unterminated', 'a; b="x y"', ";"])
def test_parse_extensions_rejects_malformed(value: str) -> None:
    with pytest.raises(WebSocketError) as info:
        parse_extensions([value])
    assert info.value.reason == "extension_negotiation"


def test_fallback_offers_are_decided_by_the_answer() -> None:
    first, second = Tagging("a"), Tagging("b")
    negotiated = negotiate_extensions([first, second], ["x-tag; b"])
    assert len(negotiated) == 1
    assert isinstance(negotiated[0], Tagging)
    assert negotiated[0].params == ("b",)
    assert negotiated[0].accepted == [("b", None)]


def test_answer_no_offer_accepts_fails() -> None:
    with pytest.raises(WebSocketError, match="unoffered c"):
        negotiate_extensions([Tagging("a"), Tagging("b")], ["x-tag; c"])


def test_unoffered_and_repeated_extensions_fail() -> None:
    with pytest.raises(WebSocketError, match="not offered"):
        negotiate_extensions([Tagging("a")], ["x-unknown"])
    with pytest.raises(WebSocketError, match="twice"):
        negotiate_extensions([Tagging("a")], ["x-tag; a", "x-tag"])


def test_extensions_may_not_share_rsv_bits() -> None:
    assert len(negotiate_extensions([Tagging(), OtherRsv1()], ["x-tag, x-other"])) == 2
    with pytest.raises(WebSocketError, match="RSV"):
        negotiate_extensions([Tagging(), ClashingRsv2()], ["x-tag, x-clash"])


def test_no_answer_means_no_extension() -> None:
    assert negotiate_extensions([Tagging("a")], []) == []
