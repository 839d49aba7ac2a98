"""twistd spindlex --workers N: processes sharing one TCP port, started and stopped together."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import pytest

from tests.interop.test_twistd import _run_twistd
from tests.support.clients import asyncssh_connect
from tests.support.twistd import PASSWORD, Twistd, isolated_home
from tests.support.waiting import free_port, poll

pytestmark = pytest.mark.interop

WORKER = re.compile(r"started worker (?P<pid>\d+)")
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(?P<port>\d+) \(worker (?P<pid>\d+)\)")


def sockets(pid: int) -> int:
    fd_dir = f"/proc/{pid}/fd"
    count = 0
    for fd in os.listdir(fd_dir):
        try:
            count += os.readlink(f"{fd_dir}/{fd}").startswith("socket:")
        except FileNotFoundError:  # closed between the listing and the look: not held
            continue
    return count


def test_two_workers_share_the_port(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("shared\n")
    port = free_port()
    # The embedded default, so the one-time password must work in both workers.
    server = Twistd(
        ["spindlex", "--workers", "2", "--listen", f"tcp:{port}:interface=127.0.0.1"],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        user, password = server.wait_for(PASSWORD).group("user", "password")
        listeners = server.wait_for_all(LISTENING, 2)
        pids = {int(m["pid"]) for m in listeners}
        assert len(pids) == 2 and server.proc.pid in pids

        async def hold_connections() -> dict[int, int]:
            before = {pid: sockets(pid) for pid in pids}
            connections = [
                await asyncssh_connect(port, username=user, password=password)
                for _ in range(4)
            ]
            try:
                for conn in connections:
                    async with conn.start_sftp_client() as sftp:
                        assert (await sftp.stat("f.txt")).size == 7
                return {pid: sockets(pid) - before[pid] for pid in pids}
            finally:
                for conn in connections:
                    conn.close()
                    await conn.wait_closed()

        # With one process stopped, the other accepts every connection from the
        # shared socket; then the other way round. (Idle processes race for each
        # connection, so which one wins is not for a test to predict.)
        for paused in pids:
            os.kill(paused, signal.SIGSTOP)
            try:
                gained = asyncio.run(asyncio.wait_for(hold_connections(), 120))
            finally:
                os.kill(paused, signal.SIGCONT)
            (other,) = pids - {paused}
            assert gained[paused] == 0 and gained[other] >= 4, gained
        child = int(server.wait_for(WORKER)["pid"])
        assert server.stop() == 0
        assert not Path(f"/proc/{child}").exists()  # stopped and reaped with its parent
    finally:
        server.kill()


def test_a_copy_ends_when_its_twistd_is_killed(tmp_path: Path) -> None:
    port = free_port()
    server = Twistd(
        ["spindlex", "--workers", "2", "--listen", f"tcp:{port}:interface=127.0.0.1"],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    child = 0
    try:
        child = int(server.wait_for(WORKER)["pid"])
        server.wait_for_all(LISTENING, 2)
        server.proc.kill()  # no SIGTERM to pass on: the copy must notice by itself
        server.proc.wait(30)
        poll(
            lambda: True if not Path(f"/proc/{child}").exists() else None,
            timeout=30,
            what="the copy to end with its twistd",
        )
    finally:
        server.kill()
        if child and Path(f"/proc/{child}").exists():
            os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--workers", "2", "--listen", "unix:spindlex.sock"], "--workers needs tcp:PORT"),
        (["--workers", "0"], "--workers expects a number of at least 1"),
    ],
)
def test_bad_worker_options(tmp_path: Path, args: list[str], needle: str) -> None:
    result = _run_twistd(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1 and needle in result.stderr
