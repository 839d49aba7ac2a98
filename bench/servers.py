"""The three servers under test, each started in its own process on 127.0.0.1.

Every server gets the same user, the same client key, and an SFTP root in
the same directory, so each benchmark drives them with identical commands.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import procstat

ROOT = Path(__file__).resolve().parents[1]
SSHD = Path("/usr/sbin/sshd")
_START_TIMEOUT = 30.0


class Server:
    """A server process: ``pid`` is the root of the tree whose CPU and memory count."""

    name = "?"

    def __init__(self, work: Path, keys: Any, sftp_root: Path) -> None:
        self.work = work
        self.keys = keys  # bench.clients.Keys: the host key and the authorized client key
        self.sftp_root = sftp_root
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.user = getpass.getuser()
        self.log_path = work / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        raise NotImplementedError

    def _spawn_announcing(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``cmd`` and wait for its ``PORT <n>`` line."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=child_env(env or {}),
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        line = _read_line(self.proc, _START_TIMEOUT)
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{self.name} did not start ({line!r}); see {self.log_path}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)

    def settle(self, baseline_children: int, timeout: float = 5.0) -> None:
        """Wait until connections have ended: the tree is back to its resting size."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if procstat.child_count(self.pid) <= baseline_children:
                break
            time.sleep(0.02)
        time.sleep(0.1)  # let the server finish the connection's last callbacks


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment, with the checkout importable and ``extra`` on top."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return result[0].decode(errors="replace").strip() if result else ""


class SpindlexServer(Server):
    name = "spindlex_tw"

    def __init__(
        self, work: Path, keys: Any, sftp_root: Path, workers: int = 1, disk_io: str = "auto"
    ) -> None:
        if workers > 1:
            self.name = f"spindlex_tw x{workers}"
        if disk_io != "auto":
            # The SFTP root is on tmpfs, where "auto" runs file calls inline.
            self.name = f"spindlex_tw {disk_io}"
        super().__init__(work, keys, sftp_root)
        self.workers = workers
        self.disk_io = disk_io
        self.log_path = work / f"spindlex-{workers}-{disk_io}.log"

    def start(self) -> None:
        # The benchmarks hold up to 10,000 connections from one address (bench.scale);
        # production limits would refuse.
        settings = {
            "max_connections": 20000,
            "max_connections_per_source": 20000,
            "max_startups_per_source": 100,
            "max_startups": [200, 30, 400],  # sshd's, as configured below
        }
        cmd = [
            sys.executable,
            "-m",
            "bench.spindlex_server",
            "--host-key",
            str(self.keys.host_key),
            "--workers",
            str(self.workers),
            "--settings",
            json.dumps(settings),
        ]
        env = {
            "SPINDLEX_BENCH_AUTHORIZED": str(self.keys.authorized),
            "SPINDLEX_BENCH_SFTP_ROOT": str(self.sftp_root),
            "SPINDLEX_BENCH_DISK_IO": self.disk_io,
        }
        self._spawn_announcing(cmd, env)


class AsyncSSHServer(Server):
    name = "asyncssh"

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "bench.asyncssh_server",
            "--host-key",
            str(self.keys.host_key),
            "--authorized",
            str(self.keys.authorized),
            "--root",
            str(self.sftp_root),
        ]
        self._spawn_announcing(cmd)


def ensure_sshd() -> None:
    """Install Debian's openssh-server when sshd is missing and we may (root)."""
    if SSHD.exists():
        return
    if os.geteuid() != 0:
        raise RuntimeError("/usr/sbin/sshd is missing: apt-get install -y openssh-server")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "openssh-server"], check=True, env=env)


class OpenSSHServer(Server):
    """``sshd -D`` with its own config: the client key, internal-sftp chrooted to the root."""

    name = "openssh"

    def start(self) -> None:
        ensure_sshd()
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.port = _free_port()
        config = self.work / "sshd_config"
        # internal-sftp -d starts in the root: the same paths work for every server.
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.keys.host_key}",
                    f"PidFile {self.work / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.keys.authorized}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "MaxStartups 200:30:400",
                    "MaxSessions 20",
                    "LogLevel ERROR",
                    # Debian's bash reads ~/.bashrc under sshd unless SHLVL says it is
                    # nested; this machine's rc (pyenv init) would add ~80 ms to each
                    # ssh command, which is the account's cost, not sshd's.
                    "SetEnv SHLVL=1",
                    f"Subsystem sftp internal-sftp -d {self.sftp_root}",
                    "",
                ]
            )
        )
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        _wait_listening(self, "sshd")


def _wait_listening(server: Server, what: str) -> None:
    """Wait until ``server`` accepts connections on its port, or fail naming its log."""
    assert server.proc is not None
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{what} exited; see {server.log_path}")
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{what} did not listen; see {server.log_path}")


class TwistdServer(Server):
    """``twistd -n spindlex --workers N`` with the bench's application, as a user runs it."""

    def __init__(self, work: Path, keys: Any, sftp_root: Path, workers: int) -> None:
        self.name = f"twistd x{workers}"
        super().__init__(work, keys, sftp_root)
        self.workers = workers
        self.log_path = work / f"twistd-{workers}.log"

    def start(self) -> None:
        self.port = _free_port()
        twistd = "from twisted.scripts.twistd import run; run()"
        cmd = [
            sys.executable,
            "-c",
            twistd,
            "-n",
            "--pidfile=",
            f"--logfile={self.log_path}",
            "spindlex",
            "--workers",
            str(self.workers),
            "--listen",
            f"tcp:{self.port}:interface=127.0.0.1",
            "--app",
            "bench.spindlex_server:BenchServer",
            "--host-key",
            str(self.keys.host_key),
            "--sftp-root",
            str(self.sftp_root),
            # The load comes from one address: as for the other servers, sshd's startups.
            "--max-startups",
            "200:30:400",
            "--max-startups-per-source",
            "100",
        ]
        env = child_env(
            {
                "SPINDLEX_BENCH_AUTHORIZED": str(self.keys.authorized),
                "SPINDLEX_BENCH_SFTP_ROOT": str(self.sftp_root),
            }
        )
        # twistd logs to the file itself; what it says before that (a usage
        # error) goes to stderr, kept beside it.
        errors = open(self.work / f"twistd-{self.workers}.stderr", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            stdin=subprocess.DEVNULL,
        )
        errors.close()  # the child keeps its own copy
        _wait_listening(self, "twistd")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def have_openssh_client() -> bool:
    return all(shutil.which(tool) for tool in ("ssh", "sftp"))
