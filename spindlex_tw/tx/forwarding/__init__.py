"""Port forwarding: direct-tcpip (ssh -L, -D) and tcpip-forward (ssh -R).

``install`` plugs the handlers into the factory's extension tables; the
policy stays with the application's hooks, and the defaults refuse:
``check_channel_request`` accepts only sessions, ``check_port_forward_request``
says no. The pieces:

- ``direct``: direct-tcpip channel opens, connect then confirm;
- ``remote``: tcpip-forward / cancel-tcpip-forward listeners;
- ``bridge``: a TCP socket spliced onto a channel with back-pressure;
- ``state``: what each connection holds, released when it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spindlex_tw.tx.forwarding.direct import open_direct_tcpip
from spindlex_tw.tx.forwarding.remote import handle_cancel_tcpip_forward, handle_tcpip_forward
from spindlex_tw.tx.forwarding.state import ForwardRegistry

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

    factory.channel_openers["direct-tcpip"] = direct_tcpip
    factory.global_handlers["tcpip-forward"] = tcpip_forward
    factory.global_handlers["cancel-tcpip-forward"] = cancel_tcpip_forward
