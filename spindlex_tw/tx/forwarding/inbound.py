"""A connection accepted by one of our listeners, offered to the client as a channel.

``ssh -R`` to a Unix socket, agent forwarding and X11 forwarding all work the
same way: the server listens, and each connection it accepts becomes a
channel it opens towards the client (``forwarded-streamlocal@openssh.com``,
``auth-agent@openssh.com``, ``x11``), bridged once the client confirms it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet import protocol
from twisted.logger import Logger

from spindlex_tw.tx.forwarding.bridge import Bridge, SocketEnd

if TYPE_CHECKING:
    from spindlex_tw.tx.interfaces import Connection

log = Logger(namespace="spindlex_tw.forwarding")


def offer_channel(conn: Connection, kind: str, data: bytes, socket_end: SocketEnd) -> bool:
    """Open a ``kind`` channel to the client for ``socket_end``; False (socket dropped) if not.

    The socket stays unread until the client confirms; a refusal, or the
    channel's close later, drops it.
    """
    core = conn.connection
    if core is None:
        socket_end.drop()
        return False
    if len(core.channel_ids()) >= conn.factory.settings.channels.max_channels:
        log.info(
            "{kind} connection for {peer} dropped: too many channels", kind=kind, peer=conn.peer
        )
        socket_end.drop()
        return False
    channel = conn.open_channel(kind, data)
    if channel is None:
        socket_end.drop()
        return False
    bridge = Bridge(channel, socket_end)
    channel.on_open(lambda _channel: bridge.start())
    channel.on_close(lambda _channel: socket_end.drop())
    return True


class AcceptingFactory(protocol.ServerFactory):
    """Hands each accepted connection, paused, to ``accepted``."""

    noisy = False  # one listener per forward: its start and stop are logged by its owner

    def __init__(self, accepted: Callable[[SocketEnd], None]) -> None:
        self._accepted = accepted

    def buildProtocol(self, addr: object) -> SocketEnd:
        return SocketEnd(on_connected=self._accepted)
