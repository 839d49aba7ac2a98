"""SFTPServer hooks, consulted as the seed documents, and failing closed."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from spindlex_tw.core.wire import uint32, uint64
from spindlex_tw.protocol.constants import (
    SSH_FX_FAILURE,
    SSH_FX_OK,
    SSH_FX_PERMISSION_DENIED,
)
from spindlex_tw.server.sftp_server import SFTPError, SFTPHandle, SFTPServer
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.attrs import Attrs
from tests.sftp.sansio import Driver, s

R, W, C, T, A, X = (
    codes.SSH_FXF_READ,
    codes.SSH_FXF_WRITE,
    codes.SSH_FXF_CREAT,
    codes.SSH_FXF_TRUNC,
    codes.SSH_FXF_APPEND,
    codes.SSH_FXF_EXCL,
)


class _NoChannel:
    """Enough of a channel for constructing an SFTPServer whose session we drive ourselves."""

    def attach_protocol(self, protocol: Any) -> None:
        self.protocol = protocol


class ReadOnlyServer(SFTPServer):
    def check_file_access(self, path: str, mode: str) -> bool:
        return mode == "r"

    def check_directory_access(self, path: str, mode: str) -> bool:
        return mode == "r"


class RecordingServer(SFTPServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str, str]] = []

    def check_file_access(self, path: str, mode: str) -> bool:
        self.calls.append(("file", path, mode))
        return True

    def check_directory_access(self, path: str, mode: str) -> bool:
        self.calls.append(("dir", path, mode))
        return True

    def get_file_permissions(self, path: str) -> int:
        self.calls.append(("file-mode", path, ""))
        return 0o600

    def get_directory_permissions(self, path: str) -> int:
        self.calls.append(("dir-mode", path, ""))
        return 0o700


def _driver(root: Path, server_class: type[SFTPServer]) -> tuple[Driver, Any]:
    server = server_class(_NoChannel(), str(root))
    d = Driver(root, policy=server)
    d.init()
    return d, server


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "dir" / "empty").mkdir(parents=True)
    (root / "file").write_bytes(b"content")
    os.symlink("file", root / "link")
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            data = p.read_bytes() if stat.S_ISREG(st.st_mode) else b""
            result[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns, data)
    return result


def test_read_only_subclass_refuses_every_write(tree: Path) -> None:
    d, _ = _driver(tree, ReadOnlyServer)
    before = _snapshot(tree)
    none = Attrs().encode()
    mode = Attrs(permissions=0o600).encode()
    denied = SSH_FX_PERMISSION_DENIED
    for flags in (W, R | W, W | C, W | T, A, C, T, W | C | X):
        assert d.status(codes.SSH_FXP_OPEN, "/file", uint32(flags), none)[0] == denied, flags
    assert d.status(codes.SSH_FXP_OPEN, "/new", uint32(W | C), none)[0] == denied
    assert d.status(codes.SSH_FXP_REMOVE, "/file")[0] == denied
    assert d.status(codes.SSH_FXP_RENAME, "/file", "/moved")[0] == denied
    assert d.extended("posix-rename@openssh.com", "/file", "/moved").status()[0] == denied
    assert d.status(codes.SSH_FXP_MKDIR, "/newdir", none)[0] == denied
    assert d.status(codes.SSH_FXP_RMDIR, "/dir/empty")[0] == denied
    assert d.status(codes.SSH_FXP_SETSTAT, "/file", mode)[0] == denied
    assert d.extended("lsetstat@openssh.com", "/link", mode).status()[0] == denied
    assert d.status(codes.SSH_FXP_SYMLINK, "file", "/newlink")[0] == denied
    assert d.extended("hardlink@openssh.com", "/file", "/hard").status()[0] == denied
    handle = d.open("/file", R)
    assert d.status(codes.SSH_FXP_FSETSTAT, s(handle), mode)[0] == denied
    assert d.write(handle, 0, b"x")[0] == denied
    copy = (s(handle), uint64(0), uint64(0), s(handle), uint64(0))
    assert d.extended("copy-data", *copy).status()[0] == denied
    # Reading still works.
    assert d.read(handle, 0, 100).body.string() == b"content"
    d.close(handle)
    assert {n for n, _, _ in d.listdir("/")} >= {b"file", b"link", b"dir"}
    assert d.attrs(d.call(codes.SSH_FXP_STAT, "/link")).size == 7
    assert d.realpath("/dir/..") == b"/"
    assert _snapshot(tree) == before


def test_hooks_get_host_paths_and_modes(tree: Path) -> None:
    d, server = _driver(tree, RecordingServer)
    root = str(tree)
    none = Attrs().encode()
    d.close(d.open("/file", R))
    d.close(d.open("/link", W))  # the resolved file is what the hook judges
    d.close(d.open("/dir/new", W | C, Attrs(permissions=0o644)))
    d.call(codes.SSH_FXP_STAT, "/file")
    d.call(codes.SSH_FXP_LSTAT, "/link")
    d.call(codes.SSH_FXP_MKDIR, "/dir/sub", none)
    d.call(codes.SSH_FXP_RMDIR, "/dir/sub")
    d.call(codes.SSH_FXP_OPENDIR, "/dir")
    d.call(codes.SSH_FXP_REMOVE, "/dir/new")
    d.call(codes.SSH_FXP_RENAME, "/file", "/dir/file2")
    assert server.calls == [
        ("file", f"{root}/file", "r"),
        ("file", f"{root}/file", "w"),
        ("file", f"{root}/dir/new", "w"),
        ("dir", f"{root}/dir", "w"),  # CREAT may add a name
        ("file-mode", f"{root}/dir/new", ""),
        ("file", f"{root}/file", "r"),
        ("file", f"{root}/link", "r"),
        ("dir", f"{root}/dir/sub", "w"),
        ("dir", f"{root}/dir", "w"),
        ("dir-mode", f"{root}/dir/sub", ""),
        ("dir", f"{root}/dir/sub", "w"),
        ("dir", f"{root}/dir", "w"),
        ("dir", f"{root}/dir", "r"),
        ("file", f"{root}/dir/new", "w"),
        ("dir", f"{root}/dir", "w"),
        ("file", f"{root}/file", "w"),
        ("dir", root, "w"),
        ("file", f"{root}/dir/file2", "w"),
        ("dir", f"{root}/dir", "w"),
    ]


def test_permission_hooks_decide_new_modes(tree: Path) -> None:
    d, _ = _driver(tree, RecordingServer)
    d.close(d.open("/a", W | C, Attrs(permissions=0o666)))
    d.close(d.open("/b", W | C))
    d.close(d.open("/c", W | C, Attrs(permissions=0o400)))
    assert d.status(codes.SSH_FXP_MKDIR, "/d", Attrs(permissions=0o777).encode())[0] == SSH_FX_OK
    modes = {n: stat.S_IMODE((tree / n).stat().st_mode) for n in "abcd"}
    assert modes == {"a": 0o600, "b": 0o600, "c": 0o400, "d": 0o700}


class Broken(SFTPServer):
    def check_file_access(self, path: str, mode: str) -> bool:
        raise RuntimeError("boom")

    def check_directory_access(self, path: str, mode: str) -> Any:
        return 1  # truthy, but not True

    def get_file_permissions(self, path: str) -> Any:
        return "0644"


def test_failing_hooks_refuse(tree: Path) -> None:
    d, _ = _driver(tree, Broken)
    assert d.status(codes.SSH_FXP_STAT, "/file")[0] == SSH_FX_PERMISSION_DENIED
    assert d.errors and "check_file_access" in d.errors[0][0]
    assert d.status(codes.SSH_FXP_OPENDIR, "/")[0] == SSH_FX_PERMISSION_DENIED


def test_bad_permissions_hook_fails_the_create(tree: Path) -> None:
    class Odd(SFTPServer):
        def get_file_permissions(self, path: str) -> Any:
            return "0644"

    d, _ = _driver(tree, Odd)
    code = d.status(codes.SSH_FXP_OPEN, "/new", uint32(W | C), Attrs().encode())[0]
    assert code == SSH_FX_FAILURE and not (tree / "new").exists()


def test_hook_may_refuse_with_its_own_status(tree: Path) -> None:
    class Quota(SFTPServer):
        def check_file_access(self, path: str, mode: str) -> bool:
            if mode == "w":
                raise SFTPError("Quota exceeded", SSH_FX_FAILURE)
            return True

    d, _ = _driver(tree, Quota)
    assert d.status(codes.SSH_FXP_REMOVE, "/file") == (SSH_FX_FAILURE, "Quota exceeded")


def test_sftp_handle_public_class(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    with open(path, "r+b") as f:
        handle = SFTPHandle(b"h1", str(path), R | W, f)
        assert not handle.is_directory
        handle.seek(4)
        assert handle.read(3) == b"456" and handle.position == 7
        assert handle.write(b"xy") == 2
        handle.close()
        handle.close()
    assert path.read_bytes() == b"0123456xy9"
    ro = SFTPHandle(b"h2", str(path), R, open(path, "rb"))  # noqa: SIM115 - closed below
    with pytest.raises(SFTPError) as info:
        ro.write(b"x")
    assert info.value.status_code == SSH_FX_PERMISSION_DENIED
    ro.close()
    directory = SFTPHandle(b"h3", str(tmp_path), 0)
    with pytest.raises(SFTPError):
        directory.read(1)


def test_server_limits_are_class_attributes(tree: Path) -> None:
    class Small(SFTPServer):
        max_open_handles = 2
        max_read_length = 4

    server = Small(_NoChannel(), str(tree))
    d = Driver(tree, policy=server, limits=server._limits())
    d.init()
    h1, h2 = d.open("/file", R), d.open("/file", R)
    assert d.status(codes.SSH_FXP_OPEN, "/file", uint32(R), Attrs().encode())[0] == SSH_FX_FAILURE
    assert d.read(h1, 0, 100).body.string() == b"cont"
    d.close(h1)
    d.close(h2)
