"""A quota on one directory of the served tree, hit by real clients: rename in from elsewhere.

Paramiko and OpenSSH's sftp against the stdio server serving a root whose
/home alone counts (tests/sftp/quota_servers.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from tests.sftp.openssh import PipeServer, needs_sftp, sftp_batch

SERVER = "tests.sftp.quota_servers:HomeQuotaServer"


@pytest.fixture
def tree(root: Path) -> Path:
    (root / "home").mkdir()
    (root / "incoming" / "batch").mkdir(parents=True)
    (root / "home" / "kept").write_bytes(b"k" * 40 * 1024)
    (root / "incoming" / "big").write_bytes(b"b" * 30 * 1024)
    (root / "incoming" / "batch" / "small").write_bytes(b"s" * 10 * 1024)
    return root


@pytest.fixture
def client(tree: Path) -> Iterator[paramiko.SFTPClient]:
    server = PipeServer(tree, SERVER)
    sftp = paramiko.SFTPClient(server.sock)
    try:
        yield sftp
    finally:
        log = server.stop()
    assert server.proc.returncode == 0, log
    assert "Traceback" not in log, log


def test_rename_in_from_elsewhere_must_fit(client: paramiko.SFTPClient, tree: Path) -> None:
    with pytest.raises(OSError, match="Quota exceeded"):
        client.rename("/incoming/big", "/home/big")  # 40K + 30K > 64K
    with pytest.raises(OSError, match="Quota exceeded"):
        client.posix_rename("/incoming/big", "/home/big")
    assert (tree / "incoming" / "big").exists() and not (tree / "home" / "big").exists()
    client.rename("/incoming/batch", "/home/batch")  # a directory of 10K fits
    assert (tree / "home" / "batch" / "small").stat().st_size == 10 * 1024
    # Outside /home nothing counts; moving out of it gives the room back.
    with client.open("/incoming/free", "w") as f:
        f.write(b"f" * 100 * 1024)
    client.rename("/home/kept", "/incoming/kept")
    client.rename("/incoming/big", "/home/big")
    assert (tree / "home" / "big").stat().st_size == 30 * 1024


@needs_sftp
def test_openssh_put_and_rename_into_the_quota(tree: Path, tmp_path: Path) -> None:
    upload = tmp_path / "up.bin"
    upload.write_bytes(b"u" * 30 * 1024)
    done = sftp_batch(
        tree,
        f"put {upload} /incoming/up.bin\n-rename /incoming/up.bin /home/up.bin\n"
        f"-put {upload} /home/direct.bin\nls -1 /home\n",
        tmp_path,
        SERVER,
    )
    assert done.returncode == 0, done.stderr
    assert (tree / "incoming" / "up.bin").exists() and not (tree / "home" / "up.bin").exists()
    assert "Failure" in done.stderr, done.stderr
    # The refused upload holds only what fitted under the quota.
    assert (tree / "home" / "direct.bin").stat().st_size <= 24 * 1024
