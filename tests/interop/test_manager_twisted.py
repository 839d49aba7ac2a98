"""SSHServerManager inside a running reactor (pytest-twisted) and as an IService."""

from __future__ import annotations

import os
from pathlib import Path

import paramiko
import pytest
import pytest_twisted
from twisted.application.service import MultiService
from twisted.internet import defer, reactor, task, threads, utils

from spindlex_tw import (
    AUTH_FAILED,
    AUTH_PARTIAL,
    AUTH_SUCCESSFUL,
    Ed25519Key,
    SSHServer,
    SSHServerManager,
)
from spindlex_tw.server.manager import ServerStartError
from spindlex_tw.tx.protocol import current_connection
from tests.support.harness import OpenSSH

pytestmark = pytest.mark.interop


class EchoServer(SSHServer):
    def check_auth_password(self, username: str, password: str) -> int:
        return AUTH_SUCCESSFUL if password == "secret" else AUTH_FAILED

    def check_channel_exec_request(self, channel: object, command: bytes) -> bool:
        channel.send(b"ran " + command + b"\n")  # type: ignore[attr-defined]
        channel.send_exit_status(0)  # type: ignore[attr-defined]
        channel.close()  # type: ignore[attr-defined]
        return True


async def _ssh(tmp: Path, port: int, *command: str) -> tuple[bytes, bytes, int]:
    """OpenSSH's ssh as a child of the reactor, so the test never blocks it."""
    client = OpenSSH(tmp, port)
    args = [
        "-p",
        "secret",
        "ssh",
        *client.options(batch=False),
        "-o",
        "PubkeyAuthentication=no",
        "-p",
        str(port),
        "alice@127.0.0.1",
        *command,
    ]
    out, err, code = await utils.getProcessOutputAndValue("sshpass", args, env=dict(os.environ))
    return out, err, code


@pytest_twisted.ensureDeferred
async def test_start_and_stop_inside_the_reactor(tmp_path: Path) -> None:
    manager = SSHServerManager(EchoServer(), Ed25519Key.generate(), "127.0.0.1", 0)
    started = manager.start_server()
    assert isinstance(started, defer.Deferred)
    await started
    assert manager.is_running()
    port = manager.get_port()
    assert port
    out, err, code = await _ssh(tmp_path, port, "hello")
    assert (code, out) == (0, b"ran hello\n"), err
    assert manager.get_connection_stats()["total_connections"] == 1
    with pytest.raises(RuntimeError):
        manager.start_server()
    stopped = manager.stop_server()
    assert isinstance(stopped, defer.Deferred)
    await stopped
    assert not manager.is_running() and manager.get_port() is None
    assert manager.get_connection_count() == 0


@pytest_twisted.ensureDeferred
async def test_manager_is_a_service(tmp_path: Path) -> None:
    parent = MultiService()
    manager = SSHServerManager(EchoServer(), Ed25519Key.generate(), "127.0.0.1", 0)
    manager.setServiceParent(parent)
    parent.privilegedStartService()
    parent.startService()
    port = manager.get_port()
    assert port and manager.is_running() and manager.running
    out, _, code = await _ssh(tmp_path, port, "as", "a", "service")
    assert (code, out) == (0, b"ran as a service\n")
    await parent.stopService()
    assert not manager.is_running() and not manager.running


@pytest_twisted.ensureDeferred
async def test_binding_a_taken_port_fails_at_once() -> None:
    first = SSHServerManager(EchoServer(), Ed25519Key.generate(), "127.0.0.1", 0)
    await first.start_server()
    second = SSHServerManager(EchoServer(), Ed25519Key.generate(), "127.0.0.1", first.get_port())
    with pytest.raises(ServerStartError, match=r"cannot listen on 127\.0\.0\.1:"):
        second.start_server()
    assert not second.is_running()
    await first.stop_server()


class PartialAfterAwait(SSHServer):
    """An async password hook whose AUTH_PARTIAL is answered after an await."""

    def __init__(self) -> None:
        super().__init__()
        self.halfway: set[str] = set()

    def get_allowed_auths(self, username: str) -> list[str]:
        conn = current_connection()
        if conn is not None and conn.connection_id in self.halfway:
            return ["keyboard-interactive"]
        return ["password"]

    async def check_auth_password(self, username: str, password: str) -> int:
        await task.deferLater(reactor, 0.01, lambda: None)
        conn = current_connection()
        assert conn is not None
        self.halfway.add(conn.connection_id)
        return AUTH_PARTIAL


def _partial_login(port: int) -> list[str]:
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.start_client(timeout=30)
        return list(transport.auth_password("alice", "first"))
    finally:
        transport.close()


@pytest_twisted.ensureDeferred
async def test_current_connection_survives_async_hooks() -> None:
    manager = SSHServerManager(PartialAfterAwait(), Ed25519Key.generate(), "127.0.0.1", 0)
    await manager.start_server()
    try:
        remaining = await threads.deferToThread(_partial_login, manager.get_port())
    finally:
        await manager.stop_server()
    assert remaining == ["keyboard-interactive"]
