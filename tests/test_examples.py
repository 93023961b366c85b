"""Every example runs as a user runs it, against servers this test starts on 127.0.0.1.

Each is a subprocess of ``sys.executable`` with a bounded timeout: exit code 0,
the expected output, and nothing alarming on stderr.  The core examples
(``selectors_client.py``, ``trio_client.py``) run over HTTP/1.1 and multiplexed
over h2c; the session examples (``chat_client.py``, ``many_sessions_threads.py``)
as a user would start them, and the demo as ``python -m mint demo`` (the
package's own, ``mint._demo``) and as ``examples/demo.py``, which runs it.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from servers import start_hypercorn
from servers.chat_server import chat_server
from servers.session_servers import SessionApp, WebsocketsServer, websockets_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 60.0


def start(*args: str) -> subprocess.Popen[str]:
    """``python examples/<args[0]> <args[1:]>``, its three streams piped."""
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / args[0]), *args[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], stdin: str = "") -> tuple[str, str]:
    """End the process's input, wait for it (bounded); its output once it exited cleanly."""
    out, err = process.communicate(stdin, timeout=TIMEOUT)
    assert "Traceback" not in err, err
    assert "Exception ignored" not in err, err
    assert process.returncode == 0, out + err
    return out, err


def run(*args: str) -> tuple[str, str]:
    return finish(start(*args))


def first_line(stream: IO[str]) -> str:
    """The next line of ``stream``, or a test failure if none comes within TIMEOUT."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=TIMEOUT)
    except queue.Empty:
        pytest.fail(f"no line within {TIMEOUT}s")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started: killed if the test leaves them running (a failure)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)


@pytest.fixture(scope="module")
def ws_echo() -> Iterator[WebsocketsServer]:
    with websockets_server() as server:
        yield server


@pytest.mark.parametrize("example", ["selectors_client.py", "trio_client.py"])
def test_core_examples_over_http1(example: str, ws_echo: WebsocketsServer) -> None:
    out, _ = run(example, f"ws://127.0.0.1:{ws_echo.port}/chat")
    assert out.splitlines()[-1] == f"one: hello from {example.split('_')[0]}"


@pytest.mark.parametrize("example", ["selectors_client.py", "trio_client.py"])
def test_core_examples_multiplex_two_websockets_over_http2(example: str) -> None:
    app = SessionApp()
    server = start_hypercorn(app)
    try:
        out, _ = run(example, f"ws://127.0.0.1:{server.port}/chat", "--http2")
    finally:
        server.stop()
    loop = example.split("_")[0]
    assert out.splitlines()[-2:] == [f"one: hello from {loop}", f"two: hello from {loop}"]
    assert len(app.client_ports()) == 1  # both WebSockets on one TCP connection


def test_chat_clients_hear_each_other(processes: list[subprocess.Popen[str]]) -> None:
    with chat_server() as (port, two_joined):
        room = f"ws://127.0.0.1:{port}/room"
        # One member types on stdin (a pipe here)...
        typist = start("chat_client.py", room, "--linger", "0.5")
        processes.append(typist)
        assert typist.stderr is not None and typist.stdin is not None
        # ...and says so once connected: only then can it hear the other one.
        assert first_line(typist.stderr) == "connected over HTTP/1.1\n"
        # The other says its lines with --say, then waits 3 s for replies.
        speaker = start(
            "chat_client.py", room, "--say", "hello room", "--say", "bye", "--linger", "3"
        )
        processes.append(speaker)
        assert two_joined.wait(TIMEOUT), "the second chat client did not join"
        typist.stdin.write("welcome, speaker\n")  # the speaker is in the room for 3 s more
        typist.stdin.flush()
        speaker_out, speaker_err = finish(speaker)
        typist_out, typist_err = finish(typist)  # its input ends: it lingers, then leaves
    assert speaker_out.splitlines() == ["< welcome, speaker"]
    assert typist_out.splitlines() == ["< hello room", "< bye"]
    # Both closed with the closing handshake (stderr: "connected ...", then "closed: 1000").
    assert speaker_err.splitlines() == ["connected over HTTP/1.1", "closed: 1000"]
    assert typist_err.splitlines() == ["closed: 1000"]


def test_chat_client_reports_a_refused_connection_without_a_traceback() -> None:
    with chat_server() as (port, _):
        pass  # the port is free again: nothing listens there
    process = start("chat_client.py", f"ws://127.0.0.1:{port}/room", "--say", "anyone?")
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 1, out + err
    assert out == ""
    assert err.startswith("chat: "), err
    assert "refused" in err, err
    assert "Traceback" not in err, err


def test_many_sessions_from_threads_share_one_http2_connection() -> None:
    app = SessionApp()  # an echo over h2c (RFC 8441) that records every client address
    server = start_hypercorn(app)
    try:
        out, _ = run("many_sessions_threads.py", f"ws://127.0.0.1:{server.port}/echo")
    finally:
        server.stop()
    lines = out.splitlines()
    assert lines[0] == "100 sessions from 10 threads, 500 echoes checked"
    assert lines[1] == "connections used: 1"
    assert lines[2].startswith("took ")
    assert len(app.client_ports()) == 1  # and the server agrees: one TCP connection


@pytest.mark.parametrize(
    "command",
    [["-m", "mint", "demo"], [str(EXAMPLES / "demo.py")]],
    ids=["python -m mint demo", "examples/demo.py"],
)
def test_demo_shows_sessions_then_the_layer_underneath(command: list[str]) -> None:
    # Run a few times: an exit that is only sometimes unclean (an event loop closed
    # twice: "Exception ignored ... Invalid file descriptor") must not slip through.
    for _ in range(2):
        out, err = finish(
            subprocess.Popen(
                [sys.executable, *command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        assert err == ""
        check_demo_output(out)


def test_demo_without_its_extra_says_what_to_install() -> None:
    # hypercorn made unimportable, as in an install without the ``demo`` extra.
    blocked = "import sys; sys.modules['hypercorn'] = None; from mint.cli import main; "
    process = subprocess.run(
        [sys.executable, "-c", blocked + "sys.exit(main(['demo']))"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert process.returncode == 1
    assert process.stdout == ""
    assert process.stderr == (
        "mint: the demo needs hypercorn and websockets: pip install 'mint-websocket[demo]'\n"
    )


def check_demo_output(out: str) -> None:
    lines = out.splitlines()
    assert lines[0].startswith("== Sessions (mint.client): hypercorn, h2c")
    assert "   a over HTTP/2, b over HTTP/2" in lines
    assert "   a got 'hello from a', b got b'bytes from b'" in lines
    assert "   200 b'hello' over HTTP/2" in lines
    assert "   a, b and the request shared one HTTP/2 connection: True" in lines
    assert "   close codes: a 1000, b 1000" in lines
    underneath = lines.index("== The process-less layer underneath (mint.http, mint.websocket)")
    assert underneath > lines.index("   close codes: a 1000, b 1000")  # sessions come first
    walkthrough = lines[underneath:]
    assert "   connected over HTTP/1.1" in walkthrough
    assert "   connected over HTTP/2" in walkthrough
    assert walkthrough.count("   closed cleanly: close_sent=True, close_received=True") == 2
    assert lines[-1].startswith("demo finished")
