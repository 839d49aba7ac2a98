"""OpenSSH's sftp client reading from the local disk: cold files and small files.

With the root on a disk, READs are tried from the page cache on the reactor
thread (a short read at the end of a file included) and read-only files are
closed there too; what is not cached goes to worker threads. Whatever path
a request takes, the client gets the file's bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spindlex_tw.fs.storage import in_memory
from tests.sftp.openssh import needs_sftp, sftp_batch

pytestmark = needs_sftp

THREADS = "tests.sftp.servers:ThreadsServer"


@pytest.fixture
def disk_root(root: Path) -> Path:
    if in_memory(str(root)):
        pytest.skip("the temporary directory is in memory (tmpfs): nothing is read from a disk")
    return root


def _evict(path: Path) -> None:
    """Drop ``path`` from the page cache, so the next read goes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_cold_file_downloads_whole(disk_root: Path, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 4321)
    (disk_root / "cold.bin").write_bytes(data)
    _evict(disk_root / "cold.bin")
    local = tmp_path / "local"
    local.mkdir()
    result = sftp_batch(disk_root, "get cold.bin\n", local, THREADS)
    assert result.returncode == 0, result.stderr
    assert (local / "cold.bin").read_bytes() == data


def test_small_files_download_whole_cached_or_cold(disk_root: Path, tmp_path: Path) -> None:
    tree = disk_root / "small"
    tree.mkdir()
    # Empty, smaller than a READ, exactly one READ (OpenSSH asks 32 KiB at first), larger.
    sizes = [0, 1, 4096, 32768, 32769, 100_000]
    expected = {}
    for i in range(120):
        data = os.urandom(sizes[i % len(sizes)])
        (tree / f"f{i:03}").write_bytes(data)
        expected[f"f{i:03}"] = data
        if i % 2:
            _evict(tree / f"f{i:03}")
    local = tmp_path / "local"
    local.mkdir()
    result = sftp_batch(disk_root, "get -r small back\n", local, THREADS)
    assert result.returncode == 0, result.stderr
    got = {path.name: path.read_bytes() for path in (local / "back").iterdir()}
    assert got == expected

