"""OpenSSH's sftp client (``sftp -D``) against the server: the everyday commands."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from tests.sftp.openssh import needs_sftp, sftp_batch

pytestmark = needs_sftp


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _tree_digest(top: Path) -> dict[str, str]:
    return {
        str(p.relative_to(top)): _sha(p) if p.is_file() else "dir" for p in sorted(top.rglob("*"))
    }


@pytest.fixture
def local(tmp_path: Path) -> Path:
    here = tmp_path / "local"
    here.mkdir()
    return here


# Where file calls run: worker threads (the default on a disk), or inline.
DISK_IO = pytest.mark.parametrize(
    "server_class",
    ["tests.sftp.servers:ThreadsServer", "tests.sftp.servers:InlineServer"],
    ids=["threads", "inline"],
)


@DISK_IO
def test_put_and_get_recursive_tree_and_large_file(
    root: Path, local: Path, server_class: str
) -> None:
    tree = local / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    for i in range(1000):
        sub = (tree, tree / "a", tree / "a" / "b")[i % 3]
        (sub / f"f{i:04}").write_bytes(os.urandom(i % 500))
    with open(tree / "large.bin", "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    result = sftp_batch(root, "put -r tree\nget -r tree back\n", local, server_class)
    assert result.returncode == 0, result.stderr
    assert _tree_digest(root / "tree") == _tree_digest(tree)
    assert _tree_digest(local / "back") == _tree_digest(tree)


@DISK_IO
def test_resume_with_reput_and_reget(root: Path, local: Path, server_class: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    (local / "up.bin").write_bytes(data)
    (root / "up.bin").write_bytes(data[: 2 * 1024 * 1024])  # an interrupted upload
    (root / "down.bin").write_bytes(data)
    (local / "down.bin").write_bytes(data[:1_000_000])  # an interrupted download
    result = sftp_batch(root, "reput up.bin\nreget down.bin\n", local, server_class)
    assert result.returncode == 0, result.stderr
    assert (root / "up.bin").read_bytes() == data
    assert (local / "down.bin").read_bytes() == data


@DISK_IO
def test_ls_long_of_5000_entries(root: Path, local: Path, server_class: str) -> None:
    big = root / "many"
    big.mkdir()
    for i in range(5000):
        (big / f"entry{i:05}").write_bytes(b"x" * (i % 10))
    result = sftp_batch(root, "ls -l many\nls -la many/entry00007\n", local, server_class)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "entry" in line and "sftp>" not in line]
    assert len(lines) == 5001
    fields = lines[7].split()
    assert fields[0] == "-rw-r--r--" and fields[4] == "7" and fields[-1].endswith("entry00007")


def test_rename_does_not_overwrite_posix_rename_does(root: Path, local: Path) -> None:
    (root / "a").write_bytes(b"A")
    (root / "b").write_bytes(b"B")
    (root / "c").write_bytes(b"C")
    # "rename -l" forces SSH_FXP_RENAME; plain "rename" uses posix-rename@openssh.com.
    result = sftp_batch(root, "-rename -l a b\nrename c b\n", local)
    assert result.returncode == 0, result.stderr
    assert "Failure" in result.stderr
    assert (root / "a").read_bytes() == b"A"
    assert (root / "b").read_bytes() == b"C" and not (root / "c").exists()


def test_links_mkdir_rmdir_and_dangling_symlink(root: Path, local: Path) -> None:
    (root / "target").write_bytes(b"t" * 10)
    batch = "\n".join(
        [
            "symlink target soft",
            "symlink nowhere dangling",
            "ln target hard",
            "mkdir d1",
            "mkdir d2",
            "rmdir d2",
            "ls -l",
            "",
        ]
    )
    result = sftp_batch(root, batch, local)
    assert result.returncode == 0, result.stderr
    assert os.readlink(root / "soft") == "target"
    assert os.readlink(root / "dangling") == "nowhere"
    assert (root / "hard").stat().st_ino == (root / "target").stat().st_ino
    assert (root / "d1").is_dir() and not (root / "d2").exists()
    listing = {line.split()[-1]: line for line in result.stdout.splitlines() if line[:1] in "-dl"}
    assert listing["dangling"].startswith("l") and listing["soft"].startswith("l")
    assert listing["d1"].startswith("d")


def test_df_chmod_chown_chgrp(root: Path, local: Path) -> None:
    (root / "f").write_bytes(b"")
    uid, gid = os.getuid(), os.getgid()
    batch = f"df\ndf -i\nchmod 640 f\nchown {uid} f\nchgrp {gid} f\n"
    result = sftp_batch(root, batch, local)
    assert result.returncode == 0, result.stderr
    assert "Size" in result.stdout and "Inodes" in result.stdout
    st = (root / "f").stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (uid, gid)
    result = sftp_batch(root, "chmod 600 missing\n", local)
    assert result.returncode != 0 and "No such file" in result.stderr


def test_read_only_server_reports_permission_denied(root: Path, local: Path) -> None:
    (root / "f").write_bytes(b"data")
    (local / "up").write_bytes(b"up")
    batch = "-put up\n-chmod 600 f\n-rm f\n-mkdir d\n-rename f g\nget f got\n"
    result = sftp_batch(root, batch, local, server_class="tests.sftp.servers:ReadOnlyServer")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Permission denied") >= 4
    assert (local / "got").read_bytes() == b"data"
    assert sorted(os.listdir(root)) == ["f"]


def test_uploads_get_the_mode_the_hook_decides(root: Path, local: Path) -> None:
    (local / "script").write_bytes(b"#!/bin/sh\n")
    os.chmod(local / "script", 0o755)
    (local / "notes").write_bytes(b"n")
    os.chmod(local / "notes", 0o644)
    result = sftp_batch(
        root, "put script\nput notes\n", local, server_class="tests.sftp.servers:PrivateFilesServer"
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((root / "script").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "notes").stat().st_mode) == 0o600
