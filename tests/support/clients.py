"""Client-library connections the interop tests share: AsyncSSH and Paramiko as alice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import asyncssh
import paramiko


def asyncssh_connect(port: int, **options: Any) -> Any:
    """``asyncssh.connect`` to 127.0.0.1 as alice/secret, no known_hosts, no keys of the user."""
    settings: dict[str, Any] = {
        "username": "alice",
        "password": "secret",
        "known_hosts": None,
        "client_keys": None,
    }
    settings.update(options)
    return asyncssh.connect("127.0.0.1", port, **settings)


def run_async(coro: Awaitable[Any], timeout: float = 60) -> Any:
    """Run ``coro`` to the end on a new event loop, bounded by ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def paramiko_client(port: int, username: str = "alice", password: str = "secret") -> Any:
    """A Paramiko SSHClient logged in by password, trusting whatever host key it meets."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port,
        username=username,
        password=password,
        look_for_keys=False,
        allow_agent=False,
        timeout=30,
    )
    return client
