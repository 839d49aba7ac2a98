"""Confinement: no path, link or race leads the session outside its root."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from spindlex_tw.core.wire import uint32
from spindlex_tw.fs.jail import Jail
from spindlex_tw.protocol.constants import SSH_FX_NO_SUCH_FILE, SSH_FX_OK
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.attrs import Attrs
from tests.sftp.sansio import Driver, s

R, W, C, T = codes.SSH_FXF_READ, codes.SSH_FXF_WRITE, codes.SSH_FXF_CREAT, codes.SSH_FXF_TRUNC
CANARY = b"canary: must never be read or changed"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A root with an outside neighbour holding a canary file and directory."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "canary").write_bytes(CANARY)
    os.chmod(outside / "canary", 0o644)
    (root / "inside").write_bytes(b"inside")
    (root / "dir").mkdir()
    return root, outside


@pytest.fixture
def drv(world: tuple[Path, Path]) -> Driver:
    d = Driver(world[0])
    d.init()
    return d


def _canary_intact(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["canary"]
    assert (outside / "canary").read_bytes() == CANARY
    assert stat.S_IMODE((outside / "canary").stat().st_mode) == 0o644


def _read_all(drv: Driver, path: str) -> bytes | int:
    reply = drv.call(codes.SSH_FXP_OPEN, path, uint32(R), Attrs().encode())
    if reply.kind != codes.SSH_FXP_HANDLE:
        return reply.status()[0]
    handle = reply.body.string()
    data = drv.read(handle, 0, 1000)
    drv.close(handle)
    return data.body.string() if data.kind == codes.SSH_FXP_DATA else data.status()[0]


ESCAPES = [
    "../outside/canary",
    "/../outside/canary",
    "/../../../../outside/canary",
    "dir/../../outside/canary",
    "/dir/../../../outside/canary",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_dotdot_stays_inside(drv: Driver, world: tuple[Path, Path], path: str) -> None:
    _root, outside = world
    assert _read_all(drv, path) == SSH_FX_NO_SUCH_FILE
    # Writes land inside the root, if anywhere.
    reply = drv.call(codes.SSH_FXP_OPEN, path, uint32(W | C | T), Attrs().encode())
    if reply.kind == codes.SSH_FXP_HANDLE:
        drv.close(reply.body.string())
    drv.status(codes.SSH_FXP_REMOVE, path)
    drv.status(codes.SSH_FXP_SETSTAT, path, Attrs(permissions=0o600).encode())
    _canary_intact(outside)


def test_absolute_host_path_is_inside(drv: Driver, world: tuple[Path, Path]) -> None:
    _root, outside = world
    assert _read_all(drv, str(outside / "canary")) == SSH_FX_NO_SUCH_FILE
    # The host's directories do not exist under the root, so neither does this path.
    assert drv.status(codes.SSH_FXP_REALPATH, str(outside))[0] == SSH_FX_NO_SUCH_FILE
    assert drv.realpath("/../..") == b"/"
    _canary_intact(outside)


def test_existing_symlinks_pointing_out_resolve_inside(
    drv: Driver, world: tuple[Path, Path]
) -> None:
    root, outside = world
    os.symlink(outside / "canary", root / "abs-link")  # absolute host path
    os.symlink("../outside/canary", root / "rel-link")
    os.symlink(outside, root / "dir-link")
    os.symlink("../../outside", root / "dir" / "up-link")
    for path in ("/abs-link", "/rel-link", "/dir-link/canary", "/dir/up-link/canary"):
        assert _read_all(drv, path) == SSH_FX_NO_SUCH_FILE, path
        assert drv.status(codes.SSH_FXP_STAT, path)[0] == SSH_FX_NO_SUCH_FILE, path
        change = Attrs(permissions=0o600, size=0).encode()
        assert drv.status(codes.SSH_FXP_SETSTAT, path, change)[0] != SSH_FX_OK, path
    assert drv.status(codes.SSH_FXP_REALPATH, "/rel-link")[0] == SSH_FX_NO_SUCH_FILE
    assert drv.realpath("/dir/up-link") == b"/outside"
    # Writing through the links creates nothing outside.
    for path in ("/dir-link/new", "/abs-link"):
        reply = drv.call(codes.SSH_FXP_OPEN, path, uint32(W | C | T), Attrs().encode())
        if reply.kind == codes.SSH_FXP_HANDLE:
            drv.close(reply.body.string())
    assert drv.status(codes.SSH_FXP_MKDIR, "/dir-link/sub", Attrs().encode())[0] != SSH_FX_OK
    assert drv.status(codes.SSH_FXP_OPENDIR, "/dir-link")[0] == SSH_FX_NO_SUCH_FILE
    _canary_intact(outside)


def test_absolute_link_targets_resolve_under_root(drv: Driver, world: tuple[Path, Path]) -> None:
    root, outside = world
    os.symlink("/inside", root / "dir" / "to-inside")
    assert _read_all(drv, "/dir/to-inside") == b"inside"
    # A link whose target is the host path of a file outside now names a path in the jail.
    (root / "outside").mkdir()
    (root / "outside" / "canary").write_bytes(b"decoy")
    os.symlink("../../outside/canary", root / "dir" / "deep")
    assert _read_all(drv, "/dir/deep") == b"decoy"
    _canary_intact(outside)


def test_client_created_symlink_pointing_out(drv: Driver, world: tuple[Path, Path]) -> None:
    root, outside = world
    target = str(outside / "canary")
    assert drv.status(codes.SSH_FXP_SYMLINK, target, "/evil")[0] == SSH_FX_OK
    assert drv.status(codes.SSH_FXP_SYMLINK, "../../../outside", "/evil-dir")[0] == SSH_FX_OK
    assert _read_all(drv, "/evil") == SSH_FX_NO_SUCH_FILE
    assert _read_all(drv, "/evil-dir/canary") == SSH_FX_NO_SUCH_FILE
    # Written through, the link's text names a path under the root: missing there, so
    # nothing is created; once those directories exist under the root, the file lands there.
    create = (codes.SSH_FXP_OPEN, "/evil", uint32(W | C | T), Attrs().encode())
    assert drv.status(*create)[0] == SSH_FX_NO_SUCH_FILE
    mirror = root / os.path.relpath(target, "/")
    mirror.parent.mkdir(parents=True)
    handle = drv.call(*create).body.string()
    drv.write(handle, 0, b"overwritten?")
    drv.close(handle)
    assert mirror.read_bytes() == b"overwritten?"
    assert drv.extended("hardlink@openssh.com", "/evil-dir/canary", "/stolen").status()[0] != 0
    assert drv.status(codes.SSH_FXP_RENAME, "/evil-dir/canary", "/moved")[0] != SSH_FX_OK
    _canary_intact(outside)


def test_symlink_in_the_middle_of_a_path(drv: Driver, world: tuple[Path, Path]) -> None:
    root, outside = world
    (root / "dir" / "sub").mkdir()
    (root / "dir" / "sub" / "f").write_bytes(b"f")
    os.symlink("dir/sub", root / "mid")
    os.symlink(outside, root / "dir" / "out")
    assert _read_all(drv, "/mid/f") == b"f"
    assert _read_all(drv, "/mid/../sub/f") == b"f"  # ".." is taken after the link, physically
    assert _read_all(drv, "/dir/out/../outside/canary") == SSH_FX_NO_SUCH_FILE
    assert drv.status(codes.SSH_FXP_REMOVE, "/dir/out/canary")[0] != SSH_FX_OK
    listing = [n for n, _, _ in drv.listdir("/")]
    assert b"mid" in listing
    _canary_intact(outside)


def test_remove_and_lstat_do_not_follow_final_link(drv: Driver, world: tuple[Path, Path]) -> None:
    root, outside = world
    os.symlink(outside / "canary", root / "link")
    assert drv.status(codes.SSH_FXP_REMOVE, "/link")[0] == SSH_FX_OK
    assert not os.path.lexists(root / "link")
    os.symlink(outside, root / "dlink")
    assert drv.status(codes.SSH_FXP_RMDIR, "/dlink")[0] != SSH_FX_OK
    _canary_intact(outside)


def test_symlink_loop_is_refused(drv: Driver, world: tuple[Path, Path]) -> None:
    root, _ = world
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    assert drv.status(codes.SSH_FXP_STAT, "/a")[0] == SSH_FX_NO_SUCH_FILE  # ELOOP
    assert drv.status(codes.SSH_FXP_STAT, "/a/x")[0] == SSH_FX_NO_SUCH_FILE


def test_handle_paths_never_use_host_names(drv: Driver, world: tuple[Path, Path]) -> None:
    _root, _outside = world
    reply = drv.call(codes.SSH_FXP_OPENDIR, "/..")
    handle = reply.body.string()
    names = drv.names(drv.call(codes.SSH_FXP_READDIR, s(handle)))
    assert b"outside" not in [n for n, _, _ in names]
    drv.close(handle)


def test_race_swapping_a_directory_for_a_link(world: tuple[Path, Path]) -> None:
    """A name resolved as a directory and then replaced by a link is not followed."""
    root, outside = world
    jail = Jail(str(root))
    loc = jail.locate(b"/dir/victim", b"/", follow=True)
    try:
        os.rename(root / "dir", root / "moved")
        os.symlink(outside, root / "dir")  # the swap, after resolution
        # The location holds the original directory; the new link is not involved.
        fd = os.open(loc.name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600, dir_fd=loc.dir_fd)
        os.close(fd)
        assert (root / "moved" / "victim").exists()
    finally:
        loc.close()
        jail.close()
    _canary_intact(outside)
    assert os.listdir(outside) == ["canary"]


def test_final_name_swapped_for_a_link_is_not_followed(world: tuple[Path, Path]) -> None:
    from spindlex_tw.fs.local import LocalFileSystem, SetStat

    root, outside = world
    fs = LocalFileSystem(str(root))
    loc = fs.locate(b"/inside", b"/", follow=True)
    try:
        os.unlink(root / "inside")
        os.symlink(outside / "canary", root / "inside")
        with pytest.raises(OSError):
            fs.open_file(loc, os.O_RDONLY, None)
        with pytest.raises(OSError):
            fs.setstat(loc, SetStat(permissions=0o600))
        with pytest.raises(OSError):
            fs.setstat(loc, SetStat(size=0))
    finally:
        loc.close()
        fs.close()
    _canary_intact(outside)


def test_nul_and_overlong_paths(drv: Driver) -> None:
    assert drv.status(codes.SSH_FXP_STAT, b"/ins\0ide")[0] == 5  # EINVAL: bad message
    assert drv.status(codes.SSH_FXP_STAT, "/" + "a/" * 3000)[0] == 5  # ENAMETOOLONG


def test_lookup_work_is_bounded(world: tuple[Path, Path]) -> None:
    """Links full of ".." over a deep tree cannot make one lookup walk forever."""
    root, _ = world
    deep = root
    for _ in range(200):
        deep = deep / "d"
    deep.mkdir(parents=True)
    down = "/".join(["d"] * 200)
    up = "/".join([".."] * 200)
    # Each link goes down the tree and back up (400 steps), then on to the next link.
    os.symlink(f"/{down}/{up}", root / "l0")
    for i in range(1, 30):
        os.symlink(f"/{down}/{up}/l{i - 1}", root / f"l{i}")
    jail = Jail(str(root))
    try:
        loc = jail.locate(b"/l0", b"/", follow=True)  # one round trip is fine
        loc.close()
        with pytest.raises(OSError) as info:
            jail.locate(b"/l29/x", b"/", follow=True)
        assert info.value.errno == errno.ELOOP
    finally:
        jail.close()


def test_dotdot_from_a_directory_moved_out_of_the_root(world: tuple[Path, Path]) -> None:
    """The kernel's ".." is taken only while it is the directory the walk came through."""
    root, outside = world
    (root / "a" / "b").mkdir(parents=True)
    jail = Jail(str(root))
    b = os.open(root / "a" / "b", os.O_RDONLY | os.O_DIRECTORY)
    expected = (os.stat(root / "a").st_dev, os.stat(root / "a").st_ino)
    os.rename(root / "a" / "b", outside / "b")  # someone moves it out meanwhile
    parent = jail._parent(b, expected, [b"a"])
    try:
        st = os.fstat(parent)
        assert (st.st_dev, st.st_ino) == expected  # back inside, not outside/
    finally:
        os.close(parent)
        jail.close()
