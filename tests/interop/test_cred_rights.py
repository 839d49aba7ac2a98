"""What a twisted.cred avatar allows beyond SFTP: exec, TCP forwarding; and its logout.

Paramiko and OpenSSH against tests/support/cred_apps.py:RightsServer, whose
realm lets alice run commands and forward TCP and bob neither, and records
every logout the realm's avatars get.
"""

from __future__ import annotations

import shutil
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.support.clients import paramiko_client
from tests.support.harness import OpenSSH
from tests.support.waiting import poll

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sshpass") is None, reason="sshpass not installed"),
]

APP = "tests.support.cred_apps:RightsServer"


def _env(tmp_path: Path) -> dict[str, str]:
    db = tmp_path / "cred.db"
    db.write_text("alice:alice-pw\nbob:bob-pw\n")
    return {
        "CRED_HOMES": str(tmp_path / "homes"),
        "CRED_DB": str(db),
        "CRED_LOGOUTS": str(tmp_path / "logouts"),
    }


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo service on 127.0.0.1 for forwarded channels to reach."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # closed by the test without a connection: a refused forward
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(30)


def _logouts(tmp_path: Path) -> list[str]:
    path = tmp_path / "logouts"
    return path.read_text().splitlines() if path.exists() else []


def test_exec_allowed_by_the_avatar_and_refused_without(
    tmp_path: Path, start_server: Callable[..., Any]
) -> None:
    server = start_server(app=APP, env=_env(tmp_path))
    client = OpenSSH(tmp_path, server.port)
    done = client.ssh("alice", "hello there", password="alice-pw")
    assert done.returncode == 0 and done.stdout == b"hello there\n", done.stderr
    # The subclass's exec hook would run it; bob's avatar says no first.
    refused = client.ssh("bob", "hello there", password="bob-pw")
    assert refused.returncode != 0 and refused.stdout == b"", refused.stderr
    ssh = paramiko_client(server.port, "bob", "bob-pw")
    try:
        with pytest.raises(paramiko.SSHException):
            ssh.exec_command("hello")
        with pytest.raises(paramiko.SSHException):
            ssh.invoke_shell()
    finally:
        ssh.close()


def test_forwarding_allowed_by_the_avatar_and_refused_without(
    tmp_path: Path, start_server: Callable[..., Any], echo_port: int
) -> None:
    server = start_server(app=APP, env=_env(tmp_path))
    alice = paramiko_client(server.port, "alice", "alice-pw")
    bob = paramiko_client(server.port, "bob", "bob-pw")
    try:
        transport = alice.get_transport()
        channel = transport.open_channel(
            "direct-tcpip", ("127.0.0.1", echo_port), ("127.0.0.1", 4444), timeout=30
        )
        channel.sendall(b"ping")
        assert channel.recv(4) == b"ping"
        channel.close()
        assert transport.request_port_forward("127.0.0.1", 0) > 0
        with pytest.raises(paramiko.ChannelException) as refused:
            bob.get_transport().open_channel(
                "direct-tcpip", ("127.0.0.1", echo_port), ("127.0.0.1", 4444), timeout=30
            )
        assert refused.value.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        with pytest.raises(paramiko.SSHException):
            bob.get_transport().request_port_forward("127.0.0.1", 0)
        # The subclass grants Unix-socket forwards: still only to whom the avatar allows.
        for user, client, granted in (("alice", alice, True), ("bob", bob, False)):
            reply = client.get_transport().global_request(
                "streamlocal-forward@openssh.com", (str(tmp_path / f"{user}.sock"),), wait=True
            )
            assert (reply is not None) is granted, user
    finally:
        alice.close()
        bob.close()


def test_logout_once_on_every_way_a_connection_ends(
    tmp_path: Path, start_server: Callable[..., Any]
) -> None:
    server = start_server(app=APP, env=_env(tmp_path))
    # A clean disconnect: OpenSSH says SSH_MSG_DISCONNECT after its command.
    done = OpenSSH(tmp_path, server.port).ssh("alice", "hi", password="alice-pw")
    assert done.returncode == 0, done.stderr
    poll(lambda: _logouts(tmp_path) == ["alice"] or None, what="alice's logout")
    # A dropped TCP connection: reset under Paramiko, nothing said first.
    ssh = paramiko_client(server.port, "bob", "bob-pw")
    sock = ssh.get_transport().sock
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    ssh.close()
    poll(lambda: _logouts(tmp_path) == ["alice", "bob"] or None, what="bob's logout")
    # The server stopping with a user still logged in.
    held = paramiko_client(server.port, "alice", "alice-pw")
    try:
        held.exec_command("still here")[1].read()
        assert _logouts(tmp_path) == ["alice", "bob"]
        server.stop()
        assert server.proc.returncode == 0, server.log_path.read_text()
    finally:
        held.close()
    assert _logouts(tmp_path) == ["alice", "bob", "alice"]
    assert "Traceback" not in server.log_path.read_text()
