"""Instructions per message for the asyncio clients of ``bench_sessions``, counted by valgrind.

    python benchmarks/bench_instructions.py              # 5 clients x 2 workloads (~4 min)
    python benchmarks/bench_instructions.py --quick      # smoke run: mint, one workload

Why: on a shared VM the wall clock moves by 10-40 % between runs, more than
the gaps left between the clients, while the number of instructions a
client runs per message stays within about 1 %.  Each client runs in a
child process under ``valgrind --tool=cachegrind --cache-sim=no`` (the
Debian package ``valgrind``) against ``bench_sessions``'s picows echo
server, twice: with ``LOW`` and with ``HIGH`` messages.  Start-up,
connecting and closing cost the same in both, so the difference divided
by ``HIGH - LOW`` is what one message costs in user space (the kernel's
share, the same system calls for every client here, is not counted).

Instructions are not time: compiled code (aiohttp's C reader, picows's
Cython) does more per instruction than CPython's bytecode loop does, so a
time ratio sits below the instruction ratio.  Read these beside
``bench_sessions``'s tables, not instead of them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable

import bench_sessions as sessions

LOW, HIGH = 200, 1200
QUICK_LOW, QUICK_HIGH = 20, 60

CLIENTS: dict[str, Callable[[str], Awaitable[sessions.AsyncClient]]] = {
    sessions.MINT_ASYNC: lambda url: sessions.MintAsync().open(url),
    "aiohttp": lambda url: sessions.Aiohttp().open(url),
    "picows": lambda url: sessions.Picows().open(url),
    sessions.CODEC_FLOOR_ASYNC: sessions._codec_floor_async,
    sessions.FLOOR_ASYNC: sessions._floor_async,
}
#: Pipelined runs take ten times the messages: each costs a tenth as much.
WORKLOADS = {"32-byte round trip": (False, 1), "32 bytes pipelined": (True, 10)}
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _child(client: str, workload: str, port: int, count: int) -> None:
    """The measured process: connect, exchange ``count`` messages, close."""
    pipelined, _ = WORKLOADS[workload]

    async def main() -> None:
        conversation = await CLIENTS[client](f"ws://127.0.0.1:{port}/")
        await sessions.run_async(
            conversation, sessions.Workload(workload, sessions.SMALL, count, pipelined)
        )
        await conversation.close()

    asyncio.run(main())


def instructions(valgrind: str, client: str, workload: str, port: int, count: int) -> int:
    """User-space instructions of one child run, as cachegrind counts them."""
    result = subprocess.run(
        [
            valgrind,
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            client,
            workload,
            str(port),
            str(count),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = _REFS.search(result.stderr)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"the run of {client} failed: {result.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_message(valgrind: str, client: str, workload: str, port: int, low: int, high: int) -> float:
    scale = WORKLOADS[workload][1]
    fewer = instructions(valgrind, client, workload, port, low * scale)
    more = instructions(valgrind, client, workload, port, high * scale)
    return (more - fewer) / ((high - low) * scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="mint alone, round trips, few")
    parser.add_argument(
        "--clients", nargs="+", choices=list(CLIENTS), metavar="NAME", help="only these clients"
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        client, workload, port, count = args.child
        _child(client, workload, int(port), int(count))
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    clients = [sessions.MINT_ASYNC] if args.quick else args.clients or list(CLIENTS)
    workloads = list(WORKLOADS)[:1] if args.quick else list(WORKLOADS)
    low, high = (QUICK_LOW, QUICK_HIGH) if args.quick else (LOW, HIGH)
    rows: list[str] = []
    with sessions.echo_server() as port:
        for client in clients:
            cells = []
            for workload in workloads:
                print(f"{client}, {workload}", file=sys.stderr)
                cells.append(f"{per_message(valgrind, client, workload, port, low, high):,.0f}")
            rows.append(f"| {client} | " + " | ".join(cells) + " |")
    print("## Instructions per message (user space, valgrind), asyncio clients\n")
    print(f"Runs of {low:,} and {high:,} messages (pipelined: ten times as many), differenced.\n")
    print("| client | " + " | ".join(workloads) + " |")
    print("|---|" + "---:|" * len(workloads))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
