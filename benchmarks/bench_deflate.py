"""permessage-deflate throughput and memory: mint vs websockets vs wsproto vs bare zlib.

Encode: 5,000 JSON-like ~1 KiB messages turned into masked, compressed client
frames.  Decode: the same messages as a server would send them (compressed,
unmasked frames, one byte stream) fed in 4 KiB reads.  The floor is bare zlib
doing the per-message work RFC 7692 asks for (compress + Z_SYNC_FLUSH + strip
the tail; append the tail + decompress) with no WebSocket framing at all.

The messages are JSON but sent as binary frames (opcode 2) by every
implementation, so no one validates UTF-8 and the floor needs no
``bytes.decode``; see benchmarks/README.md.

All use level 6, memLevel 8, 15-bit windows, context takeover on both sides.
Implementations alternate within each round; the table shows medians.

mint's decode is measured twice: as installed (the C run decoder, which
inflates through ``PerMessageDeflate.inflate_hook``) and with the pure-Python
decoder that ``MINT_NO_SPEEDUPS=1`` selects (``decode_message`` per message).

Run: python benchmarks/bench_deflate.py [--rounds N]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable

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
READ_SIZE = 4096
LEVEL, MEM_LEVEL, WBITS = 6, 8, 15
TAIL = b"\x00\x00\xff\xff"

Run = Callable[[], object]


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


def server_stream(messages: list[bytes]) -> tuple[bytes, list[bytes]]:
    """The server's frames (RSV1, unmasked) as one byte stream, and their payloads."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -WBITS, MEM_LEVEL)
    frames, payloads = [], []
    for message in messages:
        payload = (compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        payloads.append(payload)
        size = len(payload)
        short = size < 126
        header = bytes((0xC2, size)) if short else struct.pack("!BBH", 0xC2, 126, size)
        frames.append(header + payload)
    return b"".join(frames), payloads


def chunks(stream: bytes) -> list[bytes]:
    return [stream[i : i + READ_SIZE] for i in range(0, len(stream), READ_SIZE)]


# -- the floor --------------------------------------------------------------------------


def floor_encode(messages: list[bytes]) -> Run:
    def run() -> object:
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -WBITS, MEM_LEVEL)
        compress, flush, sync = compressor.compress, compressor.flush, zlib.Z_SYNC_FLUSH
        return [(compress(m) + flush(sync))[:-4] for m in messages]

    return run


def floor_decode(payloads: list[bytes]) -> Run:
    def run() -> object:
        decompress = zlib.decompressobj(-WBITS).decompress
        return [decompress(p + TAIL) for p in payloads]

    return run


# -- mint ---------------------------------------------------------------------------------


def mint_extension() -> PerMessageDeflate:
    offer = PerMessageDeflate(compression_level=LEVEL, memory_level=MEM_LEVEL)
    return offer.accept([])


def mint_encode(messages: list[bytes]) -> Run:
    frames = [Binary(m) for m in messages]

    def run() -> object:
        encode = WebSocket(extensions=[mint_extension()]).encode
        return [encode(frame) for frame in frames]

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
    def run() -> object:
        decode = mint_websocket(pure_python=pure_python).decode
        received = []
        for data in reads:
            received.extend(decode(data))
        assert len(received) == COUNT
        return received

    return run


def hook_encode(messages: list[bytes]) -> Run:
    """The extension alone, as the codec calls it: isolates its cost from framing."""

    def run() -> object:
        encode_frame = mint_extension().encode_frame
        return [encode_frame(2, m, 0, True) for m in messages]

    return run


def hook_decode(payloads: list[bytes]) -> Run:
    """``decode_message``: what the pure-Python codec calls for a whole message in one frame.

    The C decoder calls it only for the first message; it inflates the others
    through ``inflate_hook`` with no Python code of the extension's at all.
    """

    def run() -> object:
        decode_message = mint_extension().decode_message
        limit = 64 * 2**20
        return [decode_message(2, p, 0x40, limit) for p in payloads]

    return run


# -- websockets (sans-I/O) -----------------------------------------------------------------


def websockets_extension() -> WebsocketsDeflate:
    return WebsocketsDeflate(
        remote_no_context_takeover=False,
        local_no_context_takeover=False,
        remote_max_window_bits=WBITS,
        local_max_window_bits=WBITS,
        compress_settings={"level": LEVEL, "memLevel": MEM_LEVEL},
    )


def websockets_protocol() -> ClientProtocol:
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=None)
    # ClientProtocol takes extension *factories*; after a handshake it holds the
    # negotiated extension here, which is what we build directly.
    protocol.extensions = [websockets_extension()]
    return protocol


def websockets_encode(messages: list[bytes]) -> Run:
    def run() -> object:
        protocol = websockets_protocol()
        send, take = protocol.send_binary, protocol.data_to_send
        out = []
        for message in messages:
            send(message)
            out.extend(take())
        return out

    return run


def websockets_decode(reads: list[bytes]) -> Run:
    def run() -> object:
        protocol = websockets_protocol()
        receive, events = protocol.receive_data, protocol.events_received
        received: list[object] = []
        for data in reads:
            receive(data)
            received.extend(events())
        assert len(received) == COUNT
        assert isinstance(received[0], WebsocketsFrame) and received[0].opcode is Opcode.BINARY
        return received

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
    events = [BytesMessage(data=m) for m in messages]

    def run() -> object:
        send = wsproto_connection().send
        return [send(event) for event in events]

    return run


def wsproto_decode(reads: list[bytes]) -> Run:
    def run() -> object:
        connection = wsproto_connection()
        receive, events = connection.receive_data, connection.events
        received: list[object] = []
        for data in reads:
            receive(data)
            received.extend(events())
        # wsproto hands over a message's data as it arrives, in pieces
        finished = sum(bool(getattr(event, "message_finished", False)) for event in received)
        assert finished == COUNT, finished
        return received

    return run


# -- harness --------------------------------------------------------------------------------


def measure(runs: dict[str, Run], rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm up: imports, caches, allocator
    for index in range(rounds):
        order = list(runs.items())
        if index % 2:
            order.reverse()
        for name, run in order:
            gc.collect()
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def table(title: str, medians: dict[str, float]) -> str:
    floor = medians["zlib floor"]
    reference = medians["websockets"]
    lines = [
        f"### {title} ({COUNT} messages)",
        "",
        "| implementation | total ms | µs/message | vs floor | vs websockets |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, seconds in medians.items():
        lines.append(
            f"| {name} | {seconds * 1e3:.1f} | {seconds / COUNT * 1e6:.2f} "
            f"| {seconds / floor:.3f}x | {seconds / reference:.3f}x |"
        )
    return "\n".join(lines)


def memory_per_connection(connections: int = 100) -> dict[str, float]:
    """Bytes traced per negotiated extension pair after one message each way."""
    message = build_messages(1)[0]
    stream, _ = server_stream([message])
    results = {}

    def mint_pair() -> object:
        ext = mint_extension()
        ext.encode_frame(2, message, 0, True)
        ext.decode_frame(2, stream[4:], 0x40, True, None)
        return ext

    def websockets_pair() -> object:
        ext = websockets_extension()
        ext.encode(WebsocketsFrame(Opcode.BINARY, message))
        ext.decode(WebsocketsFrame(Opcode.BINARY, stream[4:], rsv1=True))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    messages = build_messages()
    stream, payloads = server_stream(messages)
    reads = chunks(stream)
    average = sum(map(len, messages)) / COUNT
    ratio = sum(map(len, payloads)) / sum(map(len, messages))
    print(f"messages: {COUNT} x {average:.0f} B on average; compressed to {ratio:.1%}")
    print(f"decode input: {len(stream)} B in {len(reads)} reads of {READ_SIZE} B\n")

    encode = measure(
        {
            "zlib floor": floor_encode(messages),
            "mint": mint_encode(messages),
            "mint encode_frame only": hook_encode(messages),
            "websockets": websockets_encode(messages),
            "wsproto": wsproto_encode(messages),
        },
        args.rounds,
    )
    print(table("encode: compressed, masked client frames", encode), "\n")
    decode = measure(
        {
            "zlib floor": floor_decode(payloads),
            "mint": mint_decode(reads),
            "mint, pure-Python decoder": mint_decode(reads, pure_python=True),
            "mint decode_message only": hook_decode(payloads),
            "websockets": websockets_decode(reads),
            "wsproto": wsproto_decode(reads),
        },
        args.rounds,
    )
    print(table("decode: compressed server frames in 4 KiB reads", decode), "\n")

    memory = memory_per_connection()
    print("### memory per connection (one message each way, default settings)\n")
    print("| implementation | KiB traced |\n|---|---:|")
    for name, size in memory.items():
        print(f"| {name} | {size / 1024:.1f} |")


if __name__ == "__main__":
    main()
