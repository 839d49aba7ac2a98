"""The measurements: each drives one running server and returns named figures.

Wall time is taken around the client; server CPU is the difference of the
server tree's CPU time (:mod:`bench.procstat`) before the client starts and
after the server has settled, so the CPU of a connection's last packets and
of a forked child's exit is included.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncssh

from bench import procstat
from bench.clients import (
    KEX,
    Algorithms,
    Keys,
    run,
    sftp_command,
    ssh_command,
    ssh_password_command,
)
from bench.servers import Server

MiB = 1024 * 1024
GiB = 1024 * MiB

CIPHERS = (
    Algorithms("aes128-gcm@openssh.com"),
    Algorithms("chacha20-poly1305@openssh.com"),
    Algorithms("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
)


@dataclass(frozen=True)
class Sizes:
    transfer: int  # bytes of the SFTP get/put file
    small_files: int
    small_file_size: int
    listing: int  # entries of the ls -l directory
    logins: int  # sequential and 10-at-a-time logins
    parallel_logins: int  # ssh logins 10 at a time
    password_logins: int  # CPU-bound password logins 10 at a time (the scale-out figure)
    idle: int  # idle connections held open
    idle_seconds: float
    repeat: int  # transfers are run this often; the fastest counts
    concurrent_clients: int  # sftp clients transferring at once (bench.concurrent)
    concurrent_transfer: int  # bytes each of them gets or puts
    scale: int  # idle connections held by one Python server (bench.scale)
    scale_sshd: int  # the same for sshd: two processes per connection


QUICK = Sizes(
    transfer=64 * MiB,
    small_files=500,
    small_file_size=4096,
    listing=5000,
    logins=100,
    parallel_logins=100,
    password_logins=40,
    idle=200,
    idle_seconds=3.0,
    repeat=1,
    concurrent_clients=16,
    concurrent_transfer=16 * MiB,
    scale=1000,
    scale_sshd=300,
)
FULL = Sizes(
    transfer=256 * MiB,
    small_files=500,
    small_file_size=4096,
    listing=5000,
    logins=100,
    parallel_logins=200,
    password_logins=100,
    idle=200,
    idle_seconds=5.0,
    repeat=2,
    concurrent_clients=16,
    concurrent_transfer=64 * MiB,
    scale=10000,
    scale_sshd=2000,
)


@dataclass
class Context:
    work: Path
    keys: Keys
    sftp_root: Path  # the directory every server serves
    local: Path  # client-side files
    sizes: Sizes
    on_disk: bool = False  # the files are on a disk (--disk), where a cold read waits for it

    def prepare(self) -> None:
        """Create the files once: the big file, the small files, the big directory."""
        self.sftp_root.mkdir(parents=True, exist_ok=True)
        self.local.mkdir(parents=True, exist_ok=True)
        block = os.urandom(MiB)
        for path in (self.sftp_root / "big.bin", self.local / "upload.bin"):
            with open(path, "wb") as out:
                for _ in range(self.sizes.transfer // MiB):
                    out.write(block)
        small = self.local / "small"
        small.mkdir(exist_ok=True)
        for i in range(self.sizes.small_files):
            (small / f"f{i:04d}").write_bytes(os.urandom(self.sizes.small_file_size))
        # The same files on the server, for get -r.
        shutil.copytree(small, self.sftp_root / "small-src", dirs_exist_ok=True)
        with open(self.sftp_root / "concurrent.bin", "wb") as out:
            for _ in range(self.sizes.concurrent_transfer // MiB):
                out.write(block)
        listing = self.sftp_root / "listing"
        listing.mkdir(exist_ok=True)
        for i in range(self.sizes.listing):
            (listing / f"entry-{i:05d}").touch()

    def batch(self, name: str, *commands: str) -> Path:
        path = self.work / f"{name}.batch"
        path.write_text("\n".join(commands) + "\n")
        return path


#: Runs of each small-file operation; the figures are their medians.
SMALL_RUNS = 3


def measure(server: Server, action: Callable[[], None], resting: int) -> tuple[float, float]:
    """(wall seconds, server CPU seconds) of ``action``."""
    cpu_before = procstat.cpu_seconds(server.pid)
    start = time.perf_counter()
    action()
    wall = time.perf_counter() - start
    server.settle(resting)
    return wall, procstat.cpu_seconds(server.pid) - cpu_before


def _login_cost(
    server: Server, ctx: Context, algs: Algorithms, resting: int
) -> tuple[float, float]:
    """Median wall and CPU of an SFTP session that does nothing (subtracted from transfers)."""
    batch = ctx.batch("pwd", "pwd")
    cmd = sftp_command(ctx.keys, server.user, server.port, batch, algs)
    samples = [measure(server, lambda: run(cmd), resting) for _ in range(3)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def sftp_transfers(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    """Get and put of the big file per cipher: MiB/s and server CPU s/GiB, login excluded."""
    size = ctx.sizes.transfer
    results: dict[str, float] = {}
    for algs in CIPHERS:
        login_wall, login_cpu = _login_cost(server, ctx, algs, resting)
        for direction in ("get", "put"):
            if direction == "get":
                batch = ctx.batch("get", "get big.bin /dev/null")
            else:
                batch = ctx.batch("put", f"put {ctx.local / 'upload.bin'} uploaded.bin")
            cmd = sftp_command(ctx.keys, server.user, server.port, batch, algs)
            best: tuple[float, float] | None = None
            for _ in range(ctx.sizes.repeat):
                wall, cpu = measure(server, partial(run, cmd), resting)
                if direction == "put":
                    uploaded = ctx.sftp_root / "uploaded.bin"
                    if uploaded.stat().st_size != size:
                        raise RuntimeError(f"{server.name}: upload arrived incomplete")
                    uploaded.unlink()
                if best is None or wall < best[0]:
                    best = (wall, cpu)
            assert best is not None
            seconds = max(best[0] - login_wall, 1e-3)
            cpu = max(best[1] - login_cpu, 0.0)
            results[f"{direction}_{algs.label}_mibs"] = size / MiB / seconds
            results[f"{direction}_{algs.label}_cpu_gib"] = cpu / (size / GiB)
    if ctx.on_disk:
        results.update(_cold_get(server, ctx, resting))
    return results


def _cold_get(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    """Get of the big file after dropping it from the page cache, so every READ waits."""
    algs = CIPHERS[0]
    login_wall, login_cpu = _login_cost(server, ctx, algs, resting)
    batch = ctx.batch("get", "get big.bin /dev/null")
    cmd = sftp_command(ctx.keys, server.user, server.port, batch, algs)
    best: tuple[float, float] | None = None
    for _ in range(ctx.sizes.repeat):
        evict(ctx.sftp_root / "big.bin")
        wall, cpu = measure(server, partial(run, cmd), resting)
        if best is None or wall < best[0]:
            best = (wall, cpu)
    assert best is not None
    size = ctx.sizes.transfer
    seconds = max(best[0] - login_wall, 1e-3)
    return {
        "cold_get_mibs": size / MiB / seconds,
        "cold_get_cpu_gib": max(best[1] - login_cpu, 0.0) / (size / GiB),
    }


def evict(path: Path) -> None:
    """Drop ``path``'s pages from the page cache (written back first), as after a reboot."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def small_files(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    """put -r and get -r of many small files, then ls -l of a big directory: wall and CPU.

    Each the median of :data:`SMALL_RUNS` runs: one run is about 0.3 s of
    server CPU read in 10 ms clock ticks, and a single run moved by a fifth.
    """
    gcm = Algorithms("aes128-gcm@openssh.com")
    target = ctx.sftp_root / "small-upload"
    batch = ctx.batch("small", f"put -r {ctx.local / 'small'} small-upload")
    put = sftp_command(ctx.keys, server.user, server.port, batch, gcm)
    download = ctx.local / "small-download"
    batch = ctx.batch("small-get", f"get -r small-src {download}")
    get = sftp_command(ctx.keys, server.user, server.port, batch, gcm)
    batch = ctx.batch("ls", "ls -l listing")
    ls = sftp_command(ctx.keys, server.user, server.port, batch, gcm)
    lines: list[int] = []

    def listing() -> None:
        out = subprocess.run(ls, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
        lines.append(out.stdout.count(b"\n"))

    samples: dict[str, list[tuple[float, float]]] = {"put": [], "get": [], "ls": []}
    for _ in range(SMALL_RUNS):
        samples["put"].append(measure(server, lambda: run(put), resting))
        _check_small(server, ctx, target, "put -r")
        samples["get"].append(measure(server, lambda: run(get), resting))
        _check_small(server, ctx, download, "get -r")
        samples["ls"].append(measure(server, listing, resting))
        if lines[-1] < ctx.sizes.listing:
            raise RuntimeError(f"{server.name}: ls -l showed {lines[-1]} lines")
    results = {}
    for name, key in (("put", "small_put"), ("get", "small_get"), ("ls", "ls")):
        results[f"{key}_s"] = statistics.median(wall for wall, _ in samples[name])
        results[f"{key}_cpu_s"] = statistics.median(cpu for _, cpu in samples[name])
    return results


def _check_small(server: Server, ctx: Context, target: Path, what: str) -> None:
    """Every small file arrived whole; then ``target`` is removed for the next server."""
    sizes = [entry.stat().st_size for entry in os.scandir(target)]
    shutil.rmtree(target)
    # The next run starts on a settled disk, not behind this one's deletions.
    os.sync()
    whole = sizes.count(ctx.sizes.small_file_size)
    if whole != ctx.sizes.small_files:
        raise RuntimeError(f"{server.name}: {what}: {whole} of {ctx.sizes.small_files} arrived")


def sequential_logins(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    """``ssh true`` and ``sftp pwd`` logins one after another: per second and CPU ms each."""
    count = ctx.sizes.logins
    ssh = ssh_command(ctx.keys, server.user, server.port, "true")
    batch = ctx.batch("pwd", "pwd")
    sftp = sftp_command(
        ctx.keys, server.user, server.port, batch, Algorithms("aes128-gcm@openssh.com")
    )
    results = {}
    for label, cmd in (("ssh", ssh), ("sftp", sftp)):

        def logins(cmd: list[str] = cmd) -> None:
            for _ in range(count):
                run(cmd)

        wall, cpu = measure(server, logins, resting)
        results[f"login_{label}_per_s"] = count / wall
        results[f"login_{label}_cpu_ms"] = cpu / count * 1000
    return results


def _parallel(server: Server, cmd: list[str], count: int, resting: int) -> tuple[float, float]:
    def logins() -> None:
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(lambda _: run(cmd), range(count)))

    wall, cpu = measure(server, logins, resting)
    return count / wall, cpu / count * 1000


def parallel_ssh_logins(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    """``ssh true`` key logins, 10 clients at a time."""
    cmd = ssh_command(ctx.keys, server.user, server.port, "true")
    rate, cpu_ms = _parallel(server, cmd, ctx.sizes.parallel_logins, resting)
    return {"login_par_per_s": rate, "login_par_cpu_ms": cpu_ms}


def password_logins(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    """``ssh true`` password logins checked against a PBKDF2 hash, 10 at a time.

    Only spindlex_tw's bench app stores such a hash. Each login costs its
    server far more CPU than the C client's share, so the server is the
    bottleneck, and extra worker processes can show on a 2-core machine.
    """
    cmd = ssh_password_command(ctx.keys, server.user, server.port, "secret", "true")
    rate, cpu_ms = _parallel(server, cmd, ctx.sizes.password_logins, resting)
    return {"login_pw_per_s": rate, "login_pw_cpu_ms": cpu_ms}


async def _connect(server: Server, ctx: Context) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        "127.0.0.1",
        server.port,
        username=server.user,
        client_keys=[str(ctx.keys.client_key)],
        known_hosts=None,
        agent_path=None,
        config=None,
        kex_algs=[KEX],
        server_host_key_algs=["ssh-ed25519"],
        preferred_auth="publickey",
    )


async def _open_many(
    server: Server, ctx: Context, count: int
) -> list[asyncssh.SSHClientConnection]:
    gate = asyncio.Semaphore(10)

    async def one() -> asyncssh.SSHClientConnection:
        async with gate:
            return await _connect(server, ctx)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def _close_all(conns: list[asyncssh.SSHClientConnection]) -> None:
    for conn in conns:
        conn.close()
    await asyncio.gather(*(conn.wait_closed() for conn in conns))


def asyncssh_logins(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    """Key logins from an AsyncSSH client, 10 at a time, each closed once authenticated."""
    count = ctx.sizes.logins

    async def logins() -> None:
        gate = asyncio.Semaphore(10)

        async def one() -> None:
            async with gate:
                conn = await _connect(server, ctx)
                conn.close()
                await conn.wait_closed()

        await asyncio.gather(*(one() for _ in range(count)))

    wall, cpu = measure(server, lambda: asyncio.run(logins()), resting)
    return {"login_async_per_s": count / wall, "login_async_cpu_ms": cpu / count * 1000}


def idle_connections(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    """Memory per idle authenticated connection, and the server's CPU while they idle."""
    count = ctx.sizes.idle

    async def hold() -> dict[str, float]:
        pss_before = procstat.pss_bytes(server.pid)
        conns = await _open_many(server, ctx, count)
        try:
            await asyncio.sleep(1.0)  # let every login finish its last callbacks
            pss_after = procstat.pss_bytes(server.pid)
            cpu_before = procstat.cpu_seconds(server.pid)
            await asyncio.sleep(ctx.sizes.idle_seconds)
            idle_cpu = procstat.cpu_seconds(server.pid) - cpu_before
        finally:
            await _close_all(conns)
        return {
            "idle_kib_per_conn": (pss_after - pss_before) / count / 1024,
            "idle_cpu_ms_per_s": idle_cpu / ctx.sizes.idle_seconds * 1000,
        }

    result = asyncio.run(hold())
    server.settle(resting, timeout=30)
    return result
