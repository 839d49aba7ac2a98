"""The mistakes SpindleX users make first get a clear answer, checked with real clients.

``channel.send(12345)`` raises TypeError (bytes(12345) would send 12,345 NUL
bytes); a hook answering with the wrong type is refused and logged once per
hook, naming the hook, the value and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest

from tests.support.clients import paramiko_client
from tests.support.harness import OpenSSH, ServerProcess
from tests.support.waiting import poll

pytestmark = pytest.mark.interop


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(app="tests.compat.edge_apps:WrongTypes")


def test_send_of_an_int_raises_type_error(server: ServerProcess, tmp_path: Path) -> None:
    done = OpenSSH(tmp_path, server.port).ssh("alice", "anything", password="secret")
    assert done.stdout == b"TypeError: channel data must be bytes or str, not int\n", done.stderr
    assert done.returncode == 0
    assert b"\0" not in done.stdout


def _warnings(server: ServerProcess, hook: str) -> list[str]:
    return [line for line in server.log().splitlines() if f"hook {hook} answered" in line]


def test_wrong_types_are_refused_and_logged_once_per_hook(
    server: ServerProcess, tmp_path: Path
) -> None:
    ssh = OpenSSH(tmp_path, server.port)
    for _ in range(2):
        refused = ssh.ssh("truthy", "whoami", password="secret")
        assert refused.returncode != 0 and b"Permission denied" in refused.stderr
        said_yes = ssh.ssh("alice", "yes", password="secret")
        assert said_yes.returncode != 0 and said_yes.stdout == b""
    client = paramiko_client(server.port)
    try:
        transport = client.get_transport()
        assert transport is not None
        for _ in range(2):
            with pytest.raises(paramiko.ChannelException):
                transport.open_channel("direct-tcpip", ("127.0.0.1", 9), ("127.0.0.1", 1))
    finally:
        client.close()
    expected = {
        "WrongTypes.check_auth_password": "answered True where an int code is expected",
        "WrongTypes.check_channel_exec_request": "answered 'yes' where True or False is expected",
        "WrongTypes.check_channel_request": "answered None where an int code is expected",
    }
    for hook, text in expected.items():
        lines = poll(lambda hook=hook: _warnings(server, hook) or None, what=f"{hook}'s warning")
        assert len(lines) == 1, lines  # once per hook, though it answered wrongly twice
        assert text in lines[0], lines[0]
