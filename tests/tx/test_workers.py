"""spindlex_tw.twistd.workers: several processes accepting from one shared listening socket."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spindlex_tw.crypto.pkey import Ed25519Key
from spindlex_tw.twistd.workers import WorkerConfig, server_settings
from tests.support.clients import asyncssh_connect

ROOT = Path(__file__).resolve().parents[2]

# The supervisor: a reactor running a two-worker pool of the interop test app.
SUPERVISOR = """
import sys
from twisted.internet import reactor
from spindlex_tw.twistd.workers import WorkerConfig, WorkerPool

config = WorkerConfig(
    app="tests.support.apps:TestServer",
    host_keys=(sys.argv[1],),
    settings={"max_connections_per_source": 100, "max_startups_per_source": 100},
)
pool = WorkerPool(config, 2, reactor)
pool.ready.addCallback(lambda port: print("PORT", port, *pool.pids(), flush=True))
pool.ready.addErrback(lambda failure: (print("ERROR", failure.getErrorMessage()), reactor.stop()))
reactor.callWhenRunning(pool.startService)
reactor.addSystemEventTrigger("before", "shutdown", pool.stopService)
reactor.run()
"""


def test_config_crosses_a_process_boundary_as_json() -> None:
    config = WorkerConfig(
        app="pkg.mod:App", host_keys=("/k1", "/k2"), port=2222, settings={"max_connections": 7}
    )
    assert WorkerConfig.from_json(config.to_json()) == config


def test_settings_overrides_reach_nested_sections() -> None:
    settings = server_settings(
        {"max_connections": 7, "channels": {"window": 4096}, "transport": {"rekey_bytes": 99}}
    )
    assert settings.max_connections == 7
    assert settings.channels.window == 4096
    assert settings.channels.max_packet == server_settings({}).channels.max_packet
    assert settings.transport.rekey_bytes == 99


def test_unknown_setting_is_an_error() -> None:
    with pytest.raises(AttributeError):
        server_settings({"no_such_setting": 1})


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, list[int]]]:
    key = tmp_path / "host_key"
    Ed25519Key.generate().save_to_file(key)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(key)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    words = line[0].decode().split() if line else []
    try:
        assert words[:1] == ["PORT"], f"pool did not start: {words}"
        yield proc, int(words[1]), [int(pid) for pid in words[2:]]
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)


def _sockets(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


async def _hold(port: int, count: int, pids: list[int]) -> list[int]:
    """Open ``count`` logins at once; return how many sockets each worker gained."""
    before = [_sockets(pid) for pid in pids]
    conns = [
        await asyncssh_connect(port)
        for _ in range(count)
    ]
    try:
        for conn in conns:
            result = await conn.run("echo hello", check=True)
            assert result.stdout == "hello\n"
        return [_sockets(pid) - old for pid, old in zip(pids, before, strict=True)]
    finally:
        for conn in conns:
            conn.close()
        await asyncio.gather(*(conn.wait_closed() for conn in conns))


def test_two_workers_share_the_port_and_stop_with_the_pool(
    pool: tuple[subprocess.Popen[bytes], int, list[int]],
) -> None:
    proc, port, pids = pool
    assert len(pids) == 2
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)
    # With one worker stopped, the other accepts every connection from the shared
    # socket; then the other way round. (Idle workers race for each connection,
    # so which one wins is not for a test to predict.)
    for index, paused in enumerate(pids):
        os.kill(paused, signal.SIGSTOP)
        try:
            gained = asyncio.run(_hold(port, 4, pids))
        finally:
            os.kill(paused, signal.SIGCONT)
        assert gained[index] == 0 and gained[1 - index] >= 4, gained
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    for pid in pids:
        # stopService waits for every worker, so none outlives the supervisor.
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def _gone(pid: int, seconds: float = 30.0) -> bool:
    """Has ``pid`` exited (or become a zombie) within ``seconds``?"""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return True
        time.sleep(0.05)
    return False


def test_workers_end_when_the_supervisor_is_killed(
    pool: tuple[subprocess.Popen[bytes], int, list[int]],
) -> None:
    proc, _, pids = pool
    proc.kill()  # no chance to stop them: the workers must notice by themselves
    proc.wait(30)
    try:
        assert all(_gone(pid) for pid in pids)
    finally:
        for pid in pids:
            if not _gone(pid, 0):
                os.kill(pid, signal.SIGKILL)
