"""docs/users.md: each example, run for real against OpenSSH's sftp and Paramiko."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.docs.support import covers, served, write_module
from tests.support.clients import paramiko_client
from tests.support.harness import OpenSSH

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
