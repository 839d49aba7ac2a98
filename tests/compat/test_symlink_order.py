"""SYMLINK's two names read in the order each client sends them, checked on disk.

OpenSSH's sftp and Paramiko send the link's target first (OpenSSH's order);
AsyncSSH sends the draft's order (new link first) to a server whose banner
does not name OpenSSH, as ours does not. Each client's ``symlink`` must make
a link that leads from its new name to the existing file, never the reverse.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from spindlex_tw.sftp.path_ops import symlink_target_first
from tests.support.clients import asyncssh_connect, paramiko_client, run_async
from tests.support.harness import OpenSSH, ServerProcess

pytestmark = pytest.mark.interop


@pytest.fixture
def sftp_server(start_server: Callable[..., ServerProcess], root: Path) -> ServerProcess:
    (root / "file").write_bytes(b"linked\n")
    return start_server(env={"SPINDLEX_TEST_SFTP_ROOT": str(root)})


def _assert_link(root: Path, name: str) -> None:
    link = root / name
    assert link.is_symlink(), f"{name} is no link: {sorted(p.name for p in root.iterdir())}"
    assert os.readlink(link) == "file"
    assert link.read_bytes() == b"linked\n"
    assert not (root / "file").is_symlink()


def test_openssh_sftp(sftp_server: ServerProcess, root: Path, tmp_path: Path) -> None:
    result = OpenSSH(tmp_path, sftp_server.port).sftp(
        "alice", "secret", "symlink file by-openssh\n"
    )
    assert result.returncode == 0, result.stderr
    _assert_link(root, "by-openssh")


def test_paramiko(sftp_server: ServerProcess, root: Path) -> None:
    client = paramiko_client(sftp_server.port)
    try:
        sftp = client.open_sftp()
        sftp.symlink("file", "by-paramiko")  # source (the target), then the new link
        sftp.close()
    finally:
        client.close()
    _assert_link(root, "by-paramiko")


def test_asyncssh(sftp_server: ServerProcess, root: Path) -> None:
    async def run() -> None:
        async with asyncssh_connect(sftp_server.port) as conn, conn.start_sftp_client() as sftp:
            await sftp.symlink("file", "by-asyncssh")  # oldpath (the target), then newpath

    run_async(run())
    _assert_link(root, "by-asyncssh")


@pytest.mark.parametrize(
    ("identification", "target_first"),
    [
        ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", True),
        ("SSH-2.0-paramiko_3.4.0", True),
        ("SSH-2.0-libssh2_1.10.0", True),
        ("SSH-2.0-PuTTY_Release_0.78", True),
        ("SSH-2.0-Go", True),
        ("SSH-2.0-AsyncSSH_2.14.2", False),
        ("SSH-2.0-AsyncSSH_2.14.2 OpenSSH-compatible", True),
        ("", True),
    ],
)
def test_order_by_identification(identification: str, target_first: bool) -> None:
    assert symlink_target_first(identification) is target_first
