"""docs/users.md: each example, run for real against OpenSSH's sftp and Paramiko."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.docs.support import covers, served, source, write_module
from tests.support.clients import paramiko_client
from tests.support.harness import ROOT, OpenSSH
from tests.support.twistd import Twistd, isolated_home

pytestmark = pytest.mark.interop


@covers("users-homes-app")
def test_users_homes_app(tmp_path: Path, start_server: Any) -> None:
    base = tmp_path / "homes"
    write_module(tmp_path, "users-homes-app")
    server = served(start_server, tmp_path, "HomesServer", SFTP_BASE=str(base))
    client = OpenSSH(tmp_path, server.port)
    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * 40 * 1024)
    done = client.sftp("alice", "alice-pw", f"put {small} a.bin\nput {small} b.bin\ndf\n")
    # The second upload goes past alice's 64 KiB: refused, and nothing past the quota.
    assert b"Failure" in done.stderr, done.stderr
    assert (base / "alice" / "a.bin").stat().st_size == 40 * 1024
    assert (base / "alice" / "b.bin").stat().st_size <= 24 * 1024
    assert any(line.split()[:1] == [b"64"] for line in done.stdout.splitlines()), done.stdout
    # bob may hold two files; the guest reads alice's home and changes nothing.
    done = client.sftp("bob", "bob-pw", f"put {small} 1\nput {small} 2\nput {small} 3\n")
    assert sorted(p.name for p in (base / "bob").iterdir()) == ["1", "2"]
    ssh = paramiko_client(server.port, "guest", "guest-pw")
    try:
        sftp = ssh.open_sftp()
        assert sftp.open("/a.bin").read() == b"s" * 40 * 1024
        with pytest.raises(PermissionError):
            sftp.remove("/a.bin")
        with pytest.raises(PermissionError):
            sftp.open("/new", "w")
    finally:
        ssh.close()
    assert sorted(p.name for p in (base / "alice").iterdir()) == ["a.bin", "b.bin"]


@covers("users-memory-dropbox")
def test_users_memory_dropbox(tmp_path: Path, start_server: Any) -> None:
    write_module(tmp_path, "users-memory-dropbox")
    server = served(start_server, tmp_path, "DropBoxServer")
    first = paramiko_client(server.port, "one", "x")
    second = paramiko_client(server.port, "two", "y")
    try:
        put, get = first.open_sftp(), second.open_sftp()
        with put.open("/note.txt", "w") as f:
            f.write(b"left for you")
        assert get.open("/note.txt").read() == b"left for you"  # one tree for every session
        with pytest.raises(OSError, match="Quota exceeded"):
            get.truncate("/note.txt", 2 << 20)
    finally:
        first.close()
        second.close()
    assert not (tmp_path / "note.txt").exists()  # nothing on disk


@covers("users-cred-rights")
def test_users_cred_rights(tmp_path: Path, start_server: Any) -> None:
    write_module(tmp_path, "users-cred-rights")
    server = served(start_server, tmp_path, "RightsServer", SFTP_BASE=str(tmp_path / "homes"))
    client = OpenSSH(tmp_path, server.port)
    done = client.ssh("ops", "uptime", password="ops-pw")
    assert done.returncode == 0 and done.stdout == b"you asked for: uptime\n", done.stderr
    refused = client.ssh("guest", "uptime", password="guest-pw")
    assert refused.returncode != 0 and refused.stdout == b"", refused.stderr
    ops = paramiko_client(server.port, "ops", "ops-pw")
    guest = paramiko_client(server.port, "guest", "guest-pw")
    try:
        assert ops.get_transport().request_port_forward("127.0.0.1", 0) > 0
        with pytest.raises(paramiko.SSHException):
            guest.get_transport().request_port_forward("127.0.0.1", 0)
    finally:
        ops.close()
        guest.close()


@covers("users-cred-portal")
def test_users_cred_portal(tmp_path: Path) -> None:
    example = source("users-cred-portal")
    (tmp_path / "cred_users.py").write_text(example)
    command = re.search(r"# cred_users.py: PYTHONPATH=\. twistd -n (.*)", example)
    assert command is not None
    base = tmp_path / "base"
    env = {
        **isolated_home(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "SFTP_BASE": str(base),
    }
    args = [*command[1].split(), "--listen", "tcp:0:interface=127.0.0.1"]
    server = Twistd(args, tmp_path, env, pythonpath=None)
    try:
        client = OpenSSH(tmp_path, server.ports()[0])
        small = tmp_path / "small.bin"
        small.write_bytes(b"s" * 40 * 1024)
        # writer: writes despite --read-only; the second file passes the avatar's 64 KiB.
        done = client.sftp("writer", "writer-pw", f"put {small} a.bin\nput {small} b.bin\n")
        assert b"Failure" in done.stderr, done.stderr
        assert (base / "writer" / "a.bin").stat().st_size == 40 * 1024
        assert not (tmp_path / "homes").exists()  # --home is only the default
        done = client.sftp("auditor", "auditor-pw", f"put {small} c.bin\nls\n")
        assert b"Permission denied" in done.stderr, done.stderr
        assert list((base / "auditor").iterdir()) == []
    finally:
        server.stop()
