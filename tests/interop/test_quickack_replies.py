"""A request answered at once carries its own acknowledgement; only unanswered reads set
TCP_QUICKACK (tx/protocol.py dataReceived), with OpenSSH's sftp as the client."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import utils

from spindlex_tw import AUTH_FAILED, AUTH_SUCCESSFUL, Ed25519Key, SSHServer, SSHServerManager
from spindlex_tw.server.sftp_server import SFTPServer
from spindlex_tw.tx import protocol as tx_protocol
from tests.support.harness import OpenSSH

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux only"),
]

STATS = 60


class InlineSFTP(SFTPServer):
    # Answers go out inside the read that brought the request, whatever the root's disk.
    disk_io = "inline"


class FilesServer(SSHServer):
    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def check_auth_password(self, username: str, password: str) -> int:
        return AUTH_SUCCESSFUL if password == "secret" else AUTH_FAILED

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        if name != "sftp":
            return False
        InlineSFTP(channel, str(self.root))
        return True


@pytest_twisted.ensureDeferred
async def test_answered_requests_need_no_separate_acknowledgement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "file").write_bytes(b"x" * 100)
    acknowledged: list[int] = []
    real = tx_protocol.acknowledge_now

    def counting(sock: socket.socket) -> None:
        acknowledged.append(sock.fileno())
        real(sock)

    monkeypatch.setattr(tx_protocol, "acknowledge_now", counting)
    manager = SSHServerManager(FilesServer(root), Ed25519Key.generate(), "127.0.0.1", 0)
    await manager.start_server()
    try:
        client = OpenSSH(tmp_path, manager.get_port() or 0)
        # Each `cd /` is a REALPATH and a STAT, each answered at once in the read that
        # brought it. (Not `ls`: its users-groups-by-id request looks names up on a
        # worker thread, and that answer comes later.)
        batch = tmp_path / "batch"
        batch.write_text("cd /\n" * STATS + "ls\n")
        args = client.password_argv("sftp", "alice", "secret")
        # -b goes after the options: sftp turns it into BatchMode=yes, which must not
        # come before the BatchMode=no that lets sshpass answer the password prompt.
        args[-1:-1] = ["-b", str(batch)]
        out, err, code = await utils.getProcessOutputAndValue(
            args[0], args[1:], env=dict(os.environ)
        )
    finally:
        await manager.stop_server()
    assert code == 0, err
    assert out.count(b"sftp> cd /") == STATS and b"\nfile" in out
    # The key exchange and the login have reads that nothing answers (NEWKEYS, the
    # client's service request before the server's reply is ready...): those are
    # acknowledged on their own. The requests were answered, and carried it.
    assert 0 < len(acknowledged) < STATS // 2, len(acknowledged)
