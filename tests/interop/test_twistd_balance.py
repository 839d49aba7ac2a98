"""twistd spindlex --workers 2 spreads connections evenly (spindlex_tw/twistd/balance.py).

Each connection's server side is found in /proc: the worker whose descriptors
hold the socket of that client's port. While one worker is stopped (SIGSTOP),
the other still serves every new login (after a short wait for its sibling);
once it is back, the next logins go to it until the two are within one of
each other, which racing for the shared socket alone would not do.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import asyncssh_connect
from tests.support.twistd import PASSWORD, Twistd, isolated_home
from tests.support.waiting import free_port

pytestmark = pytest.mark.interop

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(?P<port>\d+) \(worker (?P<pid>\d+)\)")
HALF = 6  # connections per phase; 12 in all


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed between the listing and the look
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def serving_pids(port: int, client_ports: list[int], pids: set[int]) -> dict[int, int]:
    """For each client port, the pid of the worker holding the server side of its connection."""
    inode_of: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == port:
            inode_of[int(remote.split(":")[1], 16)] = inode
    owner = {inode: pid for pid in pids for inode in socket_inodes(pid)}
    return {client: owner[inode_of[client]] for client in client_ports}


def test_two_workers_hold_even_shares(tmp_path: Path) -> None:
    port = free_port()
    server = Twistd(
        ["spindlex", "--workers", "2", "--listen", f"tcp:{port}:interface=127.0.0.1"],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        user, password = server.wait_for(PASSWORD).group("user", "password")
        pids = {int(m["pid"]) for m in server.wait_for_all(LISTENING, 2)}
        assert len(pids) == 2
        paused = min(pids)

        async def connect() -> Any:
            return await asyncssh_connect(port, username=user, password=password)

        async def hold_connections() -> dict[int, int]:
            connections = []
            try:
                os.kill(paused, signal.SIGSTOP)
                try:
                    # A worker alone is never refused service by a stuck sibling.
                    for _ in range(HALF):
                        connections.append(await connect())
                finally:
                    os.kill(paused, signal.SIGCONT)
                for _ in range(HALF):
                    connections.append(await connect())
                ports = [conn.get_extra_info("sockname")[1] for conn in connections]
                return serving_pids(port, ports, pids)
            finally:
                for conn in connections:
                    conn.close()
                    await conn.wait_closed()

        served = asyncio.run(asyncio.wait_for(hold_connections(), 120))
        ports = list(served)
        first = ports[:HALF]
        assert {served[p] for p in first} == pids - {paused}, served
        shares = Counter(served.values())
        assert set(shares) == pids and all(abs(n - HALF) <= 1 for n in shares.values()), shares
        assert server.stop() == 0
    finally:
        server.kill()
