"""Applications with the mistakes users make first, for tests/compat/test_sharp_edges.py."""

from __future__ import annotations

import threading
from typing import Any

from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
from spindlex_tw.server.hooks import SSHServer


class WrongTypes(SSHServer):
    """Answers of the wrong type: True for a code, "yes" for a bool, None for a code."""

    def check_auth_password(self, username: str, password: str) -> Any:
        if username == "truthy":
            return True  # a code is expected: refused, with a warning
        return AUTH_SUCCESSFUL if password == "secret" else AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> Any:
        return None if kind == "direct-tcpip" else 0

    def check_channel_exec_request(self, channel: Any, command: bytes) -> Any:
        if command == b"yes":
            return "yes"  # True or False is expected: refused, with a warning
        threading.Thread(target=self._send_int, args=(channel,), daemon=True).start()
        return True

    def _send_int(self, channel: Any) -> None:
        # The first thing users try: a number instead of bytes.
        try:
            channel.send(12345)
        except TypeError as error:
            channel.sendall(f"TypeError: {error}\n".encode())
            channel.send_exit_status(0)
        else:
            channel.send_exit_status(1)
        channel.close()
