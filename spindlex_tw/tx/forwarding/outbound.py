"""A channel the client opened to a target the server connects to.

``direct-tcpip`` (``ssh -L``/``-D``) and ``direct-streamlocal@openssh.com``
(``ssh -L ...:/remote.sock``) work the same way once the hook granted: the
server connects, then confirms the channel and bridges it to the socket, or
answers OPEN_FAILURE with a plain description of why not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.logger import Logger

from spindlex_tw.protocol import constants as c
from spindlex_tw.tx import audit
from spindlex_tw.tx.forwarding.bridge import Bridge, SocketEnd
from spindlex_tw.tx.hooks import call_hook, is_code

if TYPE_CHECKING:
    from spindlex_tw.core import events as ev
    from spindlex_tw.tx.forwarding.state import ConnectionForwards

log = Logger(namespace="spindlex_tw.forwarding")


def ask_then_connect(
    forwards: ConnectionForwards,
    event: ev.ChannelOpenRequested,
    hook: Callable[..., object],
    args: tuple[object, ...],
    connect: Callable[[], None],
    what: str,
) -> None:
    """``connect()`` once ``hook(*args)`` answers SUCCESS; otherwise refuse with its code.

    ``what`` names the target in the log line of a refusal.
    """
    conn = forwards.conn
    decision = call_hook(
        conn.reactor,
        hook,
        *args,
        denied=c.SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
        timeout=forwards.settings.hook_timeout,
    )

    def decided(code: object) -> None:
        if forwards.closed:
            return
        if is_code(code, c.SSH_OPEN_CONNECT_SUCCESS):
            connect()
        else:
            log.info("{what} refused for {peer}", what=what, peer=conn.peer)
            conn.reject_channel(event, code)

    decision.addCallback(decided)


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
