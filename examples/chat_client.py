"""A small chat client on mint's asyncio sessions: one coroutine listens while another talks.

    python examples/chat_client.py ws://127.0.0.1:8765/room               # type lines, Ctrl-D quits
    python examples/chat_client.py ws://127.0.0.1:8765/room --say hi --say "bye"

The URL is a chat room: a WebSocket server that passes every message on to
the room's other members (``python tests/servers/chat_server.py 8765`` runs
the one the tests use).  Each line you type, or each ``--say``, is sent as a
text message; every message from the others is printed as ``< message``.

Two coroutines of this script share the session: ``listen`` receives with
``async for message in ws``, ``talk`` sends.  mint starts no task of its own:
the listener's ``async for`` is what reads the connection (and answers the
server's pings, and sends keepalive pings).  After the last line (end of
input, or the last ``--say``) the client waits ``--linger`` seconds for
replies, then leaves the ``async with``, which closes the session with the
closing handshake.  If the server ends the session first, the client stops
talking and exits too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator

from mint.client import aio
from mint.errors import MintError


async def stdin_lines() -> AsyncIterator[str]:
    """The lines of stdin (a terminal, a pipe or a file), read without blocking the event loop."""
    fd = sys.stdin.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):  # `< file`: never blocks, and asyncio cannot watch it
        for line in sys.stdin:
            yield line.rstrip("\n")
        return
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        while line := await reader.readline():
            yield line.decode(errors="replace").rstrip("\n")
    finally:
        os.set_blocking(fd, True)  # asyncio made it non-blocking: give the terminal back as it was
        transport.close()


async def said(lines: list[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def listen(ws: aio.Session) -> None:
    async for message in ws:  # ends quietly when the server closes normally
        text = message if isinstance(message, str) else f"({len(message)} bytes)"
        print(f"< {text}", flush=True)


async def talk(ws: aio.Session, lines: AsyncIterator[str]) -> None:
    async for line in lines:
        await ws.send(line)


async def chat(url: str, say: list[str], linger: float) -> None:
    async with aio.connect(url) as ws:
        print(f"connected over {ws.http_version}", file=sys.stderr, flush=True)
        listener = asyncio.create_task(listen(ws))
        talker = asyncio.create_task(talk(ws, said(say) if say else stdin_lines()))
        await asyncio.wait([listener, talker], return_when=asyncio.FIRST_COMPLETED)
        if not listener.done() and talker.exception() is None:
            await asyncio.wait([listener], timeout=linger)  # all said: time for replies
        listener.cancel()  # mint's reads are safe to cancel: nothing received is lost
        talker.cancel()
        for outcome in await asyncio.gather(listener, talker, return_exceptions=True):
            if isinstance(outcome, Exception):
                raise outcome  # a lost connection, say: reported by main
    print(f"closed: {ws.close_code} {ws.close_reason or ''}".rstrip(), file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description="A small chat client on mint.client.aio.")
    parser.add_argument("url", help="the chat room, ws:// or wss://")
    parser.add_argument("--say", action="append", default=[], help="a line to send (repeatable)")
    parser.add_argument("--linger", type=float, default=1.0, help="seconds to wait for replies")
    options = parser.parse_args()
    try:
        asyncio.run(chat(options.url, options.say, options.linger))
    except MintError as exc:  # refused, timed out, connection lost...
        print(f"chat: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
