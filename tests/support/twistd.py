"""Run ``twistd -n spindlex`` (or ``twistd -ny FILE.tac``) in a child process for interop tests."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from spindlex_tw.twistd.service import Options
from tests.support.harness import ROOT
from tests.support.processes import stop_process

# twistd's own entry point, run by this interpreter (no console script needed).
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]

LISTENING = re.compile(r"listening on (?P<host>\S+):(?P<port>\d+)")
PASSWORD = re.compile(r"one-time password for (?P<user>\S+): (?P<password>\S+)")


def declared_options() -> set[str]:
    """Every long option ``twistd spindlex`` declares, without twistd's own help/version."""
    return {name.rstrip("=") for name in Options().longOpt} - {"help", "version"}


HELP_LINE = re.compile(r"^\s+(?:-\w, )?--(?P<name>[a-z0-9-]+)=?\s*(?P<text>.*)$")


def documented_options(help_text: str) -> dict[str, str]:
    """Each option of a ``--help`` text with its description (continuation lines joined)."""
    described: dict[str, str] = {}
    current = ""
    for line in help_text.splitlines():
        if match := HELP_LINE.match(line):
            current = match["name"]
            described[current] = match["text"]
        elif current and line.startswith(" ") and line.strip():
            described[current] += " " + line.strip()
        else:
            current = ""
    return described


def isolated_home(tmp: Path) -> dict[str, str]:
    """Environment variables pointing every per-user path at ``tmp``, never the real HOME."""
    home = tmp / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "XDG_STATE_HOME": str(home / ".local" / "state")}


def user_logger(directory: Path, log: Path) -> str:
    """Write a module to ``directory`` whose observer appends every event to ``log`` as
    text; returns its name for ``twistd --logger`` (twistd imports it from its cwd)."""
    (directory / "my_observer.py").write_text(
        "from twisted.logger import textFileLogObserver\n\n\n"
        "def observer():\n"
        f"    return textFileLogObserver(open({str(log)!r}, 'a', buffering=1))\n"
    )
    return "my_observer.observer"


class Twistd:
    """A twistd process whose log (stdout) is read line by line as it comes."""

    def __init__(
        self,
        args: Sequence[str],
        cwd: Path,
        env: dict[str, str],
        command: Sequence[str] = TWISTD,
        pythonpath: Path | None = ROOT,
    ) -> None:
        full_env = dict(os.environ)
        full_env.pop("PYTHONPATH", None)
        if pythonpath is not None:
            full_env["PYTHONPATH"] = str(pythonpath)
        full_env.update(env)
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(
            [*command, "-n", "--pidfile=", "--logfile=-", *args],
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._queue.put(raw.decode(errors="replace").rstrip("\n"))
        self._queue.put("")

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 30) -> re.Match[str]:
        """The first log line matching ``pattern`` (earlier lines included)."""
        return self.wait_for_all(pattern, 1, timeout)[0]

    def wait_for_all(
        self, pattern: re.Pattern[str], count: int, timeout: float = 30
    ) -> list[re.Match[str]]:
        """The first ``count`` log lines matching ``pattern``, waiting for them if need be."""
        found = [m for line in self.lines if (m := pattern.search(line))]
        deadline = time.monotonic() + timeout
        while len(found) < count and (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line == "" and self.proc.poll() is not None:
                break
            self.lines.append(line)
            if match := pattern.search(line):
                found.append(match)
        if len(found) < count:
            raise AssertionError(
                f"no {count} log lines matching {pattern.pattern!r}:\n" + self.log()
            )
        return found[:count]

    def ports(self, count: int = 1) -> list[int]:
        """The ports of the first ``count`` "listening on" lines."""
        return [int(m["port"]) for m in self.wait_for_all(LISTENING, count)]

    def log(self) -> str:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            self.lines.append(line)
        return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal twistd and wait for it; returns its exit status."""
        return stop_process(self.proc, sig, timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
