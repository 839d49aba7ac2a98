"""What twistd spindlex tells a new user, and how it refuses to start: with real clients.

Start-up errors are one line naming the value and exit status 2; a started
server logs the command to connect with, the host key fingerprint and whether
--exec is on, and why it refused an exec, shell or pty request.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import subprocess
from pathlib import Path

import paramiko
import pytest

from tests.support.clients import paramiko_client
from tests.support.harness import ROOT, OpenSSH
from tests.support.twistd import TWISTD, Twistd, isolated_home

pytestmark = pytest.mark.interop

LOCAL = ["--listen", "tcp:0:interface=127.0.0.1"]
ALICE = ["--auth", "memory:alice:secret"]
HINT = re.compile(r"connect with: sftp -P (?P<port>\d+) (?P<user>\S+)@(?P<host>\S+)$")


def _run(
    tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **isolated_home(tmp), **(env or {})}
    return subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "--logfile=-", "spindlex", *args],
        cwd=tmp,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("twistd spindlex: error: ")
    return lines[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_busy_port_is_one_line_and_status_2(tmp_path: Path, workers: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        listen = f"tcp:{port}:interface=127.0.0.1"
        line = _one_line(_run(tmp_path, "--listen", listen, "--workers", workers, *ALICE))
    assert f"--listen tcp:{port}:interface=127.0.0.1: cannot listen: address already in use" in (
        line
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--authorized-keys", "{tmp}/absent_keys"],
            "--authorized-keys {tmp}/absent_keys: no such",
        ),
        (["--banner", "{tmp}"], "--banner {tmp}: "),
        (["--auth", "file:{tmp}/absent_passwords"], "{tmp}/absent_passwords"),
        (
            ["--host-key", "{tmp}/key", "--host-key-passphrase-file", "{tmp}/absent"],
            "--host-key-passphrase-file {tmp}/absent: No such file",
        ),
        (["--host-key-passphrase-file", "{tmp}/key"], "needs --host-key"),
        (["--max-connections-per-source", "0"], "--max-connections-per-source expects"),
        (["--max-startups", "10:30"], "--max-startups expects START:RATE:FULL"),
        (["--max-startups", "20:30:10"], "got '20:30:10'"),
        (["--max-startups-per-source", "many"], "got 'many'"),
        (["--max-channels", "-1"], "--max-channels expects"),
        (["--max-request-rate", "0"], "--max-request-rate expects RATE[:BURST]"),
        (["--max-request-rate", "5:x"], "got '5:x'"),
        (["--sftp-max-handles", "1.5"], "--sftp-max-handles expects"),
        (["--sftp-max-inflight", "8X"], "--sftp-max-inflight expects a size"),
        (["--sftp-max-requests", ""], "--sftp-max-requests expects"),
        (["--max-forward-listeners", "0"], "--max-forward-listeners expects"),
        (["--forward-connect-timeout", "inf"], "--forward-connect-timeout expects a number"),
        (["--hook-timeout", "-1"], "--hook-timeout expects a number of seconds above 0, got '-1'"),
    ],
)
def test_bad_files_and_limits_are_one_line_naming_the_value(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    (tmp_path / "key").write_text("not used\n")
    tmp = str(tmp_path)
    line = _one_line(_run(tmp_path, *LOCAL, *ALICE, *(a.format(tmp=tmp) for a in args)))
    assert needle.format(tmp=tmp) in line


def test_home_pointing_nowhere_is_not_created(tmp_path: Path) -> None:
    nowhere = tmp_path / "no" / "such" / "home"
    env = {"HOME": str(nowhere), "XDG_STATE_HOME": ""}
    line = _one_line(_run(tmp_path, *LOCAL, *ALICE, env=env))
    assert f"cannot create state directory {nowhere}/.local/state/spindlex_tw" in line
    assert not (tmp_path / "no").exists()


def test_an_uncreatable_state_directory_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a directory should be\n")
    line = _one_line(_run(tmp_path, *LOCAL, *ALICE, env={"XDG_STATE_HOME": str(blocker)}))
    assert f"cannot create state directory {blocker}/spindlex_tw: Not a directory" in line


def _keygen(path: Path, passphrase: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(path)], check=True
    )
    shown = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{path}.pub"], check=True, capture_output=True, text=True
    )
    return shown.stdout.split()[1]


def test_host_key_passphrase_file(tmp_path: Path) -> None:
    key = tmp_path / "host_key"
    fingerprint = _keygen(key, "correct horse")
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("battery staple\n")
    line = _one_line(
        _run(
            tmp_path,
            *LOCAL,
            *ALICE,
            "--host-key",
            str(key),
            "--host-key-passphrase-file",
            str(wrong),
        )
    )
    assert f"--host-key: cannot load key {key}: wrong passphrase" in line
    server = Twistd(
        [
            "spindlex",
            *LOCAL,
            *ALICE,
            "--host-key",
            str(key),
            "--host-key-passphrase-file",
            str(passphrase),
        ],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        client = paramiko_client(port)
        try:
            offered = client.get_transport().get_remote_server_key()
            assert offered.fingerprint == fingerprint
        finally:
            client.close()
        server.wait_for(re.compile(rf"host key is ssh-ed25519 {re.escape(fingerprint)}"))
    finally:
        server.stop()


def test_start_up_says_how_to_connect_and_why_commands_are_refused(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "hello.txt").write_text("hi\n")
    # twistd's own default pid file name, in the served directory: it must go elsewhere.
    server = Twistd(
        ["--pidfile=twistd.pid", "spindlex", *LOCAL, *ALICE],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        hint = server.wait_for(HINT)
        server.wait_for(re.compile(r"host key is ssh-ed25519 SHA256:\S+: ssh asks you"))
        server.wait_for(re.compile(r"SFTP only: .* start with --exec to run commands"))
        state_pid = tmp_path / "home" / ".local" / "state" / "spindlex_tw" / "twistd.pid"
        assert state_pid.read_text().strip() == str(server.proc.pid)
        assert not (served / "twistd.pid").exists()
        # The command the log gave, as a user would type it (isolated from ~/.ssh/config).
        client = OpenSSH(tmp_path, int(hint["port"]))
        listed = subprocess.run(
            [
                "sshpass",
                "-p",
                "secret",
                "sftp",
                *client.options(batch=False),
                "-P",
                hint["port"],
                f"{hint['user']}@{hint['host']}",
            ],
            input=b"ls\n",
            capture_output=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[-1].split() == [b"hello.txt"]
        assert b"twistd.pid" not in listed.stdout
        refused = client.ssh("alice", "echo", "hi", password="secret")
        assert refused.returncode != 0
        server.wait_for(
            re.compile(
                r"refused exec request from alice at 127\.0\.0\.1:\d+: SFTP only; "
                r"start the server with --exec"
            )
        )
        client.ssh("alice", password="secret", args=["-tt"], input=b"exit\n")
        server.wait_for(re.compile(r"refused pty request from alice at 127\.0\.0\.1:\d+"))
        server.wait_for(re.compile(r"refused shell request from alice"))
    finally:
        server.stop()
    assert not state_pid.exists()


def test_exec_on_says_so(tmp_path: Path) -> None:
    server = Twistd(
        ["spindlex", *LOCAL, *ALICE, "--exec"], cwd=tmp_path, env=isolated_home(tmp_path)
    )
    try:
        port = server.wait_for(HINT)["port"]
        server.wait_for(re.compile(rf"or: ssh -p {port} alice@127\.0\.0\.1$"))
        server.wait_for(re.compile(r"exec and shell are on \(--exec\)"))
    finally:
        server.stop()


def _held(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"SSH-2.0-held_open\r\n")
    assert sock.recv(256).startswith(b"SSH-2.0-")
    return sock


def test_two_hundred_clients_behind_one_address(tmp_path: Path) -> None:
    raised = [
        "--max-connections",
        "250",
        "--max-connections-per-source",
        "250",
        "--max-startups",
        "250:30:250",
        "--max-startups-per-source",
        "250",
    ]
    server = Twistd(
        ["spindlex", *LOCAL, *ALICE, *raised], cwd=tmp_path, env=isolated_home(tmp_path)
    )
    held: list[socket.socket] = []
    try:
        [port] = server.ports()
        held = [_held(port) for _ in range(200)]
        result = OpenSSH(tmp_path, port).sftp("alice", "secret", "pwd\n")
        assert result.returncode == 0, result.stderr
        assert not re.search(r"refused 127\.0\.0\.1", server.log())
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_per_source_startups_cap_refuses_the_next(tmp_path: Path) -> None:
    server = Twistd(
        ["spindlex", *LOCAL, *ALICE, "--max-startups-per-source", "3"],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    held: list[socket.socket] = []
    try:
        [port] = server.ports()
        held = [_held(port) for _ in range(3)]
        refused = OpenSSH(tmp_path, port).ssh("alice", "true", password="secret")
        assert refused.returncode == 255
        server.wait_for(
            re.compile(r"refused 127\.0\.0\.1: too many unauthenticated connections from this")
        )
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_channel_and_sftp_handle_limits(tmp_path: Path) -> None:
    (tmp_path / "one").write_text("1\n")
    (tmp_path / "two").write_text("2\n")
    server = Twistd(
        ["spindlex", *LOCAL, *ALICE, "--max-channels", "1", "--sftp-max-handles", "1"],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        client = paramiko_client(port)
        try:
            sftp = client.open_sftp()
            with pytest.raises(paramiko.ChannelException):
                client.get_transport().open_session()
            with sftp.open("one") as first:
                with pytest.raises(OSError):
                    sftp.open("two")
                assert first.read() == b"1\n"
            with sftp.open("two") as second:
                assert second.read() == b"2\n"
        finally:
            client.close()
    finally:
        server.stop()


def test_a_unix_socket_client_is_named_by_socket_and_process(tmp_path: Path) -> None:
    path = tmp_path / "ssh.sock"
    server = Twistd(
        ["spindlex", "--listen", f"unix:{path}", *ALICE], cwd=tmp_path, env=isolated_home(tmp_path)
    )
    try:
        server.wait_for(re.compile(rf"listening on {re.escape(str(path))} "))
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            transport = paramiko.Transport(sock)
            try:
                transport.connect(username="alice", password="secret")
            finally:
                transport.close()
        named = server.wait_for(re.compile(r"login alice from (\S+) by password"))
        assert named[1] == f"unix:{path}[pid={os.getpid()},uid={os.getuid()}]"
        assert "?:?" not in server.log()
    finally:
        server.stop()


def test_max_request_rate_disconnects_a_client_over_it(tmp_path: Path) -> None:
    server = Twistd(
        ["spindlex", *LOCAL, *ALICE, "--max-request-rate", "0.5:3"],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        client = paramiko_client(port)
        try:
            transport = client.get_transport()
            # Three requests fit the burst; the bucket refills one every two seconds.
            for _ in range(10):
                if not transport.is_active():
                    break
                transport.global_request("ping@example.com", wait=True)
            server.wait_for(re.compile(r"disconnected 127\.0\.0\.1:\d+: too many requests"))
        finally:
            client.close()
    finally:
        server.stop()


def test_a_pty_refused_by_the_key_says_so(tmp_path: Path) -> None:
    identity = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(identity)], check=True)
    keys = tmp_path / "authorized_keys"
    keys.write_text("no-pty " + (tmp_path / "id_ed25519.pub").read_text())
    server = Twistd(
        ["spindlex", *LOCAL, "--exec", "--authorized-keys", str(keys)],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        user = getpass.getuser()
        ran = OpenSSH(tmp_path, port).ssh(user, "true", identity=identity, args=["-tt"])
        assert b"PTY allocation request failed" in ran.stderr
        server.wait_for(
            re.compile(
                rf"refused pty request from {re.escape(user)} at 127\.0\.0\.1:\d+: "
                r"the key's authorized_keys options forbid it"
            )
        )
    finally:
        server.stop()
