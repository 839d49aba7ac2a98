"""An SSHServer for the agent and Unix-socket forwarding tests: the library API, no twistd."""

from __future__ import annotations

from typing import Any

from spindlex_tw.protocol.constants import SSH_OPEN_CONNECT_SUCCESS
from tests.support.apps import TestServer, record


class SocketForwardingServer(TestServer):
    """Grants agent forwarding and Unix-socket forwarding to every logged-in user.

    ``exec agent-socket`` answers with the path the agent request was given.
    """

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return SSH_OPEN_CONNECT_SUCCESS

    def check_channel_forward_agent_request(self, channel: Any) -> bool:
        record("agent")
        return True

    def check_channel_direct_streamlocal_request(self, chanid: int, path: str) -> int:
        record("direct-streamlocal", path=path)
        return SSH_OPEN_CONNECT_SUCCESS

    def check_streamlocal_forward_request(self, path: str) -> bool:
        record("streamlocal-forward", path=path)
        return True

    def check_streamlocal_forward_cancel_request(self, path: str) -> bool:
        record("cancel-streamlocal-forward", path=path)
        return True

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        """``agent-socket`` / ``x11-display`` print what the session's grant set up.

        ``x11-display`` then waits for the client's EOF, so the display stays open.
        """
        if command not in (b"agent-socket", b"x11-display"):
            return bool(super().check_channel_exec_request(channel, command))
        from twisted.internet import reactor

        def answer() -> None:
            if command == b"agent-socket":
                channel.send(f"{channel.agent_socket}\n")
                channel.send_exit_status(0)
                channel.close()
            else:
                channel.send(f"{channel.x11_display}\n")

        reactor.callLater(0, answer)
        return True
