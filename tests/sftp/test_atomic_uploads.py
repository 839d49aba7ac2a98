"""``SFTPServer.atomic_uploads``: an upload appears under its real name whole, or not at all.

OpenSSH's sftp (``-D``, the stdio server) and paramiko over a socket pair
drive the server; a cut upload is a client that goes away between WRITE and
CLOSE.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from spindlex_tw.sftp.codes import (
    SSH_FXF_APPEND,
    SSH_FXF_CREAT,
    SSH_FXF_EXCL,
    SSH_FXF_READ,
    SSH_FXF_TRUNC,
    SSH_FXF_WRITE,
)
from spindlex_tw.sftp.file_ops import stages
from tests.sftp.openssh import PipeServer, needs_sftp, sftp_batch

ATOMIC = "tests.sftp.servers:AtomicUploadServer"


def _temporaries(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".part"))


@pytest.fixture
def client(root: Path) -> Iterator[tuple[paramiko.SFTPClient, PipeServer]]:
    server = PipeServer(root, ATOMIC)
    sftp = paramiko.SFTPClient(server.sock)
    try:
        yield sftp, server
    finally:
        if server.proc.poll() is None:
            log = server.stop()
            assert "Traceback" not in log, log


def test_which_opens_are_staged() -> None:
    fresh = SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC
    assert stages(fresh)  # sftp put, scp, paramiko "w"
    assert stages(fresh | SSH_FXF_READ)  # "w+": starts empty as well
    assert not stages(fresh | SSH_FXF_APPEND)  # appends need the old content in place
    assert not stages(SSH_FXF_WRITE | SSH_FXF_CREAT)  # reput: writes into what is there
    assert not stages(fresh | SSH_FXF_EXCL)  # the name must appear at OPEN
    assert not stages(SSH_FXF_READ)


@needs_sftp
def test_openssh_put_lands_whole_with_its_mode(root: Path, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "upload.bin").write_bytes(payload)
    (tmp_path / "upload.bin").chmod(0o640)
    (root / "old.bin").write_bytes(b"old content")
    (root / "old.bin").chmod(0o604)
    result = sftp_batch(root, "put -p upload.bin\nput upload.bin old.bin\n", tmp_path, ATOMIC)
    assert result.returncode == 0, result.stderr
    assert (root / "upload.bin").read_bytes() == payload
    assert stat.S_IMODE((root / "upload.bin").stat().st_mode) == 0o640
    # Replacing a file keeps its permission bits, as writing it in place would.
    assert (root / "old.bin").read_bytes() == payload
    assert stat.S_IMODE((root / "old.bin").stat().st_mode) == 0o604
    assert _temporaries(root) == []


@needs_sftp
def test_openssh_reput_appends_in_place(root: Path, tmp_path: Path) -> None:
    payload = os.urandom(256 * 1024)
    (tmp_path / "resume.bin").write_bytes(payload)
    (root / "resume.bin").write_bytes(payload[:1000])
    result = sftp_batch(root, "reput resume.bin\n", tmp_path, ATOMIC)
    assert result.returncode == 0, result.stderr
    assert (root / "resume.bin").read_bytes() == payload
    assert _temporaries(root) == []


def test_cut_upload_leaves_nothing_under_the_real_name(
    client: tuple[paramiko.SFTPClient, PipeServer], root: Path
) -> None:
    sftp, server = client
    (root / "kept.bin").write_bytes(b"the previous version")
    handles = [sftp.open(f"/{name}", "w") for name in ("new.bin", "kept.bin")]
    for handle in handles:
        handle.write(b"x" * 100_000)  # acknowledged: it is on disk, under another name
    temporaries = _temporaries(root)
    assert len(temporaries) == 2 and all(t.startswith(".") for t in temporaries)
    assert {os.path.getsize(root / t) for t in temporaries} == {100_000}
    assert not (root / "new.bin").exists()
    assert (root / "kept.bin").read_bytes() == b"the previous version"
    log = server.stop()  # the client leaves without CLOSE
    assert server.proc.returncode == 0, log
    assert sorted(os.listdir(root)) == ["kept.bin"]
    assert (root / "kept.bin").read_bytes() == b"the previous version"


def test_close_renames_and_readers_see_the_whole_file(
    client: tuple[paramiko.SFTPClient, PipeServer], root: Path
) -> None:
    sftp, _ = client
    with sftp.open("/whole.bin", "w+") as handle:
        handle.write(b"abc" * 1000)
        handle.seek(0)
        assert handle.read(3) == b"abc"  # a staged file reads back what was written
        with pytest.raises(FileNotFoundError):
            sftp.stat("/whole.bin")
    assert (root / "whole.bin").read_bytes() == b"abc" * 1000
    assert _temporaries(root) == []


def test_read_only_file_is_not_replaced(
    client: tuple[paramiko.SFTPClient, PipeServer], root: Path
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may write any file")
    sftp, _ = client
    (root / "locked.bin").write_bytes(b"keep me")
    (root / "locked.bin").chmod(0o444)
    with pytest.raises(PermissionError):
        sftp.open("/locked.bin", "w")
    assert (root / "locked.bin").read_bytes() == b"keep me"
    assert _temporaries(root) == []


def test_a_directory_is_not_replaced(
    client: tuple[paramiko.SFTPClient, PipeServer], root: Path
) -> None:
    sftp, _ = client
    (root / "dir").mkdir()
    with pytest.raises(OSError):
        sftp.open("/dir", "w")
    assert (root / "dir").is_dir()
    assert _temporaries(root) == []
