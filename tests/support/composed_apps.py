"""Applications that use the hook contract's freedoms, run by SSHServerManager and by twistd --app.

The same class must behave the same under both (CONTRACT.md section 2).
"""

from __future__ import annotations

from twisted.internet import task

from spindlex_tw.protocol.constants import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    CHANNEL_DIRECT_TCPIP,
    CHANNEL_SESSION,
    SSH_OPEN_CONNECT_SUCCESS,
    SSH_OPEN_UNKNOWN_CHANNEL_TYPE,
)
from spindlex_tw.server.ssh_server import SSHServer


def _password(username: str, password: str) -> int:
    return AUTH_SUCCESSFUL if (username, password) == ("alice", "secret") else AUTH_FAILED


class AsyncAuthsApp(SSHServer):
    """Decides the methods it offers in a coroutine that really waits (a reactor turn)."""

    async def get_allowed_auths(self, username: str) -> list[str]:
        from twisted.internet import reactor

        await task.deferLater(reactor, 0, lambda: None)
        return ["password"]

    def check_auth_password(self, username: str, password: str) -> int:
        return _password(username, password)

    def check_channel_exec_request(self, channel: object, command: bytes) -> bool:
        channel.send(b"async auths let me in\n")  # type: ignore[attr-defined]
        channel.send_exit_status(0)  # type: ignore[attr-defined]
        channel.close()  # type: ignore[attr-defined]
        return True


class DirectTcpipApp(SSHServer):
    """Grants ``ssh -L`` in check_channel_request and writes no other forwarding hook."""

    def check_auth_password(self, username: str, password: str) -> int:
        return _password(username, password)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind in (CHANNEL_SESSION, CHANNEL_DIRECT_TCPIP):
            return SSH_OPEN_CONNECT_SUCCESS
        return SSH_OPEN_UNKNOWN_CHANNEL_TYPE


class ChannelCountApp(SSHServer):
    """Answers ``exec`` with how many channels it sees open: get_channel_count() of itself."""

    def check_auth_password(self, username: str, password: str) -> int:
        return _password(username, password)

    def check_channel_exec_request(self, channel: object, command: bytes) -> bool:
        channel.send(f"{self.get_channel_count()} open\n".encode())  # type: ignore[attr-defined]
        channel.send_exit_status(0)  # type: ignore[attr-defined]
        channel.close()  # type: ignore[attr-defined]
        return True
