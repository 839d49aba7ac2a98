"""OpenSSH's sftp client (``sftp -D``) against the server: the everyday commands.

Each test runs on the local disk and on a tree in memory (tests/sftp/served.py),
setting up and checking the served files through the FileSystem interface.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.sftp.openssh import needs_sftp, sftp_batch
from tests.sftp.served import Served

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


def run(
    served: Served, batch: str, local: Path, server_class: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``batch`` in one sftp session; afterwards ``served.tree`` holds what it left."""
    served.hand_over()
    result = sftp_batch(served.root, batch, local, server_class, served.server_args())
    served.take_back()
    return result


# On the disk, file calls on worker threads (the default there) and inline; a
# tree in memory never waits, so its calls are inline whatever disk_io says: once.
DISK_IO = pytest.mark.parametrize(
    ("served", "server_class"),
    [
        ("local", "tests.sftp.servers:ThreadsServer"),
        ("local", "tests.sftp.servers:InlineServer"),
        ("memory", None),
    ],
    ids=["local-threads", "local-inline", "memory"],
    indirect=["served"],
)


@DISK_IO
def test_put_and_get_recursive_tree_and_large_file(
    served: Served, local: Path, server_class: str | None
) -> None:
    tree = local / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    for i in range(1000):
        sub = (tree, tree / "a", tree / "a" / "b")[i % 3]
        (sub / f"f{i:04}").write_bytes(os.urandom(i % 500))
    with open(tree / "large.bin", "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    result = run(served, "put -r tree\nget -r tree back\n", local, server_class)
    assert result.returncode == 0, result.stderr
    assert served.digest("tree") == _tree_digest(tree)
    assert _tree_digest(local / "back") == _tree_digest(tree)


@DISK_IO
def test_resume_with_reput_and_reget(
    served: Served, local: Path, server_class: str | None
) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    (local / "up.bin").write_bytes(data)
    served.tree.write("up.bin", data[: 2 * 1024 * 1024])  # an interrupted upload
    served.tree.write("down.bin", data)
    (local / "down.bin").write_bytes(data[:1_000_000])  # an interrupted download
    result = run(served, "reput up.bin\nreget down.bin\n", local, server_class)
    assert result.returncode == 0, result.stderr
    assert served.tree.read("up.bin") == data
    assert (local / "down.bin").read_bytes() == data


@DISK_IO
def test_ls_long_of_5000_entries(served: Served, local: Path, server_class: str | None) -> None:
    served.tree.mkdir("many")
    for i in range(5000):
        served.tree.write(f"many/entry{i:05}", b"x" * (i % 10))
    result = run(served, "ls -l many\nls -la many/entry00007\n", local, server_class)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "entry" in line and "sftp>" not in line]
    assert len(lines) == 5001
    fields = lines[7].split()
    assert fields[0] == "-rw-r--r--" and fields[4] == "7" and fields[-1].endswith("entry00007")


def test_rename_does_not_overwrite_posix_rename_does(served: Served, local: Path) -> None:
    served.tree.write("a", b"A")
    served.tree.write("b", b"B")
    served.tree.write("c", b"C")
    # "rename -l" forces SSH_FXP_RENAME; plain "rename" uses posix-rename@openssh.com.
    result = run(served, "-rename -l a b\nrename c b\n", local)
    assert result.returncode == 0, result.stderr
    assert "Failure" in result.stderr
    assert served.tree.read("a") == b"A"
    assert served.tree.read("b") == b"C" and not served.tree.exists("c")


def test_links_mkdir_rmdir_and_dangling_symlink(served: Served, local: Path) -> None:
    served.tree.write("target", b"t" * 10)
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
    result = run(served, batch, local)
    assert result.returncode == 0, result.stderr
    tree = served.tree
    assert tree.readlink("soft") == "target"
    assert tree.readlink("dangling") == "nowhere"
    assert tree.stat("hard").st_ino == tree.stat("target").st_ino
    assert stat.S_ISDIR(tree.stat("d1").st_mode) and not tree.exists("d2")
    listing = {line.split()[-1]: line for line in result.stdout.splitlines() if line[:1] in "-dl"}
    assert listing["dangling"].startswith("l") and listing["soft"].startswith("l")
    assert listing["d1"].startswith("d")


def test_df_chmod_chown_chgrp(served: Served, local: Path) -> None:
    served.tree.write("f", b"")
    uid, gid = os.getuid(), os.getgid()
    batch = f"df\ndf -i\nchmod 640 f\nchown {uid} f\nchgrp {gid} f\n"
    result = run(served, batch, local)
    assert result.returncode == 0, result.stderr
    assert "Size" in result.stdout and "Inodes" in result.stdout
    st = served.tree.stat("f")
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (uid, gid)
    result = run(served, "chmod 600 missing\n", local)
    assert result.returncode != 0 and "No such file" in result.stderr


def test_read_only_server_reports_permission_denied(served: Served, local: Path) -> None:
    served.tree.write("f", b"data")
    (local / "up").write_bytes(b"up")
    batch = "-put up\n-chmod 600 f\n-rm f\n-mkdir d\n-rename f g\nget f got\n"
    result = run(served, batch, local, server_class="tests.sftp.servers:ReadOnlyServer")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Permission denied") >= 4
    assert (local / "got").read_bytes() == b"data"
    assert served.listdir() == ["f"]


def test_uploads_get_the_mode_the_hook_decides(served: Served, local: Path) -> None:
    (local / "script").write_bytes(b"#!/bin/sh\n")
    os.chmod(local / "script", 0o755)
    (local / "notes").write_bytes(b"n")
    os.chmod(local / "notes", 0o644)
    result = run(
        served, "put script\nput notes\n", local, "tests.sftp.servers:PrivateFilesServer"
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(served.tree.stat("script").st_mode) == 0o700
    assert stat.S_IMODE(served.tree.stat("notes").st_mode) == 0o600
