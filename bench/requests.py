"""Server CPU per SFTP request, over thousands of requests: ``python -m bench.requests``.

The small-file figures of :mod:`bench.run` are one ``sftp`` run of 500 files,
about 0.3 s of server CPU read in 10 ms clock ticks, login included: good for
comparing servers, too coarse to judge a change worth a few percent. Here one
AsyncSSH client session makes the requests of many small files one after
another, as OpenSSH's ``get -r`` and ``put -r`` do (each waits for its
answer), and the server's CPU over them is divided by their count:

- ``get``: OPEN for reading, a READ answered with the file's 4 KiB, a READ at
  its end (EOF), CLOSE: four requests per file.
- ``put``: OPEN creating a file, a WRITE of 4 KiB, CLOSE: three.
- ``stat``: one LSTAT.
- ``stat16``: sixteen LSTATs at once, as a client that pipelines sends them:
  the cost of a request without a wake-up of the server of its own.

The client's own CPU does not count; the servers run side by side and the
rounds alternate between them, medians are reported, and each server's
figure is also given as a multiple of sshd's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncssh

from bench import procstat
from bench.clients import Keys
from bench.servers import AsyncSSHServer, OpenSSHServer, Server, SpindlexServer
from spindlex_tw.fs.storage import in_memory

FILES = 50  # distinct files, read again and again: a working set the page cache holds
SIZE = 4096
PAYLOAD = os.urandom(SIZE)
#: requests one step of each pattern makes
REQUESTS = {"get": 4, "put": 3, "stat": 1, "stat16": 16}

Step = Callable[[asyncssh.SFTPClient, int], Awaitable[None]]


async def _get(sftp: asyncssh.SFTPClient, i: int) -> None:
    handle = await sftp.open(f"files/f{i % FILES}", "rb", block_size=SIZE * 4)
    data = await handle.read(SIZE * 4, 0)
    if len(data) != SIZE:
        raise RuntimeError(f"read {len(data)} bytes of a {SIZE}-byte file")
    if await handle.read(SIZE * 4, SIZE):
        raise RuntimeError("a READ past the end of the file returned data")
    await handle.close()


async def _put(sftp: asyncssh.SFTPClient, i: int) -> None:
    handle = await sftp.open(f"uploads/u{i}", "wb", block_size=SIZE * 4)
    await handle.write(PAYLOAD, 0)
    await handle.close()


async def _stat(sftp: asyncssh.SFTPClient, i: int) -> None:
    await sftp.lstat(f"files/f{i % FILES}")


async def _stat16(sftp: asyncssh.SFTPClient, i: int) -> None:
    await asyncio.gather(*(sftp.lstat(f"files/f{(i + k) % FILES}") for k in range(16)))


STEPS: dict[str, Step] = {"get": _get, "put": _put, "stat": _stat, "stat16": _stat16}


async def _session(
    server: Server, keys: Keys, patterns: list[str], requests: int, uploads: Path
) -> dict[str, float]:
    """Server CPU microseconds per request of each pattern, in one session."""
    async with (
        asyncssh.connect(
            "127.0.0.1",
            server.port,
            username=server.user,
            client_keys=[str(keys.client_key)],
            known_hosts=None,
            agent_path=None,
            config=None,
            kex_algs=["curve25519-sha256"],
            server_host_key_algs=["ssh-ed25519"],
            encryption_algs=["aes128-gcm@openssh.com"],
            preferred_auth="publickey",
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        figures = {}
        for pattern in patterns:
            step = STEPS[pattern]
            count = requests // REQUESTS[pattern]
            for i in range(count // 10):  # warm up: the first opens, the caches
                await step(sftp, -1 - i)
            _settle()
            before = procstat.cpu_seconds(server.pid)
            for i in range(count):
                await step(sftp, i)
            _settle()
            cpu = procstat.cpu_seconds(server.pid) - before
            figures[pattern] = cpu / (count * REQUESTS[pattern]) * 1e6
            for entry in uploads.iterdir():
                entry.unlink()
        return figures


def _settle() -> None:
    # Each request was answered before the next went: what is left after the
    # last is the server's own bookkeeping, done well within this.
    time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="openssh,spindlex_tw")
    parser.add_argument("--patterns", default="get,put,stat,stat16")
    parser.add_argument("--requests", type=int, default=8000, help="requests per pattern and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--disk", metavar="DIR", help="serve files from DIR (a disk) instead of /dev/shm"
    )
    args = parser.parse_args()
    names = args.servers.split(",")
    patterns = args.patterns.split(",")
    if unknown := set(patterns) - set(STEPS):
        sys.exit(f"unknown patterns: {', '.join(sorted(unknown))}")
    if "openssh" in names and not os.path.exists("/usr/sbin/sshd"):
        sys.exit("sshd is needed: apt-get install -y openssh-server")
    base = args.disk or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    work = Path(tempfile.mkdtemp(prefix="spindlex-requests-", dir=base))
    where = "tmpfs" if in_memory(str(work)) else "a disk"
    root = work / "root"
    (root / "files").mkdir(parents=True)
    (root / "uploads").mkdir()
    for i in range(FILES):
        (root / "files" / f"f{i}").write_bytes(os.urandom(SIZE))
    keys = Keys(work)
    servers: list[Server] = []
    try:
        keys.create()
        for name in names:
            if name == "openssh":
                servers.append(OpenSSHServer(work, keys, root))
            elif name == "asyncssh":
                servers.append(AsyncSSHServer(work, keys, root))
            elif name == "spindlex_tw":
                servers.append(SpindlexServer(work, keys, root))
            else:
                sys.exit(f"unknown server {name}")
        for server in servers:
            server.start()
        samples: dict[str, dict[str, list[float]]] = {s.name: {} for s in servers}
        for _ in range(args.rounds):
            for server in servers:
                figures = asyncio.run(
                    _session(server, keys, patterns, args.requests, root / "uploads")
                )
                for pattern, value in figures.items():
                    samples[server.name].setdefault(pattern, []).append(value)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"server CPU us per request, {args.requests} x {args.rounds} rounds, on {where}")
    for pattern in patterns:
        reference = statistics.median(samples[servers[0].name][pattern])
        cells = []
        for server in servers:
            value = statistics.median(samples[server.name][pattern])
            cells.append(f"{server.name} {value:6.1f} ({value / reference:.2f}x)")
        print(f"{pattern:5s} " + "   ".join(cells))


if __name__ == "__main__":
    main()
