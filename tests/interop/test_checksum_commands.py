"""md5sum & co. over exec, answered inside the SFTP view: OpenSSH ssh and rclone.

The server's files are the SFTP view (``--sftp-root``, or memory storage),
never the host's: with ``--exec`` a shell would sum ``/served.bin`` of the
host and every rclone transfer would fail its check, so the server answers
these command names itself in both modes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
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

PAYLOAD = os.urandom(700_000)
TEXT = b"two\n" * 1000
#: Threads of the reactor's pool (Twisted's default), which deferToThread uses.
THREADS = 10


class Served:
    def __init__(self, ssh: OpenSSH, directory: Path, storage: str) -> None:
        self.ssh = ssh
        self.directory = directory
        self.storage = storage


@pytest.fixture(
    params=[("local", False), ("local", True), ("memory", False)],
    ids=["local", "local-exec", "memory"],
)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    storage, with_exec = request.param
    directory = tmp_path / "served"
    directory.mkdir()
    args = [
        "spindlex",
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--auth",
        "memory:alice:secret",
        "--storage",
        storage,
        "--sftp-root",
        str(directory),
    ]
    if with_exec:
        args.append("--exec")
    twistd = Twistd(args, cwd=directory, env=isolated_home(tmp_path))
    try:
        [port] = twistd.ports()
        yield Served(OpenSSH(tmp_path, port), directory, storage)
    finally:
        twistd.stop()


def _upload(served: Served, tmp_path: Path, name: str) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    done = served.ssh.sftp("alice", "secret", f'put {source} "{name}"\n')
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512"])
def test_openssh_sums_match_the_sftp_view(served: Served, tmp_path: Path, algorithm: str) -> None:
    _upload(served, tmp_path, "dir with space.bin")
    done = served.ssh.ssh(
        "alice", f"{algorithm}sum 'dir with space.bin' /missing", password="secret"
    )
    expected = hashlib.new(algorithm, PAYLOAD).hexdigest()
    assert done.stdout.decode() == f"{expected}  dir with space.bin\n"
    assert done.stderr.decode().endswith(f"{algorithm}sum: /missing: No such file or directory\n")
    assert done.returncode == 1


def test_openssh_sum_of_standard_input(served: Served) -> None:
    done = served.ssh.ssh("alice", "md5sum", password="secret", input=b"abc\n")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == hashlib.md5(b"abc\n").hexdigest() + "  -\n"


def test_shell_syntax_is_refused_with_127(served: Served) -> None:
    done = served.ssh.ssh("alice", "md5sum /x; id", password="secret")
    assert done.returncode == 127
    assert done.stdout == b""
    assert len(done.stderr.decode().strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone not installed (apt rclone)")
def test_rclone_copy_and_check(served: Served, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "one.bin").write_bytes(PAYLOAD)
    (local / "two words.txt").write_bytes(TEXT)
    obscured = subprocess.run(
        ["rclone", "obscure", "secret"], capture_output=True, check=True, timeout=60
    ).stdout.decode().strip()
    env = dict(os.environ)
    env.update(
        {
            "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
            "RCLONE_CONFIG_X_TYPE": "sftp",
            "RCLONE_CONFIG_X_HOST": "127.0.0.1",
            "RCLONE_CONFIG_X_PORT": str(served.ssh.port),
            "RCLONE_CONFIG_X_USER": "alice",
            "RCLONE_CONFIG_X_PASS": obscured,
        }
    )

    def rclone(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["rclone", "-vv", *args], capture_output=True, text=True, env=env, timeout=120
        )

    up = rclone("copy", str(local), "x:/up")
    assert up.returncode == 0, up.stderr
    # rclone found the hash commands working and checked the upload with them.
    assert "Running remote command: md5sum /up/one.bin" in up.stderr
    assert "corrupted on transfer" not in up.stderr
    if served.storage == "local":
        assert (served.directory / "up" / "one.bin").read_bytes() == PAYLOAD
    sums = rclone("md5sum", "x:/up")
    assert sums.returncode == 0, sums.stderr
    expected = [
        f"{hashlib.md5(PAYLOAD).hexdigest()}  one.bin",
        f"{hashlib.md5(TEXT).hexdigest()}  two words.txt",
    ]
    assert sorted(sums.stdout.splitlines()) == sorted(expected)
    check = rclone("check", str(local), "x:/up")
    assert check.returncode == 0, check.stderr
    assert "0 differences found" in check.stderr
    down = tmp_path / "down"
    fetched = rclone("copy", "x:/up", str(down))
    assert fetched.returncode == 0, fetched.stderr
    assert (down / "one.bin").read_bytes() == PAYLOAD
    assert (down / "two words.txt").read_bytes() == TEXT


def test_each_user_sums_their_own_home(tmp_path: Path) -> None:
    homes = tmp_path / "homes"
    for user in ("alice", "bob"):
        (homes / user).mkdir(parents=True)
        (homes / user / "same-name.txt").write_bytes(f"{user}'s file\n".encode())
    (tmp_path / "host-only.txt").write_bytes(b"outside every home\n")
    passwords = tmp_path / "passwd"
    passwords.write_text(
        f"alice:{hash_password('alice-pw')}\nbob:{hash_password('bob-pw')}\n"
    )
    twistd = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            f"file:{passwords}",
            "--home",
            f"{homes}/{{user}}",
            "--exec",
        ],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = twistd.ports()
        ssh = OpenSSH(tmp_path, port)
        for user in ("alice", "bob"):
            done = ssh.ssh(
                user,
                f"sha256sum same-name.txt {tmp_path}/host-only.txt",
                password=f"{user}-pw",
            )
            digest = hashlib.sha256(f"{user}'s file\n".encode()).hexdigest()
            assert done.stdout.decode() == f"{digest}  same-name.txt\n"
            # The host's path names nothing inside the home: the jail, even with --exec.
            assert "No such file or directory" in done.stderr.decode()
            assert done.returncode == 1
    finally:
        twistd.stop()


def test_stdin_left_open_holds_no_thread(served: Served, tmp_path: Path) -> None:
    """Waiting for EOF costs no thread: more such commands than the reactor's pool has
    threads, and password checks (on that pool) and file sums still go through."""
    _upload(served, tmp_path, "file.bin")
    waiting = paramiko_client(served.ssh.port)
    try:
        channels = []
        for _ in range(THREADS + 2):
            channel = waiting.get_transport().open_session()
            channel.exec_command("md5sum")
            channel.sendall(b"abc\n")
            channels.append(channel)
        # A fresh login (its password checked on the pool) and a file's sum, meanwhile.
        other = paramiko_client(served.ssh.port)
        try:
            _, stdout, _ = other.exec_command("md5sum file.bin", timeout=30)
            assert stdout.read().decode() == f"{hashlib.md5(PAYLOAD).hexdigest()}  file.bin\n"
        finally:
            other.close()
        for channel in channels:
            channel.shutdown_write()
            assert channel.recv_exit_status() == 0
            assert channel.recv(100) == hashlib.md5(b"abc\n").hexdigest().encode() + b"  -\n"
    finally:
        waiting.close()
