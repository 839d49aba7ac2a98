"""Running OpenSSH's sftp client against the stdio server (``sftp -D``), and a paramiko client."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

STDIO_SERVER = Path(__file__).with_name("stdio_server.py")

needs_sftp = pytest.mark.skipif(shutil.which("sftp") is None, reason="OpenSSH sftp not installed")


def server_command(
    root: Path, server_class: str | None = None, extra: Sequence[str] = ()
) -> list[str]:
    cmd = [sys.executable, str(STDIO_SERVER), str(root), *extra]
    if server_class:
        cmd += ["--server-class", server_class]
    return cmd


def sftp_batch(
    root: Path,
    batch: str,
    cwd: Path,
    server_class: str | None = None,
    extra: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``batch`` with ``sftp -b``; the result's stdout holds the session's output.

    ``extra``: more arguments of the stdio server (``--memory-state FILE``).
    """
    command = " ".join(server_command(root, server_class, extra))
    return subprocess.run(
        ["sftp", "-D", command, "-b", "-"],
        input=batch,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class NamedSocket:
    """A socket as paramiko's SFTPClient wants its channel: send, recv, close, get_name."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send(self, data: bytes) -> int:
        return self._sock.send(data)

    def recv(self, size: int) -> bytes:
        return self._sock.recv(size)

    def close(self) -> None:
        self._sock.close()

    def get_name(self) -> str:
        return "sftp-pipe"


class PipeServer:
    """The stdio server on one end of a socket pair; ``sock`` is the client's end."""

    def __init__(
        self, root: Path, server_class: str | None = None, extra: Sequence[str] = ()
    ) -> None:
        ours, theirs = socket.socketpair()
        self.sock = NamedSocket(ours)
        self.proc = subprocess.Popen(
            server_command(root, server_class, extra),
            stdin=theirs,
            stdout=theirs,
            stderr=subprocess.PIPE,
        )
        theirs.close()

    def stop(self) -> str:
        """Close our end, wait for the server to finish; returns what it logged."""
        self.sock.close()
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError("stdio server did not exit after its client closed") from None
        return err.decode(errors="replace")
