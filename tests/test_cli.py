"""The ``mint`` command as a user runs it: a real subprocess against real servers on loopback.

Through pipes (``python -m mint`` and the ``mint`` console script): lines in,
echoes out, the exit status and the one line on stderr for every way a
session can end; binary messages, pings both ways, the handshake options
(``-H``, ``--subprotocol``, ``--no-compress``, ``--http1``/``--http2``, TLS,
proxies) checked where the server sees them or through ``-v``.  Through a
pseudo-terminal, as someone typing: a line and its echo, Ctrl-D, Ctrl-C.

Servers: the session fixtures (``ws_server``: websockets, HTTP/1.1;
``h2c_server``/``h2_tls_server``: hypercorn with ``SessionApp``, which
echoes, closes on ``close`` and sends binary floods on ``/flood``), and
scripted raw HTTP/1.1 peers for what a real server will not do on demand
(ping and check the pong, break the closing handshake, close with 1011).
Every subprocess is bounded by a timeout and killed if still running.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from servers import RunningServer, start_hypercorn
from servers.asgi_apps import RequestHeadersApp
from servers.client_endpoints import closed_port
from servers.proxy_servers import ScriptedProxy
from servers.session_servers import (
    WebsocketsServer,
    accept_websocket,
    client_frames,
    close_code_of,
    flood_message,
)
from servers.websockets_echo import scripted_server

TIMEOUT = 30.0
SCRIPT = Path(sys.executable).parent / "mint"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without proxy settings (loopback is not exempt from them)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(extra)
    return env


def mint_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mint", *args]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def assert_one_line_error(self, *fragments: str, stdout: str = "") -> None:
        """Exit 1, ``stdout`` on stdout, one ``mint: ...`` line on stderr, no traceback."""
        assert self.returncode == 1, self
        assert self.stdout == stdout, self
        assert self.stderr.startswith("mint: "), self
        assert self.stderr.count("\n") == 1 and self.stderr.endswith("\n"), self
        assert "Traceback" not in self.stderr
        for fragment in fragments:
            assert fragment in self.stderr, self


def run_mint(
    *args: str,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> Result:
    """Run mint with ``stdin`` piped in; ``subprocess.run`` kills it at the timeout."""
    completed = subprocess.run(
        [*(command or mint_command()), *args],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        env=env if env is not None else clean_env(),
    )
    return Result(
        completed.returncode,
        completed.stdout.decode("utf-8"),
        completed.stderr.decode("utf-8"),
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started: killed if still running when it ends (a failing test)."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(TIMEOUT)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def talk(process: subprocess.Popen[bytes], line: bytes) -> bytes:
    """Send ``line`` on the process's stdin; the next line it prints."""
    assert process.stdin is not None
    process.stdin.write(line)
    process.stdin.flush()
    return next_line(process.stdout)


def start_mint(processes: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        mint_command(*args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    processes.append(process)
    return process


def next_line(stream: IO[bytes] | None) -> bytes:
    """The next line of ``stream``, or a test failure if none comes within TIMEOUT."""
    assert stream is not None
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=TIMEOUT)
    except queue.Empty:
        pytest.fail(f"no line within {TIMEOUT}s")


def finish(process: subprocess.Popen[bytes]) -> Result:
    """Close the process's stdin, wait for it (bounded), and collect what it wrote."""
    out, err = process.communicate(timeout=TIMEOUT)
    return Result(process.returncode, out.decode("utf-8"), err.decode("utf-8"))


# -- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headers_server() -> Iterator[RunningServer]:
    server = start_hypercorn(RequestHeadersApp())
    yield server
    server.stop()


def server_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One unmasked, final frame as a server sends it (short payloads only)."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


def read_frames(
    connection: socket.socket, until: Callable[[list[tuple[int, bytes]]], bool]
) -> list[tuple[int, bytes]]:
    """The client's frames, read until ``until(frames)`` holds (or the client hangs up)."""
    data = b""
    while True:
        frames = client_frames(data)
        if until(frames):
            return frames
        chunk = connection.recv(65536)
        if not chunk:
            return frames
        data += chunk


def has(opcode: int) -> Callable[[list[tuple[int, bytes]]], bool]:
    return lambda frames: any(op == opcode for op, _ in frames)


def finish_close(connection: socket.socket) -> int | None:
    """Wait for the client's Close, answer it, let the socket close; the client's code."""
    frames = read_frames(connection, has(CLOSE))
    code = next((close_code_of(payload) for op, payload in frames if op == CLOSE), None)
    connection.sendall(server_frame(CLOSE, b"\x03\xe8"))
    return code


# -- through pipes -------------------------------------------------------------------------


def test_lines_in_echoes_out_and_end_of_input_closes_with_1000(
    ws_server: WebsocketsServer, processes: list[subprocess.Popen[bytes]]
) -> None:
    process = start_mint(processes, "-v", f"ws://127.0.0.1:{ws_server.port}/")
    for typed, echoed in [
        ("hello\n", "hello\n"),
        ("héllo ✓\n", "héllo ✓\n"),
        ("\n", "\n"),  # an empty line is an empty message
        ("last\r\n", "last\n"),
    ]:
        assert talk(process, typed.encode()) == echoed.encode()
    result = finish(process)  # the end of input
    assert result.returncode == 0, result
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == "mint: closed: 1000"
    assert "Traceback" not in result.stderr


def test_linger_waits_for_replies_and_the_last_line_needs_no_line_ending(
    ws_server: WebsocketsServer,
) -> None:
    # All input at once: without --linger, the Close sent at its end could cross the echoes.
    url = f"ws://127.0.0.1:{ws_server.port}/"
    began = time.monotonic()
    result = run_mint("--linger", "10", url, stdin=b"one\ntwo\nclose")
    took = time.monotonic() - began
    assert result.returncode == 0, result
    assert result.lines == ["one", "two"]
    assert result.stderr == ""
    assert took < 8, took  # the server closed on "close": the linger ended there


def test_the_client_sends_close_1000_at_the_end_of_input() -> None:
    codes: list[int | None] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        codes.append(finish_close(connection))

    with scripted_server(script) as port:
        result = run_mint(f"ws://127.0.0.1:{port}/", stdin=b"")
    assert result.returncode == 0, result
    assert codes == [1000]


def test_console_script_runs_the_same_client(ws_server: WebsocketsServer) -> None:
    if not SCRIPT.exists():
        pytest.skip(f"no console script at {SCRIPT}: install the package (pip install -e .)")
    result = run_mint(
        "--linger=10",
        f"ws://127.0.0.1:{ws_server.port}/",
        stdin=b"via the script\nclose\n",
        command=[str(SCRIPT)],
    )
    assert result.returncode == 0, result
    assert result.lines == ["via the script"]
    version = run_mint("--version", command=[str(SCRIPT)])
    assert version.returncode == 0
    assert version.stdout.startswith("mint ")


def test_server_closing_normally_exits_0_with_the_code_under_v(
    h2c_server: RunningServer, processes: list[subprocess.Popen[bytes]]
) -> None:
    process = start_mint(processes, "-v", "--http2", f"ws://127.0.0.1:{h2c_server.port}/")
    assert process.stdin is not None
    process.stdin.write(b"before\nclose\n")  # SessionApp closes with 1000 "bye" on "close"
    process.stdin.flush()
    # stdin stays open: the exit comes from the server's close, not from the end of input.
    process.wait(TIMEOUT)
    result = finish(process)
    assert result.returncode == 0, result
    assert result.lines == ["before"]
    assert result.stderr.splitlines()[-1] == "mint: closed: 1000 bye"


def test_binary_messages_are_printed_as_hex(h2c_server: RunningServer) -> None:
    url = f"ws://127.0.0.1:{h2c_server.port}/flood"
    result = run_mint("--http2", "--linger=10", url, stdin=b"go 3 6\nclose\n")
    assert result.returncode == 0, result
    assert result.lines == [flood_message(index, 6).hex() for index in range(3)]


def test_binary_messages_go_to_files_with_binary_dir(
    h2c_server: RunningServer, tmp_path: Path
) -> None:
    folder = tmp_path / "received"
    result = run_mint(
        "-v",
        "--http2",
        "--linger=10",
        "--binary-dir",
        str(folder),
        f"ws://127.0.0.1:{h2c_server.port}/flood",
        stdin=b"go 3 6\ntext too\nclose\n",
    )
    assert result.returncode == 0, result
    assert result.lines == ["text too"]  # text is still printed
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"message-{n:06d}.bin" for n in (1, 2, 3)]
    assert [f.read_bytes() for f in files] == [flood_message(index, 6) for index in range(3)]
    assert f"binary message of 6 bytes written to {files[0]}" in result.stderr


def test_binary_sends_each_line_as_a_binary_message(
    ws_server: WebsocketsServer, processes: list[subprocess.Popen[bytes]]
) -> None:
    process = start_mint(processes, "--binary", f"ws://127.0.0.1:{ws_server.port}/")
    assert talk(process, b"abc\n") == b"616263\n"  # echoed as binary: printed as hex
    assert talk(process, b"\xff\x00\n") == b"ff00\n"
    assert finish(process).returncode == 0


def test_a_line_that_is_not_utf8_ends_the_session_with_one_line(
    ws_server: WebsocketsServer, processes: list[subprocess.Popen[bytes]]
) -> None:
    process = start_mint(processes, f"ws://127.0.0.1:{ws_server.port}/")
    assert talk(process, b"fine\n") == b"fine\n"
    assert process.stdin is not None
    process.stdin.write(b"\xff\xfe\n")
    process.stdin.flush()
    process.wait(TIMEOUT)  # without the end of input: the bad line ends it
    result = finish(process)
    result.assert_one_line_error("input line 2 is not UTF-8", "--binary")


def test_pings_from_the_server_are_answered() -> None:
    seen: list[object] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        connection.sendall(server_frame(PING, b"are you there"))
        frames = read_frames(connection, has(PONG))
        pongs = [payload for op, payload in frames if op == PONG]
        seen.append(pongs)
        connection.sendall(server_frame(TEXT, b"pong: " + pongs[0]))
        seen.append(finish_close(connection))

    with scripted_server(script) as port:
        # stdin stays open until the text arrives: the pong did not wait for the input to end.
        process = subprocess.Popen(
            mint_command(f"ws://127.0.0.1:{port}/"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        try:
            assert next_line(process.stdout) == b"pong: are you there\n"
            result = finish(process)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(TIMEOUT)
    assert seen == [[b"are you there"], 1000]
    assert result.returncode == 0, result


def test_ping_interval_sends_keepalive_pings() -> None:
    started: list[float] = []
    pinged: list[float] = []

    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        started.append(time.monotonic())
        frames = read_frames(connection, has(PING))
        assert any(op == PING for op, _ in frames), frames
        pinged.append(time.monotonic())
        payload = next(payload for op, payload in frames if op == PING)
        connection.sendall(server_frame(PONG, payload) + server_frame(TEXT, b"pinged"))
        finish_close(connection)

    with scripted_server(script) as port:
        process = subprocess.Popen(
            mint_command("--ping-interval", "0.3", f"ws://127.0.0.1:{port}/"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        try:
            assert next_line(process.stdout) == b"pinged\n"
            result = finish(process)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(TIMEOUT)
    assert result.returncode == 0, result
    assert pinged[0] - started[0] < 5  # the default interval (20 s) would have failed this


@pytest.mark.parametrize("version", ["--http1", "--http2"])
def test_headers_reach_the_server(
    headers_server: RunningServer, version: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    process = start_mint(
        processes,
        version,
        "-H",
        "X-Test: one value",
        "--header=x-other:2",
        "--origin",
        "http://example.test",
        f"ws://127.0.0.1:{headers_server.port}/",
    )
    headers = json.loads(next_line(process.stdout))  # the app's first message
    assert finish(process).returncode == 0
    assert ["x-test", "one value"] in headers
    assert ["x-other", "2"] in headers
    assert ["origin", "http://example.test"] in headers


def test_v_reports_http2_subprotocol_and_permessage_deflate(h2c_server: RunningServer) -> None:
    url = f"ws://127.0.0.1:{h2c_server.port}/chat"
    result = run_mint("-v", "--http2", "-s", "chat", "--subprotocol", "superchat", url)
    assert result.returncode == 0, result
    assert result.stderr.splitlines() == [
        f"mint: connected to {url} over HTTP/2",
        "mint: subprotocol: chat",  # SessionApp picks the first one offered
        "mint: extensions: permessage-deflate; client_max_window_bits=15",
        "mint: closed: 1000",
    ]


def test_no_compress_and_http1_show_in_v(h2c_server: RunningServer) -> None:
    url = f"ws://127.0.0.1:{h2c_server.port}/chat"
    result = run_mint("-v", "--http1", "--no-compress", "--linger=10", url, stdin=b"plain\nclose\n")
    assert result.returncode == 0, result
    assert result.lines == ["plain"]
    report = result.stderr.splitlines()
    assert report[0] == f"mint: connected to {url} over HTTP/1.1"
    assert "mint: subprotocol: none" in report
    assert "mint: extensions: none" in report


def test_wss_with_cafile_chooses_http2_by_alpn(
    h2_tls_server: RunningServer, tls_ca_file: Path
) -> None:
    url = f"wss://127.0.0.1:{h2_tls_server.port}/"
    result = run_mint(
        "-v", "--cafile", str(tls_ca_file), "--linger=10", url, stdin=b"secret\nclose\n"
    )
    assert result.returncode == 0, result
    assert result.lines == ["secret"]
    assert f"mint: connected to {url} over HTTP/2" in result.stderr.splitlines()


def test_wss_needs_the_ca_or_insecure(wss_server: WebsocketsServer, tls_ca_file: Path) -> None:
    url = f"wss://127.0.0.1:{wss_server.port}/"
    untrusted = run_mint(url, stdin=b"secret\n")
    untrusted.assert_one_line_error("certificate")
    trusted = run_mint("--cafile", str(tls_ca_file), "--linger=10", url, stdin=b"secret\nclose\n")
    assert (trusted.returncode, trusted.lines) == (0, ["secret"]), trusted
    insecure = run_mint("--insecure", "--linger=10", url, stdin=b"anyway\nclose\n")
    assert (insecure.returncode, insecure.lines) == (0, ["anyway"]), insecure


def test_refused_upgrade_exits_1_with_one_line(h2c_server: RunningServer) -> None:
    result = run_mint(f"ws://127.0.0.1:{h2c_server.port}/forbidden", stdin=b"hello\n")
    result.assert_one_line_error()
    assert result.stderr == "mint: upgrade refused: 403 Forbidden\n"


def test_refused_connection_exits_1_with_one_line() -> None:
    result = run_mint(f"ws://127.0.0.1:{closed_port()}/", stdin=b"hello\n")
    result.assert_one_line_error("refused")


def test_server_closing_with_an_error_code_exits_1() -> None:
    def script(connection: socket.socket) -> None:
        accept_websocket(connection, server_frame(CLOSE, b"\x03\xf3boom"))  # 1011
        read_frames(connection, has(CLOSE))

    with scripted_server(script) as port:
        result = run_mint(f"ws://127.0.0.1:{port}/", stdin=b"")
    result.assert_one_line_error()
    assert result.stderr == "mint: connection closed abnormally (1011): boom\n"


def test_server_vanishing_without_a_close_exits_1(
    processes: list[subprocess.Popen[bytes]],
) -> None:
    def script(connection: socket.socket) -> None:
        accept_websocket(connection, server_frame(TEXT, b"last words"))
        connection.shutdown(socket.SHUT_RDWR)

    with scripted_server(script) as port:
        process = start_mint(processes, f"ws://127.0.0.1:{port}/")
        process.wait(TIMEOUT)  # stdin still open: the server's hang-up ends it
        result = finish(process)
    # What came before the loss is still printed.
    result.assert_one_line_error("connection closed abnormally (1006)", stdout="last words\n")


def test_open_timeout_bounds_the_handshake() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"ws://127.0.0.1:{silent.getsockname()[1]}/"
        began = time.monotonic()
        result = run_mint("--open-timeout", "0.5", url, stdin=b"hello\n")
        took = time.monotonic() - began
    result.assert_one_line_error("did not complete within", "0.5")
    assert took < 5, took


def test_v_keeps_a_password_in_the_url_off_the_screen(ws_server: WebsocketsServer) -> None:
    result = run_mint("-v", f"ws://alice:s3cret@127.0.0.1:{ws_server.port}/")
    assert result.returncode == 0, result
    report = result.stderr.splitlines()
    assert (
        report[0] == f"mint: connected to ws://alice:***@127.0.0.1:{ws_server.port}/ over HTTP/1.1"
    )
    assert "s3cret" not in result.stderr


def test_close_timeout_bounds_the_wait_for_the_servers_close() -> None:
    def script(connection: socket.socket) -> None:
        accept_websocket(connection)
        read_frames(connection, has(CLOSE))
        time.sleep(3)  # never answers; the client gives up after 0.5 s and hangs up
        read_frames(connection, lambda frames: False)

    with scripted_server(script) as port:
        began = time.monotonic()
        result = run_mint("--close-timeout", "0.5", f"ws://127.0.0.1:{port}/", stdin=b"")
        took = time.monotonic() - began
    result.assert_one_line_error("(1006)", "closing handshake within 0.5")
    assert took < 3, took


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["http://127.0.0.1:1/"],
        ["ws://127.0.0.1:1/", "-H", "no colon"],
        ["ws://127.0.0.1:1/", "--close-timeout", "-1"],
        ["ws://127.0.0.1:1/", "--http1", "--http2"],
        ["ws://127.0.0.1:1/", "--proxy", "http://127.0.0.1:1", "--no-proxy"],
        ["ws://127.0.0.1:1/", "--no-such-option"],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    result = run_mint(*args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "usage: mint" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_options() -> None:
    result = run_mint("--help")
    assert result.returncode == 0, result
    for option in ("--http2", "--http1", "-H NAME:VALUE", "--subprotocol", "--no-compress"):
        assert option in result.stdout
    for option in ("--cafile", "--insecure", "--proxy", "--ping-interval", "--close-timeout"):
        assert option in result.stdout


def test_proxy_option_goes_through_that_proxy(
    ws_server: WebsocketsServer, scripted_proxy: list[ScriptedProxy]
) -> None:
    proxy = ScriptedProxy(b"HTTP/1.1 200 Connection established\r\n\r\n", relay=True, hold=0)
    scripted_proxy.append(proxy)
    url = f"ws://127.0.0.1:{ws_server.port}/"
    result = run_mint("--proxy", proxy.url, "--linger=10", url, stdin=b"tunnelled\nclose\n")
    assert result.returncode == 0, result
    assert result.lines == ["tunnelled"]
    assert len(proxy.visits) == 1
    assert proxy.visits[0].head.startswith(f"CONNECT 127.0.0.1:{ws_server.port} ".encode())


def test_no_proxy_ignores_the_environment(
    ws_server: WebsocketsServer, scripted_proxy: list[ScriptedProxy]
) -> None:
    refusing = ScriptedProxy(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", hold=0)
    scripted_proxy.append(refusing)
    env = clean_env(http_proxy=refusing.url, all_proxy=refusing.url)
    url = f"ws://127.0.0.1:{ws_server.port}/"
    through_environment = run_mint(url, stdin=b"hello\n", env=env)
    through_environment.assert_one_line_error()  # the environment's proxy refused
    assert len(refusing.visits) == 1
    direct = run_mint("--no-proxy", "--linger=10", url, stdin=b"hello\nclose\n", env=env)
    assert (direct.returncode, direct.lines) == (0, ["hello"]), direct
    assert len(refusing.visits) == 1  # not asked again


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_closes_and_exits_128_plus_its_number(
    ws_server: WebsocketsServer,
    processes: list[subprocess.Popen[bytes]],
    signum: signal.Signals,
    exit_code: int,
) -> None:
    process = start_mint(processes, "-v", f"ws://127.0.0.1:{ws_server.port}/")
    assert process.stdin is not None
    process.stdin.write(b"still here\n")
    process.stdin.flush()
    assert next_line(process.stdout) == b"still here\n"
    process.send_signal(signum)
    result = finish(process)
    assert result.returncode == exit_code, result
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "mint: closed: 1000"  # the closing handshake ran


def test_sigint_while_connecting_exits_130(processes: list[subprocess.Popen[bytes]]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        silent.settimeout(TIMEOUT)
        process = start_mint(processes, f"ws://127.0.0.1:{silent.getsockname()[1]}/")
        connection, _ = silent.accept()  # the client is in the handshake now
        with connection:
            process.send_signal(signal.SIGINT)
            result = finish(process)
    assert result.returncode == 130, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


# -- through a pseudo-terminal ---------------------------------------------------------------

#: Becomes the session leader of a new session whose controlling terminal is
#: stdin (the pty), as a login shell would: then Ctrl-C typed on the terminal
#: is turned into SIGINT by the terminal itself.  Run as a small launcher
#: rather than with preexec_fn, which is unsafe in a process with threads.
_WITH_CONTROLLING_TERMINAL = (
    "import fcntl, os, sys, termios; "
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'mint', *sys.argv[1:]])"
)


class Terminal:
    """mint running on a pseudo-terminal: stdin, stdout and stderr are all the pty's slave."""

    def __init__(self, *args: str) -> None:
        import termios

        self.master, slave = os.openpty()
        attributes = termios.tcgetattr(slave)
        attributes[3] &= ~termios.ECHO  # no local echo: every line read back came from mint
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WITH_CONTROLLING_TERMINAL, *args],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                env=clean_env(),
            )
        finally:
            os.close(slave)
        self.output = b""

    def press(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_until(self, wanted: bytes) -> bytes:
        """Everything shown so far, once it contains ``wanted`` (or TIMEOUT fails the test)."""
        deadline = time.monotonic() + TIMEOUT
        while wanted not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{wanted!r} not shown within {TIMEOUT}s; shown: {self.output!r}")
            if not self._read(left):
                pytest.fail(f"the terminal closed before {wanted!r}; shown: {self.output!r}")
        return self.output

    def finish(self) -> tuple[int, bytes]:
        """Wait for mint to exit (bounded); its exit code and everything it showed."""
        returncode = self.process.wait(TIMEOUT)
        while self._read(0.2):
            pass
        return returncode, self.output

    def _read(self, timeout: float) -> bool:
        readable, _, _ = select.select([self.master], [], [], timeout)
        if not readable:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every slave descriptor is closed, the program exited
            return False
        self.output += chunk
        return bool(chunk)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)
        with contextlib.suppress(OSError):
            os.close(self.master)


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    if sys.platform == "win32":
        pytest.skip("pseudo-terminals are POSIX")
    opened: list[Terminal] = []

    def open_terminal(*args: str) -> Terminal:
        opened.append(Terminal(*args))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


def test_terminal_typed_line_is_echoed_and_ctrl_d_exits_0(
    ws_server: WebsocketsServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal("-v", f"ws://127.0.0.1:{ws_server.port}/")
    term.read_until(b"mint: extensions: none")  # connected: what is typed now is sent
    term.press(b"typed by hand\n")
    term.read_until(b"typed by hand\r\n")  # the server's echo (the terminal echoes nothing)
    term.press(b"\x04")  # Ctrl-D at the start of a line: the end of input
    returncode, shown = term.finish()
    assert returncode == 0, shown
    assert shown.count(b"typed by hand") == 1
    assert shown.endswith(b"mint: closed: 1000\r\n"), shown
    assert b"Traceback" not in shown


def test_terminal_ctrl_c_closes_and_exits_130(
    h2c_server: RunningServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal("-v", "--http2", f"ws://127.0.0.1:{h2c_server.port}/")
    term.read_until(b"mint: extensions: ")
    term.press(b"first\n")
    term.read_until(b"first\r\n")
    term.press(b"\x03")  # Ctrl-C: the terminal sends SIGINT to mint
    returncode, shown = term.finish()
    assert returncode == 130, shown
    assert b"Traceback" not in shown
    assert b"KeyboardInterrupt" not in shown
    assert shown.rstrip().endswith(b"mint: closed: 1000"), shown


def test_terminal_session_ends_when_the_server_closes_while_waiting_for_typing(
    h2c_server: RunningServer, terminal: Callable[..., Terminal]
) -> None:
    term = terminal("-v", "--http2", f"ws://127.0.0.1:{h2c_server.port}/")
    term.read_until(b"mint: extensions: ")
    term.press(b"close\n")  # SessionApp closes with 1000 "bye"; the terminal stays open
    returncode, shown = term.finish()
    assert returncode == 0, shown
    assert shown.endswith(b"mint: closed: 1000 bye\r\n"), shown
    assert b"Traceback" not in shown
    assert b"Fatal Python error" not in shown  # the stdin thread, blocked in a read, at exit
