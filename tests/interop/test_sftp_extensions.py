"""The SFTP extensions driven by real clients over SSH, each checked by its result.

OpenSSH 9.2's sftp sends limits@openssh.com at start, statvfs@openssh.com for
``df``, users-groups-by-id@openssh.com for ``ls -l``, fsync@openssh.com for
``put -f``, copy-data for ``cp``, hardlink@openssh.com for ``ln`` and
posix-rename@openssh.com for ``rename`` (its ``-vvv`` log names each one it
sent, which the tests check, so a silent fallback cannot pass).  AsyncSSH
drives fstatvfs@openssh.com, fsync@openssh.com on an open file,
lsetstat@openssh.com, the byte ranges of copy-data and the read/write limits;
Paramiko's generic request sends home-directory and expand-path@openssh.com,
which neither other client has a call for.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from paramiko.sftp import CMD_EXTENDED, CMD_NAME

from spindlex_tw.sftp.context import Limits
from tests.support.clients import asyncssh_connect, paramiko_client, run_async
from tests.support.harness import OpenSSH, ServerProcess

pytestmark = pytest.mark.interop


@pytest.fixture
def sftp_server(
    start_server: Callable[..., ServerProcess], client_keys: dict[str, Path], root: Path
) -> ServerProcess:
    return start_server(
        env={
            "SPINDLEX_TEST_AUTHORIZED": str(client_keys["authorized"]),
            "SPINDLEX_TEST_SFTP_ROOT": str(root),
        }
    )


def _sftp_debug(
    server: ServerProcess, client_keys: dict[str, Path], tmp_path: Path, batch: str
) -> subprocess.CompletedProcess[str]:
    """``sftp -vvv -b -``: any failed command fails the run; stderr has sftp's own log."""
    client = OpenSSH(tmp_path, server.port)
    return client.sftp_with_key("alice", client_keys["ed25519"], batch, verbose=True)


def test_openssh_sftp_commands_use_the_extensions(
    sftp_server: ServerProcess, client_keys: dict[str, Path], root: Path, tmp_path: Path
) -> None:
    (root / "f.txt").write_bytes(b"extension payload\n")
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(70_000))
    batch = (
        "df\n"
        "df -i\n"
        "ls -l\n"
        f"put -f {upload} synced.bin\n"
        "cp f.txt copy.txt\n"
        "ln f.txt hard.txt\n"
        "rename copy.txt moved.txt\n"
    )
    result = _sftp_debug(sftp_server, client_keys, tmp_path, batch)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    log = result.stderr
    for sent in (
        "Sent message limits@openssh.com",
        "Received limits reply",
        f"server handle limit {Limits().max_open_handles};",
        "Sending SSH2_FXP_EXTENDED(statvfs@openssh.com)",
        "Sending SSH2_FXP_EXTENDED(users-groups-by-id@openssh.com)",
        "Sent message fsync@openssh.com",
        'Sent message copy-data "/f.txt"',
        'Sent message hardlink@openssh.com "/f.txt" -> "/hard.txt"',
        'Sent message posix-rename@openssh.com "/copy.txt" -> "/moved.txt"',
    ):
        assert sent in log, sent

    # statvfs: df prints the file system's own totals (KiB, then inodes).
    disk = os.statvfs(root)
    sizes = re.search(r"sftp> df\n\s+Size.*\n\s+(\d+)\s", result.stdout)
    inodes = re.search(r"sftp> df -i\n\s+Inodes.*\n\s+(\d+)\s", result.stdout)
    assert sizes and int(sizes[1]) == disk.f_blocks * disk.f_frsize // 1024, result.stdout
    assert inodes and int(inodes[1]) == disk.f_files, result.stdout
    # users-groups-by-id: ls -l names the owner the server looked up.
    owner = os.stat(root / "f.txt")
    names = re.search(r"^\S+\s+\S+\s+(\S+)\s+(\S+)\s+\d+ .* f\.txt$", result.stdout, re.M)
    assert names and names.groups() == (
        pwd.getpwuid(owner.st_uid).pw_name,
        grp.getgrgid(owner.st_gid).gr_name,
    ), result.stdout
    assert (root / "synced.bin").read_bytes() == upload.read_bytes()
    assert (root / "moved.txt").read_bytes() == b"extension payload\n"
    assert not (root / "copy.txt").exists()
    assert os.stat(root / "hard.txt").st_ino == os.stat(root / "f.txt").st_ino


def test_asyncssh_fstatvfs_fsync_lsetstat_copy_data_and_limits(
    sftp_server: ServerProcess, root: Path
) -> None:
    source = bytes(range(256)) * 64
    (root / "source.bin").write_bytes(source)
    (root / "target.txt").write_bytes(b"target")
    os.symlink("target.txt", root / "link")
    target_mtime = os.stat(root / "target.txt").st_mtime

    async def check() -> None:
        async with asyncssh_connect(sftp_server.port) as conn, conn.start_sftp_client() as sftp:
            # limits@openssh.com: AsyncSSH keeps the read and write lengths the
            # server advertises (its own would be 4 MiB).
            defaults = Limits()
            assert sftp.limits.max_read_len == defaults.max_read_length
            assert sftp.limits.max_write_len == defaults.max_write_length

            async with sftp.open("/written.bin", "wb") as out:
                await out.write(b"durable")
                await out.fsync()  # fsync@openssh.com answers OK
                vfs = await out.statvfs()  # fstatvfs@openssh.com
            disk = os.statvfs(root)
            assert (vfs.frsize, vfs.blocks, vfs.files) == (
                disk.f_frsize,
                disk.f_blocks,
                disk.f_files,
            )

            # lsetstat@openssh.com: the link's own times change, not its target's.
            await sftp.setstat(
                "/link", asyncssh.SFTPAttrs(atime=1_000_000, mtime=2_000_000), follow_symlinks=False
            )

            # copy-data: a byte range of one file into another at an offset.
            # Open handles: given a path, AsyncSSH would truncate the target.
            async with (
                sftp.open("/source.bin", "rb") as src,
                sftp.open("/part.bin", "wb") as part,
            ):
                await part.write(b"-" * 10)
                await sftp.remote_copy(src, part, 256, 512, 10)

    run_async(check())
    assert (root / "written.bin").read_bytes() == b"durable"
    assert os.lstat(root / "link").st_mtime == 2_000_000
    assert os.stat(root / "target.txt").st_mtime == target_mtime
    assert (root / "part.bin").read_bytes() == b"-" * 10 + source[256:768]


def test_paramiko_home_directory_and_expand_path(sftp_server: ServerProcess, root: Path) -> None:
    (root / "a").mkdir()
    (root / "b").mkdir()
    client = paramiko_client(sftp_server.port)
    try:
        sftp = client.open_sftp()

        def name_of(request: str, argument: str) -> str:
            kind, reply = sftp._request(CMD_EXTENDED, request, argument)
            assert kind == CMD_NAME and reply.get_int() == 1
            return str(reply.get_text())

        assert name_of("home-directory", "alice") == "/"
        assert name_of("expand-path@openssh.com", "~/a/../b") == "/b"
        assert name_of("expand-path@openssh.com", "~") == "/"
        assert name_of("expand-path@openssh.com", "a/../b") == "/b"
    finally:
        client.close()
