"""The command line: what ``mint`` accepts, checked before any connection is attempted.

A bad option is the user's typo, not a network failure, so everything that
can be judged without the network (the URL's scheme, a header's shape, a
timeout's sign) is judged here and reported by argparse with exit code 2;
exit code 1 stays reserved for what went wrong on the wire.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mint.client.options import ConnectKwargs, HTTP2Preference, parse_url
from mint.errors import WebSocketError

PROG = "mint"

USAGE = """\
mint [options] URL
       mint demo"""

DESCRIPTION = """\
An interactive WebSocket client.  Each line read from stdin (a terminal, a
pipe or a file) is sent as a text message; each message received is
printed on stdout, text as one line, binary as one line of hex (or, with
--binary-dir, written to a file).  Pings from the server are answered and
keepalive pings sent.  At the end of input (Ctrl-D on a terminal) the
session is closed with code 1000, at once or after --linger seconds.
`mint demo` runs the demo instead (it needs the demo extra: hypercorn and
websockets)."""

EPILOG = """\
exit status: 0 after a normal close (1000, 1001 or no code, from either
side), 1 when connecting failed, the upgrade was refused or the session
ended abnormally (with a one-line reason on stderr), 2 for bad arguments,
128 + the signal number after Ctrl-C (130) or SIGTERM (143).

examples:
  mint -v wss://example.test/chat            type lines, Ctrl-D to close
  printf 'hello\\n' | mint --linger 2 ws://127.0.0.1:8765/echo"""


@dataclass(frozen=True)
class Options:
    """The parsed command line, in the terms ``mint.client.aio.connect`` and the loop use."""

    url: str
    http2: HTTP2Preference = "auto"
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    origin: str | None = None
    compression: bool = True
    cafile: str | None = None
    verify: bool = True
    #: False: leave ``proxy`` out (the environment decides); otherwise pass ``proxy``.
    proxy_given: bool = False
    proxy: str | None = None
    open_timeout: float | None = 10.0
    ping_interval: float | None = 20.0
    close_timeout: float | None = 10.0
    #: Seconds to go on receiving after the end of input before closing (``math.inf``: forever).
    linger: float = 0.0
    send_binary: bool = False
    binary_dir: Path | None = None
    verbose: bool = False

    def connect_kwargs(self) -> ConnectKwargs:
        """Every option the command line has (its defaults are the library's), the optional
        ones only when given: ``proxy`` left out is what lets the environment choose."""
        kwargs: ConnectKwargs = {
            "http2": self.http2,
            "headers": list(self.headers),
            "subprotocols": list(self.subprotocols),
            "compression": self.compression,
            "verify": self.verify,
            "open_timeout": self.open_timeout,
            "ping_interval": self.ping_interval,
            "close_timeout": self.close_timeout,
        }
        if self.origin is not None:
            kwargs["origin"] = self.origin
        if self.cafile is not None:
            kwargs["cafile"] = self.cafile
        if self.proxy_given:
            # Given only when asked for: left out, mint reads the proxy environment variables.
            kwargs["proxy"] = self.proxy
        return kwargs


def _websocket_url(text: str) -> str:
    try:
        parse_url(text, websocket=True)
    except WebSocketError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c.isspace() for c in name):
        raise argparse.ArgumentTypeError(f"{text!r}: a header is NAME:VALUE")
    return name, value.strip()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds")
    return value


def _seconds_or_off(text: str) -> float | None:
    """0 (or "off") turns keepalive pings off, as ``ping_interval=None`` does."""
    if text.strip().lower() in ("0", "0.0", "off", "none"):
        return None
    return _seconds(text)


def _linger(text: str) -> float:
    """Like ``_seconds``, but 0 (the default: close at once) and inf (wait for the server) too."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds, or inf")
    return value


def _version() -> str:
    try:
        return metadata.version("mint-websocket")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=USAGE,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", metavar="URL", type=_websocket_url, help="ws:// or wss:// URL")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="report the HTTP version, subprotocol, extensions and close code on stderr",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")

    version = parser.add_mutually_exclusive_group()
    version.add_argument(
        "--http2",
        dest="http2",
        action="store_const",
        const=True,
        default="auto",
        help="HTTP/2 only (RFC 8441; h2c by prior knowledge on ws://)",
    )
    version.add_argument(
        "--http1",
        dest="http2",
        action="store_const",
        const=False,
        help="HTTP/1.1 only (default: HTTP/2 or HTTP/1.1 by ALPN on wss://, HTTP/1.1 on ws://)",
    )

    handshake = parser.add_argument_group("handshake")
    handshake.add_argument(
        "-H",
        "--header",
        dest="headers",
        metavar="NAME:VALUE",
        type=_header,
        action="append",
        default=[],
        help="an extra request header (repeatable)",
    )
    handshake.add_argument(
        "-s",
        "--subprotocol",
        dest="subprotocols",
        metavar="NAME",
        action="append",
        default=[],
        help="offer this subprotocol (repeatable, in order of preference)",
    )
    handshake.add_argument("--origin", metavar="URL", help="send this Origin header")
    handshake.add_argument(
        "--no-compress",
        dest="compression",
        action="store_false",
        help="do not offer permessage-deflate",
    )

    network = parser.add_argument_group("network and TLS")
    network.add_argument("--cafile", metavar="PEM", help="trust the CA certificates in this file")
    network.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        help="do not verify the server's certificate or host name",
    )
    proxy = network.add_mutually_exclusive_group()
    proxy.add_argument(
        "--proxy",
        metavar="URL",
        help="go through this proxy (http://, https://, socks5://, socks5h://); "
        "default: the proxy environment variables",
    )
    proxy.add_argument(
        "--no-proxy",
        action="store_true",
        help="connect directly, whatever the environment says",
    )

    timing = parser.add_argument_group("timeouts")
    timing.add_argument(
        "--open-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=10.0,
        help="give up connecting after this long (default: 10)",
    )
    timing.add_argument(
        "--ping-interval",
        metavar="SECONDS",
        type=_seconds_or_off,
        default=20.0,
        help="send a keepalive ping this often, 0 for never (default: 20)",
    )
    timing.add_argument(
        "--close-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=10.0,
        help="wait this long for the server's side of the closing handshake (default: 10)",
    )

    timing.add_argument(
        "--linger",
        metavar="SECONDS",
        type=_linger,
        default=0.0,
        help="after the end of input, go on receiving this long before closing, "
        "for replies still on their way; inf: until the server closes (default: 0)",
    )

    messages = parser.add_argument_group("messages")
    messages.add_argument(
        "--binary",
        dest="send_binary",
        action="store_true",
        help="send each input line as a binary message instead of text",
    )
    messages.add_argument(
        "--binary-dir",
        metavar="DIR",
        type=Path,
        help="write each binary message received to DIR/message-NNNNNN.bin "
        "(numbered from 1) instead of printing it as hex",
    )
    return parser


def parse(argv: Sequence[str]) -> Options:
    """``Options`` from ``argv``; argparse prints the problem and exits 2 on bad arguments."""
    args = build_parser().parse_args(list(argv))
    return Options(
        url=args.url,
        http2=args.http2,
        headers=tuple(args.headers),
        subprotocols=tuple(args.subprotocols),
        origin=args.origin,
        compression=args.compression,
        cafile=args.cafile,
        verify=not args.insecure,
        proxy_given=args.proxy is not None or args.no_proxy,
        proxy=args.proxy,
        open_timeout=args.open_timeout,
        ping_interval=args.ping_interval,
        close_timeout=args.close_timeout,
        linger=args.linger,
        send_binary=args.send_binary,
        binary_dir=args.binary_dir,
        verbose=args.verbose,
    )


__all__ = ["Options", "build_parser", "parse"]
