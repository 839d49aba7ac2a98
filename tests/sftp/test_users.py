"""Read-only sessions and quotas in the sans-IO session, on the local disk and in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from spindlex_tw.core.wire import uint32, uint64
from spindlex_tw.fs.interface import FileSystem
from spindlex_tw.fs.memory import MemoryFileSystem
from spindlex_tw.fs.quota import Quota, QuotaFileSystem
from spindlex_tw.protocol.constants import (
    SSH_FX_FAILURE,
    SSH_FX_OK,
    SSH_FX_OP_UNSUPPORTED,
    SSH_FX_PERMISSION_DENIED,
)
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.attrs import Attrs
from spindlex_tw.sftp.context import Limits
from tests.sftp.sansio import Driver, s
from tests.sftp.trees import Tree

R, W, C, T, A = (
    codes.SSH_FXF_READ,
    codes.SSH_FXF_WRITE,
    codes.SSH_FXF_CREAT,
    codes.SSH_FXF_TRUNC,
    codes.SSH_FXF_APPEND,
)
DENIED = (SSH_FX_PERMISSION_DENIED, "Permission denied")
QUOTA = (SSH_FX_FAILURE, "Quota exceeded")


def _driver(
    tree: Tree, quota: Quota | None = None, scope: bytes = b"/", **limits: object
) -> Driver:
    fs: FileSystem = tree.fs()
    if quota is not None:
        fs = QuotaFileSystem(fs, quota, scope)
    d = Driver(tree.root, fs=fs, limits=Limits(**limits))  # type: ignore[arg-type]
    d.init()
    return d


def _open_status(d: Driver, path: str, pflags: int) -> tuple[int, str]:
    return d.status(codes.SSH_FXP_OPEN, path, uint32(pflags), Attrs().encode())


# --- read-only ---------------------------------------------------------------------------------


def test_read_only_refuses_every_write_row_and_serves_every_read(tree: Tree) -> None:
    tree.mkdir("d/sub")
    tree.write("d/f", b"data")
    tree.symlink("d/f", "link")
    d = _driver(tree, read_only=True)
    times = Attrs(atime=1, mtime=2).encode()
    # Every "w" row of docs/sftp.md's table of hook calls.
    for pflags in (W, A, C | W, T | W, R | W, C | R):
        assert _open_status(d, "/d/f", pflags) == DENIED, pflags
    assert _open_status(d, "/d/new", C | W) == DENIED
    assert d.status(codes.SSH_FXP_SETSTAT, "/d/f", times) == DENIED
    assert d.extended("lsetstat@openssh.com", "/link", times).status() == DENIED
    handle = d.open("/d/f", R)
    assert d.status(codes.SSH_FXP_FSETSTAT, s(handle), times) == DENIED
    assert d.write(handle, 0, b"x")[0] == SSH_FX_PERMISSION_DENIED
    assert d.extended("fsync@openssh.com", s(handle)).status() == DENIED
    d.close(handle)
    assert d.status(codes.SSH_FXP_REMOVE, "/d/f") == DENIED
    assert d.status(codes.SSH_FXP_MKDIR, "/d/new", Attrs().encode()) == DENIED
    assert d.status(codes.SSH_FXP_RMDIR, "/d/sub") == DENIED
    assert d.status(codes.SSH_FXP_RENAME, "/d/f", "/d/g") == DENIED
    assert d.extended("posix-rename@openssh.com", "/d/f", "/d/g").status() == DENIED
    assert d.extended("hardlink@openssh.com", "/d/f", "/d/h").status() == DENIED
    assert d.status(codes.SSH_FXP_SYMLINK, "/d/f", "/d/s") == DENIED
    # Nothing changed, and reading still works.
    assert tree.read("d/f") == b"data" and not tree.exists("d/g") and not tree.exists("d/new")
    assert sorted(n for n, _, _ in d.listdir("/d")) == [b".", b"..", b"f", b"sub"]
    handle = d.open("/d/f", R)
    assert d.read(handle, 0, 10).body.string() == b"data"
    d.close(handle)


# --- quotas ------------------------------------------------------------------------------------


def test_write_past_the_quota_is_refused_whole(tree: Tree) -> None:
    quota = Quota(max_bytes=1000)
    d = _driver(tree, quota)
    handle = d.open("/f", W | C | T)
    assert d.write(handle, 0, b"a" * 600) == (SSH_FX_OK, "Success")
    assert d.write(handle, 600, b"b" * 401) == QUOTA  # one byte too many: none written
    assert d.write(handle, 100, b"c" * 500) == (SSH_FX_OK, "Success")  # overwriting is free
    assert d.write(handle, 600, b"d" * 400) == (SSH_FX_OK, "Success")  # exactly the quota
    d.close(handle)
    assert tree.read("f") == b"a" * 100 + b"c" * 500 + b"d" * 400
    assert quota.used_bytes == 1000
    # Removing gives the room back.
    assert d.status(codes.SSH_FXP_REMOVE, "/f")[0] == SSH_FX_OK
    assert quota.used_bytes == 0 and quota.used_files == 0


def test_append_counts_from_the_end(tree: Tree) -> None:
    tree.write("f", b"x" * 900)
    quota = Quota(max_bytes=1000)
    d = _driver(tree, quota)
    handle = d.open("/f", A)
    assert d.write(handle, 0, b"y" * 101) == QUOTA
    assert d.write(handle, 0, b"y" * 100) == (SSH_FX_OK, "Success")
    d.close(handle)
    assert tree.read("f") == b"x" * 900 + b"y" * 100


def test_copy_data_past_the_quota_writes_nothing(tree: Tree) -> None:
    tree.write("src", b"s" * 3000)
    quota = Quota(max_bytes=7000)
    d = _driver(tree, quota)
    assert not quota.loaded  # counted from the storage on first use
    src = d.open("/src", R)
    dst = d.open("/dst", W | C | T)
    copy = (s(src), uint64(0), uint64(0), s(dst), uint64(0))
    assert d.extended("copy-data", *copy).status() == (SSH_FX_OK, "Success")
    assert quota.used_bytes == 6000
    assert d.extended("copy-data", s(src), uint64(0), uint64(0), s(dst), uint64(3000)).status() == (
        QUOTA
    )
    d.close(src)
    d.close(dst)
    assert tree.read("dst") == b"s" * 3000  # nothing past the quota


def test_setstat_size_counts(tree: Tree) -> None:
    tree.write("f", b"")
    quota = Quota(max_bytes=4096)
    d = _driver(tree, quota)
    grow = Attrs(size=5000).encode()
    assert d.status(codes.SSH_FXP_SETSTAT, "/f", grow) == QUOTA
    handle = d.open("/f", W)
    assert d.status(codes.SSH_FXP_FSETSTAT, s(handle), grow) == QUOTA
    assert d.status(codes.SSH_FXP_FSETSTAT, s(handle), Attrs(size=4096).encode())[0] == SSH_FX_OK
    d.close(handle)
    assert tree.stat("f").st_size == 4096
    assert d.status(codes.SSH_FXP_SETSTAT, "/f", Attrs(size=10).encode())[0] == SSH_FX_OK
    assert quota.used_bytes == 10


def test_rename_into_the_counted_tree_must_fit(tree: Tree) -> None:
    tree.mkdir("home")
    tree.mkdir("incoming/batch")
    tree.write("home/kept", b"k" * 600)
    tree.write("incoming/big", b"b" * 500)
    tree.write("incoming/batch/one", b"1" * 100)
    quota = Quota(max_bytes=1000, max_files=3)
    d = _driver(tree, quota, scope=b"/home")
    assert d.status(codes.SSH_FXP_RENAME, "/incoming/big", "/home/big") == QUOTA
    assert tree.exists("incoming/big") and not tree.exists("home/big")
    assert d.status(codes.SSH_FXP_RENAME, "/incoming/batch", "/home/batch")[0] == SSH_FX_OK
    assert (quota.used_bytes, quota.used_files) == (700, 2)
    # Outside the scope nothing counts, and moving out gives the room back.
    assert d.status(codes.SSH_FXP_RENAME, "/home/kept", "/incoming/kept")[0] == SSH_FX_OK
    assert (quota.used_bytes, quota.used_files) == (100, 1)


def test_file_count_quota(tree: Tree) -> None:
    quota = Quota(max_files=2)
    d = _driver(tree, quota)
    d.close(d.open("/a", W | C))
    assert d.status(codes.SSH_FXP_SYMLINK, "/a", "/b")[0] == SSH_FX_OK
    assert _open_status(d, "/c", W | C) == QUOTA
    assert d.status(codes.SSH_FXP_MKDIR, "/dir", Attrs().encode())[0] == SSH_FX_OK  # not a file
    assert not tree.exists("c")
    d.close(d.open("/a", W | C | T))  # opening an existing file adds nothing


def test_sessions_of_one_user_share_the_quota_and_usage_comes_from_storage(tree: Tree) -> None:
    tree.write("old", b"o" * 700)
    quota = Quota(max_bytes=1000)
    first, second = _driver(tree, quota), _driver(tree, quota)
    h1 = first.open("/one", W | C)
    assert first.write(h1, 0, b"1" * 200)[0] == SSH_FX_OK  # 700 found on storage + 200
    h2 = second.open("/two", W | C)
    assert second.write(h2, 0, b"2" * 101) == QUOTA
    assert second.write(h2, 0, b"2" * 100)[0] == SSH_FX_OK
    # A fresh Quota (a restart) counts the same from what is stored.
    again = Quota(max_bytes=1000)
    third = _driver(tree, again)
    reply = third.extended("statvfs@openssh.com", "/")
    _bsize, frsize, blocks, _bfree, bavail = (reply.body.uint64() for _ in range(5))
    assert again.used_bytes == 1000
    assert blocks * frsize <= 1000 and bavail == 0


def test_statvfs_reports_the_quota_as_the_size(tree: Tree) -> None:
    d = _driver(tree, Quota(max_bytes=10 << 20, max_files=50))
    handle = d.open("/f", W | C)
    assert d.write(handle, 0, b"x" * 200_000)[0] == SSH_FX_OK
    reply = d.extended("fstatvfs@openssh.com", s(handle))
    fields = [reply.body.uint64() for _ in range(11)]
    frsize, blocks, bavail, files, favail = fields[1], fields[2], fields[4], fields[5], fields[7]
    assert blocks * frsize == 10 << 20
    assert bavail * frsize <= (10 << 20) - 200_000
    assert (files, favail) == (50, 49)


# --- what a storage does not support -----------------------------------------------------------


@pytest.mark.parametrize("missing", ["symlinks", "hard_links", "random_writes"])
def test_unsupported_features_answer_op_unsupported(missing: str, tmp_path: Path) -> None:
    fs = MemoryFileSystem(**{missing: False})
    d = Driver(tmp_path, fs=fs)
    d.init()
    handle = d.open("/f", W | C)
    assert d.write(handle, 0, b"abc")[0] == SSH_FX_OK
    code, text = {
        "symlinks": lambda: d.status(codes.SSH_FXP_SYMLINK, "/f", "/l"),
        "hard_links": lambda: d.extended("hardlink@openssh.com", "/f", "/h").status(),
        "random_writes": lambda: d.write(handle, 100, b"later"),
    }[missing]()
    assert code == SSH_FX_OP_UNSUPPORTED
    assert text.startswith("This storage does not support ")
    if missing == "random_writes":
        assert d.write(handle, 3, b"def")[0] == SSH_FX_OK  # where the last write ended
        size = Attrs(size=1).encode()
        assert d.status(codes.SSH_FXP_SETSTAT, "/f", size)[0] == SSH_FX_OP_UNSUPPORTED
