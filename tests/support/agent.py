"""A real ssh-agent of the test's own, holding one new key."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def ssh_agent(tmp: Path) -> Iterator[tuple[dict[str, str], str]]:
    """The environment that reaches the agent (``SSH_AUTH_SOCK``) and its key's fingerprint."""
    sock = tmp / "agent.sock"
    started = subprocess.run(
        ["ssh-agent", "-s", "-a", str(sock)], capture_output=True, text=True, timeout=30, check=True
    )
    match = re.search(r"SSH_AGENT_PID=(\d+)", started.stdout)
    assert match is not None, started.stdout
    env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
    try:
        key = tmp / "id_agent"
        subprocess.run(
            ["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(key)], check=True, timeout=30
        )
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, timeout=30)
        listed = subprocess.run(
            ["ssh-add", "-l"], env=env, capture_output=True, text=True, timeout=30, check=True
        )
        yield env, listed.stdout.split()[1]
    finally:
        os.kill(int(match[1]), signal.SIGTERM)
