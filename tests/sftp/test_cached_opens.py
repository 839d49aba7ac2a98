"""OPEN for reading on the event-loop thread (``open_cached``), with real clients.

With the root on a disk, an OPEN that only reads is tried on the reactor
thread when every name is in the kernel's caches, and goes to a worker
otherwise. Whichever way it goes the client gets what it got before: the
answers here are compared with those of a server that runs every call the
worker's way (``InlineServer`` runs the worker's call, never the attempt).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import paramiko
import pytest
import pytest_twisted

from spindlex_tw.fs import openat2
from spindlex_tw.fs.storage import in_memory
from spindlex_tw.server.sftp_server import SFTPServer
from spindlex_tw.sftp import codes
from spindlex_tw.tx.blocking import BlockingPool
from tests.sftp.openssh import PipeServer, needs_sftp, sftp_batch
from tests.sftp.test_tx import FakeChannel, _handle, _started

pytestmark = [
    needs_sftp,
    pytest.mark.skipif(not openat2.cached_usable(), reason="no openat2 with RESOLVE_CACHED"),
    pytest.mark.timeout(120, method="thread"),
]

INLINE = "tests.sftp.servers:InlineServer"  # the worker's calls, never an attempt


@pytest.fixture
def disk_root(root: Path, tmp_path: Path) -> Path:
    """A root on a disk with nested files, links inside it and out of it, a FIFO."""
    if in_memory(str(root)):
        pytest.skip("the temporary directory is in memory (tmpfs): OPEN runs inline anyway")
    for i in range(3):
        sub = root / "src" / f"d{i}" / "inner"
        sub.mkdir(parents=True)
        for j in range(4):
            (sub / f"f{j}").write_bytes(f"{i}/{j}".encode() * (j + 1))
    (root / "src" / "top").write_bytes(b"top")
    os.symlink("d0/inner", root / "src" / "dir-link")
    os.symlink("/src/top", root / "src" / "file-link")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "canary").write_bytes(b"canary")
    os.symlink(tmp_path / "outside" / "canary", root / "out")
    os.symlink("../../outside", root / "src" / "out-dir")
    os.mkfifo(root / "fifo")
    return root


def test_get_r_of_nested_files_and_links_inside_the_root(disk_root: Path, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    batch = "get -r src back\nget src/file-link via-file-link\nget src/dir-link/f2 via-dir-link\n"
    result = sftp_batch(disk_root, batch, local)
    assert result.returncode == 0, result.stderr
    files = 0
    for directory, _, names in os.walk(disk_root / "src"):
        for name in names:
            path = Path(directory, name)
            if path.is_symlink():
                continue  # get -r copies files and directories only
            files += 1
            copy = local / "back" / path.relative_to(disk_root / "src")
            assert copy.read_bytes() == path.read_bytes()
    assert files == 13
    # Links inside the root are followed there, as the walk resolves them.
    assert (local / "via-file-link").read_bytes() == b"top"
    assert (local / "via-dir-link").read_bytes() == b"0/2" * 3


REFUSED = """\
-get out
-get src/out-dir/canary
-get ../outside/canary
-get src/d1/../top from-dotdot
-get src/dir-link/f1 through-link
-get fifo
-get src
"""


def test_refusals_and_oddities_answer_as_the_worker_does(disk_root: Path, tmp_path: Path) -> None:
    answers = []
    for server_class in (None, INLINE):
        local = tmp_path / ("inline" if server_class else "default")
        local.mkdir()
        result = sftp_batch(disk_root, REFUSED, local, server_class)
        answers.append((result.returncode, result.stdout, result.stderr))
        assert sorted(os.listdir(local)) == ["from-dotdot", "through-link"]
        assert (local / "from-dotdot").read_bytes() == b"top"
    assert answers[0] == answers[1]
    assert (tmp_path / "outside" / "canary").read_bytes() == b"canary"


def _paramiko_answers(root: Path, server_class: str | None) -> list[object]:
    server = PipeServer(root, server_class)
    client = paramiko.SFTPClient(server.sock)
    answers: list[object] = []
    for path in ("/fifo", "/src", "/src/d0", "/out", "/src/out-dir/canary", "/src/d2/../top"):
        try:
            with client.open(path, "rb") as f:
                answers.append(f.read())
        except OSError as exc:
            answers.append((type(exc).__name__, exc.errno, str(exc)))
    client.close()
    log = server.stop()
    assert server.proc.returncode == 0, log
    assert "Traceback" not in log, log
    return answers


def test_paramiko_opens_of_a_fifo_a_directory_and_links_out(disk_root: Path) -> None:
    assert _paramiko_answers(disk_root, None) == _paramiko_answers(disk_root, INLINE)


@pytest_twisted.ensureDeferred
async def test_a_cached_read_open_stays_on_the_reactor_and_a_write_open_does_not(
    disk_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Twisted adapter as on a disk root ("auto": threads): hand-offs counted per OPEN."""
    monkeypatch.setattr(SFTPServer, "disk_io", "threads")
    handed: list[Any] = []
    submit = BlockingPool.submit

    def counted(pool: BlockingPool, function: Any, done: Any) -> None:
        handed.append(function)
        submit(pool, function, done)

    monkeypatch.setattr(BlockingPool, "submit", counted)
    os.stat(disk_root / "src" / "d1" / "inner" / "f3")  # its names now in the dentry cache
    channel: FakeChannel = await _started(disk_root)
    handle = await _handle(channel, 1, "/src/d1/inner/f3", codes.SSH_FXF_READ)
    assert handle and handed == []
    handle = await _handle(channel, 2, "/src/new", codes.SSH_FXF_WRITE | codes.SSH_FXF_CREAT)
    assert handle and [f.func.__name__ for f in handed] == ["open_path"]
    # A link on the way: the worker resolves it, as before.
    await _handle(channel, 3, "/src/dir-link/f0", codes.SSH_FXF_READ)
    assert [f.func.__name__ for f in handed] == ["open_path", "open_path"]
    channel.protocol.connectionLost(None)
