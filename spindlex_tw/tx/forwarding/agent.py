"""Agent forwarding (``ssh -A``; OpenSSH PROTOCOL.agent).

Once ``check_channel_forward_agent_request`` grants ``auth-agent-req@openssh.com``
on a session, the connection gets one Unix socket in a directory of its own
(mode 0700, under the temporary directory), as sshd makes
``/tmp/ssh-XXXX/agent.PID``. The session's ``channel.agent_socket`` names it;
each connection made to it opens an ``auth-agent@openssh.com`` channel to the
client, which connects it to the user's agent. The socket and its directory
are removed when the SSH connection ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from spindlex_tw.tx.forwarding.inbound import AcceptingFactory, offer_channel

if TYPE_CHECKING:
    from spindlex_tw.tx.channel import Channel
    from spindlex_tw.tx.forwarding.bridge import SocketEnd
    from spindlex_tw.tx.interfaces import Connection

log = Logger(namespace="spindlex_tw.forwarding")

AGENT_CHANNEL = "auth-agent@openssh.com"

_SOCKETS: WeakKeyDictionary[Any, AgentSocket] = WeakKeyDictionary()


class AgentSocket:
    """The agent socket of one SSH connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        # mkdtemp makes the directory 0700: only the server's user reaches the socket.
        self.directory = tempfile.mkdtemp(prefix="spindlex-agent-")
        self.path = os.path.join(self.directory, "agent.sock")
        try:
            self._port: Any = conn.reactor.listenUNIX(
                self.path, AcceptingFactory(self._accepted), mode=0o600
            )
        except CannotListenError:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise

    def _accepted(self, socket_end: SocketEnd) -> None:
        offer_channel(self._conn, AGENT_CHANNEL, b"", socket_end)

    def stop(self) -> None:
        """Stop listening; the socket file goes with the port, then the directory."""
        stopped = defer.maybeDeferred(self._port.stopListening)
        stopped.addBoth(self._remove_directory)

    def _remove_directory(self, _: object) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        log.info("agent socket {path} removed", path=self.path)


def forward_agent(conn: Connection, channel: Channel) -> bool:
    """Give ``channel`` its connection's agent socket (made on first use); False if it fails."""
    agent = _SOCKETS.get(conn)
    if agent is None:
        try:
            agent = AgentSocket(conn)
        except (OSError, CannotListenError) as exc:
            log.error("agent forwarding for {peer} failed: {error}", peer=conn.peer, error=exc)
            return False
        _SOCKETS[conn] = agent
        conn.on_connection_lost(lambda: _release(conn))
        log.info("agent forwarding for {peer} at {path}", peer=conn.peer, path=agent.path)
    channel.agent_socket = agent.path
    return True


def _release(conn: Connection) -> None:
    agent = _SOCKETS.pop(conn, None)
    if agent is not None:
        agent.stop()
