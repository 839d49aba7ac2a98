"""zlib@openssh.com across key re-exchanges, with OpenSSH, AsyncSSH and Paramiko.

Every NEWKEYS starts fresh zlib streams in each direction (OpenSSH, AsyncSSH
and Paramiko all do so); a server that kept its old streams broke each
compressed session at its first re-key. Each test moves 16 MiB down and 16 MiB
up by SFTP through many re-keys, started by the client or by the server.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncssh
import paramiko
import pytest

from tests.support.harness import OpenSSH, ServerProcess
from tests.support.twistd import Twistd, isolated_home

pytestmark = pytest.mark.interop

ZLIB = "zlib@openssh.com"
SIZE = 16 << 20


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 MiB that zlib halves (hex of random bytes): compressed, yet never trivial."""
    path = tmp_path_factory.mktemp("payload") / "payload.txt"
    path.write_bytes(os.urandom(SIZE // 2).hex().encode())
    return path


@pytest.fixture
def root(tmp_path: Path, payload: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    os.link(payload, path / "down.txt")
    return path


def digest(path: Path) -> bytes:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").digest()


def assert_both_ways(payload: Path, root: Path, downloaded: Path) -> None:
    assert downloaded.stat().st_size == SIZE
    assert digest(downloaded) == digest(payload)
    assert (root / "up.txt").stat().st_size == SIZE
    assert digest(root / "up.txt") == digest(payload)


def key_exchanges(server: ServerProcess) -> int:
    """Key exchanges the server completed, by its own log (one connection per test)."""
    return server.log().count("key exchange with 127.0.0.1:")


@pytest.fixture
def sftp_server(
    start_server: Callable[..., ServerProcess], client_keys: dict[str, Path], root: Path
) -> Callable[..., ServerProcess]:
    def start(**settings: object) -> ServerProcess:
        return start_server(
            settings=settings,
            env={
                "SPINDLEX_TEST_AUTHORIZED": str(client_keys["authorized"]),
                "SPINDLEX_TEST_SFTP_ROOT": str(root),
            },
        )

    return start


# --- OpenSSH ---------------------------------------------------------------------------------


def openssh_sftp(
    port: int, tmp: Path, identity: Path, user: str, payload: Path, extra: list[str]
) -> subprocess.CompletedProcess[bytes]:
    """sftp -C: get down.txt, put the payload as up.txt; LogLevel DEBUG1 shows each NEWKEYS."""
    client = OpenSSH(tmp, port)
    batch = f"get down.txt {tmp / 'got.txt'}\nput {payload} up.txt\n"
    return subprocess.run(
        [
            "sftp",
            "-C",
            *client.options(extra=["LogLevel=DEBUG1", *extra]),
            "-P",
            str(port),
            "-i",
            str(identity),
            "-o",
            "IdentitiesOnly=yes",
            "-b",
            "-",
            f"{user}@127.0.0.1",
        ],
        input=batch.encode(),
        capture_output=True,
        timeout=300,
    )


def newkeys(result: subprocess.CompletedProcess[bytes]) -> int:
    return result.stderr.count(b"SSH2_MSG_NEWKEYS received")


def test_openssh_sftp_compressed_with_client_rekeylimit(
    sftp_server: Callable[..., ServerProcess],
    client_keys: dict[str, Path],
    root: Path,
    payload: Path,
    tmp_path: Path,
) -> None:
    server = sftp_server()
    result = openssh_sftp(
        server.port, tmp_path, client_keys["ed25519"], "alice", payload, ["RekeyLimit=256K"]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert b"compression: zlib@openssh.com" in result.stderr
    assert_both_ways(payload, root, tmp_path / "got.txt")
    # 16 MiB each way, about half that on the wire: dozens of re-keys.
    assert newkeys(result) >= 20
    assert key_exchanges(server) >= 20
    assert "Traceback" not in server.log()


def test_openssh_sftp_compressed_with_twistd_rekey_limit(
    client_keys: dict[str, Path], root: Path, payload: Path, tmp_path: Path
) -> None:
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--sftp-root",
            str(root),
            "--authorized-keys",
            str(client_keys["authorized"]),
            "--rekey-limit",
            "1M",
        ],
        tmp_path,
        isolated_home(tmp_path),
    )
    try:
        port = server.ports()[0]
        result = openssh_sftp(
            port, tmp_path, client_keys["ed25519"], getpass.getuser(), payload, []
        )
        assert result.returncode == 0, result.stderr[-3000:] + server.log().encode()
    finally:
        server.stop()
    assert b"compression: zlib@openssh.com" in result.stderr
    assert_both_ways(payload, root, tmp_path / "got.txt")
    # OpenSSH re-keys on its own only after gigabytes: these were the server's.
    assert b"SSH2_MSG_KEXINIT sent" in result.stderr
    assert newkeys(result) >= 6


# --- AsyncSSH --------------------------------------------------------------------------------


def asyncssh_sftp(port: int, payload: Path, got: Path, **options: object) -> str:
    async def transfer() -> str:
        async with asyncssh.connect(
            "127.0.0.1",
            port,
            username="alice",
            password="secret",
            known_hosts=None,
            client_keys=None,
            compression_algs=[ZLIB],
            **options,
        ) as conn:
            async with conn.start_sftp_client() as sftp:
                await sftp.get("down.txt", str(got))
                await sftp.put(str(payload), "up.txt")
            return str(conn.get_extra_info("send_compression"))

    return asyncio.run(asyncio.wait_for(transfer(), 300))


def test_asyncssh_compressed_with_client_rekey(
    sftp_server: Callable[..., ServerProcess], root: Path, payload: Path, tmp_path: Path
) -> None:
    server = sftp_server()
    got = tmp_path / "got.txt"
    assert asyncssh_sftp(server.port, payload, got, rekey_bytes=256 * 1024) == ZLIB
    assert_both_ways(payload, root, got)
    assert key_exchanges(server) >= 20
    assert "Traceback" not in server.log()


def test_asyncssh_compressed_with_server_rekey(
    sftp_server: Callable[..., ServerProcess], root: Path, payload: Path, tmp_path: Path
) -> None:
    server = sftp_server(transport={"rekey_bytes": 1 << 20})
    got = tmp_path / "got.txt"
    assert asyncssh_sftp(server.port, payload, got) == ZLIB
    assert_both_ways(payload, root, got)
    assert key_exchanges(server) >= 6  # AsyncSSH itself re-keys only after 1 GB
    assert "Traceback" not in server.log()


# --- Paramiko --------------------------------------------------------------------------------


@contextmanager
def paramiko_transport(port: int, rekey_bytes: int | None = None) -> Iterator[paramiko.Transport]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    transport = paramiko.Transport(sock)
    transport.use_compression(True)
    if rekey_bytes is not None:
        transport.packetizer.REKEY_BYTES = rekey_bytes
    try:
        transport.start_client(timeout=30)
        transport.auth_password("alice", "secret")
        yield transport
    finally:
        transport.close()


def paramiko_sftp(port: int, payload: Path, got: Path, rekey_bytes: int | None = None) -> None:
    with paramiko_transport(port, rekey_bytes) as transport:
        assert (transport.local_compression, transport.remote_compression) == (ZLIB, ZLIB)
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        sftp.get_channel().settimeout(60)
        sftp.get("down.txt", str(got))
        sftp.put(str(payload), "up.txt")
        sftp.close()


def test_paramiko_compressed_with_client_rekey(
    sftp_server: Callable[..., ServerProcess], root: Path, payload: Path, tmp_path: Path
) -> None:
    server = sftp_server()
    got = tmp_path / "got.txt"
    paramiko_sftp(server.port, payload, got, rekey_bytes=256 * 1024)
    assert_both_ways(payload, root, got)
    assert key_exchanges(server) >= 20
    assert "Traceback" not in server.log()


def test_paramiko_compressed_with_server_rekey(
    sftp_server: Callable[..., ServerProcess], root: Path, payload: Path, tmp_path: Path
) -> None:
    server = sftp_server(transport={"rekey_bytes": 1 << 20})
    got = tmp_path / "got.txt"
    paramiko_sftp(server.port, payload, got)
    assert_both_ways(payload, root, got)
    assert key_exchanges(server) >= 6  # Paramiko itself re-keys only after 512 MiB
    assert "Traceback" not in server.log()
