"""Dropbear's client, dbclient, against our server: a command, and data both ways.

dbclient sends a guessed first key exchange packet (curve25519-sha256) where we
prefer mlkem768x25519-sha256, and compresses (zlib@openssh.com) by default.
It exits 0 even when the server disconnects it, so each test checks the output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.harness import ServerProcess

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        shutil.which("dbclient") is None,
        reason="Dropbear's dbclient is not installed (apt-get install dropbear-bin)",
    ),
]


def dbclient(
    port: int, home: Path, command: str, data: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``dbclient`` as alice, password from DROPBEAR_PASSWORD, host key not checked."""
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "DROPBEAR_PASSWORD": "secret"}
    return subprocess.run(
        ["dbclient", "-y", "-y", "-p", str(port), "alice@127.0.0.1", command],
        input=data,
        stdin=None if data is not None else subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=120,
    )


def negotiated_compression(server: ServerProcess) -> bool:
    return "compression_c2s='zlib@openssh.com', compression_s2c='zlib@openssh.com'" in server.log()


def test_command(server: ServerProcess, tmp_path: Path) -> None:
    result = dbclient(server.port, tmp_path / "home", "echo from dropbear")
    assert result.stdout == b"from dropbear\n", result.stderr
    assert result.returncode == 0
    log = server.log()
    assert "SSH-2.0-dropbear" in log
    assert "unexpected key exchange message" not in log
    assert "login alice" in log


@pytest.mark.parametrize("rekey_bytes", [None, 1 << 20], ids=["no-rekey", "server-rekey-1M"])
def test_data_both_ways(
    start_server: Callable[..., ServerProcess], tmp_path: Path, rekey_bytes: int | None
) -> None:
    settings = {"transport": {"rekey_bytes": rekey_bytes}} if rekey_bytes else {}
    server = start_server(settings=settings)
    data = os.urandom(2 << 20).hex().encode()  # 4 MiB up, the same 4 MiB back down
    result = dbclient(server.port, tmp_path / "home", "cat", data)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == len(data), result.stderr
    assert result.stdout == data
    assert negotiated_compression(server)
    # Compressed, the 4 MiB are about 2.2 MB each way: with 1M the server
    # re-keys at least once (dbclient itself would wait for 1 GB or 8 hours).
    exchanges = server.log().count("key exchange with 127.0.0.1:")
    assert exchanges >= (2 if rekey_bytes else 1)
    assert "Traceback" not in server.log()
