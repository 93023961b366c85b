"""A chat room for the chat example's test: every message goes to everyone else in the room.

The ``websockets`` package's asyncio server, run in a background thread with
its own event loop, as ``websockets_echo.py`` does; every path is the same
room.  To try ``examples/chat_client.py`` by hand::

    python tests/servers/chat_server.py 8765
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Iterator

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


@contextlib.contextmanager
def chat_server(port: int = 0) -> Iterator[tuple[int, threading.Event]]:
    """Serve the room on 127.0.0.1; yields its port and an event set once two members joined."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    two_joined = threading.Event()
    members: set[ServerConnection] = set()
    bound: list[int] = []
    stop: list[asyncio.Future[None]] = []

    async def member(connection: ServerConnection) -> None:
        members.add(connection)
        if len(members) >= 2:
            two_joined.set()
        try:
            async for message in connection:  # ends quietly on a normal close
                for other in list(members - {connection}):
                    with contextlib.suppress(ConnectionClosed):
                        await other.send(message)
        except ConnectionClosed:
            pass  # a member that vanished: the room goes on
        finally:
            members.discard(connection)

    async def main() -> None:
        async with serve(member, "127.0.0.1", port, compression=None) as server:
            bound.append(server.sockets[0].getsockname()[1])
            stop.append(loop.create_future())
            ready.set()
            await stop[0]

    def run() -> None:
        try:
            loop.run_until_complete(main())
        finally:
            ready.set()  # a failed start must not leave the caller waiting
            loop.close()

    thread = threading.Thread(target=run, name="chat-server", daemon=True)
    thread.start()
    ready.wait(10)
    if not bound:
        thread.join(10)
        raise RuntimeError(f"the chat server did not start on 127.0.0.1:{port}")
    try:
        yield bound[0], two_joined
    finally:
        loop.call_soon_threadsafe(stop[0].set_result, None)
        thread.join(10)


__all__ = ["chat_server"]


if __name__ == "__main__":
    with chat_server(int(sys.argv[1]) if len(sys.argv) > 1 else 8765) as (port, _):
        print(f"chat room on ws://127.0.0.1:{port}/ (Ctrl-C stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
