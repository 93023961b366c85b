"""Benchmark mint's WebSocket codec against websockets, wsproto, aiohttp and picows (client side).

Run ``python benchmarks/bench_codec.py`` (``--help`` for options).  See
``benchmarks/README.md`` for what is measured and why.  No sockets: websockets and
wsproto are sans-I/O; aiohttp and picows are driven through their client objects
over stand-in transports (``_peers.py``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import cast

import aiohttp
import websockets
import wsproto
from _peers import (
    AIOHTTP_BINARY,
    AIOHTTP_PING,
    AIOHTTP_PONG,
    AIOHTTP_TEXT,
    PICOWS_BINARY,
    PICOWS_TEXT,
    AiohttpReceiver,
    PicowsClient,
    SinkTransport,
    aiohttp_writer,
    run_sync,
)
from websockets.client import ClientProtocol
from websockets.frames import Frame as WebsocketsFrame
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Message, Ping, TextMessage

from mint.websocket import codec
from mint.websocket._mask import SPEEDUPS
from mint.websocket.codec import WebSocket
from mint.websocket.frames import Binary, Pong, Text
from mint.websocket.frames import Ping as MintPing

CHUNK = 64 * 1024
SMALL_SIZE = 32
LARGE_SIZE = 2**20
FRAGMENTS = 4
FRAGMENT_SIZE = 64
PING_SIZE = 4
LIMIT = 64 * 2**20
ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class Counts:
    small: int = 20_000
    large: int = 16
    fragmented: int = 5_000


QUICK = Counts(small=400, large=2, fragmented=100)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked frame, as a server sends it."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        header = bytes((first, size))
    elif size < 65536:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


def chunked(stream: bytes, size: int = CHUNK) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def fragmented_message(index: int) -> bytes:
    """One text message in 4 fragments of 64 bytes, a ping between the 2nd and the 3rd."""
    body = (f"{index:08d}".encode() + ALPHABET * 8)[: FRAGMENTS * FRAGMENT_SIZE]
    pieces = [body[i : i + FRAGMENT_SIZE] for i in range(0, len(body), FRAGMENT_SIZE)]
    assert len(pieces) == FRAGMENTS and all(len(p) == FRAGMENT_SIZE for p in pieces)
    frames = [
        server_frame(0x1 if i == 0 else 0x0, piece, fin=i == FRAGMENTS - 1)
        for i, piece in enumerate(pieces)
    ]
    frames.insert(2, server_frame(0x9, struct.pack("!I", index)))
    return b"".join(frames)


@dataclass
class Inputs:
    counts: Counts
    small_texts: list[str]
    small_chunks: list[bytes]
    large_payload: bytes
    large_chunks: list[bytes]
    fragmented_chunks: list[bytes]


def build_inputs(counts: Counts) -> Inputs:
    small_text = "abcdefghijklmnopqrstuvwxyz012345"
    assert len(small_text.encode()) == SMALL_SIZE
    small_stream = server_frame(0x1, small_text.encode()) * counts.small
    # Distinct strings to encode, so that no library gets a cached UTF-8 form for free.
    small_texts = [f"{i:08d}-abcdefghijklmnopqrstuvw" for i in range(counts.small)]
    assert all(len(text) == SMALL_SIZE for text in small_texts)
    large_payload = os.urandom(LARGE_SIZE)
    large_stream = server_frame(0x2, large_payload) * counts.large
    fragmented = b"".join(fragmented_message(i) for i in range(counts.fragmented))
    return Inputs(
        counts,
        small_texts,
        chunked(small_stream),
        large_payload,
        chunked(large_stream),
        chunked(fragmented),
    )


# -- one setup function per (implementation, workload) ---------------------------------------
#
# Each builds the client-side object(s) untimed and returns the timed run, which returns a
# tuple of counts that the harness compares with the workload's expected result.

Result = tuple[int, ...]
Timed = Callable[[], Result]


def websockets_protocol() -> ClientProtocol:
    return ClientProtocol(parse_uri("ws://localhost/"), state=State.OPEN, max_size=LIMIT)


# decode: whole messages (20,000 x 32 B text; 16 x 1 MiB binary) ---------------------------


def mint_decode(chunks: list[bytes]) -> Timed:
    decode = WebSocket(max_frame_size=LIMIT, max_message_size=LIMIT).decode

    def run() -> Result:
        messages = 0
        for chunk in chunks:
            messages += len(decode(chunk))
        return (messages,)

    return run


def mint_decode_sized(chunks: list[bytes]) -> Timed:
    decode = WebSocket(max_frame_size=LIMIT, max_message_size=LIMIT).decode

    def run() -> Result:
        messages = size = 0
        for chunk in chunks:
            for frame in decode(chunk):
                messages += 1
                size += len(frame.data)  # type: ignore[union-attr]
        return (messages, size)

    return run


def websockets_decode(chunks: list[bytes], sized: bool = False) -> Timed:
    protocol = websockets_protocol()
    receive, events = protocol.receive_data, protocol.events_received

    def run() -> Result:
        messages = size = 0
        for chunk in chunks:
            receive(chunk)
            frames = cast("list[WebsocketsFrame]", events())  # no handshake: frames only
            messages += len(frames)
            if sized:
                size += sum(len(frame.data) for frame in frames)
        return (messages, size) if sized else (messages,)

    return run


def wsproto_decode(chunks: list[bytes], sized: bool = False) -> Timed:
    connection = Connection(ConnectionType.CLIENT)
    receive, events = connection.receive_data, connection.events

    def run() -> Result:
        messages = size = 0
        for chunk in chunks:
            receive(chunk)
            # wsproto hands a message over in pieces as it arrives; count whole messages.
            for event in events():
                if isinstance(event, Message):
                    messages += event.message_finished
                    if sized:
                        size += len(event.data)
        return (messages, size) if sized else (messages,)

    return run


def aiohttp_decode(chunks: list[bytes], sized: bool = False) -> Timed:
    receiver = AiohttpReceiver(LIMIT)
    feed, queue = receiver.reader.feed_data, receiver.queue
    read, buffered = queue.read, queue._buffer

    async def receive() -> Result:
        messages = size = 0
        for chunk in chunks:
            feed(chunk)
            while buffered:  # what ws.receive() would find without waiting
                message = await read()
                messages += 1
                if sized:
                    size += len(message.data)
        return (messages, size) if sized else (messages,)

    return lambda: run_sync(receive())


def picows_decode(chunks: list[bytes], sized: bool = False) -> Timed:
    client = PicowsClient(LIMIT)
    feed, listener = client.feed, client.listener

    def run() -> Result:
        for chunk in chunks:
            feed(chunk)
        return (listener.messages, listener.size) if sized else (listener.messages,)

    return run


# decode: fragmented text messages with a ping among the fragments ---------------------------


def mint_decode_fragmented(chunks: list[bytes]) -> Timed:
    ws = WebSocket(max_frame_size=LIMIT, max_message_size=LIMIT)
    decode, encode = ws.decode, ws.encode

    def run() -> Result:
        messages = pong_bytes = 0
        for chunk in chunks:
            for frame in decode(chunk):
                if type(frame) is Text:
                    messages += 1
                elif type(frame) is MintPing:
                    # mint hands pings to the caller, who answers.
                    pong_bytes += len(encode(Pong(frame.data)))
                else:
                    raise AssertionError(frame)
        return (messages, pong_bytes)

    return run


def websockets_decode_fragmented(chunks: list[bytes]) -> Timed:
    protocol = websockets_protocol()
    receive, events, data_to_send = (
        protocol.receive_data,
        protocol.events_received,
        protocol.data_to_send,
    )

    def run() -> Result:
        messages = pong_bytes = 0
        parts: list[bytes | bytearray | memoryview] = []
        for chunk in chunks:
            receive(chunk)  # answers pings itself: the pongs wait in data_to_send()
            # websockets' sans-I/O layer hands out frames; its connection layer joins
            # fragments and decodes text, as done here.
            for frame in cast("list[WebsocketsFrame]", events()):
                opcode = frame.opcode
                if opcode is Opcode.TEXT or opcode is Opcode.CONT:
                    parts.append(frame.data)
                    if frame.fin:
                        b"".join(parts).decode()
                        parts = []
                        messages += 1
            pong_bytes += sum(map(len, data_to_send()))
        return (messages, pong_bytes)

    return run


def wsproto_decode_fragmented(chunks: list[bytes]) -> Timed:
    connection = Connection(ConnectionType.CLIENT)
    receive, events, send = connection.receive_data, connection.events, connection.send

    def run() -> Result:
        messages = pong_bytes = 0
        for chunk in chunks:
            receive(chunk)
            for event in events():
                if isinstance(event, TextMessage):
                    messages += event.message_finished
                elif isinstance(event, Ping):
                    pong_bytes += len(send(event.response()))
        return (messages, pong_bytes)

    return run


def aiohttp_decode_fragmented(chunks: list[bytes]) -> Timed:
    receiver = AiohttpReceiver(LIMIT)
    feed, queue = receiver.reader.feed_data, receiver.queue
    read, buffered = queue.read, queue._buffer
    sink = SinkTransport()
    send_frame = aiohttp_writer(sink).send_frame

    async def receive() -> Result:
        messages = 0
        for chunk in chunks:
            feed(chunk)
            while buffered:
                message = await read()
                if message.type is AIOHTTP_TEXT:
                    messages += 1
                elif message.type is AIOHTTP_PING:
                    # ClientWebSocketResponse.receive() with autoping: await self.pong(data)
                    await send_frame(message.data, AIOHTTP_PONG)
        return (messages, sink.size)

    return lambda: run_sync(receive())


def picows_decode_fragmented(chunks: list[bytes]) -> Timed:
    client = PicowsClient(LIMIT)
    feed, listener, sink = client.feed, client.listener, client.sink

    def run() -> Result:
        for chunk in chunks:
            feed(chunk)  # picows answers pings itself (enable_auto_pong, its default)
        return (listener.messages, sink.size)

    return run


# encode: 32-byte text messages from str, masked ----------------------------------------------


def mint_encode_text(texts: list[str]) -> Timed:
    """``encode_text``: straight from the ``str``, with no frame object (``Text`` costs as much)."""
    encode_text = WebSocket().encode_text

    def run() -> Result:
        size = 0
        for text in texts:
            size += len(encode_text(text))
        return (size,)

    return run


def websockets_encode_text(texts: list[str]) -> Timed:
    protocol = websockets_protocol()
    send_text, data_to_send = protocol.send_text, protocol.data_to_send

    def run() -> Result:
        size = 0
        for text in texts:
            # websockets' sans-I/O send_text takes UTF-8 bytes; its connection encodes the str.
            send_text(text.encode())
            size += sum(map(len, data_to_send()))
        return (size,)

    return run


def wsproto_encode_text(texts: list[str]) -> Timed:
    send = Connection(ConnectionType.CLIENT).send

    def run() -> Result:
        size = 0
        for text in texts:
            size += len(send(TextMessage(data=text)))
        return (size,)

    return run


def aiohttp_encode_text(texts: list[str]) -> Timed:
    sink = SinkTransport()
    send_frame = aiohttp_writer(sink).send_frame

    async def send() -> Result:
        for text in texts:
            # ClientWebSocketResponse.send_str(text) is this, after an isinstance check.
            await send_frame(text.encode("utf-8"), AIOHTTP_TEXT)
        return (sink.size,)

    return lambda: run_sync(send())


def picows_encode_text(texts: list[str]) -> Timed:
    client = PicowsClient(LIMIT)
    send, sink = client.transport.send, client.sink

    def run() -> Result:
        for text in texts:
            send(PICOWS_TEXT, text)  # picows encodes a str to UTF-8 itself
        return (sink.size,)

    return run


# encode: 1 MiB binary messages, masked --------------------------------------------------------


def mint_encode_binary(payload: bytes, count: int) -> Timed:
    encode = WebSocket().encode

    def run() -> Result:
        return (sum(len(encode(Binary(payload))) for _ in range(count)),)

    return run


def websockets_encode_binary(payload: bytes, count: int) -> Timed:
    protocol = websockets_protocol()
    send_binary, data_to_send = protocol.send_binary, protocol.data_to_send

    def run() -> Result:
        size = 0
        for _ in range(count):
            send_binary(payload)
            size += sum(map(len, data_to_send()))
        return (size,)

    return run


def wsproto_encode_binary(payload: bytes, count: int) -> Timed:
    send = Connection(ConnectionType.CLIENT).send

    def run() -> Result:
        return (sum(len(send(BytesMessage(data=payload))) for _ in range(count)),)

    return run


def aiohttp_encode_binary(payload: bytes, count: int) -> Timed:
    sink = SinkTransport()
    send_frame = aiohttp_writer(sink).send_frame

    async def send() -> Result:
        for _ in range(count):
            await send_frame(payload, AIOHTTP_BINARY)
        return (sink.size,)

    return lambda: run_sync(send())


def picows_encode_binary(payload: bytes, count: int) -> Timed:
    client = PicowsClient(LIMIT)
    send, sink = client.transport.send, client.sink

    def run() -> Result:
        for _ in range(count):
            send(PICOWS_BINARY, payload)
        return (sink.size,)

    return run


# -- the harness --------------------------------------------------------------------------------

IMPLEMENTATIONS = ("mint", "websockets", "wsproto", "aiohttp", "picows")
KEYS = ("decode-small", "decode-large", "decode-fragmented", "encode-small", "encode-large")

#: An implementation's setup (untimed) returning its timed run, or why it cannot run.
Setup = Callable[[], Timed]


@dataclass
class Workload:
    key: str
    name: str
    runs: dict[str, Setup | str]
    expected: Result


def workloads(inputs: Inputs) -> list[Workload]:
    n = inputs.counts
    small, large, frag = inputs.small_chunks, inputs.large_chunks, inputs.fragmented_chunks
    texts, payload = inputs.small_texts, inputs.large_payload
    pong_frame = 6 + PING_SIZE
    return [
        Workload(
            "decode-small",
            f"decode {n.small:,} x {SMALL_SIZE} B text",
            {
                "mint": lambda: mint_decode(small),
                "websockets": lambda: websockets_decode(small),
                "wsproto": lambda: wsproto_decode(small),
                "aiohttp": lambda: aiohttp_decode(small),
                "picows": lambda: picows_decode(small),
            },
            (n.small,),
        ),
        Workload(
            "decode-large",
            f"decode {n.large} x 1 MiB binary",
            {
                "mint": lambda: mint_decode_sized(large),
                "websockets": lambda: websockets_decode(large, sized=True),
                "wsproto": lambda: wsproto_decode(large, sized=True),
                "aiohttp": lambda: aiohttp_decode(large, sized=True),
                "picows": lambda: picows_decode(large, sized=True),
            },
            (n.large, n.large * LARGE_SIZE),
        ),
        Workload(
            "decode-fragmented",
            f"decode {n.fragmented:,} x {FRAGMENTS} x {FRAGMENT_SIZE} B fragments + ping",
            {
                "mint": lambda: mint_decode_fragmented(frag),
                "websockets": lambda: websockets_decode_fragmented(frag),
                "wsproto": lambda: wsproto_decode_fragmented(frag),
                "aiohttp": lambda: aiohttp_decode_fragmented(frag),
                "picows": lambda: picows_decode_fragmented(frag),
            },
            (n.fragmented, n.fragmented * pong_frame),
        ),
        Workload(
            "encode-small",
            f"encode {n.small:,} x {SMALL_SIZE} B text from str",
            {
                "mint": lambda: mint_encode_text(texts),
                "websockets": lambda: websockets_encode_text(texts),
                "wsproto": lambda: wsproto_encode_text(texts),
                "aiohttp": lambda: aiohttp_encode_text(texts),
                "picows": lambda: picows_encode_text(texts),
            },
            (n.small * (6 + SMALL_SIZE),),
        ),
        Workload(
            "encode-large",
            f"encode {n.large} x 1 MiB binary",
            {
                "mint": lambda: mint_encode_binary(payload, n.large),
                "websockets": lambda: websockets_encode_binary(payload, n.large),
                "wsproto": lambda: wsproto_encode_binary(payload, n.large),
                "aiohttp": lambda: aiohttp_encode_binary(payload, n.large),
                "picows": lambda: picows_encode_binary(payload, n.large),
            },
            (n.large * (14 + LARGE_SIZE),),
        ),
    ]


def measure(setup: Setup, expected: Result) -> float:
    run = setup()
    gc.collect()
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    if result != expected:
        raise AssertionError(f"a benchmark run produced {result}, expected {expected}")
    return elapsed


def bench(workload: Workload, rounds: int) -> dict[str, float | str]:
    """Median time (or the reason it cannot run) per implementation, taking turns each round."""
    runnable = {name: run for name, run in workload.runs.items() if not isinstance(run, str)}
    for setup in runnable.values():  # warm-up: imports, caches, branch predictors
        measure(setup, workload.expected)
    times: dict[str, list[float]] = {name: [] for name in runnable}
    for _ in range(rounds):
        for name, setup in runnable.items():
            times[name].append(measure(setup, workload.expected))
    return {
        name: run if isinstance(run, str) else statistics.median(times[name])
        for name, run in workload.runs.items()
    }


Results = list[tuple[Workload, dict[str, float | str]]]


def ratio(medians: dict[str, float | str], name: str) -> float | None:
    """``name``'s time over mint's: above 1, mint is faster."""
    mine, theirs = medians["mint"], medians[name]
    if isinstance(mine, str) or isinstance(theirs, str):
        return None
    return theirs / mine


def markdown_table(results: Results, names: Sequence[str]) -> str:
    peers = [name for name in names if name != "mint"]
    header = ["workload", *(f"{name} (ms)" for name in names)]
    header += [f"{name} / mint" for name in peers]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    reasons: dict[str, str] = {}
    for workload, medians in results:
        cells = [workload.name]
        for name in names:
            value = medians[name]
            if isinstance(value, str):
                reasons[f"{name}, {workload.key}"] = value
                cells.append("n/a")
            else:
                cells.append(f"{value * 1e3:.2f}")
        for name in peers:
            value_ratio = ratio(medians, name)
            cells.append("n/a" if value_ratio is None else f"{value_ratio:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [f"\nn/a ({where}): {why}" for where, why in reasons.items()]
    return "\n".join(lines)


def versions() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "websockets": websockets.version.version,
        "wsproto": getattr(wsproto, "__version__", "?"),
        "aiohttp": aiohttp.__version__,
        "picows": version("picows"),
        "mint C accelerator": "yes" if SPEEDUPS and codec.c_decode_run is not None else "no",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-r", "--rounds", type=int, default=7, help="rounds per workload (default 7)"
    )
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
        help="tiny inputs and one round: checks that everything runs (the numbers mean nothing)",
    )
    args = parser.parse_args(argv)
    counts, rounds = (QUICK, 1) if args.quick else (Counts(), args.rounds)
    selected = args.workload or KEYS
    results: Results = []
    for workload in workloads(build_inputs(counts)):
        if workload.key not in selected:
            continue
        results.append((workload, bench(workload, rounds)))
        print(f"done: {workload.name}", file=sys.stderr)
    info = versions()
    if args.json:
        document = {
            "versions": info,
            "rounds": rounds,
            "results": [
                {
                    "workload": workload.key,
                    "name": workload.name,
                    "median_ms": {
                        name: None if isinstance(value, str) else value * 1e3
                        for name, value in medians.items()
                    },
                    "not_available": {
                        name: value for name, value in medians.items() if isinstance(value, str)
                    },
                    "ratio_vs_mint": {
                        name: ratio(medians, name) for name in IMPLEMENTATIONS if name != "mint"
                    },
                }
                for workload, medians in results
            ],
        }
        print(json.dumps(document, indent=2))
    else:
        print(", ".join(f"{key} {value}" for key, value in info.items()))
        print(f"median of {rounds} rounds\n")
        print(markdown_table(results, IMPLEMENTATIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
