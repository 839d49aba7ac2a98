"""SFTP through the whole stack: real clients over SSH to the SFTPServer subsystem."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import paramiko
import pytest

from spindlex_tw.fs.storage import in_memory
from tests.support.clients import asyncssh_connect
from tests.support.harness import OpenSSH, ServerProcess


@pytest.fixture(params=["threads", "auto-tmpfs"])
def disk_io(request: pytest.FixtureRequest) -> str:
    """Where file calls run: worker threads, or "auto" on tmpfs, which runs them inline."""
    return str(request.param)


@pytest.fixture
def root(disk_io: str, tmp_path: Path) -> Iterator[Path]:
    if disk_io == "threads":
        path = tmp_path / "root"
        path.mkdir()
        yield path
        return
    if not os.path.isdir("/dev/shm") or not in_memory("/dev/shm"):
        pytest.skip("no tmpfs at /dev/shm")
    path = Path(tempfile.mkdtemp(prefix="spindlex-sftp-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sftp_server(
    start_server: Callable[..., ServerProcess],
    client_keys: dict[str, Path],
    root: Path,
    disk_io: str,
) -> Iterator[ServerProcess]:
    yield start_server(
        env={
            "SPINDLEX_TEST_AUTHORIZED": str(client_keys["authorized"]),
            "SPINDLEX_TEST_SFTP_ROOT": str(root),
            "SPINDLEX_TEST_DISK_IO": "threads" if disk_io == "threads" else "auto",
        }
    )


def openssh_tool(
    tool: str,
    server: ServerProcess,
    client_keys: dict[str, Path],
    tmp_path: Path,
    *args: str,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    client = OpenSSH(tmp_path, server.port)
    port_flag = "-P"
    return subprocess.run(
        [
            tool,
            *client.options(),
            port_flag,
            str(server.port),
            "-i",
            str(client_keys["ed25519"]),
            *args,
        ],
        input=stdin,
        capture_output=True,
        timeout=300,
    )


def file_digest(path: Path) -> bytes:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").digest()


def test_sftp_put_get_large_file(
    sftp_server: ServerProcess, client_keys: dict[str, Path], root: Path, tmp_path: Path
) -> None:
    local = tmp_path / "big"
    with local.open("wb") as out:  # 256 MiB, as the issue asks, without holding it in memory
        block = os.urandom(1 << 20)
        for index in range(256):
            out.write(hashlib.sha256(block + bytes([index])).digest() * 32768)
    batch = f"put {local} big\nget big {tmp_path / 'back'}\n".encode()
    result = openssh_tool(
        "sftp", sftp_server, client_keys, tmp_path, "-b", "-", "alice@127.0.0.1", stdin=batch
    )
    assert result.returncode == 0, result.stderr  # exit-status 0 arrived
    digest = file_digest(local)
    assert file_digest(root / "big") == digest
    assert file_digest(tmp_path / "back") == digest


def test_scp_both_ways(
    sftp_server: ServerProcess, client_keys: dict[str, Path], root: Path, tmp_path: Path
) -> None:
    local = tmp_path / "up.bin"
    local.write_bytes(os.urandom(3 << 20))
    # scp truncates at the last in-order acknowledgement: several runs, so a
    # reordering server would be caught.
    for attempt in range(5):
        up = openssh_tool(
            "scp",
            sftp_server,
            client_keys,
            tmp_path,
            "-s",
            str(local),
            f"alice@127.0.0.1:up{attempt}.bin",
        )
        assert up.returncode == 0, up.stderr
        assert (root / f"up{attempt}.bin").read_bytes() == local.read_bytes()
    down = openssh_tool(
        "scp",
        sftp_server,
        client_keys,
        tmp_path,
        "-s",
        "alice@127.0.0.1:up0.bin",
        str(tmp_path / "down.bin"),
    )
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "down.bin").read_bytes() == local.read_bytes()


def test_asyncssh_pipelined_reads_writes_and_append(sftp_server: ServerProcess, root: Path) -> None:
    data = os.urandom(8 << 20)
    (root / "src").write_bytes(data)

    async def check() -> None:
        async with (
            asyncssh_connect(sftp_server.port) as conn,
            conn.start_sftp_client() as sftp,
        ):
            async with sftp.open("/src", "rb") as source:
                # 128 requests of 64 KiB in flight at once.
                assert await source.read(len(data), 0) == data
            async with sftp.open("/copy", "wb") as target:
                await asyncio.gather(
                    *(target.write(data[i : i + 65536], i) for i in range(0, len(data), 65536))
                )
            async with sftp.open("/log", "a") as log:
                for line in range(200):
                    await log.write(f"line {line}\n")
            with pytest.raises(asyncssh.SFTPNoSuchFile):
                await sftp.stat("/missing")
            names = {entry.filename for entry in await sftp.readdir("/")}
            assert {".", "..", "src", "copy", "log"} <= names

    asyncio.run(asyncio.wait_for(check(), 120))
    assert (root / "copy").read_bytes() == data
    assert (root / "log").read_text() == "".join(f"line {n}\n" for n in range(200))


def test_paramiko_over_ssh(sftp_server: ServerProcess, root: Path) -> None:
    (root / "a.txt").write_text("alpha")
    transport = paramiko.Transport(("127.0.0.1", sftp_server.port))
    try:
        transport.connect(username="alice", password="secret")
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        assert sftp.stat("a.txt").st_size == 5
        with pytest.raises(FileNotFoundError):
            sftp.stat("nope")
        with sftp.open("b.txt", "w") as out:
            out.write(b"beta")
        assert sorted(sftp.listdir(".")) == ["a.txt", "b.txt"]
        sftp.close()
    finally:
        transport.close()
    assert (root / "b.txt").read_bytes() == b"beta"
