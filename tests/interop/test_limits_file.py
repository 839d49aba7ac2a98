"""--limits-file: limits read at start and again on SIGHUP, all or nothing.

A real client (AsyncSSH) holds a connection while ``max-connections-per-source``
is 1, so a second is refused; the file is changed to 2 and SIGHUP sent, and the
second is admitted. A bad file then keeps 2 and logs one line naming the line.
Every wait is on a log line or a reply, never a sleep.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from spindlex_tw.twistd.credentials import hash_password
from tests.support.clients import asyncssh_connect, run_async
from tests.support.twistd import TWISTD, Twistd, isolated_home
from tests.support.waiting import free_port

pytestmark = pytest.mark.interop

LOCAL = ["--listen", "tcp:0:interface=127.0.0.1"]
SIGNALS = re.compile(r"SIGHUP reloads the configuration files")
RELOADED = re.compile(r"reloaded the configuration files")
REFUSED = re.compile(r"reload refused, keeping the previous configuration: (?P<why>.*)")
PER_SOURCE = re.compile(r"too many connections from this address")
WORKER_LISTENING = re.compile(r"listening on 127\.0\.0\.1:\d+ \(worker \d+\)")


def _replace(path: Path, text: str) -> None:
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    fresh.replace(path)


async def _refused(port: int) -> bool:
    """True if the server turns a new connection away before its login."""
    try:
        async with asyncssh_connect(port) as conn:
            await (await conn.start_sftp_client()).getcwd()
    except (asyncssh.Error, OSError):
        return True
    return False


async def _sighup(server: Twistd, pattern: re.Pattern[str], count: int) -> Any:
    server.proc.send_signal(signal.SIGHUP)
    return (await asyncio.to_thread(server.wait_for_all, pattern, count))[-1]


def test_sighup_raises_the_per_source_cap_and_a_bad_file_keeps_it(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    passwords = tmp_path / "passwd"
    passwords.write_text(f"alice:{hash_password('secret')}\n")
    limits = tmp_path / "limits"
    limits.write_text("# one connection per address\nmax-connections-per-source = 1\n")
    server = Twistd(
        ["spindlex", *LOCAL, "--auth", f"file:{passwords}", "--limits-file", str(limits),
         "--max-connections-per-source", "50"],
        cwd=served,
        env=isolated_home(tmp_path),
    )  # fmt: skip
    try:
        [port] = server.ports()
        server.wait_for(SIGNALS)

        async def scenario() -> None:
            # connect() returns once logged in: the held connection surely counts.
            async with asyncssh_connect(port):
                assert await _refused(port)  # the file's 1 overrides the command line's 50
                await asyncio.to_thread(server.wait_for, PER_SOURCE)

                _replace(limits, "max-connections-per-source = 2\n")
                await _sighup(server, RELOADED, 1)
                async with asyncssh_connect(port):
                    assert await _refused(port)  # 2 is the cap now, not unlimited

                    _replace(limits, "max-channels = 4\nmax-connections-per-source = zero\n")
                    bad = await _sighup(server, REFUSED, 1)
                    assert f"--limits-file {limits} line 2" in bad["why"], bad["why"]
                    assert "'zero'" in bad["why"], bad["why"]
                    assert await _refused(port)  # still 2: the bad file changed nothing
                # With only the held one left, a second fits again under the kept 2.
                async with asyncssh_connect(port) as again:
                    await (await again.start_sftp_client()).getcwd()

        run_async(scenario(), timeout=120)
        log = server.log()
        assert log.count("reload refused") == 1, log
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_a_bad_limits_file_at_start_is_one_line_and_status_2(tmp_path: Path) -> None:
    limits = tmp_path / "limits"
    limits.write_text("max-channels = 10\nmax-channel = 10\n")
    done = subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "spindlex", *LOCAL, "--limits-file", str(limits)],
        cwd=tmp_path,
        env={**isolated_home(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())},
        capture_output=True,
        text=True,
        timeout=60,
        executable=sys.executable,
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"--limits-file {limits} line 2: 'max-channel' is not a limit option" in line


def test_every_worker_reads_the_limits_file_again(tmp_path: Path) -> None:
    limits = tmp_path / "limits"
    limits.write_text("max-channels = 10\n")
    port = free_port()
    server = Twistd(
        ["spindlex", "--workers", "2", "--listen", f"tcp:{port}:interface=127.0.0.1",
         "--limits-file", str(limits)],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )  # fmt: skip
    try:
        server.wait_for_all(WORKER_LISTENING, 2)
        server.wait_for_all(SIGNALS, 2)
        _replace(limits, "max-channels = 20\n")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for_all(RELOADED, 2)  # the twistd process and its worker, each
        _replace(limits, "max-channels = -1\n")
        server.proc.send_signal(signal.SIGHUP)
        refusals = server.wait_for_all(REFUSED, 2)
        assert all("line 1" in found["why"] for found in refusals)
        assert server.stop() == 0, server.log()
    finally:
        server.kill()
