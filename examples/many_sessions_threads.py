"""100 WebSocket sessions sharing ONE HTTP/2 connection, used from 10 threads at once.

    python examples/many_sessions_threads.py ws://127.0.0.1:8000/echo

The URL must be a WebSocket echo server that speaks RFC 8441 over h2c (for
example hypercorn).  Each thread opens 10 sessions on the shared
``client.Client`` and exchanges messages on each, checking every echo.
mint starts no thread of its own: whichever thread waits reads the
connection for all of them and hands each message to its session.
"""

from __future__ import annotations

import sys
import threading
import time

from mint import client

THREADS, SESSIONS_PER_THREAD, MESSAGES = 10, 10, 5


def worker(c: client.Client, url: str, number: int, failures: list[str]) -> None:
    try:
        sessions = [c.connect(f"{url}?t={number}&s={i}") for i in range(SESSIONS_PER_THREAD)]
        for round_ in range(MESSAGES):
            for i, ws in enumerate(sessions):
                ws.send(f"thread {number} session {i} message {round_}")
            for i, ws in enumerate(sessions):
                expected = f"thread {number} session {i} message {round_}"
                reply = ws.recv(timeout=10)
                if reply != expected:
                    failures.append(f"{expected!r} came back as {reply!r}")
        for ws in sessions:
            ws.close()
    except Exception as exc:  # reported by main, so one thread's failure is not lost
        failures.append(f"thread {number}: {exc!r}")


def main(url: str) -> int:
    failures: list[str] = []
    started = time.monotonic()
    with client.Client(http2=True) as c:
        threads = [
            threading.Thread(target=worker, args=(c, url, n, failures)) for n in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        connections = len(c.connections())
    total = THREADS * SESSIONS_PER_THREAD
    print(f"{total} sessions from {THREADS} threads, {total * MESSAGES} echoes checked")
    print(f"connections used: {connections}")
    print(f"took {time.monotonic() - started:.2f}s")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures or connections != 1 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
