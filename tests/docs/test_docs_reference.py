"""docs/keys.md, forwarding.md and sftp.md examples, and the check that every example runs.

Reference pages show fragments (``key.save_to_file(...)`` after a key was
made elsewhere); each runs here after a short prelude that supplies what it
names, with paths under /etc or /srv pointed at the test's directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.docs import (
    test_docs_guides,
    test_docs_hooks,
    test_docs_kerberos,
    test_docs_observability,
    test_docs_testing,
    test_docs_users,
)
from tests.docs.support import (
    COVERED,
    MODULE,
    blocks,
    covers,
    python_env,
    served,
    source,
    with_ports,
)
from tests.support.harness import OpenSSH
from tests.support.waiting import free_port

pytestmark = pytest.mark.interop

Start = Callable[..., Any]

# What each keys.md fragment needs defined before it runs, and its stand-ins.
KEYS_PRELUDES = {
    "keys-1": """
        from spindlex_tw.crypto.pkey import Ed25519Key, RSAKey
        Ed25519Key.generate().save_to_file("host_ed25519")
        RSAKey.generate(bits=2048).save_to_file("host_rsa", "secret")
        pem_text_or_bytes = open("host_ed25519").read()
    """,
    "keys-2": """
        blob = Ed25519Key.generate().get_public_key_bytes()
    """,
    "keys-3": "",
    "keys-4": """
        key = Ed25519Key.generate()
    """,
    "keys-5": "",
    "keys-6": """
        key = RSAKey.generate(bits=2048)
        data = b"to be signed"
    """,
}
KEYS_STAND_INS = {
    "/etc/spindlex/": "",
    "ssh-ed25519 AAAAC3Nza... alice@laptop": "__LINE__",
}


@covers("keys-1")
@covers("keys-2")
@covers("keys-3")
@covers("keys-4")
@covers("keys-5")
@covers("keys-6")
def test_keys_page_runs_in_order(tmp_path: Path) -> None:
    parts = []
    for block_id, prelude in KEYS_PRELUDES.items():
        text = source(block_id)
        for old, new in KEYS_STAND_INS.items():
            text = text.replace(old, new)
        parts.append(textwrap.dedent(prelude) + text)
    script = "\n".join(parts).replace(
        '"__LINE__"', 'Ed25519Key.generate().get_public_line() + " alice@laptop"'
    )
    script += textwrap.dedent(
        """
        assert key.verify_ssh(data, blob)
        assert PKey.from_private_key_file("host_rsa.pem", "secret") is not None
        print("keys ok")
        """
    )
    (tmp_path / "keys_page.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "keys_page.py"],
        cwd=tmp_path,
        env=python_env(tmp_path),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.endswith(b"keys ok\n")


def _with_login(text: str, server_class: str) -> str:
    """The example plus a subclass that lets the test log in (the fragments have no auth)."""
    return text + textwrap.dedent(
        f"""

        from spindlex_tw.protocol.constants import AUTH_SUCCESSFUL as _OK


        class Testable({server_class}):
            def check_auth_password(self, username, password):
                return _OK
        """
    )


@covers("forwarding-1")
def test_forwarding_policy(tmp_path: Path, start_server: Start) -> None:
    (tmp_path / f"{MODULE}.py").write_text(_with_login(source("forwarding-1"), "TunnelServer"))
    client = OpenSSH(tmp_path, served(start_server, tmp_path, "Testable").port)
    session = client.ssh("u", "true", password="x", extra=["LogLevel=INFO"])
    assert b"exec request failed" in session.stdout + session.stderr  # sessions still open
    refused = client.ssh("u", password="x", args=["-W", "192.0.2.1:22"], extra=["LogLevel=INFO"])
    assert b"administratively prohibited" in refused.stdout + refused.stderr


@covers("forwarding-2")
def test_forwarding_settings(tmp_path: Path) -> None:
    port = free_port()
    script = "\n".join(
        [
            source("forwarding-1"),
            "from spindlex_tw.crypto.pkey import Ed25519Key",
            "host_key = Ed25519Key.generate()",
            with_ports(source("forwarding-2"), {2222: port}),
            f"assert manager.get_port() == {port}",
            "assert settings.max_forward_listeners == 4",
            "manager.stop_server()",
            "print('settings ok')",
        ]
    )
    (tmp_path / "forwarding_page.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "forwarding_page.py"],
        cwd=tmp_path,
        env=python_env(tmp_path),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"settings ok\n"


@covers("forwarding-agent")
def test_forwarding_agent_socket(tmp_path: Path, start_server: Start) -> None:
    text = _with_login(source("forwarding-agent"), "AgentAwareServer")
    (tmp_path / f"{MODULE}.py").write_text(text)
    client = OpenSSH(tmp_path, served(start_server, tmp_path, "Testable").port)
    said = {}
    # ssh -A asks for the agent only when one answers at SSH_AUTH_SOCK: an empty ssh-agent.
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-s", "-a", str(tmp_path / "agent.sock")], stdout=subprocess.PIPE
    )
    assert agent.stdout is not None and agent.stdout.readline().startswith(b"SSH_AUTH_SOCK=")
    try:
        for user in ("alice", "bob"):
            argv = ["sshpass", "-p", "x", "ssh", *client.options(batch=False)]
            argv += ["-p", str(client.port), "-o", "PubkeyAuthentication=no", "-A"]
            env = {**os.environ, "SSH_AUTH_SOCK": str(tmp_path / "agent.sock")}
            result = subprocess.run(
                [*argv, f"{user}@127.0.0.1", "true"], env=env, capture_output=True, timeout=60
            )
            said[user] = result.stdout.decode()
    finally:
        agent.terminate()
        agent.communicate(timeout=30)
    assert said["alice"].startswith("SSH_AUTH_SOCK=/") and said["alice"].endswith("/agent.sock\n")
    assert said["bob"] == "SSH_AUTH_SOCK=\n"


@covers("sftp-1")
def test_sftp_private_uploads(tmp_path: Path, start_server: Start) -> None:
    root = tmp_path / "files"
    (root / "incoming").mkdir(parents=True)
    (root / "public.txt").write_text("for everyone\n")
    text = source("sftp-1").replace('"/srv/files"', repr(str(root)))
    (tmp_path / f"{MODULE}.py").write_text(_with_login(text, "Server"))
    client = OpenSSH(tmp_path, served(start_server, tmp_path, "Testable").port)
    upload = tmp_path / "upload.txt"
    upload.write_text("private\n")
    commands = (
        f"get public.txt {tmp_path}/got.txt\n"
        f"put {upload} incoming/mine.txt\n"
        f"put {upload} elsewhere.txt\n"
    )
    result = test_docs_guides._sftp(client, "u", "x", commands)
    assert (tmp_path / "got.txt").read_text() == "for everyone\n"
    assert (root / "incoming" / "mine.txt").stat().st_mode & 0o777 == 0o600
    assert not (root / "elsewhere.txt").exists()
    assert b"Permission denied" in result.stderr


def test_every_example_is_run() -> None:
    # The modules holding @covers checks, imported so their ids are registered.
    assert test_docs_hooks and test_docs_guides and test_docs_testing and test_docs_observability
    assert test_docs_users and test_docs_kerberos
    found = set(blocks())
    assert found - COVERED == set(), "examples in docs/ that no test runs"
    assert COVERED - found == set(), "tests for examples that are gone"
