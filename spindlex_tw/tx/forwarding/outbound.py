"""A channel the client opened to a target the server connects to.

``direct-tcpip`` (``ssh -L``/``-D``) and ``direct-streamlocal@openssh.com``
(``ssh -L ...:/remote.sock``) work the same way once the hook granted: the
server connects, then confirms the channel and bridges it to the socket, or
answers OPEN_FAILURE with a plain description of why not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spindlex_tw.protocol import constants as c
from spindlex_tw.tx import audit
from spindlex_tw.tx.forwarding.bridge import Bridge, SocketEnd

if TYPE_CHECKING:
    from spindlex_tw.core import events as ev
    from spindlex_tw.tx.forwarding.state import ConnectionForwards


def bridge_connected(
    forwards: ConnectionForwards, event: ev.ChannelOpenRequested, socket_end: SocketEnd
) -> bool:
    """Confirm ``event``'s channel and bridge it to ``socket_end``; False (socket dropped) if not.

    Not when the SSH connection ended while connecting, or the channel can
    no longer be confirmed.
    """
    if forwards.closed:
        socket_end.drop()
        return False
    channel = forwards.conn.accept_channel(event)
    if channel is None:
        socket_end.drop()
        return False
    Bridge(channel, socket_end).start()
    return True


def reject_open(forwards: ConnectionForwards, event: ev.ChannelOpenRequested, text: str) -> None:
    """OPEN_FAILURE, connect failed, with our own text (``reject_channel`` has fixed ones)."""
    conn = forwards.conn
    if forwards.closed or conn.connection is None:
        return
    conn.connection.reject_open(event.peer_id, c.SSH_OPEN_CONNECT_FAILED, text)
    conn.flush()
    audit.channel_refused(conn, event, text)
