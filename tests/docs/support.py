"""The Python examples of docs/*.md, and helpers to run them against real clients.

A block's id comes from an ``<!-- example: ID -->`` line right above its
fence, or else is ``<page>-<n>`` (the n-th Python block of that page). Test
functions say which block they run with ``@covers(ID)``;
``test_docs_coverage.py`` checks that every block is covered.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.support.harness import ROOT
from tests.support.processes import stop_process

DOCS = ROOT / "docs"
MODULE = "doc_example"

_FENCE = re.compile(r"^```python\s*\n(.*?)^```\s*$", re.M | re.S)
_MARKER = re.compile(r"<!--\s*example:\s*([\w.-]+)\s*-->\s*$")

F = TypeVar("F", bound=Callable[..., Any])
COVERED: set[str] = set()


@dataclass(frozen=True)
class Block:
    id: str
    page: str
    line: int
    source: str


def blocks() -> dict[str, Block]:
    found: dict[str, Block] = {}
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        for number, match in enumerate(_FENCE.finditer(text), 1):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = _MARKER.search(before)
            block_id = marker.group(1) if marker else f"{page.stem}-{number}"
            line = text.count("\n", 0, match.start()) + 1
            if block_id in found:
                raise AssertionError(f"example id {block_id} used twice ({page.name}:{line})")
            found[block_id] = Block(block_id, page.name, line, match.group(1))
    return found


def covers(block_id: str) -> Callable[[F], F]:
    COVERED.add(block_id)

    def mark(func: F) -> F:
        return func

    return mark


def source(block_id: str) -> str:
    return blocks()[block_id].source


def with_ports(text: str, ports: dict[int, int]) -> str:
    """The examples bind 2222 (and 8080); tests swap in free ports."""
    for old, new in ports.items():
        text = re.sub(rf"\b{old}\b", str(new), text)
    return text


def write_module(tmp: Path, block_id: str, replace: dict[str, str] | None = None) -> Path:
    text = source(block_id)
    for old, new in (replace or {}).items():
        assert old in text, f"{old!r} not in example {block_id}"
        text = text.replace(old, new)
    path = tmp / f"{MODULE}.py"
    path.write_text(text)
    return path


def python_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for a child Python: the project and ``tmp`` importable, HOME in ``tmp``."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp)]),
        "HOME": str(home),
        **extra,
    }


def start_script(tmp: Path, text: str, **env: str) -> subprocess.Popen[bytes]:
    path = tmp / "example_script.py"
    path.write_text(text)
    return subprocess.Popen(
        [sys.executable, str(path)],
        cwd=tmp,
        env=python_env(tmp, **env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30):
    """Poll until something accepts on 127.0.0.1:``port`` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"example exited with {proc.returncode}:\n{err}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc)


def served(start_server: Callable[..., Any], tmp: Path, cls: str, **env: str) -> Any:
    """The block already written to ``tmp`` served by the test harness's server process."""
    return start_server(
        app=f"{MODULE}:{cls}",
        env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp)]), **env},
    )
