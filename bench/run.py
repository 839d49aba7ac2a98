"""Run the benchmarks: ``python -m bench.run [--quick] [--servers ...] [--workers N]``.

Starts OpenSSH's sshd, the AsyncSSH server and spindlex_tw side by side on
127.0.0.1, drives each in turn with the same clients, and prints a markdown table
(ratios against OpenSSH = 1.0x); the table and the raw figures (JSON) are
also written to bench/results/. Everything is bounded: fixed counts, client
timeouts, and every process started here is stopped here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import cryptography

import twisted
from bench import concurrent, procstat, report, s3, scale, scenarios
from bench.clients import Keys
from bench.servers import (
    AsyncSSHServer,
    OpenSSHServer,
    Server,
    SpindlexServer,
    TwistdServer,
    have_openssh_client,
)
from spindlex_tw.fs.storage import in_memory

RESULTS = Path(__file__).resolve().parent / "results"

Scenario = Callable[[Server, scenarios.Context, int], dict[str, float]]
FULL_SET: dict[str, Scenario] = {
    "transfer": scenarios.sftp_transfers,
    "small": scenarios.small_files,
    "logins": scenarios.sequential_logins,
    "async-logins": scenarios.asyncssh_logins,
    "parallel-logins": scenarios.parallel_ssh_logins,
    "idle": scenarios.idle_connections,
    "password-logins": scenarios.password_logins,
    "concurrent": concurrent.concurrent_transfers,
    "scale": scale.idle_at_scale,
    "s3": s3.s3_transfers,
}
# Only the bench app of spindlex_tw checks a hashed password.
SPINDLEX_ONLY = ("password-logins", "s3")
# Extra worker processes only help with concurrent connections.
WORKER_SET = ("async-logins", "parallel-logins", "password-logins")
# With the SFTP root on tmpfs, where spindlex_tw runs file calls inline, these
# are run again with worker threads, the default on a disk.
THREADS_SET = ("transfer", "small")
# Many clients at once are also run against twistd spindlex --workers N, as users run it.
TWISTD_SET = ("concurrent",)
# Many small files against one twistd spindlex as users run it, its text log included:
# there a file's SFTP operations could be log lines (--log-sftp), unlike the bench app's.
TWISTD_ONE_SET = ("small",)


def _versions() -> dict[str, str]:
    sshd = subprocess.run(["/usr/sbin/sshd", "-V"], capture_output=True, text=True)
    return {
        "python": platform.python_version(),
        "openssh": (sshd.stderr or sshd.stdout).strip().split(",")[0],
        "asyncssh": asyncssh.__version__,
        "twisted": twisted.__version__,
        "cryptography": cryptography.__version__,
        "cpus": str(os.cpu_count()),
        "kernel": platform.release(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="64 MiB transfers, 1,000 connections, shorter idle"
    )
    parser.add_argument("--servers", default="openssh,asyncssh,spindlex_tw")
    parser.add_argument(
        "--workers", type=int, default=2, help="also run spindlex_tw with N workers"
    )
    parser.add_argument("--only", default=",".join(FULL_SET), help="scenarios to run")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--disk",
        metavar="DIR",
        help="put the files in DIR (a disk) instead of /dev/shm, so the disk is measured too",
    )
    args = parser.parse_args()
    if not have_openssh_client():
        sys.exit("the OpenSSH client (ssh, sftp) is needed: apt-get install -y openssh-client")
    chosen = [name for name in args.only.split(",") if name]
    unknown = set(chosen) - set(FULL_SET)
    if unknown:
        sys.exit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    sizes = scenarios.QUICK if args.quick else scenarios.FULL
    # Files live in RAM so the disk is not what is measured, unless asked.
    base = args.disk or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    work = Path(tempfile.mkdtemp(prefix="spindlex-bench-", dir=base))
    keys = Keys(work)
    ctx = scenarios.Context(
        work, keys, work / "root", work / "local", sizes, on_disk=not in_memory(str(work))
    )
    # For the scale scenario: the servers started below inherit the raised limit.
    scale.raise_fd_limit()
    started = time.monotonic()
    results: dict[str, dict[str, float]] = {}
    try:
        keys.create()
        ctx.prepare()
        plan: list[tuple[Server, list[str]]] = []
        names = args.servers.split(",")
        for name in names:
            common = [s for s in chosen if s not in SPINDLEX_ONLY]
            if name == "openssh":
                plan.append((OpenSSHServer(work, keys, ctx.sftp_root), common))
            elif name == "asyncssh":
                plan.append((AsyncSSHServer(work, keys, ctx.sftp_root), common))
            elif name == "spindlex_tw":
                plan.append((SpindlexServer(work, keys, ctx.sftp_root), chosen))
            else:
                sys.exit(f"unknown server {name}")
        if "spindlex_tw" in names and in_memory(str(work)):
            threaded = [s for s in chosen if s in THREADS_SET]
            if threaded:
                threads = SpindlexServer(work, keys, ctx.sftp_root, disk_io="threads")
                plan.append((threads, threaded))
        if args.workers > 1 and "spindlex_tw" in names:
            workers = [s for s in chosen if s in WORKER_SET]
            if workers:
                plan.append((SpindlexServer(work, keys, ctx.sftp_root, args.workers), workers))
            # twistd spindlex --workers, as users run it: 1 process, then N.
            for count in (1, args.workers):
                todo = workers + [
                    s for s in chosen if s in (TWISTD_SET if count > 1 else TWISTD_ONE_SET)
                ]
                if todo:
                    plan.append((TwistdServer(work, keys, ctx.sftp_root, count), todo))
        results = run_plan(plan, ctx, chosen)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    table = report.markdown(results)
    elapsed = time.monotonic() - started
    print(table)
    print(f"({'quick' if args.quick else 'full'} run, {elapsed:.0f} s)")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    mode = ("quick" if args.quick else "full") + ("-disk" if args.disk else "")
    (RESULTS / f"{stamp}-{mode}.md").write_text(table)
    (RESULTS / f"{stamp}-{mode}.svg").write_text(report.svg(results))
    (RESULTS / f"{stamp}-{mode}.json").write_text(
        json.dumps(
            {"mode": mode, "seconds": elapsed, "versions": _versions(), "results": results},
            indent=2,
        )
    )


def run_plan(
    plan: list[tuple[Server, list[str]]], ctx: scenarios.Context, chosen: list[str]
) -> dict[str, dict[str, float]]:
    """Every server runs at once (idle ones cost nothing); each scenario visits them in turn.

    Scenario by scenario rather than server by server, so that the figures a
    ratio compares are taken minutes apart at most, not a whole run apart, on
    a machine whose load drifts.
    """
    figures: dict[str, dict[str, float]] = {server.name: {} for server, _ in plan}
    resting: dict[str, int] = {}
    try:
        for server, _ in plan:
            server.start()
        time.sleep(0.5)
        for server, _ in plan:
            resting[server.name] = procstat.child_count(server.pid)
        for name in chosen:
            print(f"== {name}", file=sys.stderr, flush=True)
            for server, todo in plan:
                if name not in todo:
                    continue
                begun = time.monotonic()
                figures[server.name].update(FULL_SET[name](server, ctx, resting[server.name]))
                took = time.monotonic() - begun
                print(f"   {server.name}: {took:.1f} s", file=sys.stderr, flush=True)
    finally:
        for server, _ in plan:
            server.stop()
    return figures


if __name__ == "__main__":
    main()
