"""Run the Autobahn fuzzing server as a subprocess and summarize the report it writes.

The server is a Twisted program on Python 2.7, so it runs out of process, from
the ``.venv-autobahn`` virtualenv that ``tools/setup_autobahn.sh`` builds.  Its
verdicts are read back from ``<outdir>/index.json`` (written when a client
calls ``/updateReports``); the per-case JSON files next to it explain failures.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO_ROOT / "tools" / "setup_autobahn.sh"
DEFAULT_WSTEST = REPO_ROOT / ".venv-autobahn" / "bin" / "wstest"

#: Every verdict the suite gives, in the order the summary line lists them.
BEHAVIORS = ("OK", "INFORMATIONAL", "NON-STRICT", "FAILED", "UNIMPLEMENTED")
#: Verdicts that count as a pass.  The suite only ever reports INFORMATIONAL for
#: the cases it declares informational, so accepting it here accepts exactly those.
PASSING = frozenset({"OK", "INFORMATIONAL"})


class FuzzingServerError(RuntimeError):
    """The fuzzing server could not be started, or produced no usable report."""


def find_wstest() -> Path | None:
    """The wstest executable, running the setup script if it is not installed yet.

    Returns None when no Python 2.7 exists on this machine (the setup script
    then installs nothing); raises when an install was attempted and failed.
    """
    override = os.environ.get("MINT_WSTEST")
    if override:
        return Path(override)
    if DEFAULT_WSTEST.exists():
        return DEFAULT_WSTEST
    completed = subprocess.run(
        ["bash", str(SETUP_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise FuzzingServerError(
            f"{SETUP_SCRIPT} failed ({completed.returncode}):\n{completed.stderr[-4000:]}"
        )
    if "no Python 2.7 found" in completed.stdout:
        return None
    return DEFAULT_WSTEST if DEFAULT_WSTEST.exists() else None


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the Python that started it dies.

    A test run killed by a timeout (or a crash in a C extension) never reaches
    ``stop``; without this its wstest would live on, holding its port and
    writing into the report folder the next run uses.  Linux only (prctl).
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_wstest(
    wstest: Path, args: list[str], cwd: Path, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start ``wstest args`` in ``cwd`` with its output in ``log``, tied to this process."""
    return subprocess.Popen(
        [str(wstest), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )


def free_port() -> int:
    """A port the OS just handed out on 127.0.0.1.

    wstest takes its port from the spec's URL and cannot report back a port 0
    choice, so one is reserved here and released just before wstest binds it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(
    host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 30.0
) -> None:
    """Block until ``host:port`` accepts TCP connections, or fail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FuzzingServerError(f"wstest exited with {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise FuzzingServerError(f"wstest did not listen on {host}:{port} within {timeout} s")


@dataclass
class FuzzingServer:
    """A running ``wstest -m fuzzingserver``; use as a context manager."""

    wstest: Path
    outdir: Path
    cases: list[str]
    exclude_cases: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    _process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> None:
        # wstest runs inside outdir, so every path handed to it must be absolute.
        self.outdir = self.outdir.resolve()
        self.outdir.mkdir(parents=True, exist_ok=True)
        # The reserved port can be taken between release and wstest's bind:
        # retry with a fresh one rather than fail the whole run.
        last_error: FuzzingServerError | None = None
        for _attempt in range(3):
            self.port = free_port()
            spec_path = self.outdir / "fuzzingserver.json"
            spec = {
                "url": self.url,
                "outdir": str(self.outdir),
                "cases": self.cases,
                "exclude-cases": self.exclude_cases,
                "exclude-agent-cases": {},
            }
            spec_path.write_text(json.dumps(spec, indent=2))
            self._log = (self.outdir / "fuzzingserver.log").open("wb")
            # -u 0 turns off the embedded web UI, which would otherwise take port 8080.
            self._process = start_wstest(
                self.wstest,
                ["-m", "fuzzingserver", "-s", str(spec_path), "-u", "0"],
                self.outdir,
                self._log,
            )
            try:
                wait_for_port(self.host, self.port, self._process)
                return
            except FuzzingServerError as exc:
                last_error = exc
                self.stop()
        raise FuzzingServerError(f"could not start the fuzzing server: {last_error}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def __enter__(self) -> FuzzingServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def case_sort_key(case_id: str) -> tuple[int, ...]:
    """Order "9.10.1" after "9.2.1", as the suite numbers them."""
    return tuple(int(part) for part in case_id.split(".") if part.isdigit())


@dataclass(frozen=True)
class CaseResult:
    """One case's verdict as index.json records it, with the reasons from its own report."""

    case_id: str
    behavior: str
    behavior_close: str
    duration_ms: int | None
    remote_close_code: int | None
    result: str = ""
    result_close: str = ""

    @property
    def passed(self) -> bool:
        return self.behavior in PASSING and self.behavior_close in PASSING

    def describe(self) -> str:
        text = (
            f"{self.case_id}: behavior={self.behavior} close={self.behavior_close}"
            f" remote_close_code={self.remote_close_code}"
        )
        reasons = "; ".join(reason for reason in (self.result, self.result_close) if reason)
        return f"{text} ({reasons})" if reasons else text


@dataclass(frozen=True)
class AgentSummary:
    """All verdicts for one agent (one client identity) in a report."""

    label: str
    agent: str
    results: list[CaseResult]

    @property
    def behavior_counts(self) -> Counter[str]:
        return Counter(result.behavior for result in self.results)

    @property
    def close_counts(self) -> Counter[str]:
        return Counter(result.behavior_close for result in self.results)

    @property
    def failures(self) -> list[CaseResult]:
        return [result for result in self.results if not result.passed]

    @property
    def passed(self) -> bool:
        return bool(self.results) and not self.failures

    def line(self) -> str:
        behaviors = self.behavior_counts
        closes = self.close_counts
        parts = [f"{behaviors.get(name, 0)} {name}" for name in BEHAVIORS]
        parts += [
            f"{count} {name}" for name, count in sorted(behaviors.items()) if name not in BEHAVIORS
        ]
        close_parts = [f"{count} {name}" for name, count in sorted(closes.items())]
        return (
            f"{self.label}: {len(self.results)} cases, {', '.join(parts)};"
            f" close: {', '.join(close_parts) or 'none'}; {len(self.failures)} failing"
        )

    def report(self) -> str:
        lines = [self.line()]
        lines += [f"  FAIL {failure.describe()}" for failure in self.failures]
        return "\n".join(lines)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _shorten(value: Any, limit: int = 160) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _case_reasons(outdir: Path, entry: dict[str, Any]) -> tuple[str, str]:
    """Why a case failed, from its own report file: the verdict texts, and for a
    wrong behavior, what the server saw against what it wanted for OK."""
    report_file = entry.get("reportfile")
    if not isinstance(report_file, str):
        return "", ""
    path = outdir / report_file
    try:
        details = json.loads(path.read_text())
    except (OSError, ValueError):
        return "", ""
    result = str(details.get("result", ""))
    if details.get("behavior") not in PASSING:
        expected_ok = (details.get("expected") or {}).get("OK")
        result += (
            f" received={_shorten(details.get('received'))} expected_OK={_shorten(expected_ok)}"
        )
    return result, str(details.get("resultClose", ""))


def read_summaries(outdir: Path, label: str) -> list[AgentSummary]:
    """Summaries of ``<outdir>/index.json``, one per agent, cases in suite order."""
    index_path = outdir / "index.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as exc:
        raise FuzzingServerError(f"no readable report at {index_path}: {exc}") from exc
    summaries = []
    for agent, cases in sorted(index.items()):
        results = []
        for case_id in sorted(cases, key=case_sort_key):
            entry = cases[case_id]
            behavior = str(entry.get("behavior", "MISSING"))
            behavior_close = str(entry.get("behaviorClose", "MISSING"))
            result, result_close = ("", "")
            if behavior not in PASSING or behavior_close not in PASSING:
                result, result_close = _case_reasons(outdir, entry)
            results.append(
                CaseResult(
                    case_id=case_id,
                    behavior=behavior,
                    behavior_close=behavior_close,
                    duration_ms=_int_or_none(entry.get("duration")),
                    remote_close_code=_int_or_none(entry.get("remoteCloseCode")),
                    result=result,
                    result_close=result_close,
                )
            )
        summaries.append(AgentSummary(label=label, agent=agent, results=results))
    return summaries
