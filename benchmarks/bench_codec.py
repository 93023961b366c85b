"""Benchmark mint's WebSocket codec against websockets and wsproto (sans-I/O, client side).

Run ``python benchmarks/bench_codec.py`` (``--help`` for options).  See
``benchmarks/README.md`` for what is measured and why.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import websockets
import wsproto
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, Message, TextMessage

from mint.websocket.codec import WebSocket
from mint.websocket.frames import Binary, Text

CHUNK = 64 * 1024
SMALL_COUNT = 20_000
SMALL_SIZE = 32
LARGE_COUNT = 16
LARGE_SIZE = 2**20
LIMIT = 64 * 2**20


def server_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked FIN frame, as a server sends it."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return header + payload


def chunked(stream: bytes, size: int = CHUNK) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


@dataclass
class Inputs:
    small_text: str
    small_chunks: list[bytes]
    large_payload: bytes
    large_chunks: list[bytes]


def build_inputs() -> Inputs:
    small_text = "abcdefghijklmnopqrstuvwxyz012345"
    assert len(small_text.encode()) == SMALL_SIZE
    small_stream = server_frame(0x1, small_text.encode()) * SMALL_COUNT
    large_payload = os.urandom(LARGE_SIZE)
    large_stream = server_frame(0x2, large_payload) * LARGE_COUNT
    return Inputs(small_text, chunked(small_stream), large_payload, chunked(large_stream))


# -- one function per (implementation, workload); each returns a count to check ---------------


def mint_decode(chunks: list[bytes]) -> int:
    ws = WebSocket(max_frame_size=LIMIT, max_message_size=LIMIT)
    decode = ws.decode
    return sum(len(decode(chunk)) for chunk in chunks)


def websockets_decode(chunks: list[bytes]) -> int:
    protocol = ClientProtocol(parse_uri("ws://localhost/"), state=State.OPEN, max_size=LIMIT)
    count = 0
    for chunk in chunks:
        protocol.receive_data(chunk)
        count += len(protocol.events_received())
    return count


def wsproto_decode(chunks: list[bytes]) -> int:
    connection = Connection(ConnectionType.CLIENT)
    count = 0
    for chunk in chunks:
        connection.receive_data(chunk)
        # wsproto may split a message into several events; count whole messages.
        count += sum(
            1
            for event in connection.events()
            if isinstance(event, Message) and event.message_finished
        )
    return count


def mint_encode_text(text: str, count: int) -> int:
    encode = WebSocket().encode
    frame = Text(text)
    total = 0
    for _ in range(count):
        total += len(encode(frame))
    return total


def websockets_encode_text(text: str, count: int) -> int:
    protocol = ClientProtocol(parse_uri("ws://localhost/"), state=State.OPEN, max_size=LIMIT)
    send_text, data_to_send = protocol.send_text, protocol.data_to_send
    total = 0
    for _ in range(count):
        # websockets takes text as UTF-8 bytes; encoding it is part of sending text.
        send_text(text.encode())
        total += sum(map(len, data_to_send()))
    return total


def wsproto_encode_text(text: str, count: int) -> int:
    send = Connection(ConnectionType.CLIENT).send
    total = 0
    for _ in range(count):
        total += len(send(TextMessage(data=text)))
    return total


def mint_encode_binary(payload: bytes, count: int) -> int:
    encode = WebSocket().encode
    frame = Binary(payload)
    return sum(len(encode(frame)) for _ in range(count))


def websockets_encode_binary(payload: bytes, count: int) -> int:
    protocol = ClientProtocol(parse_uri("ws://localhost/"), state=State.OPEN, max_size=LIMIT)
    total = 0
    for _ in range(count):
        protocol.send_binary(payload)
        total += sum(map(len, protocol.data_to_send()))
    return total


def wsproto_encode_binary(payload: bytes, count: int) -> int:
    send = Connection(ConnectionType.CLIENT).send
    return sum(len(send(BytesMessage(data=payload))) for _ in range(count))


# -- the harness --------------------------------------------------------------------------------

IMPLEMENTATIONS = ("mint", "websockets", "wsproto")


@dataclass
class Workload:
    name: str
    runs: dict[str, Callable[[], int]]
    expected: int


def workloads(inputs: Inputs) -> list[Workload]:
    small_frame = 6 + SMALL_SIZE
    large_frame = 14 + LARGE_SIZE
    return [
        Workload(
            f"decode {SMALL_COUNT:,} x {SMALL_SIZE} B text",
            {
                "mint": lambda: mint_decode(inputs.small_chunks),
                "websockets": lambda: websockets_decode(inputs.small_chunks),
                "wsproto": lambda: wsproto_decode(inputs.small_chunks),
            },
            SMALL_COUNT,
        ),
        Workload(
            f"decode {LARGE_COUNT} x 1 MiB binary",
            {
                "mint": lambda: mint_decode(inputs.large_chunks),
                "websockets": lambda: websockets_decode(inputs.large_chunks),
                "wsproto": lambda: wsproto_decode(inputs.large_chunks),
            },
            LARGE_COUNT,
        ),
        Workload(
            f"encode {SMALL_COUNT:,} x {SMALL_SIZE} B text",
            {
                "mint": lambda: mint_encode_text(inputs.small_text, SMALL_COUNT),
                "websockets": lambda: websockets_encode_text(inputs.small_text, SMALL_COUNT),
                "wsproto": lambda: wsproto_encode_text(inputs.small_text, SMALL_COUNT),
            },
            SMALL_COUNT * small_frame,
        ),
        Workload(
            f"encode {LARGE_COUNT} x 1 MiB binary",
            {
                "mint": lambda: mint_encode_binary(inputs.large_payload, LARGE_COUNT),
                "websockets": lambda: websockets_encode_binary(inputs.large_payload, LARGE_COUNT),
                "wsproto": lambda: wsproto_encode_binary(inputs.large_payload, LARGE_COUNT),
            },
            LARGE_COUNT * large_frame,
        ),
    ]


def measure(run: Callable[[], int], expected: int) -> float:
    gc.collect()
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    if result != expected:
        raise AssertionError(f"a benchmark run produced {result}, expected {expected}")
    return elapsed


def bench(workload: Workload, rounds: int, names: Sequence[str]) -> dict[str, float]:
    """Median time per implementation, running them in turn each round to share any drift."""
    for name in names:  # warm-up: imports, caches, branch predictors
        measure(workload.runs[name], workload.expected)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            times[name].append(measure(workload.runs[name], workload.expected))
    return {name: statistics.median(samples) for name, samples in times.items()}


def markdown_table(results: list[tuple[str, dict[str, float]]], names: Sequence[str]) -> str:
    header = ["workload", *(f"{name} (ms)" for name in names)]
    header += [f"{name} / mint" for name in names if name != "mint"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for workload_name, medians in results:
        cells = [workload_name, *(f"{medians[name] * 1e3:.2f}" for name in names)]
        cells += [f"{medians[name] / medians['mint']:.2f}x" for name in names if name != "mint"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "-r", "--rounds", type=int, default=7, help="rounds per workload (default 7)"
    )
    parser.add_argument(
        "-w",
        "--workload",
        action="append",
        choices=("decode-small", "decode-large", "encode-small", "encode-large"),
        help="run only these workloads (repeatable; default all)",
    )
    args = parser.parse_args(argv)
    keys = ["decode-small", "decode-large", "encode-small", "encode-large"]
    selected = args.workload or keys
    inputs = build_inputs()
    results = []
    for key, workload in zip(keys, workloads(inputs), strict=True):
        if key not in selected:
            continue
        medians = bench(workload, args.rounds, IMPLEMENTATIONS)
        results.append((workload.name, medians))
        print(f"done: {workload.name}", file=sys.stderr)
    print(
        f"Python {sys.version.split()[0]}, websockets {websockets.version.version}, "
        f"wsproto {wsproto.__version__ if hasattr(wsproto, '__version__') else '?'}, "
        f"median of {args.rounds} rounds\n"
    )
    print(markdown_table(results, IMPLEMENTATIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
