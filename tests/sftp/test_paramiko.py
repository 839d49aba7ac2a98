"""paramiko's SFTPClient against the server over a socket pair."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from tests.sftp.openssh import PipeServer


@pytest.fixture
def client(root: Path) -> Iterator[paramiko.SFTPClient]:
    server = PipeServer(root)
    sftp = paramiko.SFTPClient(server.sock)
    try:
        yield sftp
    finally:
        log = server.stop()
    assert server.proc.returncode == 0, log
    assert "Traceback" not in log, log


def test_stat_lstat_listdir_attr(client: paramiko.SFTPClient, root: Path) -> None:
    (root / "f").write_bytes(b"12345")
    os.symlink("f", root / "l")
    (root / "d").mkdir()
    assert client.stat("/l").st_size == 5
    assert stat.S_ISLNK(client.lstat("/l").st_mode or 0)
    entries = {a.filename: a for a in client.listdir_attr("/")}
    assert set(entries) == {"f", "l", "d"}  # paramiko drops "." and ".."
    assert stat.S_ISLNK(entries["l"].st_mode or 0)
    assert stat.S_ISDIR(entries["d"].st_mode or 0)
    assert entries["f"].longname.startswith("-rw")
    assert client.normalize(".") == "/"
    assert client.normalize("d/../f") == "/f"


def test_errors_map_to_python_exceptions(client: paramiko.SFTPClient, root: Path) -> None:
    (root / "f").write_bytes(b"")
    (root / "d").mkdir()
    (root / "d" / "x").write_bytes(b"")
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


def test_permission_denied_maps_to_permission_error(root: Path) -> None:
    (root / "f").write_bytes(b"data")
    server = PipeServer(root, "tests.sftp.servers:ReadOnlyServer")
    sftp = paramiko.SFTPClient(server.sock)
    try:
        with pytest.raises(PermissionError) as info:
            sftp.open("/f", "w")
        assert info.value.errno == errno.EACCES
        with pytest.raises(PermissionError):
            sftp.remove("/f")
        with pytest.raises(PermissionError):
            sftp.chmod("/f", 0o600)
        with sftp.open("/f") as f:
            assert f.read() == b"data"
    finally:
        server.stop()


def test_parallel_reads_and_writes(client: paramiko.SFTPClient, root: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    with client.open("/up.bin", "wb") as f:
        f.set_pipelined(True)  # many writes in flight, acknowledged later
        for i in range(0, len(data), 32768):
            f.write(data[i : i + 32768])
    assert (root / "up.bin").read_bytes() == data
    with client.open("/up.bin", "rb") as f:
        f.prefetch()  # all reads requested at once, answered in any order
        assert f.read() == data
    with client.open("/up.bin", "rb") as f:
        chunks = list(f.readv([(0, 10), (1_000_000, 100_000), (len(data) - 5, 5)]))
    assert chunks == [data[:10], data[1_000_000:1_100_000], data[-5:]]


def test_symlink_readlink_and_posix_rename(client: paramiko.SFTPClient, root: Path) -> None:
    (root / "target").write_bytes(b"t")
    client.symlink("target", "/link")  # paramiko sends OpenSSH's order
    assert os.readlink(root / "link") == "target"
    assert client.readlink("/link") == "target"
    (root / "other").write_bytes(b"o")
    client.posix_rename("/other", "/target")
    assert (root / "target").read_bytes() == b"o"


def test_setstat_family(client: paramiko.SFTPClient, root: Path) -> None:
    (root / "f").write_bytes(b"0123456789")
    client.truncate("/f", 3)
    client.chmod("/f", 0o600)
    client.chown("/f", os.getuid(), os.getgid())
    client.utime("/f", (1_000_000, 2_000_000))
    st = (root / "f").stat()
    assert (stat.S_IMODE(st.st_mode), int(st.st_mtime), st.st_size) == (0o600, 2_000_000, 3)
    with client.open("/f", "r+") as f:
        f.chmod(0o640)
        f.truncate(1)
        assert f.stat().st_size == 1
    assert stat.S_IMODE((root / "f").stat().st_mode) == 0o640
