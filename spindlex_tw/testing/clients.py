"""Paramiko and AsyncSSH logged in to a server under test, trusting only its host key.

Both libraries are optional: each is imported when first used, and a missing
one fails with an ImportError that names it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from spindlex_tw.testing.credentials import Reachable

T = TypeVar("T")

#: Seconds to connect and log in.
CONNECT_TIMEOUT = 30.0


def paramiko_client(server: Reachable, password: bool = False) -> Any:
    """A ``paramiko.SSHClient`` logged in with the client key (or the password)."""
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(str(server.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    secret: dict[str, Any] = (
        {"password": server.password}
        if password
        else {"key_filename": str(server.credentials.client_key_file)}
    )
    client.connect(
        server.host,
        server.port,
        username=server.username,
        look_for_keys=False,
        allow_agent=False,
        timeout=CONNECT_TIMEOUT,
        **secret,
    )
    return client


def asyncssh_connect(server: Reachable, password: bool = False, **options: Any) -> Any:
    """``asyncssh.connect(...)`` with the client key (or the password), for ``async with``."""
    import asyncssh

    settings: dict[str, Any] = {
        "username": server.username,
        "known_hosts": str(server.known_hosts),
        "client_keys": None if password else [str(server.credentials.client_key_file)],
        "password": server.password if password else None,
        "agent_path": None,
        "config": None,
        "login_timeout": CONNECT_TIMEOUT,
    }
    settings.update(options)
    return asyncssh.connect(server.host, server.port, **settings)


def with_paramiko(server: Reachable, func: Callable[[Any], T], password: bool = False) -> T:
    """``func(client)`` with a fresh Paramiko client, closed afterwards."""
    client = paramiko_client(server, password)
    try:
        return func(client)
    finally:
        client.close()


def with_asyncssh(server: Reachable, func: Callable[[Any], Any], password: bool = False) -> Any:
    """``await func(connection)`` on a new asyncio loop in this thread; its result."""

    async def run() -> Any:
        async with asyncssh_connect(server, password) as connection:
            return await func(connection)

    return asyncio.run(run())
