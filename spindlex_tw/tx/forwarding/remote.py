"""``tcpip-forward`` and ``cancel-tcpip-forward`` (RFC 4254 section 7.1): ``ssh -R``.

The client asks the server to listen; each connection accepted there opens a
``forwarded-tcpip`` channel back to the client and is bridged once the client
confirms it. The hook ``check_port_forward_request`` grants or refuses the
request as the client sent it; what is then bound follows OpenSSH's sshd and
its ``GatewayPorts`` (the ``gateway_ports`` setting): ``"no"`` (the default)
binds the loopback whatever the client named, ``"yes"`` every interface, and
``"clientspecified"`` the client's address: ``""`` and ``"*"`` every address
of both families, ``"localhost"`` the loopback of both, anything else that
address (a name is resolved). Ports below 1024 are refused before the hook is
asked unless ``allow_privileged_ports`` is set, as sshd refuses them to users
other than root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer, interfaces, protocol
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from zope.interface import implementer

from spindlex_tw.core import wire
from spindlex_tw.core.requests import (
    CancelTcpipForward,
    ForwardedTcpip,
    TcpipForward,
)
from spindlex_tw.tx.forwarding.bridge import Bridge, SocketEnd
from spindlex_tw.tx.forwarding.state import cancel_listener
from spindlex_tw.tx.hooks import call_hook

if TYPE_CHECKING:
    from spindlex_tw.core import events as ev
    from spindlex_tw.tx.forwarding.state import ConnectionForwards

log = Logger(namespace="spindlex_tw.forwarding")

FIRST_UNPRIVILEGED_PORT = 1024
GATEWAY_PORTS = ("no", "clientspecified", "yes")  # the values of the gateway_ports setting

# The wildcard of IPv6 first: on a dual-stack host it takes IPv4 too, and the
# IPv4 bind that then fails on the same port is not needed.
_WILDCARD = ("::", "0.0.0.0")
_NAMED_ADDRESSES: dict[str, tuple[str, ...]] = {
    "": _WILDCARD,
    "*": _WILDCARD,
    "localhost": ("127.0.0.1", "::1"),
}


def bind_address(requested: str, gateway_ports: str) -> str:
    """The address sshd binds for a client's ``requested`` one under ``GatewayPorts``.

    With ``"no"`` a client may still pick one loopback family by naming
    127.0.0.1 or ::1; every other request binds the loopback of both. A value
    other than the three known ones counts as ``"no"``: a mistyped setting
    must not open a port to the network.
    """
    if gateway_ports == "yes":
        return ""
    if gateway_ports == "clientspecified":
        return requested
    return requested if requested in ("127.0.0.1", "::1") else "localhost"


class RemoteListener:
    """The listening sockets of one granted ``tcpip-forward``."""

    def __init__(self, forwards: ConnectionForwards, address: str) -> None:
        self._forwards = forwards
        self.address = address  # as the client sent it: forwarded-tcpip repeats it
        self.port = 0
        self.hosts: list[str] = []  # the addresses actually bound
        self._ports: list[Any] = []  # IListeningPort

    async def listen(self, port: int) -> bool:
        """Bind what ``self.address`` stands for under ``gateway_ports``; True if anything is.

        With port 0 the first bind picks the port and the others reuse it, so
        the one number the client is told reaches every family.
        """
        reactor = self._forwards.reactor
        factory = _InboundFactory(self)
        settings = self._forwards.settings
        address = bind_address(self.address, settings.gateway_ports)
        for host in await _bind_hosts(reactor, address, settings.forward_connect_timeout):
            endpoint_type = TCP6ServerEndpoint if isIPv6Address(host) else TCP4ServerEndpoint
            endpoint = endpoint_type(reactor, self.port or port, interface=host)
            try:
                listening = await endpoint.listen(factory)
            except CannotListenError as exc:
                log.info(
                    "cannot listen on {host}:{port}: {error}",
                    host=host,
                    port=self.port or port,
                    error=exc.socketError,
                )
                continue
            self._ports.append(listening)
            self.hosts.append(host)
            self.port = listening.getHost().port
        return bool(self._ports)

    def stop(self) -> None:
        ports, self._ports = self._ports, []
        for listening in ports:
            listening.stopListening()

    def accepted(self, socket_end: SocketEnd) -> None:
        """A TCP connection came in: offer it to the client as a forwarded-tcpip channel."""
        forwards = self._forwards
        conn = forwards.conn
        core = conn.connection
        if forwards.closed or core is None:
            socket_end.drop()
            return
        if len(core.channel_ids()) >= forwards.settings.channels.max_channels:
            log.info(
                "forwarded connection on port {port} dropped: too many channels", port=self.port
            )
            socket_end.drop()
            return
        peer = socket_end.tcp.getPeer()
        opening = ForwardedTcpip(self.address, self.port, peer.host, peer.port)
        channel = conn.open_channel(opening.NAME, opening.encode())
        if channel is None:
            socket_end.drop()
            return
        bridge = Bridge(channel, socket_end)
        channel.on_open(lambda _channel: bridge.start())
        # Refused by the client, or closed later: the socket goes with the channel.
        channel.on_close(lambda _channel: socket_end.drop())


class _InboundFactory(protocol.ServerFactory):
    noisy = False  # one listener per forward: its start and stop are logged by us

    def __init__(self, listener: RemoteListener) -> None:
        self._listener = listener

    def buildProtocol(self, addr: Any) -> SocketEnd:
        return SocketEnd(on_connected=self._listener.accepted)


def handle_tcpip_forward(forwards: ConnectionForwards, event: ev.GlobalRequestReceived) -> None:
    """Global request handler: ask the hook, listen, reply (with the port if it was 0)."""
    conn = forwards.conn
    request = event.request
    if not isinstance(request, TcpipForward):
        forwards.log_malformed("tcpip-forward", request)
        conn.global_reply(event, False)
        return
    address, port = request.address, request.port
    if 0 < port < FIRST_UNPRIVILEGED_PORT and not forwards.settings.allow_privileged_ports:
        _refuse(forwards, event, address, port, "privileged port")
        return
    limit = forwards.settings.max_forward_listeners
    if (
        forwards.closed
        or forwards.listener_slots_used() >= limit
        or (port and (address, port) in forwards.listeners)
    ):
        _refuse(forwards, event, address, port, "limit or duplicate")
        return
    forwards.reserved += 1
    defer.ensureDeferred(_grant(forwards, event, address, port))


def _refuse(
    forwards: ConnectionForwards,
    event: ev.GlobalRequestReceived,
    address: str,
    port: int,
    reason: str,
) -> None:
    log.info(
        "tcpip-forward {address}:{port} refused for {peer}: {reason}",
        address=address,
        port=port,
        peer=forwards.conn.peer,
        reason=reason,
    )
    forwards.conn.global_reply(event, False)


async def _grant(
    forwards: ConnectionForwards, event: ev.GlobalRequestReceived, address: str, port: int
) -> None:
    conn = forwards.conn
    try:
        listener = await _open_listener(forwards, address, port)
    except Exception:  # our bug, not the client's doing: log it, refuse, keep serving
        log.failure("tcpip-forward {address}:{port} failed", address=address, port=port)
        listener = None
    finally:
        forwards.reserved -= 1
    if listener is None:
        _refuse(forwards, event, address, port, "the application said no or nothing could be bound")
        return
    if forwards.closed:  # the connection ended while we were binding
        listener.stop()
        return
    forwards.listeners[(address, listener.port)] = listener
    log.info(
        "forwarding {address}:{bound} for {peer}, listening on {hosts}",
        address=address,
        bound=listener.port,
        peer=conn.peer,
        hosts=" ".join(listener.hosts),
        event="forward",
    )
    conn.global_reply(event, True, wire.uint32(listener.port) if port == 0 else b"")


async def _open_listener(
    forwards: ConnectionForwards, address: str, port: int
) -> RemoteListener | None:
    """The bound listener if the hook granted exactly this request and a bind worked."""
    conn = forwards.conn
    allowed = await call_hook(
        conn.reactor,
        conn.server.check_port_forward_request,
        address,
        port,
        denied=False,
        timeout=forwards.settings.hook_timeout,
    )
    if allowed is not True or forwards.closed:
        return None
    listener = RemoteListener(forwards, address)
    try:
        bound = await listener.listen(port)
    except BaseException:
        listener.stop()
        raise
    return listener if bound else None


def handle_cancel_tcpip_forward(
    forwards: ConnectionForwards, event: ev.GlobalRequestReceived
) -> None:
    """Global request handler: stop a listener this connection owns, if the hook agrees."""
    conn = forwards.conn
    request = event.request
    if not isinstance(request, CancelTcpipForward):
        forwards.log_malformed("cancel-tcpip-forward", request)
        conn.global_reply(event, False)
        return
    key = (request.address, request.port)
    cancel_listener(
        forwards,
        event,
        forwards.listeners,
        key,
        conn.server.check_port_forward_cancel_request,
        key,
        "forwarding {address}:{port} cancelled by {peer}",
        address=request.address,
        port=request.port,
    )


async def _bind_hosts(reactor: Any, address: str, timeout: float) -> list[str]:
    """The IP addresses ``address`` stands for, as sshd interprets a bind address."""
    named = _NAMED_ADDRESSES.get(address)
    if named is not None:
        return list(named)
    if isIPAddress(address) or isIPv6Address(address):
        return [address]
    receiver = _AddressCollector()
    reactor.nameResolver.resolveHostName(receiver, address)
    try:
        return await receiver.done.addTimeout(timeout, reactor)
    except defer.TimeoutError:
        log.info("resolving bind address {address} timed out", address=address)
        return []


@implementer(interfaces.IResolutionReceiver)
class _AddressCollector:
    """Gathers the IP addresses of one name resolution; fires ``done`` with them."""

    def __init__(self) -> None:
        self.done: defer.Deferred[list[str]] = defer.Deferred()
        self._hosts: list[str] = []

    def resolutionBegan(self, resolution: interfaces.IHostResolution) -> None:
        """Nothing to keep: the resolution cannot be cancelled usefully."""

    def addressResolved(self, address: interfaces.IAddress) -> None:
        host = getattr(address, "host", None)
        if isinstance(host, str) and host not in self._hosts:
            self._hosts.append(host)

    def resolutionComplete(self) -> None:
        self.done.callback(self._hosts)
