"""``twistd spindlex --workers N``: the copies' text log reaches the first process's destination.

With ``--logfile FILE`` (or a daemon's), the copies print their lines to a
pipe and the first process writes them into its own log file: one writer,
one rotation, whole lines. Each test forces one OpenSSH session onto each
process by stopping the other (SIGSTOP), so a login line missing from the
file is a copy's line lost.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.logger import textFileLogObserver

from spindlex_tw.twistd.output_lines import MAX_HELD, OutputLines
from spindlex_tw.twistd.text_log import CopiesLog, TextLogChoice, for_twistd
from tests.support.harness import ROOT, OpenSSH
from tests.support.twistd import TWISTD, Twistd, isolated_home, user_logger
from tests.support.waiting import free_port, poll

pytestmark = pytest.mark.interop

LOCAL = ["--auth", "memory:alice:secret"]
LOGGED_IN = re.compile(r"session \S+: alice logged in from 127\.0\.0\.1:\d+ by \S+")
WORKER_LISTENING = re.compile(r"listening on 127\.0\.0\.1:\d+ \(worker (?P<pid>\d+)\)")
NEVER = re.compile(r"(?!)")
# Not unbuffered as this test machine's environment is, but as an operator's:
# twistd's log observer flushes each event, the copies need nothing more.
BUFFERED = {"PYTHONUNBUFFERED": ""}


def _spindlex(tmp_path: Path, port: int) -> list[str]:
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    listen = f"tcp:{port}:interface=127.0.0.1"
    return ["spindlex", "--workers", "2", "--listen", listen, "--sftp-root", str(served), *LOCAL]


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _count_in(path: Path, pattern: re.Pattern[str], count: int) -> list[re.Match[str]]:
    """The first ``count`` matches of ``pattern`` in ``path``, once the file holds them."""
    return poll(
        lambda: found if len(found := list(pattern.finditer(_text(path)))) >= count else None,
        timeout=30,
        what=f"{count} lines matching {pattern.pattern} in {path}",
    )[:count]


def _one_login_on_each(tmp_path: Path, port: int, pids: set[int]) -> None:
    """An OpenSSH sftp session served by each of ``pids``: the others are stopped meanwhile."""
    for serving in pids:
        paused = pids - {serving}
        for pid in paused:
            os.kill(pid, signal.SIGSTOP)
        try:
            result = OpenSSH(tmp_path, port).sftp("alice", "secret", "pwd\n")
        finally:
            for pid in paused:
                os.kill(pid, signal.SIGCONT)
        assert result.returncode == 0, result.stderr


def test_copies_log_into_the_logfile_and_rotate_with_it(tmp_path: Path) -> None:
    logfile = tmp_path / "spindlex.log"
    port = free_port()
    server = Twistd(
        ["--logfile", str(logfile), *_spindlex(tmp_path, port)],
        cwd=tmp_path,
        env={**isolated_home(tmp_path), **BUFFERED},
    )
    try:
        pids = {int(m["pid"]) for m in _count_in(logfile, WORKER_LISTENING, 2)}
        assert len(pids) == 2 and server.proc.pid in pids
        _one_login_on_each(tmp_path, port, pids)
        _count_in(logfile, LOGGED_IN, 2)
        # twistd's rotation, in the first process: the copies' later lines follow it.
        os.kill(server.proc.pid, signal.SIGUSR1)
        rotated = logfile.with_name(logfile.name + ".1")
        poll(lambda: rotated.exists() or None, timeout=30, what=f"{rotated} to appear")
        _one_login_on_each(tmp_path, port, pids)
        _count_in(logfile, LOGGED_IN, 2)
        assert len(LOGGED_IN.findall(rotated.read_text())) == 2, rotated.read_text()
        assert server.stop() == 0, _text(logfile)
        # Every line the processes wrote to twistd's standard output, to its end.
        with pytest.raises(AssertionError):
            server.wait_for(NEVER)
        assert not LOGGED_IN.search(server.log()), server.log()
        assert len(LOGGED_IN.findall(_text(logfile))) == 2, _text(logfile)
        # Whole lines only: each starts with its timestamp.
        for line in _text(logfile).splitlines() + rotated.read_text().splitlines():
            assert re.match(r"\d{4}-\d\d-\d\dT", line), line
    finally:
        server.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited: only its parent's wait is missing.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


@pytest.fixture
def daemon_pids() -> Iterator[set[int]]:
    """Processes a test started as daemons: whatever is left of them is killed."""
    pids: set[int] = set()
    yield pids
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_daemons_copies_log_into_its_logfile(tmp_path: Path, daemon_pids: set[int]) -> None:
    logfile = tmp_path / "spindlex.log"
    pidfile = tmp_path / "twistd.pid"
    port = free_port()
    started = subprocess.run(
        [*TWISTD, "--pidfile", str(pidfile), "--logfile", str(logfile), *_spindlex(tmp_path, port)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **isolated_home(tmp_path), **BUFFERED},
        capture_output=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    first = int(pidfile.read_text())
    daemon_pids.add(first)
    pids = {int(m["pid"]) for m in _count_in(logfile, WORKER_LISTENING, 2)}
    daemon_pids.update(pids)
    assert len(pids) == 2 and first in pids
    _one_login_on_each(tmp_path, port, pids)
    _count_in(logfile, LOGGED_IN, 2)
    os.kill(first, signal.SIGTERM)
    for pid in pids:
        poll(lambda pid=pid: None if _alive(pid) else True, timeout=60, what=f"{pid} to exit")
    # The copy's last lines, written by the first process before it exits.
    assert "Server Shut Down." in _text(logfile)
    assert len(re.findall(r"Server Shut Down\.", _text(logfile))) == 2, _text(logfile)


def test_copies_use_twistds_logger_too(tmp_path: Path) -> None:
    mine = tmp_path / "mine.log"
    logger = user_logger(tmp_path, mine)
    port = free_port()
    server = Twistd(
        ["--logger", logger, *_spindlex(tmp_path, port)],
        cwd=tmp_path,
        env={**isolated_home(tmp_path), "PYTHONPATH": f"{ROOT}:{tmp_path}"},
    )
    try:
        pids = {int(m["pid"]) for m in _count_in(mine, WORKER_LISTENING, 2)}
        _one_login_on_each(tmp_path, port, pids)
        _count_in(mine, LOGGED_IN, 2)
        assert server.stop() == 0, _text(mine)
    finally:
        server.kill()


def _copy_of(pid: int) -> list[str]:
    """The command line of the one child process of ``pid``, once it has one."""

    def command() -> list[str] | None:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(children) != 1:
            return None
        return Path(f"/proc/{children[0]}/cmdline").read_text().split("\0")

    return poll(command, timeout=30, what=f"a copy of {pid}")


def test_copies_log_to_syslog_themselves(tmp_path: Path) -> None:
    """--syslog and --prefix are passed on (this machine has no syslog to read back)."""
    port = free_port()
    server = Twistd(
        ["--syslog", "--prefix", "spx-test", *_spindlex(tmp_path, port)],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        command = _copy_of(server.proc.pid)
        twistd_options = command[: command.index("spindlex")]
        assert twistd_options[-3:] == ["--syslog", "--prefix", "spx-test"], command
        assert server.stop() == 0
    finally:
        server.kill()


# A supervisor whose one worker prints a line longer than the cap, then a whole
# line, then half of one, and exits: the file gets all of it, in capped lines.
SUPERVISOR = """
import sys
from twisted.internet import reactor
from twisted.python.logfile import LogFile
from spindlex_tw.twistd.supervisor import Supervisor

WORKER = (
    "import os, sys; n = int(sys.argv[1]);"
    "os.write(1, b'a' * n); os.write(1, b'whole\\\\npartial')"
)


class Once(Supervisor):
    def worker_ended(self, worker, reason):
        reactor.stop()


log_file = LogFile.fromFullPath(sys.argv[1])
supervisor = Once(1, reactor, output=log_file.write)
argv = [sys.executable, "-c", WORKER, sys.argv[2]]
reactor.callWhenRunning(supervisor.spawn, argv, [], {})
reactor.run()
"""


def test_a_workers_output_reaches_the_file_in_capped_whole_lines(tmp_path: Path) -> None:
    logfile = tmp_path / "workers.log"
    length = 2 * MAX_HELD + 1000
    subprocess.run(
        [sys.executable, "-c", SUPERVISOR, str(logfile), str(length)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=60,
    )
    lines = logfile.read_bytes().split(b"\n")
    assert lines == [b"a" * MAX_HELD, b"a" * MAX_HELD, b"a" * 1000 + b"whole", b"partial", b""]


def test_output_lines_hold_a_partial_line_until_its_end() -> None:
    written: list[bytes] = []
    lines = OutputLines(written.append, max_held=8)
    lines.feed(b"one\ntw")
    assert written == [b"one\n"]
    lines.feed(b"o\nthree")
    assert written == [b"one\n", b"two\n"]
    lines.feed(b"\n")
    assert written[-1] == b"three\n"
    lines.feed(b"0123456789abcdefgh")  # over the cap, no newline: written in pieces of 8
    assert written[-2:] == [b"01234567\n", b"89abcdef\n"]
    lines.feed(b"ij\nk")
    assert written[-1] == b"ghij\n"
    lines.close()
    lines.close()  # nothing held: nothing more
    assert written[-1] == b"k\n"
    assert b"".join(written) == b"one\ntwo\nthree\n01234567\n89abcdef\nghij\nk\n"


def test_output_lines_write_nothing_for_nothing() -> None:
    written: list[bytes] = []
    lines = OutputLines(written.append)
    lines.feed(b"")
    lines.close()
    assert written == []


class _Observers:
    def __call__(self) -> Any:
        return print


def test_a_logger_twistd_cannot_name_again_leaves_the_copies_on_standard_output() -> None:
    def named(factory: Any) -> CopiesLog:
        return for_twistd(SimpleNamespace(parent={"logger": factory}), TextLogChoice())[1]

    assert named(textFileLogObserver) == CopiesLog(
        ("--logger", "twisted.logger._file.textFileLogObserver")
    )
    assert named(lambda: print) == CopiesLog()
    assert named(_Observers()) == CopiesLog()
    # Named as the class's function, which is not this instance's method.
    assert named(_Observers().__call__) == CopiesLog()
