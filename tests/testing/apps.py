"""A server that knows the test's credentials, for the spindlex_tw.testing tests."""

from __future__ import annotations

from typing import Any

from spindlex_tw import AUTH_FAILED, AUTH_SUCCESSFUL, PKey, SFTPServer, SSHServer
from spindlex_tw.testing import Credentials


class KnownUserServer(SSHServer):
    """Accepts the credentials' password and client key; echoes exec commands; serves SFTP."""

    def __init__(self, credentials: Credentials, root: str) -> None:
        super().__init__()
        self.credentials = credentials
        self.root = root

    def get_allowed_auths(self, username: str) -> list[str]:
        return ["publickey", "password"]

    def check_auth_password(self, username: str, password: str) -> int:
        ok = (username, password) == (self.credentials.username, self.credentials.password)
        return AUTH_SUCCESSFUL if ok else AUTH_FAILED

    def check_auth_publickey(self, username: str, key: PKey) -> int:
        ok = username == self.credentials.username and key == self.credentials.client_key
        return AUTH_SUCCESSFUL if ok else AUTH_FAILED

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        channel.send(b"ran " + command + b"\n")
        channel.send_exit_status(0)
        channel.close()
        return True

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        if name != "sftp":
            return False
        SFTPServer(channel, self.root)
        return True
