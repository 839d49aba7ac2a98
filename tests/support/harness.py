"""Start a test server process and drive OpenSSH clients against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    """A spindlex_tw server in a child process, listening on 127.0.0.1."""

    def __init__(
        self,
        tmp: Path,
        app: str = "tests.support.apps:TestServer",
        settings: dict[str, Any] | None = None,
        host_keys: Sequence[Path] = (),
        env: dict[str, str] | None = None,
        listen: str = "tcp:0:interface=127.0.0.1",
    ) -> None:
        self.tmp = tmp
        self.record = tmp / "hooks.jsonl"
        self.log_path = tmp / f"server-{id(self):x}.log"
        cmd = [
            sys.executable,
            "-m",
            "tests.support.server_main",
            "--app",
            app,
            "--settings",
            json.dumps(settings or {}),
            "--listen",
            listen,
        ]
        for key in host_keys:
            cmd += ["--host-key", str(key)]
        full_env = dict(os.environ)
        full_env.update({"SPINDLEX_TEST_RECORD": str(self.record), "PYTHONPATH": str(ROOT)})
        full_env.update(env or {})
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        line = self._read_line(timeout=30)
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(
                f"server did not start: {line!r}\n{self.log_path.read_text(errors='replace')}"
            )
        self.port = int(line.split()[1])

    def _read_line(self, timeout: float) -> str:
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()))
        reader.daemon = True
        reader.start()
        reader.join(timeout)
        return result[0].decode() if result else ""

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def hooks(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


class OpenSSH:
    """Builds OpenSSH client command lines isolated from the user's config."""

    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp = tmp
        self.port = port
        self.known_hosts = tmp / "known_hosts"

    def options(self, batch: bool = True, extra: Sequence[str] = ()) -> list[str]:
        # ssh keeps the first value given for an option: the caller's go first.
        opts = ["-F", "/dev/null"]
        for option in extra:
            opts += ["-o", option]
        opts += [
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=20",
            "-o",
            f"BatchMode={'yes' if batch else 'no'}",
        ]
        for option in extra:
            opts += ["-o", option]
        return opts

    def password_argv(self, tool: str, user: str, password: str, *rest: str) -> list[str]:
        """``ssh`` or ``sftp`` logging in as ``user`` with ``password`` (via sshpass)."""
        port_flag = "-p" if tool == "ssh" else "-P"
        return [
            "sshpass",
            "-p",
            password,
            tool,
            *self.options(batch=False),
            "-o",
            "PubkeyAuthentication=no",
            port_flag,
            str(self.port),
            f"{user}@127.0.0.1",
            *rest,
        ]

    def sftp(self, user: str, password: str, commands: str) -> subprocess.CompletedProcess[bytes]:
        """Run SFTP ``commands`` (one per line) as ``user``, logged in by password."""
        return subprocess.run(
            self.password_argv("sftp", user, password),
            input=commands.encode(),
            capture_output=True,
            timeout=60,
        )

    def sftp_with_key(
        self,
        user: str,
        identity: Path,
        batch: str,
        extra: Sequence[str] = (),
        verbose: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sftp -b -`` with ``batch`` as ``user``, logged in with the key ``identity``.

        With ``verbose``, stderr carries sftp's own debug log (``-vvv``), which
        names the extensions it sends.
        """
        debug = ["-vvv"] if verbose else []
        opts = self.options(extra=[*extra, "LogLevel=DEBUG3"] if verbose else extra)
        target = f"{user}@127.0.0.1"
        return subprocess.run(
            ["sftp", *opts, *debug, "-b", "-", "-i", str(identity), "-P", str(self.port), target],
            input=batch,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ssh(
        self,
        user: str,
        *command: str,
        password: str | None = None,
        identity: Path | None = None,
        extra: Sequence[str] = (),
        args: Sequence[str] = (),
        input: bytes | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        cmd = ["ssh", *self.options(batch=password is None, extra=extra), "-p", str(self.port)]
        if identity is not None:
            cmd += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
        elif password is not None:
            cmd += ["-o", "PubkeyAuthentication=no"]
        cmd += [*args, f"{user}@127.0.0.1", *command]
        if password is not None:
            cmd = ["sshpass", "-p", password, *cmd]
        return subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
