"""The sans-IO session, request by request, driven inline."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from spindlex_tw.core.wire import Reader, uint32, uint64
from spindlex_tw.protocol.constants import (
    SSH_FX_BAD_MESSAGE,
    SSH_FX_EOF,
    SSH_FX_FAILURE,
    SSH_FX_NO_SUCH_FILE,
    SSH_FX_OK,
    SSH_FX_OP_UNSUPPORTED,
    SSH_FX_PERMISSION_DENIED,
)
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.attrs import Attrs
from spindlex_tw.sftp.context import Limits
from spindlex_tw.sftp.session import Job
from tests.sftp.sansio import Driver, packet, request, s
from tests.sftp.trees import LocalTree, Tree

R, W, C, T, X, A = (
    codes.SSH_FXF_READ,
    codes.SSH_FXF_WRITE,
    codes.SSH_FXF_CREAT,
    codes.SSH_FXF_TRUNC,
    codes.SSH_FXF_EXCL,
    codes.SSH_FXF_APPEND,
)


@pytest.fixture
def drv(tree: Tree) -> Driver:
    d = Driver(tree.root, fs=tree.fs())
    d.init()
    return d


def test_version_advertises_openssh_extensions(tree: Tree) -> None:
    reply = Driver(tree.root, fs=tree.fs()).init()
    assert reply.kind == codes.SSH_FXP_VERSION
    assert reply.body.uint32() == 3
    exts = []
    while reply.body.remaining():
        exts.append((reply.body.text(), reply.body.text()))
    assert exts == [
        ("posix-rename@openssh.com", "1"),
        ("statvfs@openssh.com", "2"),
        ("fstatvfs@openssh.com", "2"),
        ("hardlink@openssh.com", "1"),
        ("fsync@openssh.com", "1"),
        ("lsetstat@openssh.com", "1"),
        ("limits@openssh.com", "1"),
        ("expand-path@openssh.com", "1"),
        ("copy-data", "1"),
        ("home-directory", "1"),
        ("users-groups-by-id@openssh.com", "1"),
    ]


def test_write_read_roundtrip_and_eof(drv: Driver, tree: Tree) -> None:
    h = drv.open("/f", W | C | T)
    assert drv.write(h, 0, b"hello ") == (SSH_FX_OK, "Success")
    assert drv.write(h, 6, b"world") == (SSH_FX_OK, "Success")
    assert drv.close(h) == (SSH_FX_OK, "Success")
    assert tree.read("f") == b"hello world"
    h = drv.open("f", R)
    reply = drv.read(h, 6, 100)
    assert reply.kind == codes.SSH_FXP_DATA and reply.body.string() == b"world"
    assert drv.read(h, 11, 10).status() == (SSH_FX_EOF, "End of file")
    zero = drv.read(h, 0, 0)
    assert zero.kind == codes.SSH_FXP_DATA and zero.body.string() == b""
    assert drv.close(h)[0] == SSH_FX_OK


def test_open_flags(drv: Driver, tree: Tree) -> None:
    assert drv.status(codes.SSH_FXP_OPEN, "/missing", uint32(R), Attrs().encode()) == (
        SSH_FX_NO_SUCH_FILE,
        "No such file",
    )
    tree.write("f", b"abc")
    assert drv.status(codes.SSH_FXP_OPEN, "/f", uint32(W | C | X), Attrs().encode())[0] == (
        SSH_FX_FAILURE
    )
    h = drv.open("/f", W | A)
    drv.write(h, 0, b"def")  # append ignores the offset
    drv.close(h)
    assert tree.read("f") == b"abcdef"
    h = drv.open("/f", W | T)
    drv.close(h)
    assert tree.read("f") == b""
    # A read-only handle refuses writes and a write-only handle refuses reads.
    h = drv.open("/f", R)
    assert drv.write(h, 0, b"x")[0] == SSH_FX_PERMISSION_DENIED
    drv.close(h)
    h = drv.open("/f", W)
    assert drv.read(h, 0, 1).status()[0] == SSH_FX_PERMISSION_DENIED
    drv.close(h)
    # Directories and special files are not opened as files.
    tree.mkdir("d")
    assert drv.status(codes.SSH_FXP_OPEN, "/d", uint32(R), Attrs().encode())[0] == SSH_FX_FAILURE
    if tree.kind == "local":  # memory has no special files
        os.mkfifo(tree.root / "fifo")
        assert drv.status(codes.SSH_FXP_OPEN, "/fifo", uint32(R), Attrs().encode())[0] == (
            SSH_FX_FAILURE
        )


def test_new_file_mode_is_hook_narrowed_by_client(drv: Driver, tree: Tree) -> None:
    drv.close(drv.open("/plain", W | C))
    assert stat.S_IMODE(tree.stat("plain").st_mode) == 0o644
    drv.close(drv.open("/private", W | C, Attrs(permissions=0o600)))
    assert stat.S_IMODE(tree.stat("private").st_mode) == 0o600
    drv.close(drv.open("/wide", W | C, Attrs(permissions=0o777)))
    assert stat.S_IMODE(tree.stat("wide").st_mode) == 0o644
    # An existing file keeps its mode.
    tree.write("old", b"")
    tree.chmod("old", 0o640)
    drv.close(drv.open("/old", W | C | T, Attrs(permissions=0o600)))
    assert stat.S_IMODE(tree.stat("old").st_mode) == 0o640


def test_stat_lstat_fstat(drv: Driver, tree: Tree) -> None:
    tree.write("f", b"12345")
    tree.symlink("f", "l")
    a = drv.attrs(drv.call(codes.SSH_FXP_STAT, "/l"))
    assert a.size == 5 and stat.S_ISREG(a.permissions or 0)
    a = drv.attrs(drv.call(codes.SSH_FXP_LSTAT, "/l"))
    assert stat.S_ISLNK(a.permissions or 0)
    st = tree.stat("f")
    h = drv.open("/f", R)
    a = drv.attrs(drv.call(codes.SSH_FXP_FSTAT, s(h)))
    assert (a.size, a.uid, a.gid, a.mtime) == (5, st.st_uid, st.st_gid, int(st.st_mtime))
    drv.close(h)
    assert drv.status(codes.SSH_FXP_STAT, "/nope") == (SSH_FX_NO_SUCH_FILE, "No such file")


def test_dangling_symlink_lstat_and_stat(drv: Driver, tree: Tree) -> None:
    tree.symlink("nowhere", "dangling")
    a = drv.attrs(drv.call(codes.SSH_FXP_LSTAT, "/dangling"))
    assert stat.S_ISLNK(a.permissions or 0)
    assert drv.status(codes.SSH_FXP_STAT, "/dangling")[0] == SSH_FX_NO_SUCH_FILE


def test_setstat_and_fsetstat(drv: Driver, tree: Tree) -> None:
    tree.write("f", b"0123456789")
    change = Attrs(size=4, permissions=0o600, atime=1_000_000, mtime=2_000_000)
    assert drv.status(codes.SSH_FXP_SETSTAT, "/f", change.encode())[0] == SSH_FX_OK
    st = tree.stat("f")
    assert (st.st_size, stat.S_IMODE(st.st_mode), int(st.st_mtime)) == (4, 0o600, 2_000_000)
    h = drv.open("/f", R | W)
    change = Attrs(size=2, permissions=0o640, uid=os.getuid(), gid=os.getgid())
    assert drv.status(codes.SSH_FXP_FSETSTAT, s(h), change.encode())[0] == SSH_FX_OK
    st = tree.stat("f")
    assert (st.st_size, stat.S_IMODE(st.st_mode)) == (2, 0o640)
    drv.close(h)
    assert drv.status(codes.SSH_FXP_SETSTAT, "/gone", change.encode())[0] == SSH_FX_NO_SUCH_FILE


def test_chown_failure_is_reported(drv: Driver, tree: Tree) -> None:
    tree.write("f", b"")
    # uid 2**32-1 is (uid_t)-1, "unchanged"; a uid that cannot exist makes chown fail.
    bad = Attrs(uid=0xFFFFFFFE, gid=0xFFFFFFFE).encode()
    if os.getuid() != 0:
        assert drv.status(codes.SSH_FXP_SETSTAT, "/f", bad)[0] == SSH_FX_PERMISSION_DENIED
    else:
        # root may chown anywhere; the kernel refuses an invalid uid only on some
        # filesystems, so check at least that the answer matches what happened.
        code = drv.status(codes.SSH_FXP_SETSTAT, "/f", bad)[0]
        assert (code == SSH_FX_OK) == (tree.stat("f").st_uid == 0xFFFFFFFE)


def test_directory_listing_includes_dots_and_does_not_follow(drv: Driver, tree: Tree) -> None:
    tree.mkdir("d")
    tree.write("d/file", b"x" * 7)
    tree.symlink("/file", "d/link")
    entries = {name: (long, a) for name, long, a in drv.listdir("/d")}
    assert set(entries) == {b".", b"..", b"file", b"link"}
    assert stat.S_ISLNK(entries[b"link"][1].permissions or 0)
    assert entries[b"file"][1].size == 7
    assert entries[b"file"][0].startswith(b"-rw")
    assert entries[b"file"][0].endswith(b" file")
    assert entries[b"link"][0].startswith(b"l")
    # At the root, ".." is the root itself: nothing above it shows.
    top = {name: a for name, _, a in drv.listdir("/")}
    assert top[b".."] == top[b"."]


def test_readdir_batches_of_100(drv: Driver, tree: Tree) -> None:
    for i in range(250):
        tree.write(f"f{i:03}", b"")
    reply = drv.call(codes.SSH_FXP_OPENDIR, "/")
    handle = reply.body.string()
    sizes = []
    while True:
        reply = drv.call(codes.SSH_FXP_READDIR, s(handle))
        if reply.kind == codes.SSH_FXP_STATUS:
            assert reply.status()[0] == SSH_FX_EOF
            break
        sizes.append(len(drv.names(reply)))
    assert sizes == [100, 100, 52]
    drv.close(handle)


def test_remove_mkdir_rmdir(drv: Driver, tree: Tree) -> None:
    assert drv.status(codes.SSH_FXP_MKDIR, "/d", Attrs(permissions=0o777).encode())[0] == 0
    assert stat.S_IMODE(tree.stat("d").st_mode) == 0o755
    assert drv.status(codes.SSH_FXP_MKDIR, "/d", Attrs().encode())[0] == SSH_FX_FAILURE
    assert drv.status(codes.SSH_FXP_MKDIR, "/p", Attrs(permissions=0o700).encode())[0] == 0
    assert stat.S_IMODE(tree.stat("p").st_mode) == 0o700
    tree.write("d/f", b"")
    assert drv.status(codes.SSH_FXP_RMDIR, "/d")[0] == SSH_FX_FAILURE  # not empty
    assert drv.status(codes.SSH_FXP_REMOVE, "/d")[0] == SSH_FX_FAILURE  # a directory
    assert drv.status(codes.SSH_FXP_REMOVE, "/d/f")[0] == SSH_FX_OK
    assert drv.status(codes.SSH_FXP_REMOVE, "/d/f")[0] == SSH_FX_NO_SUCH_FILE
    assert drv.status(codes.SSH_FXP_RMDIR, "/d")[0] == SSH_FX_OK
    assert not tree.exists("d")


def test_realpath(drv: Driver, tree: Tree) -> None:
    tree.mkdir("a/b")
    tree.symlink("a/b", "lnk")
    assert drv.realpath(".") == b"/"
    assert drv.realpath("") == b"/"
    assert drv.realpath("/a/./b/..//") == b"/a"
    assert drv.realpath("../../..") == b"/"
    assert drv.realpath("lnk") == b"/a/b"
    assert drv.realpath("lnk/..") == b"/a"  # ".." after a link is physical, as in a chroot
    assert drv.realpath("/a/new-name") == b"/a/new-name"
    assert drv.status(codes.SSH_FXP_REALPATH, "/nope/x")[0] == SSH_FX_NO_SUCH_FILE
    reply = drv.call(codes.SSH_FXP_REALPATH, "/a")
    (name, long, a) = drv.names(reply)[0]
    assert (name, long, a) == (b"/a", b"/a", Attrs())


def test_rename_never_overwrites_but_posix_rename_does(drv: Driver, tree: Tree) -> None:
    tree.write("a", b"A")
    tree.write("b", b"B")
    assert drv.status(codes.SSH_FXP_RENAME, "/a", "/b") == (SSH_FX_FAILURE, "Failure")
    assert tree.read("a") == b"A" and tree.read("b") == b"B"
    assert drv.status(codes.SSH_FXP_RENAME, "/a", "/c")[0] == SSH_FX_OK
    assert not tree.exists("a") and tree.read("c") == b"A"
    assert tree.stat("c").st_nlink == 1
    tree.mkdir("d1")
    tree.mkdir("d2")
    assert drv.status(codes.SSH_FXP_RENAME, "/d1", "/d2")[0] == SSH_FX_FAILURE
    assert drv.status(codes.SSH_FXP_RENAME, "/d1", "/d3")[0] == SSH_FX_OK
    assert drv.status(codes.SSH_FXP_RENAME, "/nope", "/x")[0] == SSH_FX_NO_SUCH_FILE
    reply = drv.extended("posix-rename@openssh.com", "/c", "/b")
    assert reply.status()[0] == SSH_FX_OK
    assert tree.read("b") == b"A" and not tree.exists("c")


def test_symlink_argument_order_and_readlink(drv: Driver, tree: Tree) -> None:
    tree.write("target", b"t")
    # OpenSSH order: target path first, then the new link.
    assert drv.status(codes.SSH_FXP_SYMLINK, "target", "/link")[0] == SSH_FX_OK
    assert tree.readlink("link") == "target"
    reply = drv.call(codes.SSH_FXP_READLINK, "/link")
    assert drv.names(reply)[0][0] == b"target"
    # Text is kept as given, even an absolute one.
    assert drv.status(codes.SSH_FXP_SYMLINK, "/etc/passwd", "/abs")[0] == SSH_FX_OK
    assert tree.readlink("abs") == "/etc/passwd"
    assert drv.status(codes.SSH_FXP_SYMLINK, "x", "/link")[0] == SSH_FX_FAILURE  # exists
    assert drv.status(codes.SSH_FXP_READLINK, "/target")[0] == SSH_FX_BAD_MESSAGE  # EINVAL


def test_extensions(drv: Driver, tree: Tree) -> None:
    tree.write("f", b"data")
    reply = drv.extended("hardlink@openssh.com", "/f", "/g")
    assert reply.status()[0] == SSH_FX_OK
    assert tree.stat("g").st_ino == tree.stat("f").st_ino

    reply = drv.extended("statvfs@openssh.com", "/")
    assert reply.kind == codes.SSH_FXP_EXTENDED_REPLY
    fields = [reply.body.uint64() for _ in range(11)]
    vfs = tree.statvfs()
    assert fields[0] == vfs.f_bsize and fields[2] == vfs.f_blocks and fields[10] == vfs.f_namemax

    h = drv.open("/f", R | W)
    reply = drv.extended("fstatvfs@openssh.com", s(h))
    assert reply.kind == codes.SSH_FXP_EXTENDED_REPLY
    assert drv.extended("fsync@openssh.com", s(h)).status()[0] == SSH_FX_OK
    drv.close(h)
    assert drv.extended("fsync@openssh.com", s(h)).status()[0] == SSH_FX_NO_SUCH_FILE

    reply = drv.extended("limits@openssh.com")
    assert [reply.body.uint64() for _ in range(4)] == [
        256 * 1024 + 1024,
        256 * 1024,
        256 * 1024,
        100,
    ]

    reply = drv.extended("expand-path@openssh.com", "~/./")
    assert drv.names(reply)[0][0] == b"/"
    reply = drv.extended("expand-path@openssh.com", "~tester/f")
    assert drv.names(reply)[0][0] == b"/f"
    assert drv.extended("expand-path@openssh.com", "~root").status() == (
        SSH_FX_NO_SUCH_FILE,
        "no such user",
    )
    reply = drv.extended("home-directory", "")
    assert drv.names(reply)[0][0] == b"/"
    assert drv.extended("home-directory", "someone").status()[0] == SSH_FX_FAILURE

    ids = uint32(os.getuid()) + uint32(0xFFFFFFF0)
    reply = drv.extended("users-groups-by-id@openssh.com", s(ids), s(uint32(os.getgid())))
    users = Reader(reply.body.string())
    groups = Reader(reply.body.string())
    import grp
    import pwd

    if tree.kind == "local":
        assert users.text() == pwd.getpwuid(os.getuid()).pw_name and users.text() == ""
        assert groups.text() == grp.getgrgid(os.getgid()).gr_name
    else:  # a tree in memory has no accounts: every name is empty, shown as a number
        assert users.text() == "" and users.text() == "" and groups.text() == ""

    link = Attrs(atime=1_000, mtime=3_000).encode()
    tree.symlink("f", "sl")
    assert drv.extended("lsetstat@openssh.com", "/sl", link).status()[0] == SSH_FX_OK
    assert tree.lstat("sl").st_mtime == 3_000 and tree.stat("f").st_mtime != 3_000
    size = Attrs(size=0).encode()
    assert drv.extended("lsetstat@openssh.com", "/sl", size).status()[0] == SSH_FX_BAD_MESSAGE

    assert drv.extended("nobody@example.com", "x").status() == (
        SSH_FX_OP_UNSUPPORTED,
        "Operation unsupported",
    )


def test_copy_data(drv: Driver, tree: Tree) -> None:
    tree.write("src", bytes(range(256)) * 100)
    src = drv.open("/src", R)
    dst = drv.open("/dst", W | C)

    def copy(roff: int, length: int, woff: int) -> tuple[int, str]:
        return drv.extended(
            "copy-data", s(src), uint64(roff), uint64(length), s(dst), uint64(woff)
        ).status()

    assert copy(0, 0, 0)[0] == SSH_FX_OK  # to end of file
    assert tree.read("dst") == tree.read("src")
    assert copy(10, 20, 100_000)[0] == SSH_FX_OK
    assert tree.read("dst")[100_000:] == bytes(range(10, 30))
    assert copy(25_590, 100, 0)[0] == SSH_FX_EOF  # fewer than asked were there
    assert drv.extended("copy-data", s(src), uint64(0), uint64(0), s(src), uint64(0)).status()[
        0
    ] in (SSH_FX_FAILURE, SSH_FX_PERMISSION_DENIED)
    same = drv.open("/src", R | W)
    assert (
        drv.extended("copy-data", s(src), uint64(0), uint64(0), s(same), uint64(0)).status()[0]
        == SSH_FX_FAILURE
    )
    for h in (src, dst, same):
        drv.close(h)


# --- bad input ---------------------------------------------------------------------------------


def test_truncated_request_is_a_bad_message(drv: Driver) -> None:
    # A whole packet whose fields stop short: answered, and the session lives.
    short = request(codes.SSH_FXP_OPEN, 7, uint32(100) + b"ab")
    (reply,) = drv.feed(short)
    assert (reply.request_id, reply.status()) == (7, (SSH_FX_BAD_MESSAGE, "Bad message"))
    assert drv.realpath("/") == b"/"


def test_unknown_type_is_unsupported_and_session_lives(drv: Driver) -> None:
    (reply,) = drv.feed(request(99, 5, b"whatever"))
    assert (reply.request_id, reply.status()) == (
        5,
        (SSH_FX_OP_UNSUPPORTED, "Operation unsupported"),
    )
    assert drv.realpath("/") == b"/"


def test_second_init_fails_and_session_lives(drv: Driver) -> None:
    (reply,) = drv.feed(packet(codes.SSH_FXP_INIT, uint32(3)))
    assert reply.status() == (SSH_FX_FAILURE, "Failure")
    assert drv.realpath("/") == b"/"


def test_oversized_packet_ends_session(drv: Driver) -> None:
    assert drv.feed(uint32(256 * 1024 + 1025) + b"\x03") == []
    assert drv.session.protocol_error is not None
    assert not drv.session.wants_input


def test_too_short_packet_ends_session(drv: Driver) -> None:
    drv.feed(uint32(2) + b"\x10\x00")
    assert drv.session.protocol_error is not None


def test_request_before_init_ends_session(tree: Tree) -> None:
    d = Driver(tree.root, fs=tree.fs())
    assert d.feed(request(codes.SSH_FXP_REALPATH, 1, "/")) == []
    assert d.session.protocol_error is not None


def test_unknown_and_closed_handles(drv: Driver, tree: Tree) -> None:
    bogus = s(b"\x00\x00\x99\x99")
    assert drv.status(codes.SSH_FXP_READ, bogus, uint64(0), uint32(1))[0] == SSH_FX_FAILURE
    assert drv.status(codes.SSH_FXP_WRITE, bogus, uint64(0), s(b"x"))[0] == SSH_FX_FAILURE
    assert drv.status(codes.SSH_FXP_READDIR, bogus)[0] == SSH_FX_FAILURE
    assert drv.status(codes.SSH_FXP_FSTAT, bogus)[0] == SSH_FX_FAILURE
    assert drv.status(codes.SSH_FXP_CLOSE, bogus)[0] == SSH_FX_NO_SUCH_FILE
    tree.write("f", b"")
    h = drv.open("/f", R)
    drv.close(h)
    assert drv.read(h, 0, 1).status()[0] == SSH_FX_FAILURE
    # A directory handle is not a file handle, nor the reverse.
    d = drv.call(codes.SSH_FXP_OPENDIR, "/").body.string()
    assert drv.read(d, 0, 1).status()[0] == SSH_FX_FAILURE
    h = drv.open("/f", R)
    assert drv.status(codes.SSH_FXP_READDIR, s(h))[0] == SSH_FX_FAILURE


def test_read_length_is_capped(drv: Driver, tree: Tree) -> None:
    tree.write("big", os.urandom(600 * 1024))
    h = drv.open("/big", R)
    reply = drv.read(h, 0, 1 << 31)
    assert reply.kind == codes.SSH_FXP_DATA
    assert len(reply.body.string()) == 256 * 1024
    drv.close(h)


def test_offset_beyond_off_t_is_a_bad_message(drv: Driver, tree: Tree) -> None:
    tree.write("f", b"x")
    h = drv.open("/f", R)
    assert drv.read(h, 1 << 63, 1).status()[0] == SSH_FX_BAD_MESSAGE
    drv.close(h)


def test_handle_limit(drv: Driver, tree: Tree) -> None:
    tree.write("f", b"")
    handles = [drv.open("/f", R) for _ in range(100)]
    assert len(set(handles)) == 100
    assert drv.status(codes.SSH_FXP_OPEN, "/f", uint32(R), Attrs().encode())[0] == SSH_FX_FAILURE
    assert drv.status(codes.SSH_FXP_OPENDIR, "/")[0] == SSH_FX_FAILURE
    drv.close(handles.pop())
    handles.append(drv.open("/f", R))
    for h in handles:
        drv.close(h)


# --- concurrency, flow control, teardown --------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_close_waits_for_inflight_read(tree: Tree) -> None:
    tree.write("f", b"abc")
    d = Driver(tree.root, fs=tree.fs(), hold=True)
    d.hold = False
    d.init()
    h = d.open("/f", R)
    d.hold = True
    d.feed(request(codes.SSH_FXP_READ, 50, s(h), uint64(0), uint32(3)))
    d.feed(request(codes.SSH_FXP_CLOSE, 51, s(h)))
    assert len(d.held) == 1  # the read is in a worker; the close waits for it
    read_job = d.held.pop()
    d.hold = False
    d.run_job(read_job)
    d.run()
    replies = d.replies()
    assert [r.request_id for r in replies] == [50, 51]
    assert replies[0].body.string() == b"abc"


def test_replies_go_out_as_requests_complete(tree: Tree) -> None:
    tree.write("f", b"abc")
    d = Driver(tree.root, fs=tree.fs())
    d.init()
    h = d.open("/f", R)
    d.hold = True
    d.feed(request(codes.SSH_FXP_READ, 60, s(h), uint64(0), uint32(3)))
    d.feed(request(codes.SSH_FXP_REALPATH, 61, "/"))
    slow, fast = d.held
    d.held.clear()
    d.hold = False
    d.run_job(fast)
    d.run()
    assert [r.request_id for r in d.replies()] == [61]  # the listing did not wait
    d.run_job(slow)
    d.run()
    assert [r.request_id for r in d.replies()] == [60]


def test_replies_on_one_handle_keep_request_order(tree: Tree) -> None:
    """OpenSSH's scp truncates an upload at the first reordered write acknowledgement."""
    d = Driver(tree.root, fs=tree.fs())
    d.init()
    h = d.open("/up", W | codes.SSH_FXF_CREAT)
    d.hold = True
    for rid, offset in ((70, 0), (71, 3), (72, 6)):
        d.feed(request(codes.SSH_FXP_WRITE, rid, s(h), uint64(offset), s(b"xyz")))
    d.feed(request(codes.SSH_FXP_REALPATH, 73, "/"))
    first, second, third, other = d.held
    d.held.clear()
    d.hold = False
    for job in (third, second, other):  # the disk finishes them out of order
        d.run_job(job)
        d.run()
    assert [r.request_id for r in d.replies()] == [73]  # other work is not held up
    d.run_job(first)
    d.run()
    assert [r.request_id for r in d.replies()] == [70, 71, 72]
    assert tree.read("up") == b"xyz" * 3


def test_outstanding_requests_pause_input(tree: Tree) -> None:
    tree.write("f", b"abc")
    d = Driver(tree.root, fs=tree.fs(), limits=Limits(max_outstanding_requests=4))
    d.init()
    h = d.open("/f", R)
    d.hold = True
    for rid in range(100, 110):
        d.feed(request(codes.SSH_FXP_READ, rid, s(h), uint64(0), uint32(1)))
    assert len(d.held) == 4 and d.session.outstanding == 4
    assert not d.session.wants_input
    d.hold = False
    while d.held:
        d.run_job(d.held.pop(0))
        d.run()
    assert sorted(r.request_id for r in d.replies()) == list(range(100, 110))
    assert d.session.wants_input


def test_blocked_output_pauses_input(drv: Driver) -> None:
    drv.session.set_output_blocked(True)
    assert not drv.session.wants_input
    assert drv.feed(request(codes.SSH_FXP_REALPATH, 9, "/")) == []
    drv.session.set_output_blocked(False)
    drv.run()
    assert [r.request_id for r in drv.replies()] == [9]


def test_connection_lost_closes_every_handle(root: Path) -> None:
    tree = LocalTree(root)  # descriptors are what the local disk holds open
    tree.write("f", b"abc")
    before = _open_fds()
    d = Driver(tree.root, fs=tree.fs())
    d.init()
    for _ in range(10):
        d.open("/f", R)
    d.call(codes.SSH_FXP_OPENDIR, "/")
    assert _open_fds() > before
    d.session.connection_lost()
    d.run()
    assert d.session.finished
    assert _open_fds() == before
    assert d.session.data_to_send() == []


def test_connection_lost_while_open_in_flight(tree: Tree) -> None:
    tree.write("f", b"abc")
    before = _open_fds()
    d = Driver(tree.root, fs=tree.fs())
    d.init()
    d.hold = True
    d.feed(request(codes.SSH_FXP_OPEN, 3, "/f", uint32(R), Attrs().encode()))

    def is_open(job: Job) -> bool:
        function = getattr(job.effect, "function", None)
        return getattr(getattr(function, "func", None), "__name__", "") == "open_file"

    while not is_open(d.held[0]):  # resolve the path, ask the hook
        d.step()
    d.session.connection_lost()
    while d.held:  # the file is opened after the client left: it must be closed again
        d.step()
    assert d.session.finished and _open_fds() == before
    assert d.replies() == [] and not d.errors


def test_append_alone_opens_for_writing(drv: Driver, tree: Tree) -> None:
    tree.write("log", b"one\n")
    h = drv.open("/log", A)
    assert drv.write(h, 0, b"two\n")[0] == SSH_FX_OK
    assert drv.read(h, 0, 10).status()[0] == SSH_FX_PERMISSION_DENIED
    drv.close(h)
    assert tree.read("log") == b"one\ntwo\n"


def test_eof_answers_what_came_before(tree: Tree) -> None:
    tree.write("f", b"abc")
    d = Driver(tree.root, fs=tree.fs())
    d.init()
    h = d.open("/f", R)
    d.hold = True
    d.feed(request(codes.SSH_FXP_READ, 70, s(h), uint64(0), uint32(3)))
    d.feed(request(codes.SSH_FXP_REALPATH, 71, "/")[:-2])  # cut short by the EOF
    d.session.end_of_input()
    assert not d.session.drained
    d.hold = False
    while d.held:
        d.step()
    assert not d.session.drained  # answered, but the reply is not the driver's yet
    assert [r.request_id for r in d.replies()] == [70]
    assert d.session.drained
