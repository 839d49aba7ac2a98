"""The deployment recipe of docs/storage-s3.md on one machine: HAProxy, two instances, one bucket.

Debian's HAProxy (``send-proxy-v2``, round robin, redispatch when a server
is down) in front of two ``twistd spindlex`` processes that share one host
key, one authorized_keys file and one bucket on a local S3-compatible server
(moto), and keep nothing of their own. OpenSSH's sftp binds a loopback
address of its own (127.0.0.2 and up) while HAProxy reaches the servers
from 127.0.0.1, so an audit event naming 127.0.0.x came from the PROXY
header. Each instance's audit log says which one served what.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.haproxy import haproxy, needs_haproxy
from tests.support.harness import OpenSSH
from tests.support.moto import CREDENTIALS, MotoServer
from tests.support.processes import status_kib
from tests.support.twistd import Twistd, isolated_home
from tests.support.waiting import poll

pytestmark = [pytest.mark.interop, needs_haproxy]

BIG = 256 << 20
CLIENTS = 10
USER = getpass.getuser()  # authorized_keys logs in as the server's user


class Instance:
    """One ``twistd spindlex`` of the deployment, with its own audit log."""

    def __init__(self, tmp_path: Path, name: str, shared: list[str]) -> None:
        self.name = name
        self.audit = tmp_path / f"audit-{name}.jsonl"
        cwd = tmp_path / name
        cwd.mkdir()
        self.twistd = Twistd(
            ["spindlex", *shared, "--audit-log", str(self.audit)],
            cwd=cwd,
            # As docs/storage-s3.md advises: two malloc arenas, not one per worker thread.
            env={**isolated_home(cwd), **CREDENTIALS, "MALLOC_ARENA_MAX": "2"},
        )
        [self.port] = self.twistd.ports()

    @property
    def pid(self) -> int:
        return self.twistd.proc.pid

    def events(self, **fields: Any) -> list[dict[str, Any]]:
        """The audit events with every one of ``fields``."""
        if not self.audit.exists():
            return []
        events = [json.loads(line) for line in self.audit.read_text().splitlines() if line]
        return [e for e in events if all(e.get(k) == v for k, v in fields.items())]

    def closed(self, path: str) -> list[dict[str, Any]]:
        return self.events(audit_event="sftp", operation="close", path=path)


def _first(instances: Sequence[Instance], path: str) -> tuple[Instance, dict[str, Any]] | None:
    for instance in instances:
        for event in instance.closed(path):
            return instance, event
    return None


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[list[Instance], OpenSSH, Path, MotoServer, str]]:
    moto = MotoServer(tmp_path / "moto.log")
    instances: list[Instance] = []
    try:
        bucket = moto.bucket()
        host_key = tmp_path / "host_ed25519"
        identity = tmp_path / "id_ed25519"
        for key in (host_key, identity):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        keys = tmp_path / "authorized_keys"
        keys.write_text((tmp_path / "id_ed25519.pub").read_text())
        # Everything the instances share; nothing else is given to either.
        shared = [
            "--listen",
            "haproxy:tcp:0:interface=127.0.0.1",
            "--host-key",
            str(host_key),
            "--authorized-keys",
            str(keys),
            "--storage",
            f"s3://{bucket}/site",
            "--s3-endpoint",
            moto.endpoint,
            "--home",
            "{user}",
        ]
        instances = [Instance(tmp_path, name, shared) for name in ("a", "b")]
        with haproxy(tmp_path, [i.port for i in instances]) as port:
            yield instances, OpenSSH(tmp_path, port), identity, moto, bucket
    finally:
        for instance in instances:
            instance.twistd.stop()
        moto.stop()


def _argv(client: OpenSSH, identity: Path, address: str) -> list[str]:
    """OpenSSH sftp through HAProxy from ``address``, a batch on its standard input."""
    target = f"{USER}@127.0.0.1"
    options = client.options(extra=[f"BindAddress={address}"])
    return ["sftp", *options, "-b", "-", "-i", str(identity), "-P", str(client.port), target]


def _sftp(client: OpenSSH, identity: Path, batch: str, address: str) -> None:
    # Bounded generously: 256 MiB through SSH, HAProxy and moto on a busy 2-core machine.
    done = subprocess.run(
        _argv(client, identity, address), input=batch.encode(), capture_output=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _write_big(path: Path) -> None:
    with path.open("wb") as out:
        for _ in range(BIG >> 24):
            out.write(os.urandom(1 << 24))


def _same(a: Path, b: Path) -> bool:
    with a.open("rb") as x, b.open("rb") as y:
        while True:
            one, two = x.read(1 << 22), y.read(1 << 22)
            if one != two:
                return False
            if not one:
                return True


def test_two_instances_one_bucket_behind_haproxy(
    deployment: tuple[list[Instance], OpenSSH, Path, MotoServer, str], tmp_path: Path
) -> None:
    instances, client, identity, moto, bucket = deployment
    big = tmp_path / "big.bin"
    _write_big(big)

    # A 256 MiB put through one instance; the growth of its resident memory meanwhile.
    before = {i.name: status_kib(i.pid) for i in instances}
    _sftp(client, identity, f"put {big} big.bin\n", "127.0.0.2")
    put_by, put = poll(lambda: _first(instances, "/big.bin"), what="the upload's audit event")
    assert put["bytes_written"] == BIG and put["session_id"].startswith("127.0.0.2:")
    put_growth = status_kib(put_by.pid, "VmHWM") - before[put_by.name]

    # Its get through the other (round robin), byte for byte.
    fetched = tmp_path / "fetched.bin"
    _sftp(client, identity, f"get big.bin {fetched}\n", "127.0.0.2")
    [get_by] = [i for i in instances if i is not put_by]
    get = poll(lambda: get_by.closed("/big.bin") or None, what="the download's audit event")[0]
    assert get["bytes_read"] == BIG and get["session_id"].startswith("127.0.0.2:")
    assert _same(big, fetched)
    get_growth = status_kib(get_by.pid, "VmHWM") - before[get_by.name]
    fetched.unlink()
    print(f"resident growth: put {put_growth} KiB, get {get_growth} KiB")
    # Bounded buffers: two 8 MiB parts, sixteen 1 MiB blocks, the requests in flight.
    assert put_growth < 64 << 10 and get_growth < 64 << 10

    # Ten clients at once, from ten addresses, spread over both instances.
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(1 << 20))
    runs = [
        subprocess.Popen(
            _argv(client, identity, f"127.0.0.{10 + n}"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for n in range(CLIENTS)
    ]
    for n, run in enumerate(runs):
        out, _ = run.communicate(f"put {small} c{n}.bin\n".encode(), timeout=120)
        assert run.returncode == 0, out
    keys = moto.keys(bucket)
    assert all(f"site/{USER}/c{n}.bin" in keys for n in range(CLIENTS))
    served = {n: [i.name for i in instances if i.closed(f"/c{n}.bin")] for n in range(CLIENTS)}
    assert all(len(names) == 1 for names in served.values()), served
    assert {names[0] for names in served.values()} == {"a", "b"}
    for n in range(CLIENTS):
        [event] = [e for i in instances for e in i.closed(f"/c{n}.bin")]
        assert event["session_id"].startswith(f"127.0.0.{10 + n}:")

    # One instance killed mid-download; the client resumes through the other.
    partial = tmp_path / "partial.bin"
    cut = subprocess.Popen(
        _argv(client, identity, "127.0.0.3"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert cut.stdin is not None
    cut.stdin.write(f"get big.bin {partial}\n".encode())
    cut.stdin.close()

    def serving() -> Instance | None:
        if not partial.exists() or partial.stat().st_size < 16 << 20:
            return None
        for instance in instances:
            peers = [e["peer"] for e in instance.events(audit_event="session_start")]
            if any(peer.startswith("127.0.0.3:") for peer in peers):
                return instance
        return None

    victim = poll(serving, timeout=120, what="the download under way")
    os.kill(victim.pid, signal.SIGKILL)
    assert cut.wait(timeout=120) != 0
    assert cut.stdout is not None
    cut.stdout.close()
    assert 0 < partial.stat().st_size < BIG
    [survivor] = [i for i in instances if i is not victim]
    _sftp(client, identity, f"reget big.bin {partial}\n", "127.0.0.3")
    assert _same(big, partial)
    resumed = [e for e in survivor.closed("/big.bin") if e["session_id"].startswith("127.0.0.3:")]
    assert resumed and 0 < resumed[0]["bytes_read"] < BIG

    # Every session, in both audit logs, is the real client's, never HAProxy's 127.0.0.1.
    for instance in instances:
        peers = [e["peer"] for e in instance.events(audit_event="session_start")]
        assert peers and all(p.startswith("127.0.0.") for p in peers)
        assert not any(p.startswith("127.0.0.1:") for p in peers), peers
