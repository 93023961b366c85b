"""permessage-deflate throughput: mint vs websockets, wsproto, aiohttp (picows: n/a) and bare zlib.

Encode: 5,000 JSON-like ~1 KiB messages turned into masked, compressed client
frames.  Decode: the same messages as a server would send them (compressed,
unmasked frames, one byte stream) fed in 4 KiB reads.  The floor is bare zlib
doing the per-message work RFC 7692 asks for (compress + Z_SYNC_FLUSH + strip
the tail; append the tail + decompress) with no WebSocket framing at all.

The messages are JSON but sent as binary frames (opcode 2) by every
implementation, so no one validates UTF-8 and the floor needs no
``bytes.decode``; see benchmarks/README.md.

Each workload runs at zlib level 6 and at level 1 (memLevel 8, 15-bit windows,
context takeover on both sides, as every library negotiates by default).
Implementations alternate within each round; the tables show medians.  A
library that cannot compress at a level shows "n/a" with the reason.

mint's decode is measured twice: as installed (the C run decoder, which
inflates through ``PerMessageDeflate.inflate_hook``) and with the pure-Python
decoder that ``MINT_NO_SPEEDUPS=1`` selects (``decode_message`` per message).

Run: python benchmarks/bench_deflate.py [-r N] [-w encode-6 ...] [--json] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import struct
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from _peers import AIOHTTP_BINARY, AiohttpReceiver, SinkTransport, aiohttp_writer, run_sync
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import PerMessageDeflate as WebsocketsDeflate
from websockets.frames import Frame as WebsocketsFrame
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request
from wsproto.extensions import PerMessageDeflate as WsprotoDeflate

from mint.websocket import codec
from mint.websocket.codec import WebSocket
from mint.websocket.extensions import PerMessageDeflate
from mint.websocket.frames import Binary

COUNT = 5000
QUICK_COUNT = 200
READ_SIZE = 4096
LEVELS = (6, 1)
MEM_LEVEL, WBITS = 8, 15
TAIL = b"\x00\x00\xff\xff"
LIMIT = 64 * 2**20

#: A prepared run: returns (messages, bytes) for the harness to check.
Run = Callable[[], tuple[int, int]]


def build_messages(count: int = COUNT, seed: int = 7692) -> list[bytes]:
    """Varied JSON of about 1 KiB: realistic keys repeat, values mostly do not."""
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    messages = []
    for index in range(count):
        doc: dict[str, object] = {
            "id": index,
            "type": rng.choice(["trade", "quote", "update", "heartbeat"]),
            "ts": 1_700_000_000_000 + rng.randrange(10**9),
            "user": {"name": f"user{rng.randrange(10**6)}", "verified": rng.random() < 0.5},
            "items": [],
        }
        items: list[dict[str, object]] = []
        while len(json.dumps(doc)) < 1000:
            items.append(
                {
                    "sku": f"{rng.randrange(16**8):08x}",
                    "price": round(rng.uniform(1, 1000), 2),
                    "qty": rng.randrange(1, 100),
                    "tag": rng.choice(words),
                }
            )
            doc["items"] = items
        messages.append(json.dumps(doc).encode()[:1024])
    return messages


def compressed_payloads(messages: list[bytes], level: int) -> list[bytes]:
    """Each message as permessage-deflate sends it with context takeover, at ``level``."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -WBITS, MEM_LEVEL)
    return [(compressor.compress(m) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4] for m in messages]


def frame_header(size: int, mask: bool) -> bytes:
    """A FIN + RSV1 binary frame's header (``mask``: the key's 4 bytes are counted, zeros)."""
    mask_bit = 0x80 if mask else 0
    if size < 126:
        header = bytes((0xC2, mask_bit | size))
    else:
        header = struct.pack("!BBH", 0xC2, mask_bit | 126, size)
    return header + (b"\0\0\0\0" if mask else b"")


def server_stream(payloads: list[bytes]) -> bytes:
    """The server's frames (RSV1, unmasked) as one byte stream."""
    return b"".join(frame_header(len(p), False) + p for p in payloads)


def chunks(stream: bytes) -> list[bytes]:
    return [stream[i : i + READ_SIZE] for i in range(0, len(stream), READ_SIZE)]


@dataclass
class Inputs:
    level: int
    messages: list[bytes]
    payloads: list[bytes]
    reads: list[bytes]
    #: What a correct run returns: (messages, bytes of masked client frames) for encode,
    #: (messages, bytes after inflating) for decode.  Same zlib settings, same bytes.
    encoded: tuple[int, int]
    decoded: tuple[int, int]


def build_inputs(messages: list[bytes], level: int) -> Inputs:
    payloads = compressed_payloads(messages, level)
    encoded = sum(len(frame_header(len(p), True)) + len(p) for p in payloads)
    return Inputs(
        level,
        messages,
        payloads,
        chunks(server_stream(payloads)),
        (len(messages), encoded),
        (len(messages), sum(map(len, messages))),
    )


# -- the floor --------------------------------------------------------------------------


def floor_encode(messages: list[bytes], level: int) -> Run:
    def run() -> tuple[int, int]:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -WBITS, MEM_LEVEL)
        compress, flush, sync = compressor.compress, compressor.flush, zlib.Z_SYNC_FLUSH
        out = [(compress(m) + flush(sync))[:-4] for m in messages]
        return len(out), sum(map(len, out))

    return run


def floor_decode(payloads: list[bytes]) -> Run:
    def run() -> tuple[int, int]:
        decompress = zlib.decompressobj(-WBITS).decompress
        out = [decompress(p + TAIL) for p in payloads]
        return len(out), sum(map(len, out))

    return run


# -- mint ---------------------------------------------------------------------------------


def mint_extension(level: int = 6) -> PerMessageDeflate:
    offer = PerMessageDeflate(compression_level=level, memory_level=MEM_LEVEL)
    return offer.accept([])


def mint_encode(messages: list[bytes], level: int) -> Run:
    frames = [Binary(m) for m in messages]

    def run() -> tuple[int, int]:
        encode = WebSocket(extensions=[mint_extension(level)]).encode
        out = [encode(frame) for frame in frames]
        return len(out), sum(map(len, out))

    return run


def mint_websocket(*, pure_python: bool = False) -> WebSocket:
    """A WebSocket with permessage-deflate; ``pure_python``: as ``MINT_NO_SPEEDUPS=1`` decodes."""
    saved = codec.c_decode_run
    if pure_python:
        codec.c_decode_run = None  # read once, when the WebSocket is built
    try:
        return WebSocket(extensions=[mint_extension()])
    finally:
        codec.c_decode_run = saved


def mint_decode(reads: list[bytes], *, pure_python: bool = False) -> Run:
    def run() -> tuple[int, int]:
        decode = mint_websocket(pure_python=pure_python).decode
        received = []
        for data in reads:
            received.extend(decode(data))
        frames = cast("list[Binary]", received)  # checked by the count of bytes
        return len(frames), sum(len(frame.data) for frame in frames)

    return run


def hook_encode(messages: list[bytes], level: int) -> Run:
    """The extension alone, as the codec calls it: isolates its cost from framing."""

    def run() -> tuple[int, int]:
        encode_frame = mint_extension(level).encode_frame
        out = [encode_frame(2, m, 0, True)[0] for m in messages]
        return len(out), sum(map(len, out))

    return run


def hook_decode(payloads: list[bytes]) -> Run:
    """``decode_message``: what the pure-Python codec calls for a whole message in one frame.

    The C decoder calls it only for the first message; it inflates the others
    through ``inflate_hook`` with no Python code of the extension's at all.
    """

    def run() -> tuple[int, int]:
        decode_message = mint_extension().decode_message
        out = [decode_message(2, p, 0x40, LIMIT) for p in payloads]
        return len(out), sum(map(len, out))

    return run


# -- websockets (sans-I/O) -----------------------------------------------------------------


def websockets_extension(level: int = 6) -> WebsocketsDeflate:
    return WebsocketsDeflate(
        remote_no_context_takeover=False,
        local_no_context_takeover=False,
        remote_max_window_bits=WBITS,
        local_max_window_bits=WBITS,
        compress_settings={"level": level, "memLevel": MEM_LEVEL},
    )


def websockets_protocol(level: int = 6) -> ClientProtocol:
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=None)
    # ClientProtocol takes extension *factories*; after a handshake it holds the
    # negotiated extension here, which is what we build directly.
    protocol.extensions = [websockets_extension(level)]
    return protocol


def websockets_encode(messages: list[bytes], level: int) -> Run:
    def run() -> tuple[int, int]:
        protocol = websockets_protocol(level)
        send, take = protocol.send_binary, protocol.data_to_send
        out = []
        for message in messages:
            send(message)
            out.extend(take())
        return len(out), sum(map(len, out))

    return run


def websockets_decode(reads: list[bytes]) -> Run:
    def run() -> tuple[int, int]:
        protocol = websockets_protocol()
        receive, events = protocol.receive_data, protocol.events_received
        received: list[WebsocketsFrame] = []
        for data in reads:
            receive(data)
            received.extend(cast("list[WebsocketsFrame]", events()))  # no handshake: frames
        assert received[0].opcode is Opcode.BINARY
        return len(received), sum(len(frame.data) for frame in received)

    return run


# -- wsproto --------------------------------------------------------------------------------


def wsproto_connection() -> WSConnection:
    """A client negotiated through a real handshake with an in-memory wsproto server."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(
        client.send(Request(host="localhost", target="/", extensions=[WsprotoDeflate()]))
    )
    request = next(event for event in server.events() if isinstance(event, Request))
    assert "permessage-deflate" in str(request.extensions)
    client.receive_data(server.send(AcceptConnection(extensions=[WsprotoDeflate()])))
    assert any(isinstance(event, AcceptConnection) for event in client.events())
    return client


def wsproto_encode(messages: list[bytes]) -> Run:
    """Level 6 only: wsproto's extension compresses at zlib's default level, not settable."""
    events = [BytesMessage(data=m) for m in messages]

    def run() -> tuple[int, int]:
        send = wsproto_connection().send
        out = [send(event) for event in events]
        return len(out), sum(map(len, out))

    return run


def wsproto_decode(reads: list[bytes]) -> Run:
    def run() -> tuple[int, int]:
        connection = wsproto_connection()
        receive, events = connection.receive_data, connection.events
        received: list[object] = []
        for data in reads:
            receive(data)
            received.extend(events())
        # wsproto hands over a message's data as it arrives, in pieces
        messages = [event for event in received if isinstance(event, BytesMessage)]
        finished = sum(event.message_finished for event in messages)
        return finished, sum(len(event.data) for event in messages)

    return run


# -- aiohttp (its client's reader and writer, see _peers.py) -------------------------------


def aiohttp_encode(messages: list[bytes]) -> Run:
    """Level 1 only: aiohttp's writer always compresses at Z_BEST_SPEED."""

    def run() -> tuple[int, int]:
        sink = SinkTransport()
        # compress=15: the window bits ws_connect passes once the server accepts the offer.
        send_frame = aiohttp_writer(sink, compress=WBITS).send_frame

        async def send() -> None:
            for message in messages:
                await send_frame(message, AIOHTTP_BINARY)  # as ws.send_bytes(message)

        run_sync(send())
        return sink.writes, sink.size

    return run


def aiohttp_decode(reads: list[bytes]) -> Run:
    def run() -> tuple[int, int]:
        receiver = AiohttpReceiver(LIMIT, compress=True)
        feed, queue = receiver.reader.feed_data, receiver.queue
        read, buffered = queue.read, queue._buffer

        async def receive() -> tuple[int, int]:
            messages = size = 0
            for data in reads:
                feed(data)
                while buffered:
                    message = await read()
                    messages += 1
                    size += len(message.data)
            return messages, size

        return run_sync(receive())

    return run


# -- harness --------------------------------------------------------------------------------

PICOWS_NA = "picows has no permessage-deflate"


@dataclass
class Workload:
    key: str
    title: str
    #: name -> (run, expected result), or the reason it cannot run
    runs: dict[str, tuple[Run, tuple[int, int]] | str]


def workloads(inputs: Inputs) -> list[Workload]:
    level, messages, payloads, reads = inputs.level, inputs.messages, inputs.payloads, inputs.reads
    encoded, decoded = inputs.encoded, inputs.decoded
    bare = (len(payloads), sum(map(len, payloads)))
    count = len(messages)
    return [
        Workload(
            f"encode-{level}",
            f"encode, level {level}: compressed, masked client frames ({count:,} messages)",
            {
                "zlib floor": (floor_encode(messages, level), bare),
                "mint": (mint_encode(messages, level), encoded),
                "mint encode_frame only": (hook_encode(messages, level), bare),
                "websockets": (websockets_encode(messages, level), encoded),
                "wsproto": (wsproto_encode(messages), encoded)
                if level == 6
                else "wsproto compresses at zlib's default level (6) only",
                "aiohttp": (aiohttp_encode(messages), encoded)
                if level == 1
                else "aiohttp's writer compresses at level 1 (Z_BEST_SPEED) only",
                "picows": PICOWS_NA,
            },
        ),
        Workload(
            f"decode-{level}",
            f"decode, level {level}: server frames in 4 KiB reads ({count:,} messages)",
            {
                "zlib floor": (floor_decode(payloads), decoded),
                "mint": (mint_decode(reads), decoded),
                "mint, pure-Python decoder": (mint_decode(reads, pure_python=True), decoded),
                "mint decode_message only": (hook_decode(payloads), decoded),
                "websockets": (websockets_decode(reads), decoded),
                "wsproto": (wsproto_decode(reads), decoded),
                "aiohttp": (aiohttp_decode(reads), decoded),
                "picows": PICOWS_NA,
            },
        ),
    ]


def measure(workload: Workload, rounds: int) -> dict[str, float | str]:
    runs = {name: run for name, run in workload.runs.items() if not isinstance(run, str)}
    samples: dict[str, list[float]] = {name: [] for name in runs}

    def timed(name: str) -> float:
        run, expected = runs[name]
        gc.collect()
        start = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - start
        if result != expected:
            raise AssertionError(f"{workload.key}, {name}: got {result}, expected {expected}")
        return elapsed

    for name in runs:
        timed(name)  # warm up (imports, caches, allocator) and check
    for index in range(rounds):
        order = list(runs)
        if index % 2:
            order.reverse()
        for name in order:
            samples[name].append(timed(name))
    return {
        name: run if isinstance(run, str) else statistics.median(samples[name])
        for name, run in workload.runs.items()
    }


def table(workload: Workload, medians: dict[str, float | str], count: int) -> str:
    floor, mint = medians["zlib floor"], medians["mint"]
    assert isinstance(floor, float) and isinstance(mint, float)
    lines = [
        f"### {workload.title}",
        "",
        "| implementation | total ms | µs/message | vs floor | ÷ mint |",
        "|---|---:|---:|---:|---:|",
    ]
    notes = []
    for name, seconds in medians.items():
        if isinstance(seconds, str):
            lines.append(f"| {name} | n/a | n/a | n/a | n/a |")
            notes.append(f"n/a ({name}): {seconds}")
            continue
        lines.append(
            f"| {name} | {seconds * 1e3:.1f} | {seconds / count * 1e6:.2f} "
            f"| {seconds / floor:.3f}x | {seconds / mint:.3f}x |"
        )
    return "\n".join(lines + (["", *notes] if notes else []))


def memory_per_connection(connections: int = 100) -> dict[str, float]:
    """Bytes traced per negotiated extension pair after one message each way."""
    message = build_messages(1)[0]
    payload = compressed_payloads([message], 6)[0]
    results = {}

    def mint_pair() -> object:
        ext = mint_extension()
        ext.encode_frame(2, message, 0, True)
        ext.decode_frame(2, payload, 0x40, True, None)
        return ext

    def websockets_pair() -> object:
        ext = websockets_extension()
        ext.encode(WebsocketsFrame(Opcode.BINARY, message))
        ext.decode(WebsocketsFrame(Opcode.BINARY, payload, rsv1=True))
        return ext

    for name, make in (("mint", mint_pair), ("websockets", websockets_pair)):
        gc.collect()
        tracemalloc.start()
        held = [make() for _ in range(connections)]
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results[name] = current / len(held)
        del held
    return results


KEYS = tuple(f"{kind}-{level}" for level in LEVELS for kind in ("encode", "decode"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-r", "--rounds", type=int, default=9, help="rounds (default 9)")
    parser.add_argument(
        "-w",
        "--workload",
        action="append",
        choices=KEYS,
        help="run only these workloads (repeatable; default all)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_COUNT} messages, one round: checks that everything runs",
    )
    args = parser.parse_args(argv)
    count, rounds = (QUICK_COUNT, 1) if args.quick else (COUNT, args.rounds)
    selected = args.workload or KEYS

    messages = build_messages(count)
    results: list[tuple[Workload, dict[str, float | str]]] = []
    headline = []
    for level in LEVELS:
        inputs = build_inputs(messages, level)
        ratio = sum(map(len, inputs.payloads)) / sum(map(len, messages))
        headline.append(f"level {level}: compressed to {ratio:.1%}")
        for workload in workloads(inputs):
            if workload.key in selected:
                results.append((workload, measure(workload, rounds)))
                print(f"done: {workload.key}", file=sys.stderr)
    memory = memory_per_connection()

    average = sum(map(len, messages)) / count
    if args.json:
        document = {
            "messages": count,
            "average_size": average,
            "rounds": rounds,
            "speedups": codec.c_decode_run is not None,
            "results": [
                {
                    "workload": workload.key,
                    "median_ms": {
                        name: None if isinstance(value, str) else value * 1e3
                        for name, value in medians.items()
                    },
                    "not_available": {
                        name: value for name, value in medians.items() if isinstance(value, str)
                    },
                    "ratio_vs_mint": {
                        name: value / mint
                        for name, value in medians.items()
                        if isinstance(value, float) and isinstance(mint := medians["mint"], float)
                    },
                }
                for workload, medians in results
            ],
            "memory_per_connection_bytes": memory,
        }
        print(json.dumps(document, indent=2))
        return 0
    print(f"messages: {count} x {average:.0f} B on average; " + "; ".join(headline))
    print(f"mint C decoder: {'yes' if codec.c_decode_run is not None else 'no'}; ", end="")
    print(f"median of {rounds} rounds\n")
    for workload, medians in results:
        print(table(workload, medians, count), "\n")
    print("### memory per connection (one message each way, default settings)\n")
    print("| implementation | KiB traced |\n|---|---:|")
    for name, size in memory.items():
        print(f"| {name} | {size / 1024:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
