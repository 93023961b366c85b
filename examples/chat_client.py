"""A small chat client on mint's asyncio sessions: one coroutine listens, one talks.

    python examples/chat_client.py ws://127.0.0.1:8765/room          # lines from stdin
    python examples/chat_client.py ws://127.0.0.1:8765/room --say hi --say "bye"

Each line becomes a text message; whatever the server sends is printed as
``< message``.  There is no background task inside mint: the listening
coroutine's ``async for`` is what reads the connection (and answers the
server's pings, and sends keepalive pings).  With ``--say`` the client waits
``--linger`` seconds for replies after its last line, then closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from mint.client import aio


async def stdin_lines() -> AsyncIterator[str]:
    """Lines typed (or piped) on stdin, read without blocking the event loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode().rstrip("\n")


async def said(lines: list[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def listen(ws: aio.Session) -> None:
    async for message in ws:  # ends quietly on a normal close
        text = message if isinstance(message, str) else message.hex()
        print(f"< {text}", flush=True)


async def chat(url: str, say: list[str], linger: float) -> None:
    async with aio.connect(url) as ws:
        print(f"connected over {ws.http_version}", file=sys.stderr, flush=True)
        listener = asyncio.ensure_future(listen(ws))
        lines = said(say) if say else stdin_lines()
        async for line in lines:
            await ws.send(line)
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(listener), linger)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--say", action="append", default=[], help="a line to send (repeatable)")
    parser.add_argument("--linger", type=float, default=1.0, help="seconds to wait for replies")
    options = parser.parse_args()
    asyncio.run(chat(options.url, options.say, options.linger))


if __name__ == "__main__":
    main()
