"""The S3 scenario: ``twistd spindlex --storage s3://`` against a local moto server, and the disk.

Two ``twistd spindlex`` processes are started for it, alike but for the
storage: one serves a bucket on moto (an S3-compatible server, in a process
of its own), the other a directory. The same OpenSSH sftp put and get of the
big file go to each in turn, so the figures compare within one run. Server
CPU is that of the twistd process alone; moto's own CPU is given apart,
because moto is a Python mock that spends far more per byte than MinIO or
AWS would, and its figure is not the server's cost.

Run it with ``python -m bench.run --only s3 --servers spindlex_tw``; it is
skipped (no figures) where boto3 or moto[server] are not installed.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench import procstat
from bench.clients import DEFAULT, run, sftp_command
from bench.scenarios import Context, GiB, MiB, measure
from bench.servers import ROOT, Server, _free_port, _wait_listening, child_env

_MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""
_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "spindlex-bench",
    "AWS_SECRET_ACCESS_KEY": "spindlex-bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}

#: report.py's rows: key, label, digits, higher is better.
METRIC_ROWS: list[tuple[str, str, int, bool]] = [
    ("s3_put_mibs", "S3 (moto): SFTP put, MiB/s", 0, True),
    ("s3_get_mibs", "S3 (moto): SFTP get, MiB/s", 0, True),
    ("s3_put_cpu_gib", "S3 (moto): SFTP put, server CPU s/GiB", 2, False),
    ("s3_get_cpu_gib", "S3 (moto): SFTP get, server CPU s/GiB", 2, False),
    ("s3_moto_put_cpu_gib", "S3 (moto): put, moto's own CPU s/GiB", 2, False),
    ("s3_moto_get_cpu_gib", "S3 (moto): get, moto's own CPU s/GiB", 2, False),
    ("s3_disk_put_mibs", "same twistd on the disk: SFTP put, MiB/s", 0, True),
    ("s3_disk_get_mibs", "same twistd on the disk: SFTP get, MiB/s", 0, True),
    ("s3_disk_put_cpu_gib", "same twistd on the disk: put, server CPU s/GiB", 2, False),
    ("s3_disk_get_cpu_gib", "same twistd on the disk: get, server CPU s/GiB", 2, False),
]


class Moto:
    """moto's server mode on 127.0.0.1, until :meth:`stop`."""

    def __init__(self, log: Path) -> None:
        with log.open("ab") as errors:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _MOTO],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=child_env(_CREDENTIALS),
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"moto did not start; see {log}")
        self.endpoint = f"http://127.0.0.1:{int(line)}"

    def create_bucket(self) -> str:
        import boto3

        name = f"bench-{uuid.uuid4().hex[:12]}"
        session = boto3.session.Session(
            aws_access_key_id=_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        session.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)


class StorageTwistd(Server):
    """``twistd -n spindlex`` logging in the bench's key as this user, on ``storage``."""

    def __init__(self, work: Path, keys: Any, name: str, storage: list[str]) -> None:
        self.name = name
        super().__init__(work, keys, work / name)
        self.storage = storage

    def start(self) -> None:
        self.port = _free_port()
        self.sftp_root.mkdir(exist_ok=True)
        cmd = [
            *(sys.executable, "-c", "from twisted.scripts.twistd import run; run()"),
            *("-n", "--pidfile=", f"--logfile={self.log_path}", "spindlex"),
            *("--listen", f"tcp:{self.port}:interface=127.0.0.1"),
            *("--host-key", str(self.keys.host_key)),
            *("--authorized-keys", str(self.keys.authorized)),
            *self.storage,
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.sftp_root,
            env=child_env({**_CREDENTIALS, "PYTHONPATH": str(ROOT)}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_listening(self, self.name)


def _available() -> bool:
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        return False
    return True


def s3_transfers(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    """Put and get of the big file through twistd on S3 (moto) and on the disk, in turn."""
    if not _available():
        print("   s3: skipped, boto3 and moto[server] not installed", file=sys.stderr)
        return {}
    moto = Moto(ctx.work / "moto.log")
    servers: list[tuple[str, StorageTwistd]] = []
    try:
        bucket = moto.create_bucket()
        s3 = ["--storage", f"s3://{bucket}/bench", "--s3-endpoint", moto.endpoint]
        disk = ["--storage", "local", "--sftp-root", str(ctx.work / "s3-disk-root")]
        (ctx.work / "s3-disk-root").mkdir(exist_ok=True)
        servers = [
            ("s3", StorageTwistd(ctx.work, ctx.keys, "twistd-s3", s3)),
            ("s3_disk", StorageTwistd(ctx.work, ctx.keys, "twistd-disk", disk)),
        ]
        for _, twistd in servers:
            twistd.start()
        time.sleep(0.5)
        results: dict[str, float] = {}
        for prefix, twistd in servers:
            results.update(_transfers(prefix, twistd, ctx, moto))
        return results
    finally:
        for _, twistd in servers:
            twistd.stop()
        moto.stop()


def _transfers(prefix: str, twistd: StorageTwistd, ctx: Context, moto: Moto) -> dict[str, float]:
    size = ctx.sizes.transfer
    resting = procstat.child_count(twistd.pid)
    login = sftp_command(ctx.keys, twistd.user, twistd.port, ctx.batch("pwd", "pwd"), DEFAULT)
    login_wall, login_cpu = measure(twistd, lambda: run(login), resting)
    batches = {
        "put": ctx.batch("s3-put", f"put {ctx.local / 'upload.bin'} big.bin"),
        "get": ctx.batch("s3-get", "get big.bin /dev/null"),
    }
    results: dict[str, float] = {}
    for direction, batch in batches.items():
        cmd = sftp_command(ctx.keys, twistd.user, twistd.port, batch, DEFAULT)
        moto_before = procstat.cpu_seconds(moto.proc.pid)
        wall, cpu = measure(twistd, lambda cmd=cmd: run(cmd), resting)
        moto_cpu = procstat.cpu_seconds(moto.proc.pid) - moto_before
        results[f"{prefix}_{direction}_mibs"] = size / MiB / max(wall - login_wall, 1e-3)
        results[f"{prefix}_{direction}_cpu_gib"] = max(cpu - login_cpu, 0.0) / (size / GiB)
        if prefix == "s3":
            results[f"s3_moto_{direction}_cpu_gib"] = moto_cpu / (size / GiB)
    return results
