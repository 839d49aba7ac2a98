"""S3FileSystem's own semantics, called directly against a real S3-compatible server (moto).

The SFTP clients' view is in tests/interop/test_s3_storage.py; here are the
cases a client cannot easily produce on demand: writes reaching the storage
out of order (as the engine's worker threads hand them over), a part upload
aborted half way, a read that jumps back, a directory too large to rename.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from spindlex_tw.exceptions import SFTPError
from spindlex_tw.fs.s3 import Bucket, S3FileSystem
from spindlex_tw.fs.s3 import filesystem as s3_filesystem
from spindlex_tw.fs.s3.download import S3Download
from spindlex_tw.fs.s3.upload import MIN_PART_SIZE
from spindlex_tw.protocol.constants import SSH_FX_OP_UNSUPPORTED
from tests.support.moto import MotoServer

NEW = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    return moto.bucket()


@pytest.fixture
def fs(moto: MotoServer, bucket: str) -> S3FileSystem:
    return S3FileSystem(Bucket(moto.client, bucket), "home/alice", part_size=MIN_PART_SIZE)


def test_writes_out_of_order_are_stored_in_order(
    fs: S3FileSystem, moto: MotoServer, bucket: str
) -> None:
    data = os.urandom(MIN_PART_SIZE * 2 + 12345)
    step = 1 << 18
    pieces = [(o, data[o : o + step]) for o in range(0, len(data), step)]
    # Each pair swapped: every second write arrives before the one it follows.
    for i in range(0, len(pieces) - 1, 2):
        pieces[i], pieces[i + 1] = pieces[i + 1], pieces[i]
    upload, _ = fs.open_path(b"/f", b"/", True, NEW, 0o644)
    for offset, piece in pieces:
        fs.write(upload, piece, offset)
    assert fs.fstat(upload).st_size == len(data)
    assert moto.keys(bucket) == []  # nothing under the name before CLOSE
    fs.close_file(upload)
    body = moto.client.get_object(Bucket=bucket, Key="home/alice/f")["Body"].read()
    assert body == data
    assert moto.uploads(bucket) == []


def test_a_write_over_what_was_written_is_refused(fs: S3FileSystem) -> None:
    upload, _ = fs.open_path(b"/f", b"/", True, NEW, 0o644)
    fs.write(upload, b"abcd", 0)
    with pytest.raises(OSError) as caught:
        fs.write(upload, b"x", 2)
    assert caught.value.errno == errno.EINVAL
    fs.abandon_file(upload)


def test_an_abandoned_upload_leaves_no_parts(
    fs: S3FileSystem, moto: MotoServer, bucket: str
) -> None:
    upload, _ = fs.open_path(b"/f", b"/", True, NEW, 0o644)
    fs.write(upload, os.urandom(MIN_PART_SIZE + 1), 0)  # one part sent
    assert moto.uploads(bucket) == ["home/alice/f"]
    fs.abandon_file(upload)
    assert moto.uploads(bucket) == []
    assert moto.keys(bucket) == []


def test_reads_jump_back_and_forth(fs: S3FileSystem, moto: MotoServer, bucket: str) -> None:
    data = os.urandom(5 << 20)
    moto.client.put_object(Bucket=bucket, Key="home/alice/big", Body=data)
    download, _ = fs.open_path(b"/big", b"/", True, os.O_RDONLY, None)
    assert isinstance(download, S3Download)
    download.blocks_kept = 2  # so that the jumps below pass the blocks kept
    for offset, length in [(4 << 20, 1000), (10, 3 << 20), (0, 100), ((5 << 20) - 7, 100)]:
        assert fs.read(download, length, offset) == data[offset : offset + length]
    assert fs.read(download, 10, 5 << 20) == b""
    fs.close_file(download)


def test_directories_are_prefixes_with_markers(
    fs: S3FileSystem, moto: MotoServer, bucket: str
) -> None:
    def loc(path: bytes) -> object:
        return fs.locate(path, b"/", True)

    fs.mkdir(loc(b"/d"), 0o755)
    with pytest.raises(FileExistsError):
        fs.mkdir(loc(b"/d"), 0o755)
    with pytest.raises(FileNotFoundError):
        fs.mkdir(loc(b"/missing/d"), 0o755)
    upload, _ = fs.open_path(b"/d/f", b"/", True, NEW, 0o644)
    fs.write(upload, b"x" * 10, 0)
    fs.close_file(upload)
    with pytest.raises(OSError) as caught:
        fs.rmdir(loc(b"/d"))
    assert caught.value.errno == errno.ENOTEMPTY
    stream = fs.opendir(loc(b"/d"))
    assert [e.name for e in fs.read_dir(stream, 10)] == [b".", b"..", b"f"]
    assert fs.usage(loc(b"/")) == (10, 1)
    fs.mkdir(loc(b"/full"), 0o755)
    moto.client.put_object(Bucket=bucket, Key="home/alice/full/x", Body=b"")
    with pytest.raises(OSError) as caught:
        fs.rename(loc(b"/d"), loc(b"/full"))
    assert caught.value.errno == errno.ENOTEMPTY
    fs.remove(loc(b"/full/x"))
    fs.rmdir(loc(b"/full"))
    fs.rename(loc(b"/d"), loc(b"/e"))
    assert moto.keys(bucket) == ["home/alice/e/", "home/alice/e/f"]
    with pytest.raises(OSError) as caught:
        fs.rename(loc(b"/e"), loc(b"/e/inside"))
    assert caught.value.errno == errno.EINVAL
    # A name that is not UTF-8 cannot be a key.
    with pytest.raises(OSError) as caught:
        fs.locate(b"/\xff", b"/", True)
    assert caught.value.errno == errno.EINVAL


def test_a_large_directory_is_not_renamed_half_way(
    fs: S3FileSystem, moto: MotoServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_filesystem, "MAX_RENAMED_OBJECTS", 2)
    for name in ("a", "b", "c"):
        moto.client.put_object(Bucket=bucket, Key=f"home/alice/d/{name}", Body=b"")
    with pytest.raises(SFTPError) as caught:
        fs.rename(fs.locate(b"/d", b"/", True), fs.locate(b"/e", b"/", True))
    assert caught.value.status_code == SSH_FX_OP_UNSUPPORTED
    assert "more than 2 objects" in caught.value.message
    assert moto.keys(bucket) == [f"home/alice/d/{n}" for n in "abc"]


def test_an_existing_object_is_only_replaced_whole(fs: S3FileSystem, tmp_path: Path) -> None:
    upload, _ = fs.open_path(b"/f", b"/", True, NEW, 0o644)
    fs.write(upload, b"old", 0)
    fs.close_file(upload)
    for flags in (os.O_WRONLY, os.O_WRONLY | os.O_APPEND, os.O_RDWR):
        with pytest.raises(SFTPError, match="writing into an existing file"):
            fs.open_path(b"/f", b"/", True, flags, None)
    with pytest.raises(FileExistsError):
        fs.open_path(b"/f", b"/", True, NEW | os.O_EXCL, 0o644)
