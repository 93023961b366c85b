"""What one sleep-and-wake round trip costs a client on this machine, with no protocol at all.

An HTTP/2 upload held back by the server's flow-control windows goes in
steps: the client writes as much as the windows allow, sleeps until the
server's WINDOW_UPDATEs arrive, wakes, and writes again.  Against hypercorn's
65,535-byte windows that is some 30 steps per MiB.  Each step costs the client
a trip through the kernel's scheduler and the TCP stack whatever the client
is written in, so the cheapest possible HTTP/2 client still pays
``steps x floor`` more than an HTTP/1.1 client writing the same bytes at once.

This measures ``floor`` here, the same way the blocking shell waits: write
32 KiB to a peer process, ``poll`` until its 26-byte answer (the size of two
WINDOW_UPDATE frames) arrives, read it.  The peer answers only once it has
all 32 KiB, so the client really sleeps every time.  Only this process's CPU
time counts, as in the end-to-end benchmark.

Run it alone with ``python benchmarks/_wake_floor.py``.
"""

from __future__ import annotations

import argparse
import select
import socket
import statistics
import subprocess
import sys
import time

STEP_SIZE = 32 * 1024
ANSWER = b"\x00" * 26
HOST = "127.0.0.1"


def _serve() -> None:
    """The peer: answer every full step with ``ANSWER``, until EOF."""
    with socket.create_server((HOST, 0)) as listener:
        print(listener.getsockname()[1], flush=True)
        conn, _ = listener.accept()
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received = 0
        while True:
            data = conn.recv(1 << 20)
            if not data:
                return
            received += len(data)
            while received >= STEP_SIZE:
                received -= STEP_SIZE
                conn.sendall(ANSWER)


def _round_trip(sock: socket.socket, poller: select.poll, step: bytes) -> None:
    sent = 0
    while sent < len(step):
        try:
            sent += sock.send(step[sent:])
        except BlockingIOError:
            select.select([], [sock], [])
    got = 0
    while got < len(ANSWER):
        poller.poll()
        try:
            got += len(sock.recv(65536))
        except BlockingIOError:
            continue


def measure(round_trips: int = 2_000, rounds: int = 3) -> float:
    """Median client CPU microseconds per sleep-and-wake round trip."""
    peer = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert peer.stdout is not None
        port = int(peer.stdout.readline())
        with socket.create_connection((HOST, port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            step = b"s" * STEP_SIZE
            for _ in range(round_trips // 10):
                _round_trip(sock, poller, step)
            samples = []
            for _ in range(rounds):
                started = time.process_time()
                for _ in range(round_trips):
                    _round_trip(sock, poller, step)
                samples.append((time.process_time() - started) / round_trips * 1e6)
        return statistics.median(samples)
    finally:
        peer.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve()
        return
    print(f"{measure():.1f} µs of client CPU per sleep-and-wake round trip")


if __name__ == "__main__":
    main()
