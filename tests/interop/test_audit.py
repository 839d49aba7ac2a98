"""twistd spindlex --audit-log with OpenSSH: the JSON lines of real sessions, field by field."""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import eventsFromJSONLogFile

from tests.support.harness import OpenSSH
from tests.support.twistd import TWISTD, Twistd, isolated_home
from tests.support.waiting import poll

pytestmark = pytest.mark.interop

USER = getpass.getuser()
PASSWORD = "audit-pw"


class Audited:
    """A running twistd whose audit log the tests read."""

    def __init__(self, server: Twistd, client: OpenSSH, log: Path, key: Path) -> None:
        self.server = server
        self.client = client
        self.log = log
        self.key = key

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def session_of(self, match: dict[str, Any]) -> list[dict[str, Any]]:
        """Every event of the first session with an event matching ``match``, once it ended."""

        def ended() -> list[dict[str, Any]] | None:
            events = self.events()
            ids = [
                e["session_id"]
                for e in events
                if all(e.get(name) == value for name, value in match.items())
            ]
            if not ids:
                return None
            mine = [e for e in events if e.get("session_id") == ids[0]]
            return mine if any(e["audit_event"] == "session_end" for e in mine) else None

        return poll(ended, timeout=30, what=f"an ended session with {match}")


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    tmp = tmp_path_factory.mktemp("audit")
    key = tmp / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(key)], check=True, timeout=30
    )
    (tmp / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
    root = tmp / "root"
    root.mkdir()
    log = tmp / "audit.jsonl"
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--sftp-root",
            str(root),
            "--exec",
            "--authorized-keys",
            str(tmp / "authorized_keys"),
            "--auth",
            f"memory:{USER}:{PASSWORD}",
            "--audit-log",
            str(log),
        ],
        cwd=tmp,
        env=isolated_home(tmp),
    )
    try:
        [port] = server.ports()
        yield Audited(server, OpenSSH(tmp, port), log, key)
    finally:
        server.kill()


def _fingerprint(key: Path) -> str:
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key.with_suffix(".pub"))],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return listed.stdout.split()[1].decode()


def _by(events: list[dict[str, Any]], kind: str, **fields: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["audit_event"] == kind and all(e.get(k) == v for k, v in fields.items())
    ]


def test_sftp_session(audited: Audited, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    (tmp_path / "up.bin").write_bytes(payload)
    batch = "\n".join(
        [
            f"put {tmp_path / 'up.bin'} up.bin",
            f"get up.bin {tmp_path / 'down.bin'}",
            "mkdir made",
            "rename up.bin made/moved.bin",
            "rm made/moved.bin",
            "rmdir made",
            "-rm never-there",
        ]
    )
    result = _sftp_with_key(audited, batch)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "down.bin").read_bytes() == payload

    events = audited.session_of({"audit_event": "sftp", "path": "/up.bin"})
    [start] = _by(events, "session_start")
    [end] = _by(events, "session_end")
    assert start["user"] == end["user"] == USER
    assert start["method"] == end["method"] == "publickey"
    assert start["fingerprint"] == end["fingerprint"] == _fingerprint(audited.key)
    assert start["peer"] == end["peer"]
    assert start["peer"].startswith("127.0.0.1:")
    assert start["login_seconds"] >= 0
    assert end["duration"] >= start["login_seconds"]
    # The file went up and came back inside the encrypted stream.
    assert end["bytes_in"] > len(payload) and end["bytes_out"] > len(payload)

    # OpenSSH's sftp names files by the absolute paths it resolved.
    [upload, download] = _by(events, "sftp", operation="open", path="/up.bin")
    assert {"write", "creat", "trunc"} <= set(upload["flags"]) and upload["status"] == "ok"
    assert download["flags"] == ["read"]
    closes = {e["handle"]: e for e in _by(events, "sftp", operation="close", path="/up.bin")}
    assert closes[upload["handle"]]["bytes_written"] == len(payload)
    assert closes[upload["handle"]]["bytes_read"] == 0
    assert closes[download["handle"]]["bytes_read"] == len(payload)
    assert all(c["status"] == "ok" and c["duration"] >= 0 for c in closes.values())

    assert _by(events, "sftp", operation="mkdir", path="/made", status="ok")
    assert _by(
        events, "sftp", operation="rename", path="/up.bin", target="/made/moved.bin", status="ok"
    )
    assert _by(events, "sftp", operation="remove", path="/made/moved.bin", status="ok")
    assert _by(events, "sftp", operation="rmdir", path="/made", status="ok")
    assert _by(events, "sftp", operation="remove", path="/never-there", status="no_such_file")
    # Every event of the session names it and its user.
    assert all(e["user"] == USER for e in events if e["audit_event"] == "sftp")


def test_exec_exit_status(audited: Audited) -> None:
    result = audited.client.ssh(USER, "echo audited; exit 3", identity=audited.key)
    assert (result.returncode, result.stdout) == (3, b"audited\n")
    events = audited.session_of({"audit_event": "exec", "command": "echo audited; exit 3"})
    [started] = _by(events, "exec")
    assert (started["request"], started["user"]) == ("exec", USER)
    [exited] = _by(events, "exit")
    assert exited["exit_status"] == 3 and exited["command"] == "echo audited; exit 3"


def test_refused_login(audited: Audited) -> None:
    result = audited.client.ssh(
        USER, "true", password="wrong",
        extra=["NumberOfPasswordPrompts=1", "PreferredAuthentications=password"],
    )
    assert result.returncode != 0  # sshpass says 5: the password was refused
    events = audited.session_of({"audit_event": "auth_failed", "method": "password"})
    [failed] = _by(events, "auth_failed", method="password")
    assert (failed["user"], failed["reason"]) == (USER, "credentials refused")
    assert failed["peer"].startswith("127.0.0.1:")
    [end] = _by(events, "session_end")
    assert end["user"] is None and end["method"] is None


def test_twisted_reads_it_back(audited: Audited) -> None:
    """The file is twisted.logger's JSON format: its own reader gives the events back."""
    poll(lambda: audited.events() or None, what="some audit event")
    with audited.log.open() as stream:
        events = list(eventsFromJSONLogFile(stream, recordSeparator=""))
    assert events and all(e["log_namespace"] == "spindlex_tw.audit" for e in events)
    assert {"connect", "key_exchange"} <= {e["audit_event"] for e in events}


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--audit-log", "/nonexistent-dir/audit.jsonl", "--audit-log /nonexistent-dir/audit.jsonl"),
        ("--metrics", "tcp:nine", "--metrics 'tcp:nine' is not a server endpoint"),
    ],
)
def test_bad_values_are_one_line(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "spindlex", "--auth", "memory:a:b", option, value],
        cwd=tmp_path,
        env={**os.environ, **isolated_home(tmp_path)},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def _sftp_with_key(audited: Audited, batch: str) -> subprocess.CompletedProcess[str]:
    return audited.client.sftp_with_key(
        USER, audited.key, batch, extra=["IdentitiesOnly=yes"]
    )


def test_sftp_links_attributes_and_copies(audited: Audited, tmp_path: Path) -> None:
    (tmp_path / "src.txt").write_bytes(b"linked\n")
    batch = "\n".join(
        [
            f"put {tmp_path / 'src.txt'} src.txt",
            "chmod 600 src.txt",
            "ln -s src.txt soft.txt",
            "ln src.txt hard.txt",
            "cp src.txt copy.txt",
            "rm soft.txt",
            "rm hard.txt",
            "rm copy.txt",
            "rm src.txt",
        ]
    )
    result = _sftp_with_key(audited, batch)
    assert result.returncode == 0, result.stderr
    events = audited.session_of({"audit_event": "sftp", "operation": "symlink"})
    assert _by(events, "sftp", operation="setstat", path="/src.txt", status="ok")
    assert _by(events, "sftp", operation="symlink", path="/soft.txt", target="src.txt")
    assert _by(events, "sftp", operation="link", path="/src.txt", target="/hard.txt")
    [copy] = _by(events, "sftp", operation="copy", status="ok")
    assert (copy["path"], copy["target"]) == ("/src.txt", "/copy.txt")


def test_forwards_and_refused_requests(audited: Audited) -> None:
    client = audited.client
    # ssh -W: a direct-tcpip channel to the server's own port, which answers with its banner.
    forwarded = client.ssh(
        USER, identity=audited.key, args=("-W", f"127.0.0.1:{client.port}"), timeout=60
    )
    assert forwarded.stdout.startswith(b"SSH-2.0-")
    events = audited.session_of({"audit_event": "forward", "port": client.port})
    [forward] = _by(events, "forward")
    assert (forward["kind"], forward["host"], forward["result"]) == (
        "direct-tcpip",
        "127.0.0.1",
        "ok",
    )
    refused = client.ssh(USER, "no-such-subsystem", identity=audited.key, args=("-s",))
    assert refused.returncode != 0
    events = audited.session_of({"audit_event": "request_refused", "request": "subsystem"})
    [request] = _by(events, "request_refused")
    assert request["reason"] == "refused by check_channel_subsystem_request"


def test_killed_command_has_its_signal(audited: Audited) -> None:
    result = audited.client.ssh(USER, "kill -TERM $$", identity=audited.key)
    assert result.returncode == 255
    events = audited.session_of({"audit_event": "exec", "command": "kill -TERM $$"})
    [exited] = _by(events, "exit")
    assert (exited["exit_status"], exited["exit_signal"]) == (None, "TERM")


def test_remote_forward(audited: Audited) -> None:
    """ssh -R 0:...: the tcpip-forward, with the port the server chose."""
    result = audited.client.ssh(
        USER,
        "echo remote",
        identity=audited.key,
        args=("-R", "0:127.0.0.1:9", "-o", "ExitOnForwardFailure=yes"),
    )
    assert (result.returncode, result.stdout) == (0, b"remote\n")
    events = audited.session_of({"audit_event": "forward", "kind": "tcpip-forward"})
    [forward] = _by(events, "forward")
    assert forward["result"] == "ok" and forward["port"] > 0


def test_socket_forwards(audited: Audited) -> None:
    """ssh -L and -R with Unix socket paths: `forward` events carry the path."""
    # Short paths: a Unix socket's path is limited to 107 bytes, pytest's tmp dirs are long.
    with tempfile.TemporaryDirectory(prefix="spx-au-") as name:
        target, local, listen = (Path(name) / n for n in ("t.sock", "l.sock", "r.sock"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(target))
            server.listen(1)
            client = audited.client
            argv = [
                "ssh", *client.options(extra=["ExitOnForwardFailure=yes"]),
                "-p", str(client.port), "-i", str(audited.key), "-o", "IdentitiesOnly=yes",
                "-L", f"{local}:{target}", "-R", f"{listen}:{target}",
                f"{USER}@127.0.0.1", "echo ready; read line",
            ]  # fmt: skip
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            try:
                assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                    conn.settimeout(30)
                    conn.connect(str(local))
                    server.settimeout(30)
                    accepted, _ = server.accept()
                    accepted.close()
            finally:
                proc.communicate(b"\n", timeout=60)
    assert proc.returncode == 0
    events = audited.session_of({"audit_event": "forward", "path": str(listen)})
    assert {(e["kind"], e["path"], e["result"]) for e in _by(events, "forward")} == {
        ("streamlocal-forward@openssh.com", str(listen), "ok"),
        ("direct-streamlocal@openssh.com", str(target), "ok"),
    }
