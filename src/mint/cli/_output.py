"""What ``mint`` writes: messages on stdout, reports and the one-line reason on stderr.

stdout carries the messages only, one line each, so it can be piped into
``grep`` or ``jq`` as it comes (flushed per message); everything about the
session (``-v``) and every failure go to stderr, prefixed ``mint:``.
Text is written as UTF-8 bytes whatever the locale says: a message is
UTF-8 on the wire, and a C locale must not turn an accent into a crash.
"""

from __future__ import annotations

import http
from pathlib import Path
from typing import BinaryIO, TextIO
from urllib.parse import urlsplit, urlunsplit

from mint.client.aio import Session
from mint.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    MintError,
    UpgradeFailureError,
)

PREFIX = "mint: "


class Output:
    """Received messages, written as they arrive."""

    def __init__(self, stdout: BinaryIO, binary_dir: Path | None = None) -> None:
        self._stdout = stdout
        self._binary_dir = binary_dir
        self._binary_count = 0

    def message(self, message: str | bytes) -> Path | None:
        """Write one message; a binary one kept in a file returns that file's path."""
        if isinstance(message, str):
            self._line(message.encode("utf-8"))
            return None
        if self._binary_dir is None:
            self._line(message.hex().encode("ascii"))
            return None
        self._binary_count += 1
        self._binary_dir.mkdir(parents=True, exist_ok=True)
        path = self._binary_dir / f"message-{self._binary_count:06d}.bin"
        path.write_bytes(message)
        return path

    def _line(self, data: bytes) -> None:
        self._stdout.write(data + b"\n")
        self._stdout.flush()


class Reporter:
    """The stderr side: ``-v`` reports (only when asked) and the final one-line reason."""

    def __init__(self, stderr: TextIO, verbose: bool) -> None:
        self._stderr = stderr
        self.verbose = verbose

    def error(self, text: str) -> None:
        self._write(text)

    def info(self, text: str) -> None:
        if self.verbose:
            self._write(text)

    def _write(self, text: str) -> None:
        one_line = " ".join(text.split())  # a reason from the server may hold newlines
        self._stderr.write(f"{PREFIX}{one_line}\n")
        self._stderr.flush()

    def connected(self, ws: Session, url: str) -> None:
        if not self.verbose:
            return
        self.info(f"connected to {without_password(url)} over {ws.http_version}")
        self.info(f"subprotocol: {ws.subprotocol or 'none'}")
        self.info(f"extensions: {describe_extensions(ws)}")

    def closed(self, ws: Session) -> None:
        if ws.close_code is None:
            return
        reason = f" {ws.close_reason}" if ws.close_reason else ""
        self.info(f"closed: {ws.close_code}{reason}")


def without_password(url: str) -> str:
    """``url`` fit for a screen someone may be looking at: a password in it becomes ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def describe_extensions(ws: Session) -> str:
    """As the server agreed to them (its header, parameters included), or "none"."""
    if not ws.extensions:
        return "none"
    answered = [
        value.strip()
        for name, value in ws.response_headers
        if name.lower() == "sec-websocket-extensions" and value.strip()
    ]
    return ", ".join(answered) or ", ".join(ext.name for ext in ws.extensions)


def describe_error(exc: BaseException) -> str:
    """The one line ``mint`` exits with: what failed, in the terms of ``mint.errors``."""
    if isinstance(exc, UpgradeFailureError):
        try:
            phrase = http.HTTPStatus(exc.status).phrase
        except ValueError:
            phrase = ""
        return f"upgrade refused: {exc.status} {phrase}".rstrip()
    if isinstance(exc, ConnectionClosedError):
        detail = exc.close_reason or str(exc)
        return f"connection closed abnormally ({exc.close_code}): {detail}"
    if isinstance(exc, ConnectionClosed):
        return f"connection closed ({exc.close_code}): {exc.close_reason or exc}"
    if isinstance(exc, MintError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"


__all__ = [
    "PREFIX",
    "Output",
    "Reporter",
    "describe_error",
    "describe_extensions",
    "without_password",
]
