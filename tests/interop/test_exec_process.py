"""twistd spindlex --exec: exec and shell requests as real processes, with OpenSSH and asyncssh."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.support.harness import OpenSSH
from tests.support.twistd import Twistd, isolated_home

pytestmark = pytest.mark.interop

USER = getpass.getuser()


@pytest.fixture(scope="module")
def exec_server(
    tmp_path_factory: pytest.TempPathFactory, client_keys: dict[str, Path]
) -> Iterator[tuple[Twistd, OpenSSH, Path]]:
    tmp = tmp_path_factory.mktemp("exec")
    served = tmp / "served"
    served.mkdir()
    env = isolated_home(tmp)
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--exec",
            "--auth",
            "memory:alice:secret",
            "--authorized-keys",
            str(client_keys["authorized"]),
        ],
        cwd=served,
        env=env,
    )
    try:
        [port] = server.ports()
        yield server, OpenSSH(tmp, port), served
    finally:
        server.kill()


def _ssh_key(client: OpenSSH, keys: dict[str, Path], *args: str, **kw: object) -> list[str]:
    return [
        "ssh",
        *client.options(),
        "-p",
        str(client.port),
        "-i",
        str(keys["ed25519"]),
        "-o",
        "IdentitiesOnly=yes",
        *args,
    ]


def test_command_output_and_exit_status(
    exec_server: tuple[Twistd, OpenSSH, Path], client_keys: dict[str, Path]
) -> None:
    _, client, served = exec_server
    result = client.ssh(USER, "echo $USER; pwd; exit 3", identity=client_keys["ed25519"])
    assert result.returncode == 3, result.stderr
    assert result.stdout.decode().splitlines() == [USER, str(served.resolve())]
    # A password login (another name) runs as the same local user.
    result = client.ssh("alice", "echo $USER", password="secret")
    assert (result.returncode, result.stdout) == (0, f"{USER}\n".encode())


def test_stdin_stdout_stderr_and_eof(
    exec_server: tuple[Twistd, OpenSSH, Path], client_keys: dict[str, Path]
) -> None:
    _, client, _ = exec_server
    payload = os.urandom(3 << 20)
    cmd = _ssh_key(client, client_keys, f"{USER}@127.0.0.1", "sha256sum; echo done >&2")
    result = subprocess.run(cmd, input=payload, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0].decode() == hashlib.sha256(payload).hexdigest()
    assert result.stderr == b"done\n"


def test_exit_signal(
    exec_server: tuple[Twistd, OpenSSH, Path], client_keys: dict[str, Path]
) -> None:
    _, client, _ = exec_server
    result = client.ssh(USER, "kill -TERM $$", identity=client_keys["ed25519"], args=["-v"])
    assert result.returncode == 255
    assert b"exit-signal" in result.stderr


def test_tty_with_ssh_tt(
    exec_server: tuple[Twistd, OpenSSH, Path], client_keys: dict[str, Path]
) -> None:
    _, client, _ = exec_server
    result = client.ssh(USER, "tty; echo $TERM", identity=client_keys["ed25519"], args=["-tt"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().split("\r\n")
    assert lines[0].startswith("/dev/pts/")
    no_tty = client.ssh(USER, "tty", identity=client_keys["ed25519"], args=["-T"])
    assert no_tty.stdout == b"not a tty\n"


def test_interactive_login_shell(exec_server: tuple[Twistd, OpenSSH, Path]) -> None:
    _, client, _ = exec_server
    result = client.ssh(
        "alice",
        password="secret",
        args=["-tt"],
        input=b"echo shell says $((6 * 7)); exit 4\n",
    )
    assert result.returncode == 4
    assert b"shell says 42" in result.stdout


def test_scp_legacy_protocol_both_ways(
    exec_server: tuple[Twistd, OpenSSH, Path], client_keys: dict[str, Path], tmp_path: Path
) -> None:
    _, client, served = exec_server
    original = tmp_path / "original.bin"
    original.write_bytes(os.urandom(2 << 20))
    base = [
        "scp",
        "-O",
        *client.options(),
        "-P",
        str(client.port),
        "-i",
        str(client_keys["ed25519"]),
    ]
    up = subprocess.run(
        [*base, str(original), f"{USER}@127.0.0.1:uploaded.bin"], capture_output=True, timeout=60
    )
    assert up.returncode == 0, up.stderr
    assert (served / "uploaded.bin").read_bytes() == original.read_bytes()
    back = tmp_path / "back.bin"
    down = subprocess.run(
        [*base, f"{USER}@127.0.0.1:uploaded.bin", str(back)], capture_output=True, timeout=60
    )
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == original.read_bytes()


async def _asyncssh_session(port: int, client_keys: dict[str, Path]) -> dict[str, object]:
    """Signals, window changes, terminal modes and env through asyncssh, which sends them all."""
    results: dict[str, object] = {}
    async with asyncssh.connect(
        "127.0.0.1",
        port,
        username=USER,
        client_keys=[str(client_keys["ed25519"])],
        known_hosts=None,
    ) as conn:
        # A trap proves the signal reached the child, not a shell that died of it.
        # The shell waits in the `wait` builtin, which a trapped signal interrupts:
        # waiting on a foreground `sleep` instead, bash decides after the sleep
        # whether the INT was "handled by the child" and may drop the trap.
        async with conn.create_process(
            "trap 'echo got INT; exit 7' INT; echo ready; while :; do sleep 1 & wait $!; done"
        ) as proc:
            assert await proc.stdout.readline() == "ready\n"
            proc.send_signal("INT")
            results["signal_output"] = await proc.stdout.readline()
            results["signal_status"] = (await proc.wait(check=False)).exit_status
        async with conn.create_process(
            "stty size; read line; stty size", term_type="xterm", term_size=(80, 24)
        ) as proc:
            results["size_before"] = (await proc.stdout.readline()).strip()
            proc.change_terminal_size(132, 50)
            proc.stdin.write("\n")
            lines = []
            while len(lines) < 2:
                lines.append((await proc.stdout.readline()).strip())
            results["size_after"] = lines[-1]
        modes = await conn.run(
            "stty -a",
            term_type="xterm",
            term_modes={
                asyncssh.PTY_VERASE: 8,
                asyncssh.PTY_VINTR: 255,
                asyncssh.PTY_ECHO: 0,
                asyncssh.PTY_OP_ISPEED: 9600,
                asyncssh.PTY_OP_OSPEED: 9600,
            },
        )
        results["stty"] = modes.stdout
        env_result = await conn.run(
            "echo $LANG/$LC_TIME/${NOT_ACCEPTED:-unset}",
            env={"LANG": "C.UTF-8", "LC_TIME": "C", "NOT_ACCEPTED": "x"},
        )
        results["env"] = env_result.stdout
    return results


def test_signals_window_change_modes_and_env(
    exec_server: tuple[Twistd, OpenSSH, Path], client_keys: dict[str, Path]
) -> None:
    _, client, _ = exec_server
    results = asyncio.run(asyncio.wait_for(_asyncssh_session(client.port, client_keys), 60))
    assert results["signal_output"] == "got INT\n"
    assert results["signal_status"] == 7
    assert results["size_before"] == "24 80"
    assert results["size_after"] == "50 132"
    assert results["env"] == "C.UTF-8/C/unset\n"
    # The client's terminal modes reached the pty.
    stty = str(results["stty"])
    assert "speed 9600 baud" in stty
    assert "erase = ^H" in stty and "intr = <undef>" in stty
    assert "-echo " in stty


def test_logins_are_logged(exec_server: tuple[Twistd, OpenSSH, Path]) -> None:
    server, client, _ = exec_server
    client.ssh("alice", "true", password="wrong")
    for pattern in (
        r"login alice from 127\.0\.0\.1:\d+ by",
        r"logout alice from 127\.0\.0\.1:\d+",
        r"denied (password|keyboard-interactive) for alice from 127\.0\.0\.1:\d+",
    ):
        server.wait_for(re.compile(pattern))
