"""``twistd spindlex`` options that shape connections, proven with real clients.

--max-connections, --login-grace, --max-auth-tries, --app and --host-key: each
test starts the real twistd command and drives OpenSSH's ssh/sftp/ssh-keyscan
(or, for a client that stalls on purpose, a plain TCP socket) against it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.harness import ROOT, OpenSSH
from tests.support.twistd import Twistd, isolated_home

pytestmark = pytest.mark.interop

LOCAL = ["--listen", "tcp:0:interface=127.0.0.1", "--auth", "memory:alice:secret"]


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Twistd:
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    return Twistd(
        ["spindlex", *LOCAL, *args], cwd=served, env={**isolated_home(tmp_path), **(env or {})}
    )


def _held(port: int) -> socket.socket:
    """A TCP connection the server admitted: its identification line has arrived."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    assert sock.recv(256).startswith(b"SSH-2.0-")
    return sock


def _logs_in(client: OpenSSH) -> None:
    """alice logs in by password and gets an SFTP session (no --exec: no commands)."""
    result = client.sftp("alice", "secret", "pwd\n")
    assert result.returncode == 0, result.stderr
    assert b"Remote working directory: /" in result.stdout


def _end(sock: socket.socket) -> None:
    """Close our side and wait until the server has closed its own (its count is down)."""
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(4096):
        pass
    sock.close()


def test_max_connections_refuses_the_one_too_many(tmp_path: Path) -> None:
    server = _start(tmp_path, "--max-connections", "2")
    try:
        [port] = server.ports()
        client = OpenSSH(tmp_path, port)
        held = [_held(port), _held(port)]
        refused = client.ssh("alice", "true", password="secret", extra=["LogLevel=INFO"])
        assert refused.returncode != 0
        server.wait_for(re.compile(r"refused 127\.0\.0\.1: "))
        for sock in held:
            _end(sock)
        _logs_in(client)
    finally:
        server.stop()


def test_login_grace_disconnects_a_client_that_never_logs_in(tmp_path: Path) -> None:
    server = _start(tmp_path, "--login-grace", "1")
    try:
        [port] = server.ports()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"SSH-2.0-stalling_client\r\n")
            received = b""
            while chunk := sock.recv(4096):  # until the server closes
                received += chunk
        assert b"Login grace time exceeded" in received
        server.wait_for(re.compile(r"login grace time over for 127\.0\.0\.1:\d+"))
    finally:
        server.stop()


def test_max_auth_tries_disconnects_after_that_many_failures(tmp_path: Path) -> None:
    server = _start(tmp_path, "--max-auth-tries", "2")
    asked = tmp_path / "asked"
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho asked >> {asked}\necho wrong\n")
    askpass.chmod(0o755)
    try:
        [port] = server.ports()
        client = OpenSSH(tmp_path, port)
        result = subprocess.run(
            [
                "ssh",
                *client.options(
                    batch=False,
                    extra=["PreferredAuthentications=password", "NumberOfPasswordPrompts=10"],
                ),
                "-p",
                str(port),
                "alice@127.0.0.1",
                "true",
            ],
            env={**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 255
        assert b"Too many authentication failures" in result.stderr
        # ssh would have asked ten times; the server stopped it after two.
        assert asked.read_text().count("asked") == 2
    finally:
        server.stop()


APP = textwrap.dedent(
    """
    from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
    from spindlex_tw.server.ssh_server import SSHServer


    class OwnServer(SSHServer):
        def get_banner(self):
            return "own app banner\\n"

        def check_auth_password(self, username, password):
            ok = (username, password) == ("bob", "hunter2")
            return AUTH_SUCCESSFUL if ok else AUTH_FAILED
    """
)


def test_app_hooks_win_and_the_options_fill_in_the_rest(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "own_app.py").write_text(APP)
    server = _start(
        tmp_path,
        "--app",
        "own_app:OwnServer",
        env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(modules)])},
    )
    try:
        [port] = server.ports()
        client = OpenSSH(tmp_path, port)
        upload = tmp_path / "upload.txt"
        upload.write_text("through the app\n")
        put = client.sftp("bob", "hunter2", f"put {upload} up.txt\n")
        assert put.returncode == 0, put.stderr
        # The SFTP root is the options' (twistd's working directory).
        assert (tmp_path / "served" / "up.txt").read_text() == "through the app\n"
        # The app's password hook wins over --auth; its banner is shown.
        alice = client.ssh("alice", "true", password="secret", extra=["NumberOfPasswordPrompts=1"])
        assert alice.returncode != 0
        shown = client.ssh("bob", "true", extra=["LogLevel=INFO"])
        assert b"own app banner" in shown.stderr
    finally:
        server.stop()


def test_host_key_options_serve_exactly_those_keys(tmp_path: Path) -> None:
    keys = {}
    for name, args in {"rsa": ["-t", "rsa", "-b", "2048"], "ecdsa": ["-t", "ecdsa"]}.items():
        path = tmp_path / f"host_{name}"
        subprocess.run(["ssh-keygen", "-q", "-N", "", *args, "-f", str(path)], check=True)
        keys[name] = path
    server = _start(tmp_path, "--host-key", str(keys["rsa"]), "--host-key", str(keys["ecdsa"]))
    try:
        [port] = server.ports()
        scanned = subprocess.run(
            ["ssh-keyscan", "-p", str(port), "-t", "rsa,ecdsa,ed25519", "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        offered = sorted(line.split()[1:] for line in scanned.stdout.splitlines())
        expected = sorted(
            keys[name].with_suffix(".pub").read_text().split()[:2] for name in ("rsa", "ecdsa")
        )
        assert offered == expected, scanned.stdout + scanned.stderr
        # A client that trusts only the RSA key logs in with strict checking.
        known = tmp_path / "known_rsa"
        known.write_text(f"[127.0.0.1]:{port} {keys['rsa'].with_suffix('.pub').read_text()}")
        trusted = subprocess.run(
            [
                "sshpass",
                "-p",
                "secret",
                "sftp",
                "-F",
                "/dev/null",
                "-o",
                f"UserKnownHostsFile={known}",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "HostKeyAlgorithms=rsa-sha2-512",
                "-o",
                "PubkeyAuthentication=no",
                "-P",
                str(port),
                "alice@127.0.0.1",
            ],
            input=b"pwd\n",
            capture_output=True,
            timeout=60,
        )
        assert trusted.returncode == 0, trusted.stderr
        assert b"Remote working directory: /" in trusted.stdout
    finally:
        server.stop()

