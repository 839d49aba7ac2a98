"""Logins through a twisted.cred Portal: Twisted's own checkers and an asynchronous one.

Real clients (OpenSSH's ssh and sftp, Paramiko) against the test server
running the CredServer apps of tests/support/cred_apps.py; the realm's
avatar puts each user in their home, read-only or under a quota.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.support.clients import paramiko_client
from tests.support.harness import ROOT, OpenSSH
from tests.support.twistd import Twistd, isolated_home

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sshpass") is None, reason="sshpass not installed"),
]


def _env(tmp_path: Path) -> dict[str, str]:
    db = tmp_path / "cred.db"
    db.write_text("alice:alice-pw\nreader:reader-pw\nbob:bob-pw\n")
    key = tmp_path / "alice_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
    )
    return {
        "CRED_HOMES": str(tmp_path / "homes"),
        "CRED_DB": str(db),
        "CRED_KEYS": (tmp_path / "alice_key.pub").read_text().strip(),
    }


def test_twisted_checkers_password_and_key(
    tmp_path: Path, start_server: Callable[..., Any]
) -> None:
    env = _env(tmp_path)
    server = start_server(app="tests.support.cred_apps:TwistedCheckersServer", env=env)
    client = OpenSSH(tmp_path, server.port)
    homes = tmp_path / "homes"
    up = tmp_path / "up.txt"
    up.write_text("from alice\n")
    done = client.sftp("alice", "alice-pw", f"put {up} mine.txt\n")
    assert done.returncode == 0, done.stderr
    assert (homes / "alice" / "mine.txt").read_text() == "from alice\n"
    assert stat.S_IMODE((homes / "alice").stat().st_mode) == 0o750
    # The public key, through SSHPublicKeyChecker: the same home.
    listed = client.sftp_with_key("alice", tmp_path / "alice_key", "ls -1\n")
    assert listed.returncode == 0 and "mine.txt" in listed.stdout, listed.stderr
    # A wrong password is refused by FilePasswordDB.
    done = client.sftp("alice", "wrong", "ls\n")
    assert done.returncode == 5, done.stderr  # sshpass: the password was refused
    # bob is in his own home and cannot see alice's files.
    done = client.sftp("bob", "bob-pw", f"ls -1 /\nget /mine.txt {tmp_path}/got.txt\n")
    assert b'File "/mine.txt" not found' in done.stderr, done.stderr
    assert not (tmp_path / "got.txt").exists()
    # The quota from the realm's avatar holds.
    ssh = paramiko_client(server.port, "bob", "bob-pw")
    try:
        sftp = ssh.open_sftp()
        with pytest.raises(OSError, match="Quota exceeded"):
            _grow(sftp)
    finally:
        ssh.close()


def _grow(sftp: paramiko.SFTPClient) -> None:
    with sftp.open("/big", "w") as f:
        f.write(b"b" * 100 * 1024)
        f.flush()


def test_read_only_avatar(tmp_path: Path, start_server: Callable[..., Any]) -> None:
    env = _env(tmp_path)
    server = start_server(app="tests.support.cred_apps:TwistedCheckersServer", env=env)
    ssh = paramiko_client(server.port, "reader", "reader-pw")
    try:
        sftp = ssh.open_sftp()
        with pytest.raises(PermissionError):
            sftp.open("/new", "w")
        with pytest.raises(PermissionError):
            sftp.mkdir("/d")
        assert sftp.listdir("/") == []
    finally:
        ssh.close()


def test_async_checker(tmp_path: Path, start_server: Callable[..., Any]) -> None:
    env = _env(tmp_path)
    server = start_server(app="tests.support.cred_apps:AsyncCheckerServer", env=env)
    client = OpenSSH(tmp_path, server.port)
    done = client.sftp("carol", "carol-pw", "mkdir made\n")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "homes" / "carol" / "made").is_dir()
    refused = client.sftp("carol", "nope", "ls\n")
    assert refused.returncode == 5, refused.stderr  # sshpass: the password was refused
    # keyboard-interactive goes through the same checker (Paramiko's auth_interactive).
    transport = paramiko.Transport(("127.0.0.1", server.port))
    try:
        transport.connect()
        transport.auth_interactive("carol", lambda _title, _text, asked: ["carol-pw"] * len(asked))
        assert transport.is_authenticated()
    finally:
        transport.close()


@pytest.mark.parametrize("checker", ["file_checker", "LATER"])
def test_twistd_auth_cred(tmp_path: Path, checker: str) -> None:
    env = {**isolated_home(tmp_path), **_env(tmp_path), "PYTHONPATH": str(ROOT)}
    user, password = ("alice", "alice-pw") if checker == "file_checker" else ("carol", "carol-pw")
    twistd = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            f"cred:tests.support.cred_apps:{checker}",
            "--home",
            f"{tmp_path}/homes/{{user}}",
            "--quota",
            "64K",
        ],
        cwd=tmp_path,
        env=env,
    )
    try:
        [port] = twistd.ports()
        client = OpenSSH(tmp_path, port)
        done = client.sftp(user, password, "mkdir made\n")
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "homes" / user / "made").is_dir()
        assert client.sftp(user, "wrong", "ls\n").returncode == 5  # sshpass: refused
        ssh = paramiko_client(port, user, password)
        try:
            with pytest.raises(OSError, match="Quota exceeded"):
                _grow(ssh.open_sftp())
        finally:
            ssh.close()
    finally:
        twistd.stop()


def test_twistd_auth_cred_portal_avatar_wins_over_options(tmp_path: Path) -> None:
    """A Portal's realm decides home, read-only and quota; the options are only defaults."""
    env = {**isolated_home(tmp_path), **_env(tmp_path), "PYTHONPATH": str(ROOT)}
    twistd = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            "cred:tests.support.cred_apps:realm_portal",
            "--home",
            f"{tmp_path}/options/{{user}}",
            "--quota",
            "1M",
            "--read-only",
        ],
        cwd=tmp_path,
        env=env,
    )
    try:
        [port] = twistd.ports()
        client = OpenSSH(tmp_path, port)
        up = tmp_path / "up.txt"
        up.write_text("small\n")
        # alice: her avatar's home, writable despite --read-only.
        done = client.sftp("alice", "alice-pw", f"put {up} mine.txt\npwd\n")
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "homes" / "avatar-alice" / "mine.txt").read_text() == "small\n"
        assert not (tmp_path / "options").exists()
        # Her avatar's quota (32K), not --quota 1M.
        ssh = paramiko_client(port, "alice", "alice-pw")
        try:
            with pytest.raises(OSError, match="Quota exceeded"):
                _grow(ssh.open_sftp())
        finally:
            ssh.close()
        # reader: the avatar says read-only; a put is refused, nothing lands.
        refused = client.sftp("reader", "reader-pw", f"put {up} theirs.txt\n")
        assert b"Permission denied" in refused.stderr, refused.stderr
        assert list((tmp_path / "homes" / "avatar-reader").iterdir()) == []
    finally:
        twistd.stop()
