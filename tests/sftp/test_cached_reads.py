"""Reads from the page cache on the reactor thread (RWF_NOWAIT), and their fallbacks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from spindlex_tw.fs.local import CachedReadUnsupported, LocalFileSystem
from spindlex_tw.fs.storage import in_memory
from spindlex_tw.sftp.codes import SSH_FXF_READ
from spindlex_tw.sftp.file_ops import _read_cached
from spindlex_tw.sftp.handles import FileHandle

DATA = os.urandom(300_000)


def _nowait_supported(directory: Path) -> bool:
    probe = directory / "probe"
    probe.write_bytes(b"x")
    fd = os.open(probe, os.O_RDONLY)
    try:
        LocalFileSystem.read_cached(fd, 1, 0)
        return True
    except CachedReadUnsupported:
        return False
    finally:
        os.close(fd)
        probe.unlink()


@pytest.fixture
def disk_file(tmp_path: Path) -> Iterator[int]:
    if in_memory(str(tmp_path)) or not _nowait_supported(tmp_path):
        pytest.skip("the temporary directory cannot read with RWF_NOWAIT (tmpfs?)")
    path = tmp_path / "data"
    path.write_bytes(DATA)
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def test_cached_data_is_read_whole_and_the_end_of_file_is_empty(disk_file: int) -> None:
    assert LocalFileSystem.read_cached(disk_file, 65536, 1000) == DATA[1000:66536]
    assert LocalFileSystem.read_cached(disk_file, 10, len(DATA)) == b""
    # A read running past the end is short, and answered: the file's size says
    # it is the end, not a partly cached range (a small file's only READ).
    assert LocalFileSystem.read_cached(disk_file, 65536, len(DATA) - 10) == DATA[-10:]


def test_a_partly_cached_read_is_left_to_a_worker(disk_file: int) -> None:
    os.fsync(disk_file)
    os.posix_fadvise(disk_file, 0, 0, os.POSIX_FADV_DONTNEED)
    assert LocalFileSystem.read(disk_file, 4096, 0) == DATA[:4096]  # cached again
    # Whatever the kernel read ahead, never a short answer short of the end.
    got = LocalFileSystem.read_cached(disk_file, len(DATA), 0)
    assert got is None or got == DATA


def test_read_only_files_close_at_once_unless_their_last_name_is_gone(tmp_path: Path) -> None:
    fs = LocalFileSystem(str(tmp_path))
    kept, gone = tmp_path / "kept", tmp_path / "gone"
    kept.write_bytes(b"k")
    gone.write_bytes(b"g")
    fd = os.open(kept, os.O_RDONLY)
    assert fs.close_read_only(fd) is True
    with pytest.raises(OSError):
        os.fstat(fd)  # closed
    fd = os.open(gone, os.O_RDONLY)
    gone.unlink()
    try:
        # Its close frees the file: disk work, for a worker.
        assert fs.close_read_only(fd) is None
        assert os.fstat(fd).st_nlink == 0  # still open
    finally:
        os.close(fd)

    class Counting(LocalFileSystem):
        closed: list[int] = []

        def close_file(self, fd: int) -> None:
            self.closed.append(fd)
            os.close(fd)

    # A subclass's own close_file runs where it always did, on a worker.
    fd = os.open(kept, os.O_RDONLY)
    counting = Counting(str(tmp_path))
    assert counting.close_read_only(fd) is None
    counting.close_file(fd)
    assert counting.closed == [fd]
    fs.close()
    counting.close()


def test_a_read_that_would_wait_is_refused_or_served_right(disk_file: int) -> None:
    os.fsync(disk_file)
    os.posix_fadvise(disk_file, 0, 0, os.POSIX_FADV_DONTNEED)
    # The kernel drops clean pages when asked, but need not; either way the
    # answer is never wrong data.
    assert LocalFileSystem.read_cached(disk_file, 65536, 0) in (None, DATA[:65536])


def test_tmpfs_refuses_and_the_handle_stops_asking() -> None:
    if not os.path.isdir("/dev/shm") or not in_memory("/dev/shm"):
        pytest.skip("no tmpfs at /dev/shm")
    with tempfile.NamedTemporaryFile(dir="/dev/shm") as f:
        f.write(DATA)
        f.flush()
        fd = os.open(f.name, os.O_RDONLY)
        try:
            if _nowait_supported(Path(f.name).parent):
                pytest.skip("this kernel's tmpfs reads with RWF_NOWAIT")
            handle = FileHandle(b"/f", f.name, fd, SSH_FXF_READ)
            fs = LocalFileSystem("/dev/shm")
            assert _read_cached(fs, handle, 100, 0) is None
            assert not handle.cached_reads
            assert _read_cached(fs, handle, 100, 0) is None  # without another system call
            fs.close()
        finally:
            os.close(fd)
