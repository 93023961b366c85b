"""The inflate hook: whole compressed messages decoded in C without the extension's Python code.

``Extension.inflate_hook`` lets the C run decoder feed a message straight to
the extension's decompressor (see ``InflateHook``).  These tests check, with
hand-built byte streams and bare zlib as the server, that every way out of
that fast path (the first message before an inflater exists, a result over
the limit, a finished DEFLATE stream, a zlib error, a server that resets its
context, a plain message, a misbehaving extension) decodes and fails exactly
as ``decode_message`` does, which the pure-Python decoder still calls for
every message.  Every codec test runs with both decoders.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from mint.errors import ProtocolError
from mint.websocket import codec
from mint.websocket.codec import WebSocket
from mint.websocket.extensions import RSV1, Extension, InflateHook, Params, PerMessageDeflate
from mint.websocket.extensions.base import RSV2
from mint.websocket.frames import Binary, Frame, Ping, Text
from test_codec_deflate import Server
from test_codec_frames import C_DECODE_RUN, MASKINGS, server_frame, use_masking

TEXT, BINARY, PING = 0x1, 0x2, 0x9
TAIL = b"\x00\x00\xff\xff"

needs_c = pytest.mark.skipif(
    C_DECODE_RUN is None, reason="_speedups not compiled, or MINT_NO_SPEEDUPS=1"
)


@pytest.fixture(autouse=True, params=MASKINGS)
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with the pure-Python and the C decoder (when compiled)."""
    name: str = request.param
    use_masking(monkeypatch, name)
    return name


def hooked(implementation: str) -> bool:
    """Whether WebSockets built now decode through the inflate hook (the C decoder does)."""
    return implementation == "c" and C_DECODE_RUN is not None


class CountingDeflate(PerMessageDeflate):
    """PerMessageDeflate that counts the messages its Python ``decode_message`` decodes."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.slow_messages = 0

    def decode_message(self, opcode: int, payload: bytes, rsv: int, max_size: int | None) -> bytes:
        self.slow_messages += 1
        return super().decode_message(opcode, payload, rsv, max_size)


def deflate(*, resets: bool = False) -> CountingDeflate:
    answer: Params = [("server_no_context_takeover", None)] if resets else []
    accepted = CountingDeflate(server_no_context_takeover=resets).accept(answer)
    assert isinstance(accepted, CountingDeflate)
    return accepted


def messages(count: int, size: int = 300) -> list[bytes]:
    return [(b'{"n": %d, "pad": "' % index).ljust(size, b"x") + b'"}' for index in range(count)]


def failure(ws: WebSocket, data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        ws.decode(data)
    return info.value


# -- the fast path, and when it is taken --------------------------------------------------------


def test_a_run_of_compressed_messages(implementation: str) -> None:
    server = Server()
    bodies = messages(40)
    data = b"".join(
        server.message(TEXT if index % 2 else BINARY, body) for index, body in enumerate(bodies)
    )
    extension = deflate()
    ws = WebSocket(extensions=[extension])
    expected: list[Frame] = [
        Text(body.decode()) if index % 2 else Binary(body) for index, body in enumerate(bodies)
    ]
    assert ws.decode(data) == expected
    # The first message creates the inflater in Python; C takes the others through the hook.
    assert extension.slow_messages == (1 if hooked(implementation) else 40)
    assert extension.inflate_hook() is not None


def test_the_hook_is_asked_again_in_each_decode(implementation: str) -> None:
    server = Server()
    extension = deflate()
    ws = WebSocket(extensions=[extension])
    frames = []
    for body in messages(5):
        frames.extend(ws.decode(server.message(BINARY, body)))
    assert frames == [Binary(body) for body in messages(5)]
    assert extension.slow_messages == (1 if hooked(implementation) else 5)


def test_empty_and_16_bit_length_messages() -> None:
    server = Server()
    big = bytes(range(256)) * 200  # compresses to more than 125 bytes
    data = server.message(BINARY, b"first") + server.message(TEXT, b"")
    data += server.message(BINARY, big) + server.message(BINARY, b"")
    assert server.compress(b"") == b"\x00"  # RFC 7692 7.2.3.6: an empty message is one 0x00
    assert WebSocket(extensions=[deflate()]).decode(data) == [
        Binary(b"first"),
        Text(""),
        Binary(big),
        Binary(b""),
    ]


def test_plain_messages_between_compressed_ones(implementation: str) -> None:
    """RSV1 clear: the message is as it came, with no call into the extension."""
    server = Server()
    data = server.message(BINARY, b"one") + server_frame(TEXT, "plain é".encode())
    data += server_frame(BINARY, b"\x00raw") + server.message(TEXT, b"two")
    extension = deflate()
    frames = WebSocket(extensions=[extension]).decode(data)
    assert frames == [Binary(b"one"), Text("plain é"), Binary(b"\x00raw"), Text("two")]
    assert extension.slow_messages == (1 if hooked(implementation) else 4)


def test_plain_text_with_invalid_utf8_is_1007_with_earlier_frames() -> None:
    server = Server()
    data = server.message(BINARY, b"a") + server.message(BINARY, b"b")
    error = failure(WebSocket(extensions=[deflate()]), data + server_frame(TEXT, b"\xff"))
    assert error.close_code == 1007
    assert error.frames == [Binary(b"a"), Binary(b"b")]


def test_plain_message_over_the_limit_is_1009() -> None:
    server = Server()
    data = server.message(BINARY, b"a") + server_frame(BINARY, b"p" * 10)
    assert WebSocket(extensions=[deflate()], max_message_size=10).decode(data) == [
        Binary(b"a"),
        Binary(b"p" * 10),
    ]
    error = failure(
        WebSocket(extensions=[deflate()], max_message_size=10),
        server.message(BINARY, b"a") + server_frame(BINARY, b"p" * 11),
    )
    assert error.close_code == 1009
    assert error.frames == [Binary(b"a")]


def test_a_message_with_rsv_bits_the_hook_does_not_name_goes_to_decode_message() -> None:
    """RSV1 | RSV2 with only permessage-deflate negotiated: still the 1002 of the general path."""
    server = Server()
    data = server.message(BINARY, b"a") + server_frame(BINARY, b"x", rsv=RSV1 | RSV2)
    error = failure(WebSocket(extensions=[deflate()]), data)
    assert error.close_code == 1002
    assert error.frames == [Binary(b"a")]


# -- the limit: exactly at it is fine, one byte over is 1009, never truncated ------------------


@pytest.mark.parametrize("limit", [1, 300, 4096, 65536])
def test_a_message_exactly_at_the_limit_is_accepted(limit: int, implementation: str) -> None:
    server = Server()
    data = server.message(BINARY, b"") + server.message(BINARY, b"a" * limit)
    data += server.message(TEXT, b"b" * limit)
    extension = deflate()
    frames = WebSocket(extensions=[extension], max_message_size=limit).decode(data)
    assert frames == [Binary(b""), Binary(b"a" * limit), Text("b" * limit)]
    assert extension.slow_messages == (1 if hooked(implementation) else 3)


@pytest.mark.parametrize("limit", [1, 300, 4096, 65536])
def test_one_byte_over_the_limit_is_1009_with_earlier_frames(limit: int) -> None:
    server = Server()
    data = server.message(BINARY, b"") + server.message(BINARY, b"a" * limit)
    data += server.message(BINARY, b"b" * (limit + 1)) + server.message(BINARY, b"never")
    extension = deflate()
    ws = WebSocket(extensions=[extension], max_message_size=limit)
    error = failure(ws, data)
    assert (error.close_code, error.reason) == (1009, "message_too_big")
    assert error.frames == [Binary(b""), Binary(b"a" * limit)]
    assert extension.inflate_hook() is None  # the inflater went with the failed message
    assert failure(ws, b"").close_code == 1009  # the WebSocket stays failed


def test_a_compression_bomb_stops_at_the_limit() -> None:
    server = Server()
    data = server.message(BINARY, b"ok") + server.message(BINARY, b"\x00" * 10_000_000)
    assert len(data) < 20_000
    error = failure(WebSocket(extensions=[deflate()], max_message_size=1000), data)
    assert error.close_code == 1009
    assert error.frames == [Binary(b"ok")]


@pytest.mark.parametrize("limit", [sys.maxsize - 1, sys.maxsize, 2**63, 2**70])
def test_limits_beyond_any_message_inflate_unbounded(limit: int) -> None:
    """max_length would overflow: such a limit cannot be reached and is no limit."""
    server = Server()
    data = b"".join(server.message(BINARY, body) for body in messages(3))
    ws = WebSocket(extensions=[deflate()], max_message_size=limit, max_frame_size=None)
    assert ws.decode(data) == [Binary(body) for body in messages(3)]


def test_no_limit() -> None:
    server = Server()
    data = b"".join(server.message(BINARY, body) for body in messages(3, 70_000))
    ws = WebSocket(extensions=[deflate()], max_message_size=None)
    assert ws.decode(data) == [Binary(body) for body in messages(3, 70_000)]


# -- zlib errors: 1002, the frames before kept ------------------------------------------------


# A reserved block type, another, a stored block whose length check fails.
@pytest.mark.parametrize("corrupt", [b"\xff\xff\xff\xff", b"\x06", b"\x00\x05\x00\x00\x00"])
def test_corrupt_data_mid_run_is_1002_with_earlier_frames(corrupt: bytes) -> None:
    server = Server()
    data = server.message(BINARY, b"one") + server.message(TEXT, b"two")
    data += server_frame(BINARY, corrupt, rsv=RSV1) + server.message(BINARY, b"three")
    extension = deflate()
    ws = WebSocket(extensions=[extension])
    error = failure(ws, data)
    assert (error.close_code, error.reason) == (1002, "decompression_failed")
    assert isinstance(error.__cause__, zlib.error)
    assert error.frames == [Binary(b"one"), Text("two")]
    assert extension.inflate_hook() is None
    assert failure(ws, b"").close_code == 1002


def test_corrupt_data_in_a_later_read() -> None:
    server = Server()
    ws = WebSocket(extensions=[deflate()])
    assert ws.decode(server.message(BINARY, b"one")) == [Binary(b"one")]
    assert ws.decode(server.message(BINARY, b"two")) == [Binary(b"two")]
    error = failure(ws, server.message(BINARY, b"3") + server_frame(BINARY, b"\xff", rsv=RSV1))
    assert error.close_code == 1002
    assert error.frames == [Binary(b"3")]


# -- a finished DEFLATE stream: the inflater is replaced ------------------------------------------


@pytest.mark.parametrize("padding", [b"", b"\x00"])
def test_a_final_block_ends_the_stream_and_the_next_message_starts_afresh(
    padding: bytes, implementation: str
) -> None:
    server = Server()
    data = server.message(BINARY, b"one") + server.message(BINARY, b"two")
    data += server_frame(TEXT, server.compress_final(b"three, the last") + padding, rsv=RSV1)
    data += server.message(BINARY, b"four, in a new stream") + server.message(BINARY, b"five")
    extension = deflate()
    ws = WebSocket(extensions=[extension])
    first_inflater = None
    frames = ws.decode(data[:12])  # creates the first inflater
    hook = extension.inflate_hook()
    assert hook is not None
    first_inflater = hook.decompressor
    frames += ws.decode(data[12:])
    assert frames == [
        Binary(b"one"),
        Binary(b"two"),
        Text("three, the last"),
        Binary(b"four, in a new stream"),
        Binary(b"five"),
    ]
    hook = extension.inflate_hook()
    assert hook is not None and hook.decompressor is not first_inflater
    # C: "one" created the inflater, "four" the second one; Python: every message.
    assert extension.slow_messages == (2 if hooked(implementation) else 5)


def test_data_after_the_final_block_is_1002_with_earlier_frames() -> None:
    server = Server()
    data = server.message(BINARY, b"one") + server.message(BINARY, b"two")
    data += server_frame(BINARY, server.compress_final(b"three") + b"junk", rsv=RSV1)
    error = failure(WebSocket(extensions=[deflate()]), data)
    assert (error.close_code, error.reason) == (1002, "decompression_failed")
    assert error.frames == [Binary(b"one"), Binary(b"two")]


def test_a_stream_ended_in_a_fragmented_message_is_seen_by_the_next_run(
    implementation: str,
) -> None:
    """decode_frame drops the inflater between two runs of one decode(): the hook is asked again."""
    server = Server()
    final = server.compress_final(b"fragmented and final")
    data = server.message(BINARY, b"one") + server.message(BINARY, b"two")
    data += server_frame(TEXT, final[:3], fin=False, rsv=RSV1) + server_frame(0x0, final[3:])
    data += server.message(BINARY, b"three, in a new stream") + server.message(BINARY, b"four")
    extension = deflate()
    assert WebSocket(extensions=[extension]).decode(data) == [
        Binary(b"one"),
        Binary(b"two"),
        Text("fragmented and final"),
        Binary(b"three, in a new stream"),
        Binary(b"four"),
    ]
    assert extension.slow_messages == (2 if hooked(implementation) else 4)


# -- server_no_context_takeover: decode_message resets after each message ----------------------


def test_server_no_context_takeover_decodes_each_message_on_its_own() -> None:
    server = Server(resets=True)
    bodies = messages(10)
    data = b"".join(server.message(BINARY, body) for body in bodies)
    extension = deflate(resets=True)
    assert WebSocket(extensions=[extension]).decode(data) == [Binary(body) for body in bodies]
    assert extension.inflate_hook() is None  # no hook: the reset is decode_message's job
    assert extension.slow_messages == 10


def test_server_no_context_takeover_catches_a_back_reference() -> None:
    """The server promised no context takeover and refers to the previous message anyway."""
    server = Server()  # keeps its context
    data = server.message(BINARY, b"repeat me " * 10) + server.message(BINARY, b"repeat me " * 10)
    error = failure(WebSocket(extensions=[deflate(resets=True)]), data)
    assert error.close_code == 1002
    assert error.frames == [Binary(b"repeat me " * 10)]


# -- the hook's contract, checked against decode_message directly --------------------------------


def through_hook(
    extension: Extension, hook: InflateHook, payload: bytes, max_size: int | None
) -> bytes:
    """InflateHook's docstring, in Python: what the C decoder does with a hooked message."""
    decompressor = hook.decompressor
    try:
        if max_size is None or max_size >= sys.maxsize:
            data: bytes = decompressor.decompress(payload + hook.tail)
        else:
            data = decompressor.decompress(payload + hook.tail, max_size + 1)
    except Exception as exc:
        replacement = extension.inflate_failed(exc)
        if replacement is exc:
            raise
        raise replacement from exc
    if (max_size is not None and len(data) > max_size) or decompressor.eof:
        data = extension.inflate_finished(decompressor, data, max_size)
    return data


def outcome(decode: Any, *args: Any) -> tuple[object, ...]:
    try:
        return ("ok", decode(*args))
    except ProtocolError as exc:
        return ("error", exc.close_code, exc.reason, str(exc), type(exc.__cause__))


def contract_cases() -> Iterator[tuple[str, int | None, list[bytes]]]:
    """Payloads from one server; the first one creates the inflater, the others test the hook."""
    server = Server()
    normal = [server.compress(body) for body in [b"warm up", *messages(3)]]
    yield "normal", 5000, normal
    yield "no limit", None, normal
    yield "at the limit", 302, normal
    yield "over the limit", 301, normal
    yield "huge limit", 2**70, normal
    for name, after in [("", b""), (" and padding", b"\x00"), (" and junk", b"junk")]:
        server = Server()
        payloads = [server.compress(b"warm up"), server.compress_final(b"the end") + after]
        payloads.append(server.compress(b"a new stream"))
        yield f"final block{name}", 100, payloads
    server = Server()
    yield "corrupt", 100, [server.compress(b"warm up"), b"\xff\xff", server.compress(b"x")]


@pytest.mark.parametrize(
    ("limit", "payloads"),
    [pytest.param(limit, payloads, id=name) for name, limit, payloads in contract_cases()],
)
def test_through_the_hook_is_decode_message(limit: int | None, payloads: list[bytes]) -> None:
    by_message = deflate()
    by_hook = deflate()
    # The first message creates the inflaters; from then on one side goes through the hook.
    for extension in (by_message, by_hook):
        assert outcome(extension.decode_message, BINARY, payloads[0], RSV1, limit)[0] == "ok"
    for payload in payloads[1:]:
        expected = outcome(by_message.decode_message, BINARY, payload, RSV1, limit)
        hook = by_hook.inflate_hook()
        if hook is None:  # the stream ended: decode_message makes the next inflater
            got = outcome(by_hook.decode_message, BINARY, payload, RSV1, limit)
        else:
            assert hook.rsv == RSV1 and hook.tail == TAIL
            got = outcome(through_hook, by_hook, hook, payload, limit)
        assert got == expected
        assert (by_hook._inflater is None) == (by_message._inflater is None)
        if got[0] == "error":
            break


def test_an_offer_has_no_hook() -> None:
    assert PerMessageDeflate().inflate_hook() is None


# -- other extensions offering a hook ------------------------------------------------------------


class Reverser:
    """A toy streaming decompressor: reverses each input (minus its tail); b"END" sets eof."""

    def __init__(self, *, fail_with: BaseException | None = None, result: object = None) -> None:
        self.fail_with = fail_with
        self.result = result
        self.ended = False
        self.calls: list[tuple[bytes, int | None]] = []

    def decompress(self, data: bytes, max_length: int | None = None) -> bytes:
        self.calls.append((data, max_length))
        if self.fail_with is not None:
            raise self.fail_with
        if self.result is not None:
            return self.result  # type: ignore[return-value]  # misbehaves on purpose
        body = data[:-1][::-1]
        if body == b"END":
            self.ended = True
        return body

    @property
    def eof(self) -> bool:  # a property: the C decoder must use getattr, not a member load
        return self.ended


class ReverseExtension(Extension):
    """x-reverse: RSV2 marks a reversed message; decode_message is the hook's contract."""

    name = "x-reverse"
    rsv_mask = RSV2

    def __init__(self, decompressor: Reverser | None = None, hook: object = "default") -> None:
        self.decompressor = decompressor or Reverser()
        self.hook = InflateHook(RSV2, self.decompressor, b"!") if hook == "default" else hook
        self.slow_messages = 0
        self.finished: list[bytes] = []

    def offer(self) -> Params:
        return []

    def accept(self, params: Params) -> Extension:
        return self

    def decode_frame(
        self, opcode: int, payload: bytes, rsv: int, fin: bool, max_size: int | None
    ) -> tuple[bytes, int]:
        self.slow_messages += 1
        if not rsv & RSV2:
            return payload, rsv
        decompressor = self.decompressor
        try:
            data = decompressor.decompress(payload + b"!", 0 if max_size is None else max_size + 1)
        except Exception as exc:
            replacement = self.inflate_failed(exc)
            if replacement is exc:
                raise
            raise replacement from exc
        if (max_size is not None and len(data) > max_size) or decompressor.eof:
            data = self.inflate_finished(decompressor, data, max_size)
        return data, rsv & ~RSV2

    def inflate_hook(self) -> InflateHook | None:
        if isinstance(self.hook, Exception):
            raise self.hook
        return self.hook  # type: ignore[return-value]  # misbehaves on cue

    def inflate_finished(self, decompressor: Any, data: bytes, max_size: int | None) -> bytes:
        self.finished.append(data)
        return super().inflate_finished(decompressor, data, max_size)


def test_another_extension_through_its_hook(implementation: str) -> None:
    extension = ReverseExtension()
    data = server_frame(BINARY, b"cba", rsv=RSV2) + server_frame(TEXT, b"plain")
    data += server_frame(TEXT, "é".encode()[::-1], rsv=RSV2) + server_frame(
        BINARY, b"END"[::-1], rsv=RSV2
    )
    frames = WebSocket(extensions=[extension]).decode(data)
    assert frames == [Binary(b"abc"), Text("plain"), Text("é"), Binary(b"END")]
    assert extension.decompressor.calls[0] == (b"cba!", 64 * 2**20 + 1)
    assert extension.finished == [b"END"]  # eof, read through the property
    assert extension.slow_messages == (0 if hooked(implementation) else 4)


def test_the_default_inflate_finished_enforces_the_limit(implementation: str) -> None:
    extension = ReverseExtension()
    data = server_frame(BINARY, b"cba", rsv=RSV2) + server_frame(BINARY, b"edcba", rsv=RSV2)
    error = failure(WebSocket(extensions=[extension], max_message_size=4), data)
    assert (error.close_code, error.reason) == (1009, "message_too_big")
    assert error.frames == [Binary(b"abc")]
    assert extension.finished == [b"abcde"]


def test_without_a_limit_decompress_gets_no_max_length(implementation: str) -> None:
    extension = ReverseExtension()
    ws = WebSocket(extensions=[extension], max_message_size=None)
    assert ws.decode(server_frame(BINARY, b"ba", rsv=RSV2)) == [Binary(b"ab")]
    # ReverseExtension.decode_frame passes zlib's "no limit", 0; C passes no max_length.
    max_length = None if hooked(implementation) else 0
    assert extension.decompressor.calls == [(b"ba!", max_length)]


@pytest.mark.parametrize(
    ("failure_kind", "close_code"),
    [("raw", 1002), ("replaced", 1003), ("failing", 1002)],
)
def test_a_decompress_error_goes_through_inflate_failed(failure_kind: str, close_code: int) -> None:
    class Failing(ReverseExtension):
        def inflate_failed(self, exc: Exception) -> BaseException:
            if failure_kind == "replaced":
                return ProtocolError(f"replaced {exc}", close_code=1003)
            if failure_kind == "failing":
                raise RuntimeError("inflate_failed broke")
            return exc

    extension = Failing(Reverser(fail_with=ValueError("bad input")))
    data = server_frame(PING, b"p") + server_frame(BINARY, b"x", rsv=RSV2)
    error = failure(WebSocket(extensions=[extension]), data)
    assert error.close_code == close_code
    assert error.frames == [Ping(b"p")]
    if failure_kind == "raw":
        assert "x-reverse" in str(error) and "bad input" in str(error)
        assert isinstance(error.__cause__, ValueError)
    elif failure_kind == "replaced":
        assert str(error) == "replaced bad input"
        assert isinstance(error.__cause__, ValueError)
    else:
        assert "inflate_failed broke" in str(error)
        assert isinstance(error.__cause__, RuntimeError)
        assert isinstance(error.__cause__.__context__, ValueError)


def test_a_base_exception_from_decompress_is_not_wrapped() -> None:
    extension = ReverseExtension(Reverser(fail_with=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        WebSocket(extensions=[extension]).decode(server_frame(BINARY, b"x", rsv=RSV2))


@pytest.mark.parametrize(
    "hook",
    [
        pytest.param(("not", "a", "hook"), id="bad-rsv"),
        pytest.param((RSV2, Reverser()), id="two-items"),
        pytest.param((0, Reverser(), b"!"), id="rsv-zero"),
        pytest.param((0x80, Reverser(), b"!"), id="rsv-not-rsv"),
        pytest.param((RSV2, Reverser(), "!"), id="tail-str"),
        pytest.param((RSV2, object(), b"!"), id="no-decompress"),
        pytest.param(KeyError("hook broke"), id="raises"),
    ],
)
def test_a_broken_hook_is_the_extension_failing(hook: object, implementation: str) -> None:
    """Only the C decoder asks for the hook; its failure is the extension's, 1002."""
    extension = ReverseExtension(hook=hook)
    data = server_frame(PING, b"p") + server_frame(BINARY, b"x", rsv=RSV2)
    if not hooked(implementation):
        assert WebSocket(extensions=[extension]).decode(data) == [Ping(b"p"), Binary(b"x")]
        return
    error = failure(WebSocket(extensions=[extension]), data)
    assert error.close_code == 1002
    assert "x-reverse" in str(error)
    assert error.frames == [Ping(b"p")]


@pytest.mark.parametrize("result", [bytearray(b"ab"), "ab", 12])
def test_decompress_must_return_bytes(result: object, implementation: str) -> None:
    if not hooked(implementation):
        pytest.skip("only the C decoder uses the hook")
    extension = ReverseExtension(Reverser(result=result))
    data = server_frame(BINARY, b"ok") + server_frame(BINARY, b"x", rsv=RSV2)
    error = failure(WebSocket(extensions=[extension]), data)
    assert error.close_code == 1002
    assert error.frames == [Binary(b"ok")]


def test_an_eof_that_cannot_be_read_is_the_extension_failing(implementation: str) -> None:
    class NoEof(Reverser):
        @property
        def eof(self) -> bool:
            raise OSError("eof broke")

    extension = ReverseExtension(NoEof())
    error = failure(WebSocket(extensions=[extension]), server_frame(BINARY, b"x", rsv=RSV2))
    assert error.close_code == 1002
    assert "eof broke" in str(error)


def test_an_extension_without_a_hook_is_never_asked() -> None:
    class NoHook(ReverseExtension):
        inflate_hook = Extension.inflate_hook

    ws = WebSocket(extensions=[NoHook()])
    assert ws._run_config[6] is None
    assert ws.decode(server_frame(BINARY, b"cba", rsv=RSV2)) == [Binary(b"abc")]
    ws = WebSocket(extensions=[ReverseExtension()])
    assert ws._run_config[6] is not None


def test_two_extensions_take_no_hook() -> None:
    ws = WebSocket(extensions=[ReverseExtension(), deflate()])
    assert ws._run_config[6] is None


@needs_c
def test_decode_run_checks_the_inflate_item() -> None:
    assert C_DECODE_RUN is not None
    ws = WebSocket(extensions=[ReverseExtension()])
    config = ws._run_config
    for bad in [config[:6], (*config[:6], (1, 2)), (*config[:3], None, *config[4:])]:
        with pytest.raises(TypeError):
            C_DECODE_RUN(b"", 0, [], ws, bad)  # type: ignore[arg-type]


def test_the_codec_reads_c_decode_run_at_construction() -> None:
    """A sanity check of the fixture the tests above rely on."""
    assert (WebSocket()._decode_run is None) == (codec.c_decode_run is None)
