"""twistd spindlex --metrics: Prometheus scrapes around real OpenSSH transfers."""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.harness import OpenSSH
from tests.support.twistd import TWISTD, Twistd, isolated_home
from tests.support.waiting import poll

pytestmark = pytest.mark.interop

USER = getpass.getuser()
PASSWORD = "metrics-pw"
WORKER = re.compile(r"listening on \S+ \(worker (?P<pid>\d+)\)")
METRICS = re.compile(r"metrics on http://(?P<host>[\d.]+):(?P<port>\d+)/metrics")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Scraped:
    def __init__(self, server: Twistd, client: OpenSSH, url: str) -> None:
        self.server = server
        self.client = client
        self.url = url

    def scrape(self, keep_worker: bool = False) -> Samples:
        """Every sample; summed over the processes unless ``keep_worker``."""
        with urllib.request.urlopen(self.url, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
        samples: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = {
                    k: v for k, v in sample.labels.items() if keep_worker or k != "worker"
                }
                key = (sample.name, frozenset(labels.items()))
                samples[key] = samples.get(key, 0.0) + sample.value
        return samples

    def idle(self) -> Samples:
        """A scrape taken once no connection is open (every session_end counted)."""

        def quiet() -> Samples | None:
            samples = self.scrape()
            return samples if value(samples, "spindlex_connections_current") == 0 else None

        return poll(quiet, timeout=30, what="no open connection in the metrics")


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    tmp = tmp_path_factory.mktemp("metrics")
    root = tmp / "root"
    root.mkdir()
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--sftp-root",
            str(root),
            "--auth",
            f"memory:{USER}:{PASSWORD}",
            "--metrics",
            "tcp:0:interface=127.0.0.1",
        ],
        cwd=tmp,
        env=isolated_home(tmp),
    )
    try:
        [port] = server.ports()
        found = server.wait_for(METRICS)
        url = f"http://{found['host']}:{found['port']}/metrics"
        yield Scraped(server, OpenSSH(tmp, port), url)
    finally:
        server.kill()


def test_transfer_moves_the_counters(scraped: Scraped, tmp_path: Path) -> None:
    payload = os.urandom(200_000)
    (tmp_path / "up.bin").write_bytes(payload)
    before = scraped.idle()
    result = scraped.client.sftp(
        USER, PASSWORD, f"put {tmp_path / 'up.bin'} up.bin\nmkdir d\nrmdir d\n"
    )
    assert result.returncode == 0, result.stderr
    after = scraped.idle()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("spindlex_connections_total") == 1
    # sshpass answers whichever prompt comes: OpenSSH asks by keyboard-interactive.
    assert moved("spindlex_logins_total", method="keyboard-interactive", result="success") == 1
    assert moved("spindlex_sftp_written_bytes_total") == len(payload)
    assert moved("spindlex_sftp_read_bytes_total") == 0
    for operation in ("open", "close", "mkdir", "rmdir"):
        assert moved("spindlex_sftp_operations_total", operation=operation, status="ok") == 1
    # The file crossed the connection, inside its packets.
    assert moved("spindlex_received_bytes_total") > len(payload)
    assert 0 < moved("spindlex_sent_bytes_total") < len(payload)
    assert moved("spindlex_handshake_seconds_count") == 1
    assert moved("spindlex_login_seconds_count") == 1
    assert moved("spindlex_handshake_seconds_sum") > 0


def test_refused_login_is_counted(scraped: Scraped) -> None:
    before = scraped.idle()
    result = scraped.client.ssh(
        USER,
        "true",
        password="wrong",
        extra=["NumberOfPasswordPrompts=1", "PreferredAuthentications=password"],
    )
    assert result.returncode != 0
    after = scraped.idle()
    key = ("spindlex_logins_total", frozenset({("method", "password"), ("result", "failure")}))
    assert after.get(key, 0) - before.get(key, 0) == 1


def _twistd_error(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "spindlex", "--auth", "memory:a:b", *args],
        cwd=tmp_path,
        env={**os.environ, **isolated_home(tmp_path), **(env or {})},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    return result.stderr.decode().splitlines()


def test_without_prometheus_client_one_line(tmp_path: Path) -> None:
    # A package of that name that cannot be imported stands for a missing one.
    fake = tmp_path / "fake" / "prometheus_client"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed')\n")
    lines = _twistd_error(
        tmp_path,
        "--metrics",
        "tcp:0",
        env={"PYTHONPATH": os.pathsep.join([str(fake.parent), os.getcwd()])},
    )
    assert len(lines) == 1 and "pip install 'spindlex-tw[metrics]'" in lines[0], lines


def test_busy_metrics_port_one_line(tmp_path: Path, scraped: Scraped) -> None:
    busy = scraped.url.split(":")[2].split("/")[0]
    lines = _twistd_error(tmp_path, "--listen", "tcp:0", "--metrics", f"tcp:{busy}")
    assert len(lines) == 1 and f"--metrics tcp:{busy}" in lines[0], lines


def test_workers_are_served_together(tmp_path: Path) -> None:
    """--workers 2: one scrape of the first process counts the logins every process served."""
    (tmp_path / "root").mkdir()
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--sftp-root",
            str(tmp_path / "root"),
            "--auth",
            f"memory:{USER}:{PASSWORD}",
            "--metrics",
            "tcp:0:interface=127.0.0.1",
            "--workers",
            "2",
        ],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        found = server.wait_for(METRICS)
        pids = {m["pid"] for m in server.wait_for_all(WORKER, 2)}
        scraped = Scraped(
            server, OpenSSH(tmp_path, port), f"http://{found['host']}:{found['port']}/metrics"
        )
        sessions = 6
        for _ in range(sessions):
            assert scraped.client.sftp(USER, PASSWORD, "ls\n").returncode == 0
        after = scraped.idle()
        logins = sum(
            v
            for (name, labels), v in after.items()
            if name == "spindlex_logins_total" and ("result", "success") in labels
        )
        assert logins == sessions
        assert value(after, "spindlex_connections_total") == sessions
        # Each process shows its own samples, even one that served nobody.
        workers = {
            dict(labels)["worker"]
            for (name, labels), _ in scraped.scrape(keep_worker=True).items()
            if name == "spindlex_connections_total"
        }
        assert workers == pids
    finally:
        server.stop()


def test_refused_connection_is_audited_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            f"memory:{USER}:{PASSWORD}",
            "--max-connections",
            "1",
            "--audit-log",
            str(log),
            "--metrics",
            "tcp:0:interface=127.0.0.1",
        ],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        found = server.wait_for(METRICS)
        scraped = Scraped(
            server, OpenSSH(tmp_path, port), f"http://{found['host']}:{found['port']}/metrics"
        )
        # One connection that never logs in holds the only place.
        with socket.create_connection(("127.0.0.1", port), timeout=30) as holder:
            assert holder.recv(64).startswith(b"SSH-2.0-")
            refused = scraped.client.ssh(USER, "true", password=PASSWORD)
            assert refused.returncode == 255
        events = [json.loads(line) for line in log.read_text().splitlines()]
        [event] = [e for e in events if e["audit_event"] == "connection_refused"]
        assert (event["peer"], event["reason"]) == ("127.0.0.1", "too many connections")
        after = scraped.idle()
        refusals = value(after, "spindlex_connections_refused_total", reason="too many connections")
        assert refusals == 1
    finally:
        server.kill()
