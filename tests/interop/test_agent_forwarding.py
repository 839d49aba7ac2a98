"""Agent forwarding (ssh -A) through twistd spindlex --exec, and authorized_keys environment=.

A real ssh-agent of the test's own holds a key; ``ssh-add -l`` run through the
server lists it only where the key's line allows agent forwarding.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent import ssh_agent
from tests.support.harness import OpenSSH
from tests.support.keyed import keyed_twistd
from tests.support.twistd import Twistd

pytestmark = pytest.mark.interop

USER = getpass.getuser()
LINES = {
    "plain": 'environment="SPX_GREETING=hello world",environment="SPX_GREETING=second" ',
    "no_agent": "no-agent-forwarding ",
    "restricted": "restrict ",
}
Setup = tuple[Twistd, OpenSSH, dict[str, Path]]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], str]]:
    """An ssh-agent holding one key: the environment that reaches it, and the key's fingerprint."""
    with ssh_agent(tmp_path_factory.mktemp("agent")) as held:
        yield held


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with keyed_twistd(tmp_path_factory.mktemp("agentfwd"), LINES) as setup:
        yield setup


def _ssh_a(
    setup: Setup, key: str, env: dict[str, str], command: str
) -> subprocess.CompletedProcess[str]:
    _, client, keys = setup
    argv = [
        "ssh", *client.options(extra=["LogLevel=INFO"]), "-p", str(client.port),
        "-i", str(keys[key]), "-o", "IdentitiesOnly=yes", "-A", f"{USER}@127.0.0.1", command,
    ]  # fmt: skip
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_forwarded_agent_lists_the_clients_key(
    server: Setup, agent: tuple[dict[str, str], str]
) -> None:
    env, fingerprint = agent
    result = _ssh_a(server, "plain", env, 'ssh-add -l; ls -ld "$(dirname "$SSH_AUTH_SOCK")"')
    assert result.returncode == 0, result.stderr
    assert fingerprint in result.stdout
    # The socket's directory is the connection's own: mode 0700.
    assert re.search(r"^drwx------ .*spindlex-agent-", result.stdout, re.M), result.stdout
    server[0].wait_for(re.compile(r"agent forwarding for .* at "))


@pytest.mark.parametrize("key", ["no_agent", "restricted"])
def test_key_options_refuse_the_agent(
    server: Setup, agent: tuple[dict[str, str], str], key: str
) -> None:
    env, fingerprint = agent
    result = _ssh_a(server, key, env, 'echo "sock=$SSH_AUTH_SOCK"; ssh-add -l')
    assert fingerprint not in result.stdout
    assert "sock=\n" in result.stdout
    assert "Could not open a connection to your authentication agent" in result.stderr
    server[0].wait_for(re.compile(r"refused agent forwarding request .*authorized_keys options"))


def test_socket_removed_when_connection_ends(
    server: Setup, agent: tuple[dict[str, str], str]
) -> None:
    env, _ = agent
    result = _ssh_a(server, "plain", env, 'echo "$SSH_AUTH_SOCK"')
    path = Path(result.stdout.strip())
    assert path.name == "agent.sock"
    server[0].wait_for(re.compile(rf"agent socket {re.escape(str(path))} removed"))
    assert not path.parent.exists()


def test_environment_option_ignored_without_permission(
    server: Setup, agent: tuple[dict[str, str], str]
) -> None:
    env, _ = agent
    result = _ssh_a(server, "plain", env, 'echo "greeting=$SPX_GREETING"')
    assert (result.returncode, result.stdout) == (0, "greeting=\n")
    server[0].wait_for(re.compile(r"environment= options of the key ignored"))


def test_asyncssh_client_forwards_its_agent(
    server: Setup, agent: tuple[dict[str, str], str]
) -> None:
    asyncssh = pytest.importorskip("asyncssh")
    import asyncio

    env, fingerprint = agent
    _, client, keys = server

    async def run() -> str:
        async with asyncssh.connect(
            "127.0.0.1",
            client.port,
            username=USER,
            client_keys=[str(keys["plain"])],
            known_hosts=None,
            agent_path=env["SSH_AUTH_SOCK"],
            agent_forwarding=True,
        ) as conn:
            result = await conn.run("ssh-add -l", check=True, timeout=30)
            return str(result.stdout)

    assert fingerprint in asyncio.run(run())


def test_x11_refused_without_the_option(server: Setup) -> None:
    _, client, keys = server
    argv = [
        "ssh", *client.options(extra=["LogLevel=INFO"]), "-p", str(client.port),
        "-i", str(keys["plain"]), "-o", "IdentitiesOnly=yes", "-Y", f"{USER}@127.0.0.1",
        'echo "display=$DISPLAY"',
    ]  # fmt: skip
    env = {**os.environ, "DISPLAY": "127.0.0.1:99"}
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.stdout == "display=\n"
    assert "X11 forwarding request failed" in result.stderr
    server[0].wait_for(re.compile(r"refused x11 request .*--x11-forwarding"))
