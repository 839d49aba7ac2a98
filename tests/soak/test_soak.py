"""Soak and fault tests: many logins and sessions, and clients that vanish mid-way.

Each is bounded in count and time. The server's memory and file descriptors
must come back near where they started; the figures are printed (-s) so the
security notes can quote them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spindlex_tw.core import wire
from spindlex_tw.protocol import constants as c
from tests.support.clients import asyncssh_connect
from tests.support.harness import ServerProcess
from tests.support.processes import open_fds, status_kib
from tests.support.rawssh import RawClient

LOGINS = int(os.environ.get("SPINDLEX_SOAK_LOGINS", "2000"))
SESSIONS = int(os.environ.get("SPINDLEX_SOAK_SESSIONS", "200"))
WIDE_OPEN = {
    "max_connections": 1000,
    "max_connections_per_source": 1000,
    "max_startups": [1000, 100, 1000],
    "max_startups_per_source": 1000,
}


def usage(pid: int) -> tuple[int, int]:
    """(resident KiB, open file descriptors) of the server process."""
    return status_kib(pid), open_fds(pid)


def settle(pid: int, fds: int, deadline: float = 30) -> tuple[int, int]:
    """Wait (bounded) until the server has closed what the clients left."""
    end = time.monotonic() + deadline
    while True:
        now = usage(pid)
        if now[1] <= fds or time.monotonic() > end:
            return now
        time.sleep(0.05)


def connect(port: int, **options: Any) -> Any:
    return asyncssh_connect(port, **options)


def warm_up_sftp(port: int) -> None:
    """One SFTP session first: the disk thread pool and Twisted's thread waker are
    made once per process, and are not what these tests look for."""

    async def once() -> None:
        async with connect(port) as conn, conn.start_sftp_client() as sftp:
            await sftp.listdir("/")

    asyncio.run(once())


def test_sequential_logins(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(settings=WIDE_OPEN)

    async def logins(count: int) -> None:
        for _ in range(count):
            async with connect(server.port) as conn:
                await conn.run("echo hi", check=True)

    asyncio.run(logins(50))  # warm up imports and caches
    before = settle(server.proc.pid, 10**6)
    started = time.monotonic()
    asyncio.run(logins(LOGINS))
    elapsed = time.monotonic() - started
    after = settle(server.proc.pid, before[1])
    print(
        f"\n{LOGINS} logins in {elapsed:.1f}s; RSS {before[0]} -> {after[0]} KiB; "
        f"fds {before[1]} -> {after[1]}"
    )
    assert after[1] <= before[1]
    assert after[0] - before[0] < 16 * 1024


def test_concurrent_sftp_sessions(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "file").write_bytes(os.urandom(100_000))
    server = start_server(settings=WIDE_OPEN, env={"SPINDLEX_TEST_SFTP_ROOT": str(root)})
    warm_up_sftp(server.port)
    before = settle(server.proc.pid, 10**6)

    async def session(index: int) -> None:
        async with connect(server.port) as conn, conn.start_sftp_client() as sftp:
            assert (await sftp.stat("/file")).size == 100_000
            async with sftp.open(f"/upload-{index}", "wb") as out:
                await out.write(b"x" * 10_000)
            async with sftp.open("/file", "rb") as source:
                assert len(await source.read()) == 100_000

    async def all_sessions() -> None:
        await asyncio.gather(*(session(i) for i in range(SESSIONS)))

    asyncio.run(asyncio.wait_for(all_sessions(), 240))
    after = settle(server.proc.pid, before[1])
    print(
        f"\n{SESSIONS} concurrent SFTP sessions; RSS {before[0]} -> {after[0]} KiB; "
        f"fds {before[1]} -> {after[1]}"
    )
    assert len(list(root.glob("upload-*"))) == SESSIONS
    assert after[1] <= before[1]
    assert after[0] - before[0] < 48 * 1024


def test_clients_killed_mid_way(start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    server = start_server(settings=WIDE_OPEN, env={"SPINDLEX_TEST_SFTP_ROOT": str(root)})
    warm_up_sftp(server.port)
    before = settle(server.proc.pid, 10**6)
    for _ in range(20):
        # Mid key exchange: identification and KEXINIT, then gone.
        client = RawClient(server.port)
        client.exchange_versions()
        client.kexinit()
        client.close()
        # Mid authentication: keys agreed, a request in flight, then gone.
        client = RawClient(server.port)
        client.handshake()
        client.request_service()
        client.send(
            wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
            + wire.string("slow")
            + wire.string("ssh-connection")
            + wire.string("password")
            + wire.boolean(False)
            + wire.string("x")
        )
        client.close()

    async def upload_and_vanish(index: int) -> None:
        conn = await connect(server.port)
        sftp = await conn.start_sftp_client()
        handle = await sftp.open(f"/partial-{index}", "wb")
        await handle.write(b"y" * 300_000)
        conn.abort()  # no close, no EOF: the TCP connection just goes

    async def uploads() -> None:
        for index in range(20):
            await upload_and_vanish(index)

    asyncio.run(asyncio.wait_for(uploads(), 120))
    after = settle(server.proc.pid, before[1])
    print(f"\nkilled clients; RSS {before[0]} -> {after[0]} KiB; fds {before[1]} -> {after[1]}")
    assert after[1] <= before[1]
    # What was acknowledged before the client vanished is on disk.
    assert all(p.stat().st_size == 300_000 for p in root.glob("partial-*"))
    client = RawClient(server.port)
    client.login()
