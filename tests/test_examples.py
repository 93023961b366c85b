"""Every example runs, as a user would run it, against servers this test starts on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import start_hypercorn
from servers.chat_server import chat_server
from servers.session_servers import SessionApp, WebsocketsServer, websockets_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def ws_echo() -> Iterator[WebsocketsServer]:
    with websockets_server() as server:
        yield server


@pytest.mark.parametrize("example", ["selectors_client.py", "trio_client.py"])
def test_core_examples_over_http1(example: str, ws_echo: WebsocketsServer) -> None:
    out = run_example(example, f"ws://127.0.0.1:{ws_echo.port}/chat").stdout
    assert out.splitlines()[-1] == f"one: hello from {example.split('_')[0]}"


@pytest.mark.parametrize("example", ["selectors_client.py", "trio_client.py"])
def test_core_examples_multiplex_two_websockets_over_http2(example: str) -> None:
    app = SessionApp()
    server = start_hypercorn(app)
    try:
        out = run_example(example, f"ws://127.0.0.1:{server.port}/chat", "--http2").stdout
    finally:
        server.stop()
    loop = example.split("_")[0]
    assert out.splitlines()[-2:] == [f"one: hello from {loop}", f"two: hello from {loop}"]
    assert len(app.client_ports()) == 1  # both WebSockets on one TCP connection


def test_many_sessions_from_threads_share_one_connection() -> None:
    app = SessionApp()
    server = start_hypercorn(app)
    try:
        out = run_example("many_sessions_threads.py", f"ws://127.0.0.1:{server.port}/echo").stdout
    finally:
        server.stop()
    assert "100 sessions from 10 threads, 500 echoes checked" in out
    assert "connections used: 1" in out
    assert len(app.client_ports()) == 1  # and the server agrees: one TCP connection


def test_chat_clients_hear_each_other() -> None:
    with chat_server() as (port, two_joined):
        url = f"ws://127.0.0.1:{port}/room"
        listener = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "chat_client.py"), url, "--linger", "2"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert listener.stderr is not None
            # The listener says so once connected: only then can it hear the speaker.
            assert listener.stderr.readline().strip() == "connected over HTTP/1.1"
            speaker = run_example(
                "chat_client.py", url, "--say", "hello room", "--say", "bye", "--linger", "2"
            )
            assert two_joined.is_set()
            # communicate() ends the listener's input: it sends nothing more and leaves.
            out, err = listener.communicate(timeout=60)
        finally:
            listener.kill()
        assert listener.returncode == 0, err
        assert "Traceback" not in err + speaker.stderr
        assert "< hello room" in out.splitlines()
        assert "< bye" in out.splitlines()
