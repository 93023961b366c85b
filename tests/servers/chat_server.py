"""A chat room for the chat example's test: every message goes to everyone else in the room."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


@contextlib.contextmanager
def chat_server() -> Iterator[tuple[int, threading.Event]]:
    """Serve the room on 127.0.0.1; yields its port and an event set once two members joined."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    two_joined = threading.Event()
    members: set[ServerConnection] = set()
    state: dict[str, object] = {}

    async def member(connection: ServerConnection) -> None:
        members.add(connection)
        if len(members) >= 2:
            two_joined.set()
        try:
            async for message in connection:  # ends quietly on any close
                for other in list(members - {connection}):
                    with contextlib.suppress(Exception):
                        await other.send(message)
        except ConnectionClosed:
            pass  # a member that vanished: the room goes on
        finally:
            members.discard(connection)

    async def main() -> None:
        async with serve(member, "127.0.0.1", 0, compression=None) as server:
            state["port"] = server.sockets[0].getsockname()[1]
            stop = loop.create_future()
            state["stop"] = stop
            ready.set()
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the chat server did not start"
    try:
        port = state["port"]
        assert isinstance(port, int)
        yield port, two_joined
    finally:
        stop = state["stop"]
        assert isinstance(stop, asyncio.Future)
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()


__all__ = ["chat_server"]
