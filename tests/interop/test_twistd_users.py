"""twistd spindlex with per-user homes, read-only users and quotas, driven by real clients.

OpenSSH's sftp (by password, through sshpass) and Paramiko against
``twistd -n spindlex --home ... --quota ...`` in a child process; the
password file carries the per-user overrides.
"""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from spindlex_tw.twistd.credentials import hash_password
from tests.support.clients import paramiko_client
from tests.support.harness import OpenSSH
from tests.support.twistd import Twistd, isolated_home

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sshpass") is None, reason="sshpass not installed"),
]

LOCAL = ["--listen", "tcp:0:interface=127.0.0.1"]
USERS = {"alice": "alice-pw", "bob": "bob-pw", "reader": "reader-pw"}


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    return tmp_path / "homes"


def _start(tmp_path: Path, homes: Path) -> Twistd:
    passwords = tmp_path / "passwd"
    passwords.write_text(
        f"alice:{hash_password(USERS['alice'])}\n"
        f"bob:{hash_password(USERS['bob'])}:quota=64K,quota-files=3\n"
        f"reader:{hash_password(USERS['reader'])}:read-only,home={homes}/alice\n"
    )
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    return Twistd(
        [
            "spindlex",
            *LOCAL,
            "--auth",
            f"file:{passwords}",
            "--home",
            f"{homes}/{{user}}",
            "--home-mode",
            "0750",
            "--quota",
            "1M",
        ],
        cwd=served,
        env=isolated_home(tmp_path),
    )


@pytest.fixture
def server(tmp_path: Path, homes: Path) -> Iterator[tuple[Twistd, OpenSSH]]:
    twistd = _start(tmp_path, homes)
    try:
        [port] = twistd.ports()
        yield twistd, OpenSSH(tmp_path, port)
    finally:
        twistd.stop()


def _sftp(client: OpenSSH, user: str, batch: str) -> str:
    done = client.sftp(user, USERS[user], batch)
    return (done.stdout + done.stderr).decode(errors="replace")


def _paramiko(port: int, user: str) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    ssh = paramiko_client(port, user, USERS[user])
    return ssh, ssh.open_sftp()


def test_two_users_each_confined_to_their_own_home(
    server: tuple[Twistd, OpenSSH], homes: Path, tmp_path: Path
) -> None:
    _, client = server
    upload = tmp_path / "a.txt"
    upload.write_bytes(b"alice's")
    out = _sftp(client, "alice", f"put {upload} mine.txt\ncd ..\ncd ..\npwd\nls -1 /\n")
    assert "Remote working directory: /" in out
    assert (homes / "alice" / "mine.txt").read_bytes() == b"alice's"
    # Made on first login with --home-mode, whatever the umask.
    assert stat.S_IMODE((homes / "alice").stat().st_mode) == 0o750
    out = _sftp(client, "bob", "ls -1 /\nget /mine.txt\nget ../alice/mine.txt\n")
    assert "mine.txt" in out and "not found" in out
    assert (homes / "bob").is_dir() and list((homes / "bob").iterdir()) == []
    assert not (tmp_path / "mine.txt").exists()  # bob's get found nothing to fetch


def test_read_only_user_is_refused_every_kind_of_write(
    server: tuple[Twistd, OpenSSH], homes: Path
) -> None:
    _twistd, client = server
    _sftp(client, "alice", "mkdir d\n")  # make alice's home, which reader sees read-only
    (homes / "alice" / "f").write_bytes(b"keep")
    ssh, sftp = _paramiko(int(client.port), "reader")
    try:
        assert sftp.open("/f").read() == b"keep"  # reading works
        assert sorted(sftp.listdir("/")) == ["d", "f"]
        writes: list[Callable[[], object]] = [
            lambda: sftp.open("/new", "w"),
            lambda: sftp.open("/f", "a"),
            lambda: sftp.open("/f", "r+"),
            lambda: sftp.remove("/f"),
            lambda: sftp.rename("/f", "/g"),
            lambda: sftp.posix_rename("/f", "/g"),
            lambda: sftp.mkdir("/e"),
            lambda: sftp.rmdir("/d"),
            lambda: sftp.symlink("/f", "/s"),
            lambda: sftp.chmod("/f", 0o600),
            lambda: sftp.utime("/f", (1, 1)),
            lambda: sftp.truncate("/f", 0),
        ]
        for write in writes:
            with pytest.raises(PermissionError):
                write()
    finally:
        ssh.close()
    out = _sftp(client, "reader", "ln /f /hard\nput /etc/hostname /up\n")
    assert out.count("Permission denied") >= 2, out
    assert sorted(p.name for p in (homes / "alice").iterdir()) == ["d", "f"]
    assert (homes / "alice" / "f").read_bytes() == b"keep"


def test_quota_by_put_copy_data_and_setstat_and_df(
    server: tuple[Twistd, OpenSSH], homes: Path, tmp_path: Path
) -> None:
    _, client = server
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * (100 * 1024))  # past bob's 64K
    small = tmp_path / "small.bin"
    small.write_bytes(b"s" * (40 * 1024))
    # OpenSSH's sftp shows the status code's own text ("Failure"), not the server's.
    out = _sftp(client, "bob", f"put {small} small.bin\ndf\nput {big} big.bin\n")
    # df shows the quota as the size: 64 KiB.
    assert any(line.split()[:1] == ["64"] for line in out.splitlines()), out
    assert "Failure" in out, out
    # Nothing past the quota: the refused upload holds only what fitted.
    assert (homes / "bob" / "big.bin").stat().st_size <= 24 * 1024
    assert sum(p.stat().st_size for p in (homes / "bob").iterdir()) <= 64 * 1024
    # copy-data (OpenSSH's cp): a second copy of 40K does not fit, and writes nothing.
    out = _sftp(client, "bob", "rm big.bin\ncp small.bin copy.bin\n")
    assert "Failure" in out, out
    assert (homes / "bob" / "copy.bin").stat().st_size == 0
    ssh, sftp = _paramiko(int(client.port), "bob")
    try:
        sftp.remove("/copy.bin")
        with pytest.raises(OSError, match="Quota exceeded"):
            sftp.truncate("/small.bin", 100 * 1024)  # SETSTAT size
        with pytest.raises(OSError, match="Quota exceeded"), sftp.open("/more.bin", "w") as f:
            f.write(b"m" * (30 * 1024))
            f.flush()
        assert sftp.stat("/more.bin").st_size <= 24 * 1024
        sftp.remove("/more.bin")
        assert sftp.stat("/small.bin").st_size == 40 * 1024
        # File count: bob may hold three files.
        for name in ("/one", "/two"):
            sftp.open(name, "w").close()
        with pytest.raises(OSError, match="Quota exceeded"):
            sftp.open("/three", "w")
    finally:
        ssh.close()
    assert (homes / "bob" / "small.bin").read_bytes() == b"s" * (40 * 1024)
    assert sorted(p.name for p in (homes / "bob").iterdir()) == ["one", "small.bin", "two"]


def test_concurrent_sessions_share_one_quota_and_it_survives_a_restart(
    server: tuple[Twistd, OpenSSH], homes: Path, tmp_path: Path
) -> None:
    twistd, client = server
    first_ssh, first = _paramiko(int(client.port), "bob")
    second_ssh, second = _paramiko(int(client.port), "bob")
    try:
        with first.open("/a", "w") as f:
            f.write(b"a" * (40 * 1024))
        with pytest.raises(OSError, match="Quota exceeded"), second.open("/b", "w") as f:
            f.write(b"b" * (30 * 1024))
            f.flush()
    finally:
        first_ssh.close()
        second_ssh.close()
    assert (homes / "bob" / "a").stat().st_size == 40 * 1024
    # A new server counts what bob's home holds: 40K of 64K are used already.
    twistd.stop()
    again = _start(tmp_path, homes)
    try:
        [port] = again.ports()
        ssh, sftp = _paramiko(port, "bob")
        try:
            with pytest.raises(OSError, match="Quota exceeded"), sftp.open("/c", "w") as f:
                f.write(b"c" * (30 * 1024))
                f.flush()
        finally:
            ssh.close()
    finally:
        again.stop()
