"""Sessions with OpenSSH's ssh: exec output and status, bulk data, pty shell, env."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import struct
import subprocess
import termios
from collections.abc import Callable
from pathlib import Path

from tests.support.harness import OpenSSH, ServerProcess
from tests.support.processes import status_kib


def _ssh_key(
    client: OpenSSH,
    key: Path,
    command: list[str],
    extra: list[str] | None = None,
    verbose: bool = False,
    **run: object,
) -> subprocess.CompletedProcess[bytes]:
    """``ssh -i key alice@server command`` with stdin/input from ``run``; output captured."""
    argv = ["ssh", *client.options(extra=extra or []), *(["-v"] if verbose else [])]
    argv += ["-p", str(client.port), "-i", str(key), "alice@127.0.0.1", *command]
    return subprocess.run(argv, capture_output=True, timeout=300, **run)  # type: ignore[call-overload]


def test_stdout_stderr_and_exit_status(openssh: OpenSSH) -> None:
    out = openssh.ssh("alice", "echo", "to stdout", password="secret")
    assert (out.returncode, out.stdout) == (0, b"to stdout\n")
    err = openssh.ssh("alice", "stderr", "to stderr", identity=None, password="secret")
    assert err.returncode == 0
    assert b"to stderr" in err.stdout + err.stderr  # sshpass merges the pty's stderr
    status = openssh.ssh("alice", "exit", "42", password="secret")
    assert status.returncode == 42


def test_stderr_is_separate(openssh: OpenSSH, client_keys: dict[str, Path]) -> None:
    result = openssh.ssh("alice", "stderr", "only here", identity=client_keys["ed25519"])
    assert result.returncode == 0
    assert result.stdout == b""
    assert result.stderr == b"only here\n"


def test_exit_signal(openssh: OpenSSH, client_keys: dict[str, Path]) -> None:
    result = openssh.ssh("alice", "signal", "TERM", identity=client_keys["ed25519"], args=["-v"])
    assert result.returncode == 255  # ssh has no exit status to report after a signal
    assert b"client_input_channel_req: channel 0 rtype exit-signal" in result.stderr


def test_refused_exec(openssh: OpenSSH, client_keys: dict[str, Path]) -> None:
    result = openssh.ssh(
        "alice", "no-such-command", identity=client_keys["ed25519"], extra=["LogLevel=INFO"]
    )
    assert result.returncode == 255
    assert b"exec request failed" in result.stderr


def test_64_mib_both_ways(
    openssh: OpenSSH, server: ServerProcess, client_keys: dict[str, Path], tmp_path: Path
) -> None:
    blob = tmp_path / "blob"
    chunk = os.urandom(1 << 20)
    with blob.open("wb") as out:
        for i in range(64):
            out.write(hashlib.sha256(chunk + bytes([i])).digest() * 32768)
    expected = hashlib.sha256(blob.read_bytes()).hexdigest()
    before = status_kib(server.proc.pid, "VmHWM")
    with blob.open("rb") as source:
        result = _ssh_key(openssh, client_keys["ed25519"], ["cat"], stdin=source)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).hexdigest() == expected
    # The thread-based reader (recv() in a worker) sees the same bytes.
    with blob.open("rb") as source:
        digest = _ssh_key(openssh, client_keys["ed25519"], ["sha256"], stdin=source)
    assert digest.stdout.split() == [expected.encode(), str(64 << 20).encode()]
    # Flow control keeps the server's memory bounded: far less than the 64 MiB moved.
    assert status_kib(server.proc.pid, "VmHWM") - before < 24 * 1024


def test_pty_shell(openssh: OpenSSH, server: ServerProcess, client_keys: dict[str, Path]) -> None:
    result = openssh.ssh(
        "alice",
        identity=client_keys["ed25519"],
        args=["-tt"],
        input=b"hello\rexit\r",
        extra=["RequestTTY=force"],
    )
    assert result.returncode == 0, result.stderr
    assert b"you typed: hello" in result.stdout
    assert b"bye" in result.stdout
    pty = [h for h in server.hooks() if h["hook"] == "pty"]
    assert pty and pty[0]["term"]


def test_pty_exec_reports_terminal(openssh: OpenSSH, client_keys: dict[str, Path]) -> None:
    # ssh's stdin is a terminal of a known size, so the pty request carries
    # that size and the client's TERM: the command prints what the server got.
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 37, 101, 0, 0))
    try:
        result = subprocess.run(
            [
                "ssh",
                *openssh.options(),
                "-p",
                str(openssh.port),
                "-i",
                str(client_keys["ed25519"]),
                "-tt",
                "alice@127.0.0.1",
                "pty",
            ],
            stdin=terminal,
            capture_output=True,
            env={**os.environ, "TERM": "vt220"},
            timeout=60,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"vt220 101x37\n", result.stdout


def test_env_accepted_and_refused(
    openssh: OpenSSH, server: ServerProcess, client_keys: dict[str, Path]
) -> None:
    env = {**os.environ, "SPX_COLOUR": "blue", "OTHER_VAR": "nope"}
    cmd = [
        "ssh",
        *openssh.options(extra=["SendEnv=SPX_COLOUR OTHER_VAR"]),
        "-p",
        str(openssh.port),
        "-i",
        str(client_keys["ed25519"]),
        "alice@127.0.0.1",
    ]
    accepted = subprocess.run(
        [*cmd, "env", "SPX_COLOUR"],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    refused = subprocess.run(
        [*cmd, "env", "OTHER_VAR"],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert accepted.stdout == b"blue\n"
    assert refused.stdout == b"<unset>\n"
    names = {h["name"] for h in server.hooks() if h["hook"] == "env"}
    assert {"SPX_COLOUR", "OTHER_VAR"} <= names


def _cat_8_mib(client: OpenSSH, key: Path, extra: list[str]) -> bytes:
    """Send 8 MiB through ``cat`` with ``ssh -v``; return ssh's log after checking the data."""
    payload = os.urandom(8 << 20)
    result = _ssh_key(client, key, ["cat"], extra=extra, verbose=True, input=payload)
    assert result.returncode == 0
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(payload).digest()
    return result.stderr


def test_client_rekey_mid_transfer(openssh: OpenSSH, client_keys: dict[str, Path]) -> None:
    """ssh -oRekeyLimit=1M re-keys many times during 8 MiB each way; nothing is lost."""
    log = _cat_8_mib(openssh, client_keys["ed25519"], ["RekeyLimit=1M"])
    assert log.count(b"SSH2_MSG_KEXINIT sent") > 4


def test_server_rekey_mid_transfer(
    start_server: Callable[..., ServerProcess], client_keys: dict[str, Path], tmp_path: Path
) -> None:
    server = start_server(
        settings={"transport": {"rekey_bytes": 1 << 20}},
        env={"SPINDLEX_TEST_AUTHORIZED": str(client_keys["authorized"])},
    )
    log = _cat_8_mib(OpenSSH(tmp_path, server.port), client_keys["ed25519"], [])
    assert log.count(b"SSH2_MSG_KEXINIT received") > 4
