"""Agent and Unix-socket forwarding for an SSHServer application (no twistd), with AsyncSSH.

The application grants the hooks; AsyncSSH's client forwards a real
ssh-agent and both directions of Unix sockets. ``ssh-add -l`` run by the test
against the server's agent socket reaches the client's agent.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import ssh_agent
from tests.support.harness import ServerProcess
from tests.support.unix_echo import EchoServer, exchange

pytestmark = pytest.mark.interop
asyncssh = pytest.importorskip("asyncssh")

APP = "tests.support.socket_forward_apps:SocketForwardingServer"


@pytest.fixture
def agent_env(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An ssh-agent of the test's own holding one key: its socket and the key's fingerprint."""
    with ssh_agent(tmp_path) as (env, fingerprint):
        yield env["SSH_AUTH_SOCK"], fingerprint


def _list_keys(agent_socket: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SSH_AUTH_SOCK": agent_socket}
    return subprocess.run(["ssh-add", "-l"], env=env, capture_output=True, text=True, timeout=30)


def test_agent_socket_reaches_the_clients_agent(
    start_server: Callable[..., ServerProcess], agent_env: tuple[str, str]
) -> None:
    server = start_server(app=APP)
    agent_path, fingerprint = agent_env

    async def run() -> tuple[str, subprocess.CompletedProcess[str]]:
        async with asyncssh.connect(
            "127.0.0.1", server.port, username="alice", password="secret", known_hosts=None,
            client_keys=None, agent_path=agent_path, agent_forwarding=True,
        ) as conn:  # fmt: skip
            result = await conn.run("agent-socket", check=True, timeout=30)
            path = str(result.stdout).strip()
            listed = await asyncio.get_running_loop().run_in_executor(None, _list_keys, path)
            return path, listed

    path, listed = asyncio.run(run())
    assert listed.returncode == 0, listed.stderr
    assert fingerprint in listed.stdout
    assert path.endswith("/agent.sock")
    assert [h["hook"] for h in server.hooks()].count("agent") == 1


def test_unix_sockets_both_ways(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(app=APP)
    with tempfile.TemporaryDirectory(prefix="spx-lib-") as tmp:
        remote, local = Path(tmp, "remote.sock"), Path(tmp, "local.sock")
        listen, target = Path(tmp, "listen.sock"), Path(tmp, "target.sock")
        echoes = [EchoServer(remote), EchoServer(target)]

        async def run() -> tuple[bytes, bytes]:
            async with asyncssh.connect(
                "127.0.0.1", server.port, username="alice", password="secret", known_hosts=None,
                client_keys=None, agent_path=None,
            ) as conn:  # fmt: skip
                outbound = await conn.forward_local_path(str(local), str(remote))
                inbound = await conn.forward_remote_path(str(listen), str(target))
                loop = asyncio.get_running_loop()
                answers = (
                    await loop.run_in_executor(None, exchange, local, b"abc"),
                    await loop.run_in_executor(None, exchange, listen, b"xyz"),
                )
                inbound.close()
                await inbound.wait_closed()
                outbound.close()
                return answers

        try:
            assert asyncio.run(run()) == (b"ABC", b"XYZ")
        finally:
            for echo in echoes:
                echo.close()
        kinds = [(h["hook"], h.get("path")) for h in server.hooks()]
        assert ("direct-streamlocal", str(remote)) in kinds
        assert ("streamlocal-forward", str(listen)) in kinds
        assert ("cancel-streamlocal-forward", str(listen)) in kinds


def test_single_connection_x11_display_with_paramiko(
    start_server: Callable[..., ServerProcess],
) -> None:
    """Paramiko's client gets one x11 channel naming the connecting peer; a second is refused."""
    paramiko = pytest.importorskip("paramiko")
    server = start_server(app=APP)
    opened: list[tuple[str, int]] = []
    arrived = threading.Event()

    def on_x11(channel: Any, origin: tuple[str, int]) -> None:
        opened.append(origin)
        channel.sendall(b"from the X server")
        channel.close()
        arrived.set()

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        t = paramiko.Transport(sock)
        try:
            t.start_client(timeout=30)
            t.auth_password("alice", "secret")
            session = t.open_session(timeout=30)
            session.settimeout(30)
            session.request_x11(auth_cookie=b"0123abcd", single_connection=True, handler=on_x11)
            session.exec_command("x11-display")
            display = session.makefile().readline().strip()
            assert re.fullmatch(r"localhost:\d+\.0", display), display
            port = 6000 + int(display.split(":")[1].split(".")[0])
            with socket.create_connection(("127.0.0.1", port), timeout=30) as x_client:
                assert arrived.wait(30)
                assert x_client.recv(100) == b"from the X server"
                local = x_client.getsockname()
            assert opened == [(local[0], local[1])]
            # single_connection: the display took one connection and stopped listening.
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=30).close()
            session.shutdown_write()
        finally:
            t.close()
