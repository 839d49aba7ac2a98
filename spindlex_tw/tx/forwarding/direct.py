"""``direct-tcpip`` channels (RFC 4254 section 7.2): what ``ssh -L`` and ``ssh -D`` open.

The client names a host and port; the application's
``check_channel_direct_tcpip_request`` decides; the server connects, and only
then confirms the channel, so a client learns about an unreachable target
from the OPEN_FAILURE rather than from a channel that closes at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer, error, protocol
from twisted.internet.endpoints import HostnameEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from spindlex_tw.core.requests import DirectTcpip
from spindlex_tw.tx.forwarding.bridge import SocketEnd
from spindlex_tw.tx.forwarding.outbound import ask_then_connect, bridge_connected, reject_open

if TYPE_CHECKING:
    from spindlex_tw.core import events as ev
    from spindlex_tw.tx.forwarding.state import ConnectionForwards

log = Logger(namespace="spindlex_tw.forwarding")

# What the client reads after "open failed: connect failed: ". Kept to the
# kind of error: the server's own resolver or routing details stay in its log.
_CONNECT_ERROR_TEXT: dict[type[BaseException], str] = {
    error.ConnectionRefusedError: "Connection refused",
    error.TCPTimedOutError: "Connection timed out",
    error.TimeoutError: "Connection timed out",
    defer.TimeoutError: "Connection timed out",
    error.DNSLookupError: "Name or service not known",
    error.NoRouteError: "No route to host",
}


def open_direct_tcpip(forwards: ConnectionForwards, event: ev.ChannelOpenRequested) -> None:
    """Channel opener for ``direct-tcpip``, after ``check_channel_request`` accepted."""
    target = event.request
    if not isinstance(target, DirectTcpip):
        forwards.log_malformed("direct-tcpip open", target)
        reject_open(forwards, event, "malformed direct-tcpip request")
        return
    ask_then_connect(
        forwards,
        event,
        forwards.conn.server.check_channel_direct_tcpip_request,
        (event.peer_id, (target.originator, target.originator_port), (target.host, target.port)),
        lambda: _connect(forwards, event, target),
        f"direct-tcpip to {target.host}:{target.port}",
    )


def _connect(
    forwards: ConnectionForwards, event: ev.ChannelOpenRequested, target: DirectTcpip
) -> None:
    conn = forwards.conn
    timeout = forwards.settings.forward_connect_timeout
    try:
        endpoint = HostnameEndpoint(conn.reactor, target.host, target.port, timeout=timeout)
    except ValueError:  # a host name that IDNA cannot encode
        reject_open(forwards, event, "Name or service not known")
        return
    factory: Any = protocol.Factory.forProtocol(SocketEnd)
    connecting = endpoint.connect(factory)
    # The endpoint's timeout covers each attempt; this one bounds name resolution too.
    connecting.addTimeout(timeout, conn.reactor)
    forwards.track_connect(connecting)

    def connected(socket_end: SocketEnd) -> None:
        if bridge_connected(forwards, event, socket_end):
            log.debug(
                "direct-tcpip {origin}:{oport} -> {host}:{port} for {peer}",
                origin=target.originator,
                oport=target.originator_port,
                host=target.host,
                port=target.port,
                peer=conn.peer,
            )

    def failed(failure: Failure) -> None:
        if forwards.closed:
            return  # cancelled because the SSH connection ended
        text = _connect_error_text(failure)
        log.info(
            "direct-tcpip to {host}:{port} for {peer} failed: {error}",
            host=target.host,
            port=target.port,
            peer=conn.peer,
            error=failure.getErrorMessage(),
        )
        reject_open(forwards, event, text)

    connecting.addCallbacks(connected, failed)


def _connect_error_text(failure: Failure) -> str:
    for kind, text in _CONNECT_ERROR_TEXT.items():
        if failure.check(kind):
            return text
    return "Connection failed"
