"""--upload-rate / --download-rate: the limit holds within 10% over ~5 s.

A measurement of the server's rate limiting, bounded in time: each transfer
is sized to take five seconds at the limit, and the band is the issue's
10%. Two concurrent sessions of one user share one limit, so together they
take as long as one transfer of both their bytes.

Uploads go through Paramiko, downloads through AsyncSSH. Paramiko's prefetch
has a race: when the replies so far are all in before its prefetch thread has
registered the next request, it marks the prefetch done, reads the rest with
one synchronous READ at a time, and its thread still requests every chunk.
Each byte then crosses twice, so under a limit the download takes twice as
long. It happened about once in ten runs on a loaded machine.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import asyncssh_connect, paramiko_client, run_async
from tests.support.harness import OpenSSH
from tests.support.twistd import Twistd, isolated_home

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

RATE = 1 << 20  # --upload-rate 1M and --download-rate 1M: bytes per second
SECONDS = 5
SIZE = RATE * SECONDS


@pytest.fixture
def served(tmp_path: Path) -> Path:
    directory = tmp_path / "served"
    directory.mkdir()
    return directory


@pytest.fixture
def port(tmp_path: Path, served: Path) -> Iterator[int]:
    twistd = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            "memory:alice:secret",
            "--sftp-root",
            str(served),
            "--upload-rate",
            "1M",
            "--download-rate",
            "1M",
        ],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [listening] = twistd.ports()
        yield listening
    finally:
        twistd.stop()


def _within_band(transfer: Callable[[], tuple[int, float]], limit: int = RATE) -> None:
    """Run ``transfer`` (bytes moved, seconds taken) and check its rate is within 10%.

    Above the band the limit leaked: that fails at once. Below it, the client
    could not keep up (the suite shares two cores with other runs), so the
    transfer is measured once more before that counts as a failure.
    """
    for attempt in (1, 2):
        nbytes, elapsed = transfer()
        rate = nbytes / elapsed
        assert rate <= 1.1 * limit, f"over the limit: {rate:.0f} B/s over {elapsed:.2f} s"
        if rate >= 0.9 * limit or attempt == 2:
            break
    assert rate >= 0.9 * limit, f"under the limit twice: {rate:.0f} B/s over {elapsed:.2f} s"


def _upload(port: int, name: str, data: bytes, timings: dict[str, float]) -> None:
    client = paramiko_client(port)
    try:
        sftp = client.open_sftp()
        started = time.monotonic()
        sftp.putfo(io.BytesIO(data), name)
        timings[name] = time.monotonic() - started
    finally:
        client.close()


def test_upload_limit_shared_by_two_sessions(port: int) -> None:
    half = os.urandom(SIZE // 2)

    def transfer() -> tuple[int, float]:
        timings: dict[str, float] = {}
        started = time.monotonic()
        threads = [
            threading.Thread(target=_upload, args=(port, name, half, timings))
            for name in ("a", "b")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(timings) == ["a", "b"]
        # Logins are included in the elapsed time; they take milliseconds on 127.0.0.1.
        return SIZE, time.monotonic() - started

    _within_band(transfer)


def test_download_limit(port: int, served: Path) -> None:
    data = os.urandom(SIZE)
    (served / "big.bin").write_bytes(data)
    _within_band(lambda: _download(port, "alice", "secret", data))


def test_download_limit_openssh_sftp(port: int, served: Path, tmp_path: Path) -> None:
    """OpenSSH's get: ssh packs the pipelined READs into few channel messages."""
    data = os.urandom(SIZE)
    (served / "big.bin").write_bytes(data)
    client = OpenSSH(tmp_path, port)
    copy = tmp_path / "copy.bin"

    def transfer() -> tuple[int, float]:
        started = time.monotonic()  # the login's milliseconds are counted too
        result = client.sftp("alice", "secret", f"get big.bin {copy}\n")
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        assert copy.read_bytes() == data
        return SIZE, elapsed

    _within_band(transfer)


def _download(port: int, user: str, password: str, data: bytes) -> tuple[int, float]:
    """AsyncSSH reads the file with parallel READs, the way sftp's get pipelines them."""

    async def fetch() -> tuple[bytes, float]:
        async with (
            asyncssh_connect(port, username=user, password=password) as conn,
            conn.start_sftp_client() as sftp,
            sftp.open("big.bin", "rb") as remote,
        ):
            started = time.monotonic()
            received = await remote.read()
            return received, time.monotonic() - started

    received, elapsed = run_async(fetch())
    assert received == data
    return len(data), elapsed


def test_cred_avatar_download_limit(tmp_path: Path, start_server: Callable[..., Any]) -> None:
    """A realm's avatar carries the limit (HomesRealm(download_rate=512K)), not the options."""
    rate = 512 * 1024
    db = tmp_path / "cred.db"
    db.write_text("alice:alice-pw\n")
    homes = tmp_path / "homes"
    (homes / "alice").mkdir(parents=True)
    data = os.urandom(rate * SECONDS)
    (homes / "alice" / "big.bin").write_bytes(data)
    server = start_server(
        app="tests.support.cred_apps:LimitedServer",
        env={"CRED_HOMES": str(homes), "CRED_DB": str(db)},
    )
    _within_band(lambda: _download(server.port, "alice", "alice-pw", data), rate)
