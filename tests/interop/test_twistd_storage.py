"""The same SFTP sessions, by real clients, served from the local disk and from memory.

``twistd spindlex --storage local|memory``: every check goes through the
clients themselves (OpenSSH's sftp and Paramiko), so both storages must
answer alike; only the local run also looks at the disk.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from spindlex_tw.twistd.credentials import hash_password
from tests.support.clients import paramiko_client
from tests.support.harness import OpenSSH
from tests.support.twistd import Twistd, isolated_home

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sshpass") is None, reason="sshpass not installed"),
]


@pytest.fixture(params=["local", "memory"])
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served(tmp_path: Path) -> Path:
    directory = tmp_path / "served"
    directory.mkdir()
    return directory


@pytest.fixture
def server(tmp_path: Path, served: Path, storage: str) -> Iterator[OpenSSH]:
    twistd = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            "memory:alice:secret",
            "--storage",
            storage,
            "--sftp-root",
            str(served),
        ],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = twistd.ports()
        yield OpenSSH(tmp_path, port)
    finally:
        twistd.stop()


def test_openssh_sftp_session(server: OpenSSH, storage: str, served: Path, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(payload)
    fetched = tmp_path / "fetched.bin"
    batch = (
        "mkdir dir\n"
        f"put {upload} dir/data.bin\n"
        "rename dir/data.bin dir/moved.bin\n"
        "ln -s moved.bin dir/link\n"
        "cp dir/moved.bin dir/copy.bin\n"
        "chmod 600 dir/copy.bin\n"
        f"get dir/link {fetched}\n"
        "ls -l dir\n"
        "df\n"
        "rm dir/copy.bin\n"
        "ls -1 dir\n"
    )
    done = server.sftp("alice", "secret", batch)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert fetched.read_bytes() == payload
    assert "-rw-------" in out and "moved.bin" in out and "link" in out
    assert out.rstrip().splitlines()[-2:] == ["dir/link", "dir/moved.bin"]
    # Memory keeps the files to itself; the disk has them only when serving it.
    on_disk = sorted(os.listdir(served / "dir")) if (served / "dir").exists() else []
    assert on_disk == (["link", "moved.bin"] if storage == "local" else [])


def test_paramiko_session(server: OpenSSH) -> None:
    ssh = paramiko_client(server.port)
    try:
        sftp = ssh.open_sftp()
        with sftp.open("/f", "w") as f:
            f.write(b"0123456789")
        with sftp.open("/f", "r+") as f:
            f.seek(4)
            f.write(b"xy")  # a write in the middle
        assert sftp.open("/f").read() == b"0123xy6789"
        sftp.truncate("/f", 3)
        assert sftp.stat("/f").st_size == 3
        sftp.mkdir("/d", 0o700)
        assert stat.S_IMODE(sftp.stat("/d").st_mode or 0) == 0o700
        sftp.symlink("../f", "/d/up")
        assert sftp.readlink("/d/up") == "../f"
        assert sftp.open("/d/up").read() == b"012"
        assert sftp.normalize("/d/../../..") == "/"
        with pytest.raises(FileNotFoundError):
            sftp.stat("/missing")
        with pytest.raises(OSError):
            sftp.rmdir("/d")  # not empty
        sftp.posix_rename("/f", "/d/f")
        assert sorted(sftp.listdir("/d")) == ["f", "up"]
        sftp.remove("/d/up")
        sftp.remove("/d/f")
        sftp.rmdir("/d")
        assert sftp.listdir("/") == []
    finally:
        ssh.close()


def test_memory_homes_keep_users_apart(tmp_path: Path, served: Path) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text(
        f"alice:{hash_password('alice-pw')}\nbob:{hash_password('bob-pw')}:quota=1K\n"
    )
    twistd = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            f"file:{passwords}",
            "--storage",
            "memory",
            "--home",
            f"{tmp_path}/homes/{{user}}",
        ],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = twistd.ports()
        alice = paramiko_client(port, "alice", "alice-pw")
        bob = paramiko_client(port, "bob", "bob-pw")
        try:
            mine, theirs = alice.open_sftp(), bob.open_sftp()
            with mine.open("/note", "w") as f:
                f.write(b"alice's")
            assert theirs.listdir("/") == []  # bob's tree is his own
            with pytest.raises(OSError, match="Quota exceeded"), theirs.open("/x", "w") as f:
                f.write(b"x" * 2048)
                f.flush()
            again = paramiko_client(port, "alice", "alice-pw")
            try:
                # A second session of alice sees the same tree.
                assert again.open_sftp().open("/note").read() == b"alice's"
            finally:
                again.close()
        finally:
            alice.close()
            bob.close()
    finally:
        twistd.stop()
    assert not (tmp_path / "homes").exists()  # memory: nothing made on disk
