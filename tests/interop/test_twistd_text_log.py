"""twistd's text log under ``twistd spindlex``: ``--log-level`` and ``--log-sftp``, with OpenSSH.

By default the text log is sshd's ``LogLevel INFO`` with sftp-server's
default: logins and sessions, no debug lines, no line per SFTP file
operation (those still reach ``--audit-log``). The log goes wherever twistd
would write it: standard output under ``-n``, ``--logfile FILE`` (rotated on
SIGUSR1), and the ``--workers`` copies log as the first process does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import LogLevel

from spindlex_tw.twistd.text_log import TextLogFilter
from tests.support.harness import ROOT, OpenSSH
from tests.support.twistd import TWISTD, Twistd, isolated_home, user_logger
from tests.support.waiting import free_port, poll

pytestmark = pytest.mark.interop

LOCAL = ["--auth", "memory:alice:secret"]
LOGIN = re.compile(r"login alice from 127\.0\.0\.1:\d+ by \S+")
LOGGED_IN = re.compile(r"session \S+: alice logged in from 127\.0\.0\.1:\d+ by \S+")
ENDED = re.compile(r"session \S+ ended after ")
SFTP_OPEN = re.compile(r"sftp open '/up\.txt' ok")
SFTP_CLOSE = re.compile(r"sftp close '/up\.txt' ok")
PEER_VERSION = re.compile(r"peer 127\.0\.0\.1:\d+ is SSH-2\.0-OpenSSH")
KEX_DEBUG = re.compile(r"key exchange with 127\.0\.0\.1:\d+: Negotiated\(")
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(?P<port>\d+)")
WORKER_LISTENING = re.compile(r"listening on 127\.0\.0\.1:\d+ \(worker (?P<pid>\d+)\)")


def _start(tmp_path: Path, *args: str, twistd: tuple[str, ...] = ()) -> Twistd:
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    return Twistd(
        [*twistd, "spindlex", "--sftp-root", str(served), *LOCAL, *args],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )


def _listen() -> list[str]:
    return ["--listen", "tcp:0:interface=127.0.0.1"]


def _up_and_down(tmp_path: Path, port: int) -> None:
    """OpenSSH's sftp uploads a file, then downloads it back."""
    local = tmp_path / "local.txt"
    local.write_bytes(os.urandom(4096))
    down = tmp_path / "down.txt"
    result = OpenSSH(tmp_path, port).sftp(
        "alice", "secret", f"put {local} /up.txt\nget /up.txt {down}\n"
    )
    assert result.returncode == 0, result.stderr
    assert down.read_bytes() == local.read_bytes()


def _events(audit: Path, kind: str) -> list[dict[str, Any]]:
    """The events of ``--audit-log`` file ``audit`` whose ``audit_event`` is ``kind``."""
    lines = audit.read_text().splitlines() if audit.exists() else []
    return [event for event in map(json.loads, lines) if event["audit_event"] == kind]


def _session_ended(audit: Path) -> None:
    poll(lambda: _events(audit, "session_end") or None, what="a session's end in the audit log")


def test_default_shows_logins_not_sftp_operations_nor_debug(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    server = _start(tmp_path, *_listen(), "--audit-log", str(audit))
    try:
        [port] = server.ports()
        _up_and_down(tmp_path, port)
        # The session's last event: every line of it is in the log by now.
        server.wait_for(ENDED)
        log = server.log()
        assert LOGIN.search(log), log
        assert LOGGED_IN.search(log), log
        assert re.search(r"logout alice from 127\.0\.0\.1:\d+", log), log
        assert not SFTP_OPEN.search(log), log
        assert not SFTP_CLOSE.search(log), log
        assert "#debug]" not in log
        assert not PEER_VERSION.search(log), log
        assert not KEX_DEBUG.search(log), log
        # --audit-log still gets every SFTP operation, logged before the session's end.
        _session_ended(audit)
        operations = [(e["operation"], e["path"], e["status"]) for e in _events(audit, "sftp")]
        assert operations.count(("open", "/up.txt", "ok")) == 2, operations
        assert operations.count(("close", "/up.txt", "ok")) == 2, operations
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_log_sftp_shows_the_file_operations(tmp_path: Path) -> None:
    server = _start(tmp_path, *_listen(), "--log-sftp")
    try:
        [port] = server.ports()
        _up_and_down(tmp_path, port)
        assert len(server.wait_for_all(SFTP_OPEN, 2)) == 2
        assert len(server.wait_for_all(SFTP_CLOSE, 2)) == 2
        server.wait_for(LOGGED_IN)
        assert not PEER_VERSION.search(server.log())
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_log_level_debug_shows_the_debug_lines(tmp_path: Path) -> None:
    server = _start(tmp_path, *_listen(), "--log-level", "debug")
    try:
        [port] = server.ports()
        _up_and_down(tmp_path, port)
        server.wait_for(PEER_VERSION)
        server.wait_for(KEX_DEBUG)
        server.wait_for(LOGIN)
        server.wait_for(ENDED)
        # debug is about the level only: SFTP operations still need --log-sftp.
        assert not SFTP_OPEN.search(server.log())
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_log_level_warn_leaves_out_the_logins(tmp_path: Path) -> None:
    port = free_port()
    audit = tmp_path / "audit.jsonl"
    server = _start(
        tmp_path,
        "--listen", f"tcp:{port}:interface=127.0.0.1",
        "--log-level", "warn",
        "--max-connections", "1",
        "--audit-log", str(audit),
    )  # fmt: skip
    try:
        # Nothing at info is shown, "listening on" neither: wait for the port itself.
        _wait_for_port(port)
        _up_and_down(tmp_path, port)
        _session_ended(audit)
        # A refused connection is a warning: once its line is there, a login line
        # would be before it. One of the two is refused whichever the server admits.
        with socket.create_connection(("127.0.0.1", port), timeout=30):
            OpenSSH(tmp_path, port).ssh("alice", "true", password="secret")
            server.wait_for(re.compile(r"\[spindlex_tw\.\S+#warn\] refused 127\.0\.0\.1: "))
        log = server.log()
        assert not LOGIN.search(log), log
        assert not LOGGED_IN.search(log), log
        assert "#info]" not in log, log
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def _wait_for_port(port: int) -> None:
    """Until a connection gets the server's version line; then it is closed and its
    slot free again (--max-connections 1) once the server has closed its side."""

    def accepts() -> bool | None:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError:
            return None
        with sock:
            assert sock.recv(256).startswith(b"SSH-2.0-")
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(4096):
                pass
        return True

    poll(accepts, timeout=30, what=f"the server on port {port}")


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _in_file(path: Path, pattern: re.Pattern[str]) -> re.Match[str]:
    return poll(
        lambda: pattern.search(_text(path)), timeout=30, what=f"{pattern.pattern} in {path}"
    )


def test_logfile_gets_the_filtered_log_and_sigusr1_rotates_it(tmp_path: Path) -> None:
    logfile = tmp_path / "spindlex.log"
    server = _start(tmp_path, *_listen(), twistd=("--logfile", str(logfile)))
    try:
        port = int(_in_file(logfile, LISTENING)["port"])
        _up_and_down(tmp_path, port)
        _in_file(logfile, ENDED)
        first = _text(logfile)
        assert LOGIN.search(first), first
        assert not SFTP_OPEN.search(first), first
        assert not PEER_VERSION.search(first), first
        # twistd's own rotation: SIGUSR1 moves the file to FILE.1 and starts a new one.
        os.kill(server.proc.pid, signal.SIGUSR1)
        rotated = logfile.with_name(logfile.name + ".1")
        poll(lambda: rotated.exists() or None, timeout=30, what=f"{rotated} to appear")
        _up_and_down(tmp_path, port)
        _in_file(logfile, ENDED)
        assert LOGIN.search(_text(logfile))
        assert LOGIN.search(rotated.read_text())
        assert not SFTP_OPEN.search(_text(logfile))
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_a_bad_log_level_is_one_line_and_status_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "spindlex", *_listen(), *LOCAL, "--log-level", "nonsense"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **isolated_home(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("twistd spindlex: error: --log-level ")
    assert "'nonsense'" in line


def test_twistd_logger_option_wins(tmp_path: Path) -> None:
    """twistd --logger: the user's own observer gets every event, unfiltered."""
    mine = tmp_path / "mine.log"
    logger = user_logger(tmp_path, mine)
    served = tmp_path / "served"
    served.mkdir()
    server = Twistd(
        ["--logger", logger, "spindlex", "--sftp-root", str(served), *LOCAL,
         *_listen()],
        cwd=tmp_path,
        env={**isolated_home(tmp_path), "PYTHONPATH": f"{ROOT}:{tmp_path}"},
    )  # fmt: skip
    try:
        port = int(_in_file(mine, LISTENING)["port"])
        _up_and_down(tmp_path, port)
        _in_file(mine, ENDED)
        assert SFTP_OPEN.search(_text(mine))
        assert PEER_VERSION.search(_text(mine))
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_worker_copies_leave_out_sftp_operations_too(tmp_path: Path) -> None:
    port = free_port()
    server = _start(tmp_path, "--workers", "2", "--listen", f"tcp:{port}:interface=127.0.0.1")
    try:
        pids = {int(m["pid"]) for m in server.wait_for_all(WORKER_LISTENING, 2)}
        assert len(pids) == 2
        # One session on each process: the other, paused, cannot accept.
        for paused in pids:
            os.kill(paused, signal.SIGSTOP)
            try:
                _up_and_down(tmp_path, port)
            finally:
                os.kill(paused, signal.SIGCONT)
        server.wait_for_all(ENDED, 2)
        server.wait_for_all(LOGIN, 2)
        log = server.log()
        assert not SFTP_OPEN.search(log), log
        assert not PEER_VERSION.search(log), log
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_filter_levels_and_sftp_events() -> None:
    seen: list[dict[str, Any]] = []
    sftp = {"log_namespace": "spindlex_tw.audit", "audit_event": "sftp", "log_level": LogLevel.info}
    mine = {**sftp, "log_namespace": "mine"}  # another namespace's field, no audit event
    info = {"log_namespace": "x", "log_level": LogLevel.info}
    error = {"log_namespace": "x", "log_level": LogLevel.error}
    debug = {"log_namespace": "x", "log_level": LogLevel.debug}
    for event in (sftp, mine, info, error, debug):
        TextLogFilter(seen.append, LogLevel.info, sftp=False)(event)
    assert seen == [mine, info, error]
    seen.clear()
    for event in (sftp, info, error, debug):
        TextLogFilter(seen.append, LogLevel.warn, sftp=True)(event)
    assert seen == [error]
    seen.clear()
    for event in (sftp, debug):
        TextLogFilter(seen.append, LogLevel.debug, sftp=True)(event)
    assert seen == [sftp, debug]


TAC = """\
from twisted.application import service

from spindlex_tw.twistd.service import ServiceOptions, makeService

application = service.Application("ssh")
options = ServiceOptions()
options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1", "--auth", "memory:alice:secret"])
makeService(options).setServiceParent(application)
"""


def test_a_tac_keeps_twistds_own_log(tmp_path: Path) -> None:
    """Options a .tac parsed itself are not twistd's: its log stays as twistd makes it."""
    (tmp_path / "ssh.tac").write_text(TAC)
    server = Twistd(["-y", "ssh.tac"], cwd=tmp_path, env=isolated_home(tmp_path))
    try:
        [port] = server.ports()
        OpenSSH(tmp_path, port).ssh("alice", "true", password="secret")
        server.wait_for(PEER_VERSION)
        server.wait_for(LOGIN)
        assert server.stop() == 0, server.log()
    finally:
        server.kill()
