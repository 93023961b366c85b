"""100 WebSocket sessions sharing ONE HTTP/2 connection, used from 10 threads at once.

    python examples/many_sessions_threads.py ws://127.0.0.1:8000/echo

The URL must be a WebSocket echo server that speaks RFC 8441 over h2c
(cleartext HTTP/2), hypercorn for example.  ``client.Client(http2=True)``
pools one HTTP/2 connection per origin: each of the 10 threads opens 10
sessions on it and sends several messages on each, checking every echo.
The threads are this script's; mint starts none.  Whichever thread is
waiting reads the shared connection for all of them and hands each message
to its session.  At the end the script prints how many connections the
client used (1) and exits with 1 if that or any echo was wrong.
"""

from __future__ import annotations

import sys
import threading
import time

from mint import client

THREADS, SESSIONS_PER_THREAD, MESSAGES = 10, 10, 5


def worker(c: client.Client, url: str, number: int, failures: list[str]) -> None:
    """Open this thread's sessions on the shared client, exchange messages, close them."""
    try:
        sessions = [c.connect(url) for _ in range(SESSIONS_PER_THREAD)]
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
    sessions = THREADS * SESSIONS_PER_THREAD
    print(f"{sessions} sessions from {THREADS} threads, {sessions * MESSAGES} echoes checked")
    print(f"connections used: {connections}")
    print(f"took {time.monotonic() - started:.2f}s")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures or connections != 1 else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} ws://HOST:PORT/PATH  (an h2c WebSocket echo server)")
    sys.exit(main(sys.argv[1]))
