"""``mint URL``: an interactive WebSocket client on the command line, like websocat or wscat.

    mint ws://127.0.0.1:8765/echo                      # type lines, Ctrl-D closes
    printf 'a\\nb\\n' | mint -v --http2 wss://example.test/chat
    python -m mint demo                                 # the demo, with its own servers

Lines from stdin go out as text messages (``--binary``: binary), received
messages are printed on stdout (binary ones as hex, or to files with
``--binary-dir``), pings are answered.  ``mint --help`` lists the options;
the exit status is 0 after a normal close or the end of input, 1 with a
one-line reason on stderr otherwise, 2 for bad arguments, 130 after Ctrl-C.

Why asyncio (``mint.client.aio``) rather than the blocking layer with
``selectors``: a client must wait on stdin and on the server at the same
time, and mint answers pings and sends keepalive pings only while some call
is waiting on the session.  With asyncio one task stays in ``recv`` for the
whole session, so that call always exists, while another task sends; the
end of input, the server's close and Ctrl-C are three awaitables raced
against each other, and cancelling the losers is safe in mint's asyncio
layer.  With the blocking layer and ``selectors``, the loop would have to
poll ``recv(timeout=0)``, compute keepalive deadlines itself, and see
through TLS records buffered where ``select`` cannot see them.  stdin is
read by one daemon thread (see ``_stdin``) because no event-loop mechanism
handles every kind of stdin; the library itself still starts nothing.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from mint.cli._args import PROG, build_parser, parse
from mint.cli._output import Output, Reporter, describe_error
from mint.cli._run import run
from mint.errors import MintError

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _demo(argv: Sequence[str]) -> int:
    """``mint demo``: imported only when asked, since it needs the demo extra."""
    if argv:
        print(f"{PROG}: demo takes no arguments", file=sys.stderr)
        return 2
    try:
        from mint import _demo
    except ImportError as exc:
        if exc.name is None or exc.name.partition(".")[0] not in ("hypercorn", "websockets"):
            raise
        print(
            f"{PROG}: the demo needs hypercorn and websockets: pip install 'mint-websocket[demo]'",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        return _demo.main()
    except BrokenPipeError:  # `mint demo | head`: the reader had enough
        _quiet_broken_stdout()
        return EXIT_FAILED


def _quiet_broken_stdout() -> None:
    """After a reader of our stdout went away: no second error when Python flushes it at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); the exit status.

    Returns rather than exits, so the ``mint`` console script (which calls
    ``sys.exit(main())``), ``python -m mint`` and tests share one path; only
    argparse exits on its own (2 for bad arguments, 0 for ``--help``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["demo"]:
        return _demo(args[1:])
    options = parse(args)
    reporter = Reporter(sys.stderr, options.verbose)
    output = Output(sys.stdout.buffer, options.binary_dir)
    try:
        sys.stdout.flush()  # anything written as text so far goes before our bytes
        return asyncio.run(run(options, output, reporter))
    except KeyboardInterrupt:  # before the loop's own handler was in place, or none could be
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_broken_stdout()
        reporter.error("stdout was closed (broken pipe)")
        return EXIT_FAILED
    except (MintError, OSError) as exc:
        reporter.error(describe_error(exc))
        return EXIT_FAILED


__all__ = ["build_parser", "main"]
