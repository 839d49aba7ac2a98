"""Processes a hook starts with Twisted's process API under SSHServerManager.

The manager runs the reactor in a background thread, which may not install
signal handlers; a child that closes its output before it exits is then
reaped only when SIGCHLD wakes the reactor, which the manager arranges
from the main thread. OpenSSH's ssh runs the command and waits for its exit status.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.harness import ROOT, OpenSSH
from tests.support.processes import stop_process

pytestmark = pytest.mark.interop

SCRIPT = textwrap.dedent(
    """
    import signal
    import sys

    from twisted.internet import utils

    from spindlex_tw import AUTH_SUCCESSFUL, Ed25519Key, SSHServer, SSHServerManager

    # The child closes its output first and exits later: its pipes close
    # before it can be reaped, so only SIGCHLD tells the reactor it ended.
    CHILD = "exec >/dev/null 2>&1; sleep 0.5; exit 7"


    class ProcessServer(SSHServer):
        def check_auth_password(self, username, password):
            return AUTH_SUCCESSFUL

        def check_channel_exec_request(self, channel, command):
            d = utils.getProcessOutputAndValue("/bin/sh", ["-c", CHILD])

            def ended(result):
                channel.send(b"ended\\n")
                channel.send_exit_status(result[2])
                channel.close()

            d.addCallback(ended)
            return True


    if sys.argv[1] == "own-handler":
        # A program with its own SIGCHLD handling keeps it.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    manager = SSHServerManager(ProcessServer(), Ed25519Key.generate(), "127.0.0.1", 0)
    manager.start_server()
    handler = signal.getsignal(signal.SIGCHLD)
    print("PORT", manager.get_port(), getattr(handler, "__name__", handler), flush=True)
    input()
    manager.stop_server()
    """
)


def _start(tmp: Path, mode: str) -> tuple[subprocess.Popen[bytes], int, str]:
    script = tmp / "process_server.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), mode],
        cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    words = proc.stdout.readline().decode().split()
    assert words[:1] == ["PORT"], proc.stderr.read().decode() if proc.stderr else ""
    return proc, int(words[1]), words[2]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.communicate(b"\n", timeout=30)  # the script stops its manager on Enter
    except subprocess.TimeoutExpired:
        stop_process(proc)


def test_a_child_that_outlives_its_pipes_is_reaped(tmp_path: Path) -> None:
    proc, port, handler = _start(tmp_path, "default")
    try:
        assert handler == "_ignore"
        result = OpenSSH(tmp_path, port).ssh("alice", "run", password="any", timeout=60)
        assert (result.returncode, result.stdout) == (7, b"ended\n"), result.stderr
    finally:
        _stop(proc)


def test_a_program_s_own_sigchld_handler_is_kept(tmp_path: Path) -> None:
    proc, _, handler = _start(tmp_path, "own-handler")
    try:
        assert handler == "<lambda>"
    finally:
        _stop(proc)
