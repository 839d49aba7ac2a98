"""twistd spindlex behind a real HAProxy (send-proxy-v2): the client's own address everywhere.

The client binds 127.0.0.2 and HAProxy reaches the servers from 127.0.0.1, so
a log line or an ``SSH_CLIENT`` that says 127.0.0.2 can only have come from
the PROXY header.
"""

from __future__ import annotations

import getpass
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.haproxy import haproxy, needs_haproxy
from tests.support.harness import OpenSSH
from tests.support.twistd import Twistd, isolated_home

pytestmark = [pytest.mark.interop, needs_haproxy]

CLIENT = "127.0.0.2"  # the real client: any loopback address other than HAProxy's own
PROXIED = ["--listen", "haproxy:tcp:0:interface=127.0.0.1", "--auth", "memory:alice:secret"]


def _server(tmp_path: Path, name: str, *args: str) -> Twistd:
    served = tmp_path / name
    served.mkdir()
    return Twistd(["spindlex", *PROXIED, *args], cwd=served, env=isolated_home(tmp_path))


def test_two_servers_behind_haproxy_see_the_real_client(tmp_path: Path) -> None:
    servers = [_server(tmp_path, name, "--exec") for name in ("a", "b")]
    try:
        backends = [server.ports()[0] for server in servers]
        with haproxy(tmp_path, backends) as port:
            client = OpenSSH(tmp_path, port)
            bound = [f"BindAddress={CLIENT}"]
            # Round robin: two logins, one on each server.
            for _ in servers:
                result = client.ssh("alice", "echo $SSH_CLIENT", password="secret", extra=bound)
                assert result.returncode == 0, result.stderr
                host, client_port, server_port = result.stdout.decode().split()
                assert host == CLIENT
                assert int(server_port) in backends or int(server_port) == port
                assert int(client_port) > 0
        for server in servers:
            line = server.wait_for(re.compile(r"login alice from (\S+) by \S+"))
            assert line[1].startswith(f"{CLIENT}:"), server.log()
            # The proxy's own address names no connection.
            assert not re.search(r"login alice from 127\.0\.0\.1:", server.log())
    finally:
        for server in servers:
            server.stop()


def _held(port: int) -> socket.socket:
    """A connection from CLIENT through HAProxy that the server admitted (it sent its version)."""
    sock = socket.socket()
    sock.bind((CLIENT, 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"SSH-2.0-held_open\r\n")
    assert sock.recv(256).startswith(b"SSH-2.0-")
    return sock


def test_per_source_limit_counts_the_real_client(tmp_path: Path) -> None:
    server = _server(tmp_path, "served", "--max-startups-per-source", "1")
    try:
        [backend] = server.ports()
        with haproxy(tmp_path, [backend]) as port, _held(port):
            client = OpenSSH(tmp_path, port)
            # The same client again: over its own cap of one unauthenticated connection.
            refused = client.ssh(
                "alice", "true", password="secret", extra=[f"BindAddress={CLIENT}"]
            )
            assert refused.returncode == 255
            server.wait_for(re.compile(rf"refused {re.escape(CLIENT)}: too many unauthenticated"))
            # Another client behind the same proxy is not held to that cap.
            other = client.sftp("alice", "secret", "pwd\n")
            assert other.returncode == 0, other.stderr
            server.wait_for(re.compile(r"login alice from 127\.0\.0\.1:\d+ by \S+"))
    finally:
        server.stop()


def test_from_option_of_authorized_keys_checks_the_real_client(tmp_path: Path) -> None:
    identity = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(identity)], check=True)
    keys = tmp_path / "authorized_keys"
    keys.write_text(f'from="{CLIENT}" ' + (tmp_path / "id_ed25519.pub").read_text())
    served = tmp_path / "served"
    served.mkdir()
    server = Twistd(
        ["spindlex", *PROXIED[:2], "--exec", "--authorized-keys", str(keys)],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    user = getpass.getuser()
    try:
        [backend] = server.ports()
        with haproxy(tmp_path, [backend]) as port:
            client = OpenSSH(tmp_path, port)
            allowed = client.ssh(
                user, "echo $SSH_CONNECTION", identity=identity, extra=[f"BindAddress={CLIENT}"]
            )
            assert allowed.returncode == 0, allowed.stderr
            assert allowed.stdout.decode().split()[0] == CLIENT
            # Through the same proxy from another address: the key's from= refuses it.
            denied = client.ssh(user, "true", identity=identity)
            assert denied.returncode == 255
            assert b"Permission denied" in denied.stderr
    finally:
        server.stop()
