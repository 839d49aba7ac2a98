"""SpindleX programs run with their imports changed to spindlex_tw, and nothing else.

Each program in programs/ is written for SpindleX 1.0.4 (it imports
``spindlex``). :func:`migrate` rewrites its import lines, the one change a
user makes, and the test drives the result with a real client: OpenSSH's ssh
and sftp, Paramiko or AsyncSSH.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import asyncssh_connect, paramiko_client, run_async
from tests.support.harness import ROOT, OpenSSH
from tests.support.processes import stop_process
from tests.support.waiting import free_port

pytestmark = pytest.mark.interop

PROGRAMS = Path(__file__).with_name("programs")
_IMPORT = re.compile(r"^(from|import) spindlex(?=[. ])", re.MULTILINE)


def migrate(source: str) -> str:
    """The whole migration: ``spindlex`` becomes ``spindlex_tw`` in the import lines."""
    return _IMPORT.sub(r"\1 spindlex_tw", source)


class Program:
    """A migrated program running in a child process; its stdout read line by line."""

    def __init__(self, name: str, tmp: Path, *args: str, stdin: int = subprocess.DEVNULL) -> None:
        source = (PROGRAMS / name).read_text()
        migrated = migrate(source)
        assert migrated != source and "spindlex_tw" not in source
        changed = [
            (a, b)
            for a, b in zip(source.splitlines(), migrated.splitlines(), strict=True)
            if a != b
        ]
        assert all(a.startswith(("from spindlex", "import spindlex")) for a, _ in changed)
        script = tmp / name
        script.write_text(migrated)
        self.port = free_port()
        self.stderr_path = tmp / f"{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.port), *args],
            cwd=tmp,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def line(self) -> str:
        """The next line the program prints (a dead program fails the test with its stderr)."""
        assert self.proc.stdout is not None
        text = self.proc.stdout.readline()
        assert text, f"the program ended: {self.stderr_path.read_text()}"
        return text.rstrip("\n")

    def ask(self, command: str) -> Any:
        """Send ``command`` on the program's stdin; its answer is one JSON line."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.line())

    def close_input(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def until(self, prefix: str) -> list[str]:
        seen = []
        while not (text := self.line()).startswith(prefix):
            seen.append(text)
        return [*seen, text]

    def stop(self, interrupt: bool = True) -> str:
        """Ctrl-C (SIGINT), or a wait for a program that is ending; returns its last words."""
        status = stop_process(self.proc, signal.SIGINT) if interrupt else self.proc.wait(60)
        rest = self.proc.stdout.read() if self.proc.stdout else ""
        self._stderr.close()
        errors = self.stderr_path.read_text()
        assert status == 0, errors
        assert "Traceback" not in errors, errors
        return rest


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    started: list[Program] = []

    def start(name: str, *args: str, stdin: int = subprocess.DEVNULL) -> Program:
        program = Program(name, tmp_path, *args, stdin=stdin)
        started.append(program)
        return program

    yield start
    for program in started:
        if program.proc.poll() is None:
            stop_process(program.proc, signal.SIGKILL)


def test_migration_changes_only_imports() -> None:
    source = "from spindlex import SSHServer\nimport spindlex.exceptions\nx = 'spindlex'\n"
    assert migrate(source) == (
        "from spindlex_tw import SSHServer\nimport spindlex_tw.exceptions\nx = 'spindlex'\n"
    )


def test_password_exec_server(run: Any, tmp_path: Path) -> None:
    program = run("password_exec_server.py")
    program.until("listening on")
    ssh = OpenSSH(tmp_path, program.port)
    done = ssh.ssh("alice", "whoami", password="secret")
    assert (done.returncode, done.stdout) == (0, b"alice\n"), done.stderr
    done = ssh.ssh("alice", "uptime", password="secret")
    assert (done.returncode, done.stdout) == (0, b"up 42 days\n"), done.stderr
    assert b"no load average here\n" in done.stderr
    refused = ssh.ssh("alice", "rm -rf /", password="secret")
    assert refused.returncode != 0 and refused.stdout == b""
    wrong = ssh.ssh("alice", "whoami", password="wrong")
    assert wrong.returncode != 0 and b"Permission denied" in wrong.stderr  # sshpass says 5
    assert program.stop() == "stopped\n"


def test_sftp_server(run: Any, tmp_path: Path, root: Path) -> None:
    program = run("sftp_server.py", str(root))
    program.until("listening on")
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(300_000))
    (root / "served.txt").write_bytes(b"from the server\n")
    back = tmp_path / "back.txt"
    done = OpenSSH(tmp_path, program.port).sftp(
        "alice", "secret", f"put {upload} up.bin\nget served.txt {back}\nmkdir made\n"
    )
    assert done.returncode == 0, done.stderr
    assert (root / "up.bin").read_bytes() == upload.read_bytes()
    assert back.read_bytes() == b"from the server\n"
    assert (root / "made").is_dir()
    escaped = OpenSSH(tmp_path, program.port).sftp("alice", "secret", "get ../../etc/hostname\n")
    assert not (tmp_path / "hostname").exists(), escaped.stdout
    program.stop()


def test_manager_script(run: Any) -> None:
    program = run("manager_script.py", stdin=subprocess.PIPE)
    assert json.loads(program.line()) == {"event": "started", "running": True}
    client = paramiko_client(program.port)
    try:
        stats = program.ask("stats")
        assert stats["count"] == 1 and len(stats["active"]) == 1
        assert stats["stats"]["active_connections"] == 1
        assert stats["stats"]["total_connections"] == 1
        assert program.ask(f"close {stats['active'][0]}") == {"event": "close", "closed": True}
        transport = client.get_transport()
        assert transport is not None
        transport.join(30)  # the server dropped it: paramiko's reader thread ends
        assert not transport.is_active()
        assert program.ask("close no-such-connection") == {"event": "close", "closed": False}
        after = program.ask("stats")
        assert after["count"] == 0 and after["active"] == []
        assert after["stats"]["total_connections"] == 1
    finally:
        client.close()
    program.close_input()
    assert json.loads(program.line()) == {"event": "stopped", "running": False}
    program.stop(interrupt=False)


def test_keys_and_signing(run: Any, tmp_path: Path) -> None:
    program = run("keys_and_signing.py", str(tmp_path))
    facts = json.loads(program.line())
    assert facts["default"]["type"] == "ssh-ed25519"
    assert facts["rsa"]["type"] == facts["rsa"]["algorithm"] == "rsa-sha2-256"
    assert facts["ecdsa"]["type"] == "ecdsa-sha2-nistp256"
    for name, fact in facts.items():
        assert fact["verified"] and fact["reloaded_same"] and fact["reloaded_verifies"], name
        assert not fact["tampered"], name
        # ssh-keygen reads the saved file and agrees on the public key and fingerprint.
        path = tmp_path / f"id_{name}"
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        public = subprocess.run(
            ["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True
        )
        assert public.stdout.split()[:2] == fact["public"].split()[:2], public.stderr
        listed = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True
        )
        assert fact["fingerprint"] in listed.stdout
    assert subprocess.run(
        ["ssh-keygen", "-l", "-f", str(tmp_path / "id_rsa")], capture_output=True, text=True
    ).stdout.startswith("2048 ")
    program.until("listening on")
    done = OpenSSH(tmp_path, program.port).ssh("alice", "hello", identity=tmp_path / "id_rsa")
    assert (done.returncode, done.stdout) == (0, b"signed in with rsa-sha2-256\n"), done.stderr
    other = OpenSSH(tmp_path, program.port).ssh("alice", "hello", identity=tmp_path / "id_ecdsa")
    assert other.returncode == 255
    program.stop()


def test_error_handling(run: Any, tmp_path: Path, root: Path) -> None:
    program = run("error_handling.py", str(root))
    lines = program.until("listening on")
    caught = dict(line.split(": ", 1) for line in lines[:-1])
    assert caught["no host key"].startswith("caught ServerKeyMissing ['TransportException']")
    assert caught["broken key"].startswith(
        "caught KeyFileError ['CryptoException'] cannot load key"
    )
    assert caught["port in use"].startswith("caught ServerStartError ['TransportException']")
    assert caught["from_status"] == (
        "caught SFTPError ['SFTPError'] [3] Permission denied: /etc/shadow"
    )
    assert caught["started twice"].startswith("caught ServerStartError ['TransportException']")
    (root / "open.txt").write_bytes(b"fine\n")
    (root / "secret.txt").write_bytes(b"hidden\n")

    async def fetch() -> tuple[bytes, str]:
        async with asyncssh_connect(program.port) as conn, conn.start_sftp_client() as sftp:
            async with sftp.open("open.txt", "rb") as handle:
                data = await handle.read()
            try:
                await sftp.open("secret.txt", "rb")
            except Exception as error:  # asyncssh.SFTPPermissionDenied
                return data, f"{type(error).__name__}: {error}"
            return data, "opened"

    data, refusal = run_async(fetch())
    assert data == b"fine\n"
    assert refusal == "SFTPPermissionDenied: Permission denied"
    program.stop()
