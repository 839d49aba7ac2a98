"""User authentication with OpenSSH's ssh: every method, multi-step, limits, failing hooks."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.harness import OpenSSH, ServerProcess
from tests.support.waiting import poll


def test_password_login(openssh: OpenSSH) -> None:
    result = openssh.ssh("alice", "echo", "hi", password="secret")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hi\n"


SSHPASS_WRONG_PASSWORD = 5  # sshpass saw the password prompt come back


def test_wrong_password_denied(openssh: OpenSSH) -> None:
    result = openssh.ssh(
        "alice", "echo", "hi", password="wrong", extra=["NumberOfPasswordPrompts=1"]
    )
    assert result.returncode == SSHPASS_WRONG_PASSWORD
    assert b"hi" not in result.stdout


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        ("ed25519", "ssh-ed25519"),
        ("rsa", "rsa-sha2-256"),
        ("rsa", "rsa-sha2-512"),
        ("ecdsa", "ecdsa-sha2-nistp256"),
        ("ecdsa384", "ecdsa-sha2-nistp384"),
        ("ecdsa521", "ecdsa-sha2-nistp521"),
    ],
)
def test_publickey_login(
    openssh: OpenSSH, client_keys: dict[str, Path], key: str, algorithm: str
) -> None:
    result = openssh.ssh(
        "alice",
        "echo",
        "keyed",
        identity=client_keys[key],
        extra=[f"PubkeyAcceptedAlgorithms={algorithm}"],
        args=["-vvv"],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"keyed\n"
    assert f"Server accepts key: {client_keys[key]}".encode() in result.stderr
    # The signature the server verified was made with exactly this algorithm.
    assert f"signing using {algorithm} SHA256:".encode() in result.stderr


def test_unknown_key_denied(openssh: OpenSSH, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(stranger)], check=True)
    result = openssh.ssh("alice", "true", identity=stranger)
    assert result.returncode == 255
    assert b"Permission denied" in result.stderr


def _askpass(tmp_path: Path, answers: dict[str, str]) -> dict[str, str]:
    """An SSH_ASKPASS program answering each prompt by a word it contains."""
    script = tmp_path / "askpass.py"
    cases = "".join(
        f"    if {word!r} in prompt:\n        print({answer!r})\n        sys.exit(0)\n"
        for word, answer in answers.items()
    )
    script.write_text(
        f"#!{sys.executable}\nimport sys\nprompt = sys.argv[1] if len(sys.argv) > 1 else ''\n"
        f"if True:\n{cases}sys.exit(1)\n"
    )
    script.chmod(0o755)
    return {**os.environ, "SSH_ASKPASS": str(script), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ""}


@pytest.mark.parametrize(
    ("user", "answers", "ok"),
    [
        ("kbd", {"First": "one", "Second": "two"}, True),
        ("kbd", {"First": "one", "Second": "three"}, False),
        # An app that only checks passwords still gets keyboard-interactive logins.
        ("alice", {"Password": "secret"}, True),
    ],
)
def test_keyboard_interactive(
    openssh: OpenSSH, tmp_path: Path, user: str, answers: dict[str, str], ok: bool
) -> None:
    cmd = [
        "ssh",
        *openssh.options(
            batch=False,
            extra=["PreferredAuthentications=keyboard-interactive", "NumberOfPasswordPrompts=1"],
        ),
        "-p",
        str(openssh.port),
        f"{user}@127.0.0.1",
        "echo",
        "kbd",
    ]
    result = subprocess.run(
        cmd,
        env=_askpass(tmp_path, answers),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    if ok:
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"kbd\n"
    else:
        assert result.returncode == 255
        assert b"Permission denied" in result.stderr


def test_two_step_login(openssh: OpenSSH, client_keys: dict[str, Path]) -> None:
    result = openssh.ssh(
        "twostep",
        "echo",
        "both",
        identity=client_keys["ed25519"],
        password="secret",
        extra=["PubkeyAuthentication=yes"],
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert b"both" in result.stdout


def test_banner_shown(openssh: OpenSSH) -> None:
    result = openssh.ssh("alice", "true", extra=["LogLevel=INFO"], args=[])
    assert b"Welcome to the spindlex_tw test server" in result.stderr


def test_too_many_failures(openssh: OpenSSH, tmp_path: Path) -> None:
    cmd = [
        "ssh",
        *openssh.options(
            batch=False, extra=["PreferredAuthentications=password", "NumberOfPasswordPrompts=10"]
        ),
        "-p",
        str(openssh.port),
        "alice@127.0.0.1",
        "true",
    ]
    result = subprocess.run(
        cmd,
        env=_askpass(tmp_path, {"assword": "wrong"}),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 255
    assert b"Too many authentication failures" in result.stderr


@pytest.mark.parametrize("user", ["falsy", "raiser"])
def test_failing_hooks_deny(openssh: OpenSSH, server: ServerProcess, user: str) -> None:
    result = openssh.ssh(user, "echo", "in", password="secret", extra=["NumberOfPasswordPrompts=1"])
    assert result.returncode == SSHPASS_WRONG_PASSWORD
    assert b"in\n" not in result.stdout
    assert b"hook failure" not in result.stdout + result.stderr
    if user == "raiser":
        assert "hook failure that must not reach the peer" in server.log()


def test_slow_hook_does_not_block_other_logins(openssh: OpenSSH, server: ServerProcess) -> None:
    """User "slow" gets its answer only after another client has logged in."""
    slow_result: list[subprocess.CompletedProcess[bytes]] = []
    slow = threading.Thread(
        target=lambda: slow_result.append(openssh.ssh("slow", "echo", "late", password="x"))
    )
    slow.start()
    poll(
        lambda: True if any(h["hook"] == "slow-waiting" for h in server.hooks()) else None,
        timeout=30,
        what="the slow hook to be called",
    )
    # The slow login cannot have finished: its hook answers only after another login.
    assert slow.is_alive()
    fast = openssh.ssh("alice", "echo", "fast", password="secret")
    assert fast.returncode == 0 and fast.stdout == b"fast\n"
    slow.join(60)
    assert slow_result and slow_result[0].returncode == 0, slow_result
    assert slow_result[0].stdout.endswith(b"late\n")
    # The server's own order of events: slow waits, alice gets in, then slow.
    order = [
        h["hook"] if h["hook"] == "slow-waiting" else h["user"]
        for h in server.hooks()
        if h["hook"] in ("slow-waiting", "authenticated")
    ]
    assert order == ["slow-waiting", "alice", "slow"], order
