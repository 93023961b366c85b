"""The documentation site: it builds without a warning, and every Python example in it runs.

The build is ``sphinx-build -W --keep-going`` in a subprocess, exactly what
``./dev docs`` runs plus warnings as errors, once per test session; a failure
shows every warning.  It lives here rather than in ``./dev`` so that it is
reported like any test and so that the examples' check can read the doctrees
it leaves behind.

The rules for examples (docs/README.md says the same to writers):

* Every fenced block whose language is ``python`` (a ```` ```python ```` fence
  or ```` ```{code-block} python ````) in a page under docs/ is run, in the order
  of the page.  The blocks of one page share a namespace, so a block may use
  what an earlier block on the same page defined.
* A block whose code has a top-level ``await`` runs as the body of a
  coroutine under ``asyncio.run`` (as in ``python -m asyncio``).
* A block may be skipped only by a MyST comment ``% skip: <reason>`` on the
  line right before its fence; the reason is mandatory and reported.
* The examples talk to ``localhost:8765`` (plain TCP: HTTP/1.1 and h2c) and
  ``localhost:8766`` (TLS: HTTP/1.1 and h2 by ALPN), where the tutorial tells
  readers to run docs/echo_server.py under hypercorn.  Here that same app is
  served on loopback with OS-chosen ports, and the port numbers in the code
  are rewritten to those.  The
  TLS server's certificate comes from a throwaway CA: it is written as
  ``ca.pem`` in the working directory the examples run in (where an example
  passing ``cafile="ca.pem"`` finds it), and ``SSL_CERT_FILE`` points at it
  for examples that rely on the default trust store, as OpenSSL reads that
  variable for the default verify paths.
* The proxy examples talk to an HTTP proxy on ``localhost:3128`` that wants
  ``user:secret`` and a SOCKS5 proxy on ``localhost:1080``, as the proxies
  page tells readers to run with ``pproxy``: here the same two pproxy
  listeners run on OS-chosen ports, rewritten like the servers' ports.
* What an example does to ``os.environ`` is undone after its page.
* The number of blocks run and skipped is asserted against the Python literal
  blocks Sphinx itself found in the doctrees, and against fixed totals, so a
  block that the extraction missed, or one that silently disappeared, fails.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servers import RunningServer, start_hypercorn
from servers.proxy_servers import PproxyServer, start_pproxy

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Placeholder ports in the examples (plain, TLS), rewritten to the test servers' ports.
PLAIN_PORT = "8765"
TLS_PORT = "8766"
#: The proxies page's HTTP proxy (wanting ``PROXY_CREDENTIALS``) and SOCKS5 proxy.
HTTP_PROXY_PORT = "3128"
SOCKS_PROXY_PORT = "1080"
PROXY_CREDENTIALS = ("user", "secret")

#: Totals over all pages: update them when you add or remove an example on purpose.
EXPECTED_RUN = 43
EXPECTED_SKIPPED = 4

PYTHON_LANGUAGES = {"python", "python3", "py"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
SKIP = re.compile(r"^%\s*skip:\s*(?P<reason>\S.*)$")


@dataclass(frozen=True)
class Block:
    """One Python example: where it is, its code, and why it is skipped (if it is)."""

    page: str  # relative to docs/, e.g. "tutorial/first-session.md"
    line: int  # 1-based line of the opening fence
    code: str
    skip: str | None


def _language(info: str) -> str | None:
    """The language of a fence's info string: ``python`` or ``{code-block} python``."""
    words = info.split()
    if not words:
        return None
    if words[0].startswith("{"):
        if words[0] not in ("{code-block}", "{code}", "{sourcecode}"):
            return None
        return words[1] if len(words) > 1 else None
    return words[0]


def _strip_options(body: list[str]) -> list[str]:
    """Drop a MyST directive's ``:option: value`` lines (and ``---`` YAML options)."""
    if body and body[0].strip() == "---":
        end = body.index("---", 1) if "---" in body[1:] else 0
        return body[end + 1 :]
    index = 0
    while index < len(body) and body[index].startswith(":"):
        index += 1
    return body[index:]


def extract(page: Path) -> list[Block]:
    """Every Python block of a Markdown page, in order, with its skip marker."""
    name = page.relative_to(DOCS).as_posix()
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence = match["fence"]
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines):
            closing = lines[index].strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                break
            body.append(lines[index])
            index += 1
        index += 1
        language = _language(match["info"])
        if language is None or language.lower() not in PYTHON_LANGUAGES:
            continue
        if match["info"].startswith("{"):
            body = _strip_options(body)
        skip = SKIP.match(lines[start - 1]) if start > 0 else None
        reason = skip["reason"] if skip else None
        blocks.append(Block(name, start + 1, "\n".join(body) + "\n", reason))
    return blocks


def pages() -> list[Path]:
    return sorted(
        path
        for path in DOCS.rglob("*.md")
        if "_build" not in path.relative_to(DOCS).parts and path.name != "README.md"
    )


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in extract(page)]


# -- the build ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the site once, warnings as errors; the doctrees directory."""
    out = tmp_path_factory.mktemp("docs")
    doctrees = out / "doctrees"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-W",
            "--keep-going",
            "-q",
            "-d",
            str(doctrees),
            str(DOCS),
            str(out / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"
    return doctrees


def test_docs_build_without_warnings(built: Path) -> None:
    assert (built.parent / "html" / "index.html").is_file()


def _doctree_python_blocks(doctrees: Path, page: str) -> int:
    """How many Python literal blocks Sphinx parsed in a page, not counting literalinclude."""
    path = doctrees / Path(page).with_suffix(".doctree")
    with path.open("rb") as file:
        tree: Any = pickle.load(file)  # a docutils document
    count = 0
    for node in tree.findall(lambda node: getattr(node, "tagname", "") == "literal_block"):
        if str(node.get("language", "")).lower() not in PYTHON_LANGUAGES:
            continue
        if node.get("source") and Path(str(node["source"])).suffix != ".md":
            continue  # literalinclude of a .py file: tests/test_examples.py runs those
        count += 1
    return count


def test_every_python_block_is_extracted(built: Path) -> None:
    """What this file runs or skips is every Python block Sphinx rendered, page by page."""
    found = {page.relative_to(DOCS).as_posix(): len(extract(page)) for page in pages()}
    rendered = {page: _doctree_python_blocks(built, page) for page in found}
    assert found == rendered
    blocks = all_blocks()
    skipped = [block for block in blocks if block.skip is not None]
    assert (len(blocks) - len(skipped), len(skipped)) == (EXPECTED_RUN, EXPECTED_SKIPPED), (
        "update EXPECTED_RUN / EXPECTED_SKIPPED if examples were added or removed on purpose"
    )


# -- running the examples ----------------------------------------------------------------


def _echo_app() -> Any:
    """``app`` of docs/echo_server.py, the server the pages tell readers to run."""
    spec = importlib.util.spec_from_file_location("docs_echo_server", DOCS / "echo_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture(scope="module")
def echo_servers(tls_files: tuple[str, str]) -> Iterator[tuple[RunningServer, RunningServer]]:
    """docs/echo_server.py under hypercorn: plain (HTTP/1.1, h2c) and TLS (ALPN)."""
    app = _echo_app()
    plain = start_hypercorn(app)
    tls = start_hypercorn(app, certfile=tls_files[0], keyfile=tls_files[1])
    yield plain, tls
    plain.stop()
    tls.stop()


@pytest.fixture(scope="module")
def proxies() -> Iterator[tuple[PproxyServer, PproxyServer]]:
    """The proxies page's two proxies: HTTP CONNECT with credentials, and SOCKS5."""
    http_proxy = start_pproxy("http", auth=True, credentials=PROXY_CREDENTIALS)
    socks_proxy = start_pproxy("socks5")
    yield http_proxy, socks_proxy
    http_proxy.stop()
    socks_proxy.stop()


@pytest.fixture
def example_environment(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tls_ca_file: Path,
    echo_servers: tuple[RunningServer, RunningServer],
    proxies: tuple[PproxyServer, PproxyServer],
) -> Iterator[dict[str, str]]:
    """Run in a scratch directory holding ``ca.pem``; the port rewrites to apply."""
    (tmp_path / "ca.pem").write_bytes(tls_ca_file.read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    plain, tls = echo_servers
    http_proxy, socks_proxy = proxies
    environment = dict(os.environ)
    yield {
        PLAIN_PORT: str(plain.port),
        TLS_PORT: str(tls.port),
        HTTP_PROXY_PORT: str(http_proxy.port),
        SOCKS_PROXY_PORT: str(socks_proxy.port),
    }
    os.environ.clear()
    os.environ.update(environment)


def _rewrite(code: str, ports: dict[str, str]) -> str:
    return re.sub(r"\b(8765|8766|3128|1080)\b", lambda match: ports[match[1]], code)


def run_block(block: Block, code: str, namespace: dict[str, object]) -> None:
    """Run one block in the page's namespace; top-level ``await`` under ``asyncio.run``."""
    padded = "\n" * block.line + code  # tracebacks point at the page's own lines
    compiled = compile(padded, f"docs/{block.page}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if compiled.co_flags & inspect.CO_COROUTINE:

        async def body() -> None:
            await eval(compiled, namespace)

        asyncio.run(body())
    else:
        exec(compiled, namespace)


@pytest.mark.parametrize(
    "page", sorted({block.page for block in all_blocks() if block.skip is None})
)
def test_examples_run(page: str, example_environment: dict[str, str]) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    for block in extract(DOCS / page):
        if block.skip is None:
            run_block(block, _rewrite(block.code, example_environment), namespace)


@pytest.mark.parametrize(
    "where",
    [f"{block.page}:{block.line}" for block in all_blocks() if block.skip is not None],
)
def test_skipped_examples(where: str) -> None:
    """Each skipped block shows up in pytest's summary with its reason."""
    page, line = where.rsplit(":", 1)
    (block,) = [block for block in extract(DOCS / page) if block.line == int(line)]
    assert block.skip is not None
    pytest.skip(f"{where}: {block.skip}")
