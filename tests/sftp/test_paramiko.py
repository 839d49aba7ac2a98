"""paramiko's SFTPClient against the server over a socket pair, on the disk and in memory."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from typing import Protocol

import paramiko
import pytest

from tests.sftp.openssh import PipeServer
from tests.sftp.served import Served


class Session:
    """paramiko's client of a stdio server serving ``served`` as it is when this starts."""

    def __init__(self, served: Served, server_class: str | None = None) -> None:
        served.hand_over()
        self.served = served
        self.server = PipeServer(served.root, server_class, served.server_args())
        self.client = paramiko.SFTPClient(self.server.sock)
        self.finished = False

    def finish(self) -> None:
        """End the session; then ``served.tree`` holds what it left."""
        self.finished = True
        log = self.server.stop()
        assert self.server.proc.returncode == 0, log
        assert "Traceback" not in log, log
        self.served.take_back()


class Start(Protocol):
    def __call__(self, server_class: str | None = None) -> Session: ...


@pytest.fixture
def start(served: Served) -> Iterator[Start]:
    sessions: list[Session] = []

    def begin(server_class: str | None = None) -> Session:
        sessions.append(Session(served, server_class))
        return sessions[-1]

    yield begin
    for session in sessions:
        if not session.finished:  # the test failed before finishing it
            session.server.stop()


def test_stat_lstat_listdir_attr(served: Served, start: Start) -> None:
    served.tree.write("f", b"12345")
    served.tree.symlink("f", "l")
    served.tree.mkdir("d")
    session = start()
    client = session.client
    assert client.stat("/l").st_size == 5
    assert stat.S_ISLNK(client.lstat("/l").st_mode or 0)
    entries = {a.filename: a for a in client.listdir_attr("/")}
    assert set(entries) == {"f", "l", "d"}  # paramiko drops "." and ".."
    assert stat.S_ISLNK(entries["l"].st_mode or 0)
    assert stat.S_ISDIR(entries["d"].st_mode or 0)
    assert entries["f"].longname.startswith("-rw")
    assert client.normalize(".") == "/"
    assert client.normalize("d/../f") == "/f"
    session.finish()


def test_errors_map_to_python_exceptions(served: Served, start: Start) -> None:
    served.tree.write("f", b"")
    served.tree.mkdir("d")
    served.tree.write("d/x", b"")
    session = start()
    client = session.client
    with pytest.raises(FileNotFoundError):
        client.stat("/missing")
    with pytest.raises(FileNotFoundError):
        client.open("/missing/file", "w")
    with pytest.raises(FileNotFoundError):
        client.remove("/missing")
    with pytest.raises(OSError) as info:
        client.rmdir("/d")  # not empty
    assert "Failure" in str(info.value)
    with pytest.raises(OSError):
        client.mkdir("/d")
    with pytest.raises(OSError):
        client.rename("/f", "/d")  # exists
    session.finish()
    assert served.listdir() == ["d", "f"] and served.listdir("d") == ["x"]


def test_permission_denied_maps_to_permission_error(served: Served, start: Start) -> None:
    served.tree.write("f", b"data")
    mode = served.tree.stat("f").st_mode
    session = start("tests.sftp.servers:ReadOnlyServer")
    sftp = session.client
    with pytest.raises(PermissionError) as info:
        sftp.open("/f", "w")
    assert info.value.errno == errno.EACCES
    with pytest.raises(PermissionError):
        sftp.remove("/f")
    with pytest.raises(PermissionError):
        sftp.chmod("/f", 0o600)
    with sftp.open("/f") as f:
        assert f.read() == b"data"
    session.finish()
    assert served.tree.read("f") == b"data"
    assert served.tree.stat("f").st_mode == mode


def test_parallel_reads_and_writes(served: Served, start: Start) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    session = start()
    client = session.client
    with client.open("/up.bin", "wb") as f:
        f.set_pipelined(True)  # many writes in flight, acknowledged later
        for i in range(0, len(data), 32768):
            f.write(data[i : i + 32768])
    with client.open("/up.bin", "rb") as f:
        f.prefetch()  # all reads requested at once, answered in any order
        assert f.read() == data
    with client.open("/up.bin", "rb") as f:
        chunks = list(f.readv([(0, 10), (1_000_000, 100_000), (len(data) - 5, 5)]))
    assert chunks == [data[:10], data[1_000_000:1_100_000], data[-5:]]
    session.finish()
    assert served.tree.read("up.bin") == data


def test_symlink_readlink_and_posix_rename(served: Served, start: Start) -> None:
    served.tree.write("target", b"t")
    served.tree.write("other", b"o")
    session = start()
    client = session.client
    client.symlink("target", "/link")  # paramiko sends OpenSSH's order
    assert client.readlink("/link") == "target"
    client.posix_rename("/other", "/target")
    session.finish()
    assert served.tree.readlink("link") == "target"
    assert served.tree.read("target") == b"o" and not served.tree.exists("other")


def test_setstat_family(served: Served, start: Start) -> None:
    served.tree.write("f", b"0123456789")
    served.tree.write("g", b"0123456789")
    session = start()
    client = session.client
    client.truncate("/f", 3)
    client.chmod("/f", 0o600)
    client.chown("/f", os.getuid(), os.getgid())
    client.utime("/f", (1_000_000, 2_000_000))
    with client.open("/g", "r+") as f:
        f.chmod(0o640)
        f.truncate(1)
        assert f.stat().st_size == 1
    session.finish()
    st = served.tree.stat("f")
    assert (stat.S_IMODE(st.st_mode), int(st.st_mtime), st.st_size) == (0o600, 2_000_000, 3)
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    st = served.tree.stat("g")
    assert (stat.S_IMODE(st.st_mode), st.st_size) == (0o640, 1)
