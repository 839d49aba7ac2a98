"""Many SFTP clients at once: aggregate throughput, fairness, and a new client's login latency.

``concurrent_clients`` OpenSSH ``sftp`` clients start together and each gets
(then puts) ``concurrent_transfer`` bytes with aes128-gcm. The figures are the
aggregate rate (all bytes over the wall time until the last client is done),
the slowest client's time over the fastest's (fairness: 1.0 is perfectly
fair), the server's CPU per GiB, and the latency of ``ssh true`` logins made
one after another while the transfers run (median and 99th percentile; with
a few dozen samples the 99th is close to the worst).
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
from pathlib import Path

from bench import procstat
from bench.clients import DEFAULT, run, sftp_command, ssh_command
from bench.scenarios import Context, GiB, MiB
from bench.servers import Server


def concurrent_transfers(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    results: dict[str, float] = {}
    for direction in ("get", "put"):
        results.update(_round(server, ctx, resting, direction))
    return results


def _round(server: Server, ctx: Context, resting: int, direction: str) -> dict[str, float]:
    count = ctx.sizes.concurrent_clients
    size = ctx.sizes.concurrent_transfer
    commands = []
    for i in range(count):
        if direction == "get":
            batch = ctx.batch(f"conc-get-{i}", "get concurrent.bin /dev/null")
        else:
            source = ctx.sftp_root / "concurrent.bin"
            batch = ctx.batch(f"conc-put-{i}", f"put {source} conc-up-{i}.bin")
        commands.append(sftp_command(ctx.keys, server.user, server.port, batch, DEFAULT))
    durations: list[float] = [0.0] * count
    failures: list[str] = []
    finished = threading.Event()

    def client(index: int, start: float) -> None:
        try:
            run(commands[index])
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            failures.append(str(exc))
        durations[index] = time.perf_counter() - start

    cpu_before = procstat.cpu_seconds(server.pid)
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i, start)) for i in range(count)]
    for thread in threads:
        thread.start()
    latencies: list[float] = []
    prober = threading.Thread(target=_probe, args=(server, ctx, finished, latencies))
    prober.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    finished.set()
    prober.join()
    server.settle(resting, timeout=30)
    cpu = procstat.cpu_seconds(server.pid) - cpu_before
    if direction == "put":
        _check_uploads(server, ctx.sftp_root, count, size)
    if failures:
        raise RuntimeError(f"{server.name}: {len(failures)} clients failed: {failures[0]}")
    total = count * size
    ordered = sorted(latencies)
    return {
        f"conc_{direction}_mibs": total / MiB / wall,
        f"conc_{direction}_fairness": max(durations) / min(durations),
        f"conc_{direction}_cpu_gib": cpu / (total / GiB),
        f"conc_{direction}_login_p50_ms": statistics.median(ordered) * 1000,
        f"conc_{direction}_login_p99_ms": _percentile(ordered, 0.99) * 1000,
        f"conc_{direction}_login_samples": len(ordered),
    }


def _probe(server: Server, ctx: Context, finished: threading.Event, out: list[float]) -> None:
    """``ssh true`` logins one after another while the transfers run (one at least)."""
    cmd = ssh_command(ctx.keys, server.user, server.port, "true")
    while not finished.is_set() or not out:
        begun = time.perf_counter()
        run(cmd)
        out.append(time.perf_counter() - begun)


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _check_uploads(server: Server, root: Path, count: int, size: int) -> None:
    """Every upload arrived whole; then they are removed for the next server."""
    whole = 0
    for i in range(count):
        path = root / f"conc-up-{i}.bin"
        if path.exists():
            whole += path.stat().st_size == size
            path.unlink()
    if whole != count:
        raise RuntimeError(f"{server.name}: {whole} of {count} concurrent uploads arrived whole")
