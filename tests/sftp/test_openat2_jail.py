"""The jail's openat2 path and cached opens: the same answers as the component walk.

``Jail.locate`` hands a path without ``..`` to the kernel in one openat2 call
and walks everything else itself; ``LocalFileSystem.open_cached`` opens a file
for reading on the event-loop thread when every lookup is cached. Here each
is held to the answer of the walk, with openat2 working, missing (a wrapper
that says ENOSYS, as a kernel before 5.6 or a seccomp filter would) and
without RESOLVE_CACHED.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from spindlex_tw.fs import openat2
from spindlex_tw.fs.jail import Jail, Location
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.context import TRY_FIRST
from spindlex_tw.sftp.effects import Blocking

# The confinement tests of the walk, run again below with this module's ``drv``:
# a driver that tries each call's attempt first (the event-loop thread's cached
# opens and reads), once with openat2 and once with only the walk.
from tests.sftp.sansio import Defaults, Driver
from tests.sftp.test_jail import (  # noqa: F401
    test_absolute_host_path_is_inside,
    test_absolute_link_targets_resolve_under_root,
    test_client_created_symlink_pointing_out,
    test_dotdot_stays_inside,
    test_existing_symlinks_pointing_out_resolve_inside,
    test_handle_paths_never_use_host_names,
    test_nul_and_overlong_paths,
    test_remove_and_lstat_do_not_follow_final_link,
    test_symlink_in_the_middle_of_a_path,
    test_symlink_loop_is_refused,
    world,
)

pytestmark = pytest.mark.skipif(not openat2.usable(), reason="this system has no openat2")


class AttemptingDriver(Driver):
    """Tries each call that can promise not to wait first, as the Twisted driver does
    for a root on a disk; counts the OPENs tried so and the calls handed to a worker."""

    attempted: int = 0
    handed_off: int = 0

    def __post_init__(self) -> None:
        self.fs = _CountedOpens(str(self.root), self)
        self.file_calls = TRY_FIRST
        super().__post_init__()

    def run_job(self, job: Any) -> None:
        if isinstance(job.effect, Blocking):
            self.handed_off += 1
        super().run_job(job)


class _CountedOpens(LocalFileSystem):
    def __init__(self, root: str, driver: AttemptingDriver) -> None:
        super().__init__(root)
        self._driver = driver

    def open_cached(self, *args: Any) -> Any:
        self._driver.attempted += 1
        return super().open_cached(*args)


def _no_openat2(
    monkeypatch: pytest.MonkeyPatch, number: int = errno.ENOSYS, calls: list[int] | None = None
) -> list[int]:
    """openat2 failing with ``number`` every time (ENOSYS: a kernel without it), the
    process not yet told; returns the list of calls that reached it (``calls``, if given)."""
    reached: list[int] = [] if calls is None else calls

    def failing(*args: object) -> int:
        reached.append(1)
        ctypes.set_errno(number)
        return -1

    monkeypatch.setattr(openat2._state, "call", failing)
    monkeypatch.setattr(openat2._state, "usable", True)
    monkeypatch.setattr(openat2._state, "cached_usable", True)
    return reached


@pytest.fixture(params=["openat2", "walk"])
def drv(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Driver:
    if request.param == "walk":
        _no_openat2(monkeypatch)
    d = AttemptingDriver(request.getfixturevalue("world")[0], policy=Defaults())
    d.init()
    return d


def test_a_cached_read_only_open_is_not_handed_off_and_a_write_is(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"cached")
    os.stat(tmp_path / "d" / "f")
    d = AttemptingDriver(tmp_path, policy=Defaults())
    d.init()
    handle = d.open("/d/f", codes.SSH_FXF_READ)
    assert (d.attempted, d.handed_off) == (1, 0)
    d.close(handle)
    d.attempted = d.handed_off = 0
    handle = d.open("/d/g", codes.SSH_FXF_WRITE | codes.SSH_FXF_CREAT)
    assert (d.attempted, d.handed_off) == (0, 1)
    d.close(handle)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A root with nested directories, links inside it and out of it, a FIFO."""
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_bytes(b"deep")
    (root / "top").write_bytes(b"top")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "canary").write_bytes(b"canary")
    os.symlink("a/b", root / "to-b")
    os.symlink("/a/b/f", root / "a" / "abs-f")
    os.symlink("../../outside/canary", root / "out")
    os.symlink(tmp_path / "outside", root / "out-dir")
    os.mkfifo(root / "fifo")
    yield root


PATHS = [
    b"/top",
    b"top",
    b"/a/b/f",
    b"a/b/f",
    b"//a/./b//f",
    b"/a/b/missing",
    b"/a/missing/f",
    b"/top/f",
    b"/a/b/",
    b"/a/b/.",
    b"/",
    b".",
    b"/a/../top",
    b"/../../a/b/f",
    b"/to-b/f",
    b"/a/abs-f",
    b"/out",
    b"/out-dir/canary",
    b"/out-dir",
    b"/fifo",
    b"/a/" + b"n" * 300,
]


def _answer(jail: Jail, path: bytes, follow: bool) -> object:
    """What locate gives: the location's parts, name and directory, or the errno."""
    try:
        loc = jail.locate(path, b"/a", follow)
    except OSError as exc:
        return exc.errno
    try:
        st = os.fstat(loc.dir_fd)
        return loc.parts, loc.name, (st.st_dev, st.st_ino)
    finally:
        loc.close()


@pytest.mark.parametrize("follow", [True, False])
def test_locate_answers_as_the_walk(
    tree: Path, follow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    jail = Jail(str(tree))
    fast = {path: _answer(jail, path, follow) for path in PATHS}
    calls = _no_openat2(monkeypatch)
    walked = {path: _answer(jail, path, follow) for path in PATHS}
    assert fast == walked
    # The system's answer is remembered: one call said ENOSYS, the rest never asked.
    assert len(calls) == 1 and not openat2.usable()
    jail.close()


def test_plain_paths_take_one_call_and_links_go_to_the_walk(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jail = Jail(str(tree))
    calls = _spied_openat2(monkeypatch)
    walks: list[bytes] = []
    real_walk = jail._walk

    def walk(path: bytes, follow: bool) -> Location:
        walks.append(path)
        return real_walk(path, follow)

    monkeypatch.setattr(jail, "_walk", walk)
    jail.locate(b"/a/b/f", b"/", True).close()
    seen = [path for path, _ in calls]
    assert seen == [b"a/b"] and walks == []
    # A link on the way: the kernel refuses it, the walk follows it inside the root.
    loc = jail.locate(b"/to-b/f", b"/", True)
    assert loc.parts == (b"a", b"b", b"f")
    loc.close()
    assert calls[-1][0] == b"to-b" and walks == [b"/to-b/f"]
    jail.close()


def _spied_openat2(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, int]]:
    """openat2 as it is, each call's (path, flags) recorded in the list returned."""
    calls: list[tuple[bytes, int]] = []
    real = openat2.openat2

    def spy(dir_fd: int, path: bytes, flags: int, resolve: int) -> int:
        calls.append((path, flags))
        return real(dir_fd, path, flags, resolve)

    monkeypatch.setattr(openat2, "openat2", spy)
    return calls


def _cached(fs: LocalFileSystem, path: bytes, flags: int = os.O_RDONLY) -> tuple[int, bytes] | None:
    return fs.open_cached(path, b"/", True, flags)


def _read(result: tuple[int, bytes] | None) -> tuple[bytes, bytes] | None:
    if result is None:
        return None
    fd, virtual = result
    try:
        return os.read(fd, 100), virtual
    finally:
        os.close(fd)


def test_open_cached_opens_plain_regular_files(tree: Path) -> None:
    fs = LocalFileSystem(str(tree))
    os.stat(tree / "a" / "b" / "f")  # its names now in the dentry cache
    assert _read(_cached(fs, b"/a/b/f")) == (b"deep", b"/a/b/f")
    assert _read(_cached(fs, b"top")) == (b"top", b"/top")
    fs.close()


def test_open_cached_leaves_everything_else_to_the_worker(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = LocalFileSystem(str(tree))
    calls = _spied_openat2(monkeypatch)
    for path in (b"/fifo", b"/a", b"/", b"/to-b/f", b"/a/abs-f", b"/out", b"/out-dir/canary"):
        assert _cached(fs, path) is None, path
    for path in (b"/a/../top", b"/a/b/", b"/missing", b"/a/b/f\0", b"/" + b"x" * 5000):
        assert _cached(fs, path) is None, path
    # Only looked at, never opened: a FIFO (or device) is not opened on the event loop.
    assert all(flags & os.O_PATH for _, flags in calls)
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC, os.O_RDONLY | os.O_EXCL):
        assert _cached(fs, b"/top", flags) is None
    fs.close()


def test_open_cached_of_a_fresh_directory_opens_it_or_leaves_it(tree: Path) -> None:
    """A name just created may or may not be cached; either answer is right, never a wrong one."""
    fresh = tree / "fresh" / "sub"
    fresh.mkdir(parents=True)
    (fresh / "file").write_bytes(b"new")
    fs = LocalFileSystem(str(tree))
    assert _read(_cached(fs, b"/fresh/sub/file")) in (None, (b"new", b"/fresh/sub/file"))
    fs.close()


def test_open_cached_without_openat2_or_resolve_cached(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = LocalFileSystem(str(tree))
    calls = _no_openat2(monkeypatch)
    assert _cached(fs, b"/top") is None
    assert _cached(fs, b"/top") is None
    assert len(calls) == 1

    # A kernel before 5.12 knows openat2 but not RESOLVE_CACHED: EINVAL, then never again.
    _no_openat2(monkeypatch, errno.EINVAL, calls)
    assert _cached(fs, b"/top") is None
    assert _cached(fs, b"/top") is None
    assert len(calls) == 2 and openat2.usable() and not openat2.cached_usable()
    fs.close()


@pytest.mark.parametrize("method", ["open_file", "open_path", "locate"])
def test_a_subclass_that_finds_or_opens_files_its_own_way_is_not_bypassed(
    tree: Path, method: str
) -> None:
    base: Callable[..., Any] = getattr(LocalFileSystem, method)
    own = type("Own", (LocalFileSystem,), {method: lambda self, *a: base(self, *a)})
    fs = own(str(tree))
    assert _cached(fs, b"/top") is None
    fs.close()


def test_the_fifo_is_refused_as_before(tree: Path) -> None:
    fs = LocalFileSystem(str(tree))
    with pytest.raises(OSError) as refused:
        fs.open_path(b"/fifo", b"/", True, os.O_RDONLY, None)
    assert refused.value.errno == errno.ENXIO
    assert stat.S_ISFIFO(os.stat(tree / "fifo").st_mode)
    fs.close()
