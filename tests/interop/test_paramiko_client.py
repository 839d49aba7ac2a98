"""The Paramiko client against our server: algorithm sweep, logins, exec, bad signatures."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
import pytest

from tests.interop.test_openssh_algorithms import CIPHERS, HOST_KEYS, KEX, MACS
from tests.support.harness import ServerProcess

PARAMIKO_KEX = [
    k for k in ["mlkem768x25519-sha256", *KEX] if k in paramiko.Transport._preferred_kex
]
PARAMIKO_CIPHERS = [c for c in CIPHERS if c in paramiko.Transport._preferred_ciphers]


@contextmanager
def transport(port: int, **security: list[str]) -> Iterator[paramiko.Transport]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    t = paramiko.Transport(sock)
    options = t.get_security_options()
    for name, values in security.items():
        setattr(options, name, values)
    try:
        t.start_client(timeout=30)
        yield t
    finally:
        t.close()


def run(t: paramiko.Transport, command: str, data: bytes = b"") -> tuple[bytes, bytes, int]:
    channel = t.open_session(timeout=30)
    channel.settimeout(30)
    channel.exec_command(command)
    if data:
        channel.sendall(data)
    channel.shutdown_write()
    stdout = channel.makefile("rb").read()
    stderr = channel.makefile_stderr("rb").read()
    return stdout, stderr, channel.recv_exit_status()


@pytest.fixture(scope="module")
def multi_key_server(
    tmp_path_factory: pytest.TempPathFactory, host_keys: dict[str, Path]
) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("paramiko"), host_keys=list(host_keys.values()))
    yield server
    server.stop()


SWEEP = (
    [("kex", k) for k in PARAMIKO_KEX]
    + [("key_types", k) for k in HOST_KEYS]
    + [("ciphers", c) for c in PARAMIKO_CIPHERS]
    + [("digests", m) for m in MACS]
)


@pytest.mark.parametrize(("category", "name"), SWEEP)
def test_algorithm(multi_key_server: ServerProcess, category: str, name: str) -> None:
    security = {category: [name]}
    if category == "digests":
        security["ciphers"] = ["aes128-ctr"]
    with transport(multi_key_server.port, **security) as t:
        t.auth_password("alice", "secret")
        assert run(t, "echo pinned") == (b"pinned\n", b"", 0)
        if category == "kex":
            assert t.kex_engine.__class__.__name__ and t.host_key_type


@pytest.mark.parametrize("key", ["ed25519", "rsa", "ecdsa", "ecdsa384", "ecdsa521"])
def test_publickey(server: ServerProcess, client_keys: dict[str, Path], key: str) -> None:
    private = paramiko.PKey.from_path(client_keys[key])
    with transport(server.port) as t:
        assert t.auth_publickey("alice", private) == []
        assert run(t, "echo key")[0] == b"key\n"


def test_password_partial_and_failures(server: ServerProcess, client_keys: dict[str, Path]) -> None:
    with transport(server.port) as t:
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_password("alice", "wrong")
        assert t.is_active()
        t.auth_password("alice", "secret")
        assert t.is_authenticated()
    private = paramiko.PKey.from_path(client_keys["ed25519"])
    with transport(server.port) as t:
        assert t.auth_publickey("twostep", private) == ["password"]
        t.auth_password("twostep", "secret")
        assert t.is_authenticated()
    # The key passed on the connection above, not on this one: the password
    # alone is not enough.
    with transport(server.port) as t:
        with pytest.raises(paramiko.BadAuthenticationType):
            t.auth_password("twostep", "secret")
        assert not t.is_authenticated()


def test_exec_streams_and_data(server: ServerProcess) -> None:
    with transport(server.port) as t:
        t.auth_password("alice", "secret")
        assert run(t, "stderr warn") == (b"", b"warn\n", 0)
        assert run(t, "exit 9")[2] == 9
        payload = bytes(range(256)) * 8192
        assert run(t, "cat", payload) == (payload, b"", 0)


def test_x11_request_reaches_the_hook(server: ServerProcess) -> None:
    """x11-req's four fields arrive decoded; granted, then the session still runs."""
    with transport(server.port) as t:
        t.auth_password("alice", "secret")
        channel = t.open_session(timeout=30)
        channel.settimeout(30)
        channel.request_x11(screen_number=3, auth_cookie=b"0123abcd", single_connection=True)
        channel.exec_command("exit 4")
        assert channel.recv_exit_status() == 4
    assert {
        "hook": "x11",
        "single": True,
        "protocol": "MIT-MAGIC-COOKIE-1",
        "cookie": b"0123abcd".hex(),
        "screen": 3,
    } in server.hooks()


def test_forged_signature_is_refused(server: ServerProcess, client_keys: dict[str, Path]) -> None:
    """A key with a signature made by another key never logs in (CVE-2018-1000805 class)."""
    authorized = paramiko.PKey.from_path(client_keys["ed25519"])

    class Forger(paramiko.Ed25519Key):
        """Presents the authorized public key with a signature it did not make."""

        def __init__(self) -> None:
            self.__dict__.update(authorized.__dict__)

        def sign_ssh_data(self, data: bytes, algorithm: str | None = None) -> paramiko.Message:
            forged = paramiko.Message()
            forged.add_string("ssh-ed25519")
            forged.add_string(os.urandom(64))
            return forged

    with transport(server.port) as t:
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_publickey("alice", Forger())
        assert not t.is_authenticated()


def test_failing_attached_protocol_costs_only_its_channel(server: ServerProcess) -> None:
    with transport(server.port) as t:
        t.auth_password("alice", "secret")
        channel = t.open_session(timeout=30)
        channel.settimeout(30)
        channel.exec_command("boom")
        channel.sendall(b"trigger")
        assert channel.recv(100) == b""  # the channel was closed
        assert t.is_active()
        assert run(t, "echo alive") == (b"alive\n", b"", 0)
    assert "attached protocol failure" in server.log()
