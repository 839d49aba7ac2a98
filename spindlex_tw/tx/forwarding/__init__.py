"""Forwarding: TCP ports (ssh -L, -D, -R), Unix sockets, the agent and X11.

``install`` plugs the handlers into the factory's extension tables; the
policy stays with the application's hooks, and the defaults refuse:
``check_channel_request`` accepts only sessions, ``check_port_forward_request``
says no. The pieces:

- ``direct``: direct-tcpip channel opens, connect then confirm;
- ``remote``: tcpip-forward / cancel-tcpip-forward listeners;
- ``streamlocal``: the same for Unix-domain sockets (OpenSSH's extensions);
- ``agent``, ``x11``: the listeners a session's ``auth-agent-req@openssh.com``
  and ``x11-req`` set up (tx/session.py calls them once the hook granted);
- ``inbound``: a connection one of those accepted, offered as a channel;
- ``outbound``: a connection the server made for a direct-* channel, bridged
  once confirmed, or the OPEN_FAILURE;
- ``bridge``: a socket spliced onto a channel with back-pressure;
- ``state``: what each connection holds, released when it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spindlex_tw.core.requests import (
    CancelStreamlocalForward,
    DirectStreamlocal,
    StreamlocalForward,
)
from spindlex_tw.tx.forwarding.direct import open_direct_tcpip
from spindlex_tw.tx.forwarding.remote import handle_cancel_tcpip_forward, handle_tcpip_forward
from spindlex_tw.tx.forwarding.state import ForwardRegistry
from spindlex_tw.tx.forwarding.streamlocal import (
    handle_cancel_streamlocal_forward,
    handle_streamlocal_forward,
    open_direct_streamlocal,
)

if TYPE_CHECKING:
    from spindlex_tw.core import events as ev
    from spindlex_tw.tx.interfaces import Connection, Extensions


def install(factory: Extensions) -> None:
    """Register the forwarding handlers on ``factory``."""
    registry = ForwardRegistry()

    def direct_tcpip(conn: Connection, event: ev.ChannelOpenRequested) -> None:
        open_direct_tcpip(registry.get(conn), event)

    def tcpip_forward(conn: Connection, event: ev.GlobalRequestReceived) -> None:
        handle_tcpip_forward(registry.get(conn), event)

    def cancel_tcpip_forward(conn: Connection, event: ev.GlobalRequestReceived) -> None:
        handle_cancel_tcpip_forward(registry.get(conn), event)

    def direct_streamlocal(conn: Connection, event: ev.ChannelOpenRequested) -> None:
        open_direct_streamlocal(registry.get(conn), event)

    def streamlocal_forward(conn: Connection, event: ev.GlobalRequestReceived) -> None:
        handle_streamlocal_forward(registry.get(conn), event)

    def cancel_streamlocal_forward(conn: Connection, event: ev.GlobalRequestReceived) -> None:
        handle_cancel_streamlocal_forward(registry.get(conn), event)

    factory.channel_openers["direct-tcpip"] = direct_tcpip
    factory.channel_openers[DirectStreamlocal.NAME] = direct_streamlocal
    factory.global_handlers[StreamlocalForward.NAME] = streamlocal_forward
    factory.global_handlers[CancelStreamlocalForward.NAME] = cancel_streamlocal_forward
    factory.global_handlers["tcpip-forward"] = tcpip_forward
    factory.global_handlers["cancel-tcpip-forward"] = cancel_tcpip_forward
