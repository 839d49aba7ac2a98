"""The hook calls of each SFTP request, exactly as docs/sftp.md's table lists them (sans-IO).

tests/hostile/test_sftp_access.py proves each call refuses with real clients;
this pins down that no request makes fewer calls, or other ones, than the table.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spindlex_tw.core.wire import uint32, uint64
from spindlex_tw.protocol.constants import SSH_FX_OK, SSH_FX_PERMISSION_DENIED
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
NONE = Attrs().encode()
TIMES = Attrs(atime=1, mtime=1).encode()

Call = tuple[str, str, str]


class Recorder:
    """Grants every access check but those in ``denied``; records each call with a client path."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.calls: list[Call] = []
        self.denied: set[Call] = set()

    def _check(self, kind: str, path: str, mode: str) -> bool:
        relative = os.path.relpath(path, self.root)
        call = (kind, "/" if relative == "." else "/" + relative, mode)
        self.calls.append(call)
        return call not in self.denied

    def check_file_access(self, path: str, mode: str) -> bool:
        return self._check("file", path, mode)

    def check_directory_access(self, path: str, mode: str) -> bool:
        return self._check("dir", path, mode)

    def get_file_permissions(self, path: str) -> int:
        return 0o644

    def get_directory_permissions(self, path: str) -> int:
        return 0o755


@pytest.fixture
def session(tmp_path: Path) -> tuple[Driver, Recorder]:
    root = tmp_path / "root"
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"data")
    (root / "other").mkdir()
    os.symlink("d/f", root / "link")
    policy = Recorder(root)
    driver = Driver(root, policy=policy)
    driver.init()
    return driver, policy


def _calls(session: tuple[Driver, Recorder], kind: int, *fields: bytes | str) -> list[Call]:
    driver, policy = session
    policy.calls.clear()
    assert driver.status(kind, *fields)[0] == SSH_FX_OK
    return policy.calls


def _extended_calls(
    session: tuple[Driver, Recorder], name: str, *fields: bytes | str
) -> list[Call]:
    driver, policy = session
    policy.calls.clear()
    assert driver.extended(name, *fields).status()[0] == SSH_FX_OK
    return policy.calls


FILE_R, FILE_W = ("file", "/d/f", "r"), ("file", "/d/f", "w")
DIR_W = ("dir", "/d", "w")


@pytest.mark.parametrize(
    ("path", "pflags", "expected"),
    [
        ("/d/f", R, [FILE_R]),
        ("/link", 0, [FILE_R]),  # judged where the link leads
        ("/d/f", W, [FILE_W]),
        ("/d/f", A, [FILE_W]),
        ("/d/f", R | W, [FILE_R, FILE_W]),
        ("/d/f", T, [FILE_R, FILE_W]),
        ("/d/f", C, [FILE_R, FILE_W, DIR_W]),
        ("/d/f", W | C | T, [FILE_W, DIR_W]),
        ("/d/new", W | C | X, [("file", "/d/new", "w"), DIR_W]),
    ],
)
def test_open(
    session: tuple[Driver, Recorder], path: str, pflags: int, expected: list[Call]
) -> None:
    driver, policy = session
    policy.calls.clear()
    driver.close(driver.open(path, pflags))
    assert policy.calls == expected


def test_open_refused_a_new_name_opens_only_an_existing_file(
    session: tuple[Driver, Recorder],
) -> None:
    driver, policy = session
    policy.denied.add(DIR_W)
    driver.close(driver.open("/d/f", W | C | T))
    refused = driver.status(codes.SSH_FXP_OPEN, "/d/new", uint32(W | C), NONE)
    assert refused[0] == SSH_FX_PERMISSION_DENIED
    refused = driver.status(codes.SSH_FXP_OPEN, "/d/f", uint32(W | C | X), NONE)
    assert refused[0] == SSH_FX_PERMISSION_DENIED
    assert sorted(os.listdir(driver.root / "d")) == ["f", "sub"]


def test_requests_on_names(session: tuple[Driver, Recorder]) -> None:
    driver, policy = session
    sub_w, other_w = ("dir", "/d/sub", "w"), ("dir", "/other", "w")
    link_r, link_w = ("file", "/link", "r"), ("file", "/link", "w")

    def replied(kind: int, *fields: bytes | str) -> list[Call]:
        policy.calls.clear()
        driver.call(kind, *fields)
        return policy.calls

    assert replied(codes.SSH_FXP_STAT, "/link") == [FILE_R]
    assert replied(codes.SSH_FXP_LSTAT, "/link") == [link_r]
    assert replied(codes.SSH_FXP_READLINK, "/link") == [link_r]
    assert replied(codes.SSH_FXP_OPENDIR, "/d") == [("dir", "/d", "r")]
    assert _calls(session, codes.SSH_FXP_SETSTAT, "/link", TIMES) == [FILE_W]
    assert _extended_calls(session, "lsetstat@openssh.com", "/link", TIMES) == [link_w]
    handle = driver.open("/d/f", R)
    assert _calls(session, codes.SSH_FXP_FSETSTAT, s(handle), TIMES) == [FILE_W]
    driver.close(handle)
    assert _calls(session, codes.SSH_FXP_MKDIR, "/d/new", NONE) == [("dir", "/d/new", "w"), DIR_W]
    assert _calls(session, codes.SSH_FXP_RMDIR, "/d/sub") == [sub_w, DIR_W]
    assert _extended_calls(session, "hardlink@openssh.com", "/d/f", "/other/h") == [
        FILE_W,
        ("file", "/other/h", "w"),
        other_w,
    ]
    assert _calls(session, codes.SSH_FXP_SYMLINK, "/d/f", "/other/s") == [
        ("file", "/other/s", "w"),
        other_w,
    ]
    assert _calls(session, codes.SSH_FXP_RENAME, "/d/f", "/other/r") == [
        FILE_W,
        DIR_W,
        ("file", "/other/r", "w"),
        other_w,
    ]
    assert _extended_calls(session, "posix-rename@openssh.com", "/other/r", "/other/h") == [
        ("file", "/other/r", "w"),
        other_w,
        ("file", "/other/h", "w"),
        other_w,
    ]
    assert _calls(session, codes.SSH_FXP_REMOVE, "/other/h") == [("file", "/other/h", "w"), other_w]


def test_requests_that_ask_no_hook(session: tuple[Driver, Recorder]) -> None:
    driver, policy = session
    reading = driver.open("/d/f", R)
    writing = driver.open("/d/f", W)
    listing = driver.call(codes.SSH_FXP_OPENDIR, "/d").body.string()
    policy.calls.clear()
    driver.read(reading, 0, 4)
    driver.write(writing, 0, b"DATA")
    driver.call(codes.SSH_FXP_FSTAT, s(reading))
    driver.call(codes.SSH_FXP_READDIR, s(listing))
    driver.extended("fsync@openssh.com", s(writing))
    driver.extended("copy-data", s(reading), uint64(0), uint64(0), s(writing), uint64(0))
    driver.extended("fstatvfs@openssh.com", s(reading))
    driver.realpath("/d/../d/f")
    driver.extended("expand-path@openssh.com", "~/d")
    driver.extended("home-directory", "")
    driver.extended("statvfs@openssh.com", "/d")
    driver.extended("limits@openssh.com")
    driver.extended("users-groups-by-id@openssh.com", s(uint32(0)), s(uint32(0)))
    for handle in (reading, writing, listing):
        driver.close(handle)
    assert policy.calls == []
    refused = driver.extended("fsync@openssh.com", s(driver.open("/d/f", R))).status()
    assert refused[0] == SSH_FX_PERMISSION_DENIED  # flushing needs a handle that writes
