"""``SSHServerFactory``: builds a protocol per connection and keeps the connection table."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet import protocol
from twisted.logger import Logger

from spindlex_tw.core import wire
from spindlex_tw.core.packet import PacketEncoder
from spindlex_tw.core.version import identification_line
from spindlex_tw.protocol import constants as c
from spindlex_tw.tx import audit
from spindlex_tw.tx.admission import Admission
from spindlex_tw.tx.protocol import SSHServerProtocol
from spindlex_tw.tx.settings import ServerSettings

if TYPE_CHECKING:
    from spindlex_tw.core import events as ev
    from spindlex_tw.crypto.pkey import PKey
    from spindlex_tw.tx.application import Application
    from spindlex_tw.tx.interfaces import ChannelOpener, Connection, GlobalHandler

log = Logger(namespace="spindlex_tw.factory")


def _keepalive(conn: Connection, event: ev.GlobalRequestReceived) -> None:
    # OpenSSH's keepalive expects any reply; FAILURE is what sshd sends.
    conn.global_reply(event, False)


# Every factory alive, for connections_serving(). Weak: a factory that no port,
# adopted socket or connection holds any more drops out by itself.
_factories: weakref.WeakSet[SSHServerFactory] = weakref.WeakSet()
_factories_lock = threading.Lock()  # connections_serving() may run in any thread


def connections_serving(app: object) -> list[SSHServerProtocol]:
    """The open connections of every factory that serves ``app``; safe from any thread.

    How an application learns about its own connections (``SSHServer``'s
    ``get_active_channels`` and friends): the factories own them, whoever made
    the factory (a manager, ``start_server``, twistd or a program of its own).
    """
    with _factories_lock:
        factories = list(_factories)
    # list() of a dict's values is one step for the interpreter: the reactor
    # thread cannot change the table halfway through it.
    return [
        conn
        for factory in factories
        if app in factory.applications
        for conn in list(factory.connections.values())
    ]


class _Refuser(protocol.Protocol):
    """Turns away a connection over a limit: identification, DISCONNECT, close."""

    transport: Any

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def connectionMade(self) -> None:
        disconnect = (
            wire.byte(c.SSH_MSG_DISCONNECT)
            + wire.uint32(c.SSH_DISCONNECT_TOO_MANY_CONNECTIONS)
            + wire.string(self.reason[:1].upper() + self.reason[1:])
            + wire.string(b"")
        )
        self.transport.write(identification_line() + PacketEncoder(os.urandom).encode(disconnect))
        self.transport.loseConnection()


class SSHServerFactory(protocol.ServerFactory):
    """Serves an :class:`Application` application over any stream endpoint."""

    #: The class of each connection; a subclass of SSHServerProtocol may be set here.
    connection_class: type[SSHServerProtocol] = SSHServerProtocol

    def __init__(
        self,
        server: Application,
        host_keys: Sequence[PKey],
        settings: ServerSettings | None = None,
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        if not host_keys:
            raise ValueError("at least one host key is required")
        self.server = server
        #: What connections_serving() finds this factory's connections for: the
        #: application, and whatever it stands in for (twistd's --app composition).
        self.applications: tuple[object, ...] = (server,)
        self.host_keys = list(host_keys)
        self.settings = settings or ServerSettings()
        self.reactor = reactor
        self.connections: dict[str, SSHServerProtocol] = {}
        self.admission = Admission(self.settings)
        #: Shutting down gracefully: connections refuse new channels.
        self.draining = False
        self.total_connections = 0
        self.refused_connections = 0
        self.global_handlers: dict[str, GlobalHandler] = {"keepalive@openssh.com": _keepalive}
        self.channel_openers: dict[str, ChannelOpener] = {}
        from spindlex_tw.tx import forwarding

        forwarding.install(self)
        with _factories_lock:
            _factories.add(self)

    def buildProtocol(self, addr: Any) -> protocol.Protocol:
        source = str(getattr(addr, "host", addr))
        reason = self.admission.refusal(source)
        if reason is not None:
            self.refused_connections += 1
            log.warn("refused {peer}: {reason}", peer=source, reason=reason, event="refused")
            audit.emit("connection_refused", peer=source, reason=reason)
            refuser = _Refuser(reason)
            refuser.factory = self
            return refuser
        conn = self.connection_class(self)
        conn.factory = self
        conn.source = source
        conn.admitted = True
        self.admission.opened(source)
        return conn

    def connection_made(self, conn: SSHServerProtocol) -> None:
        self.connections[conn.connection_id] = conn
        self.total_connections += 1

    def connection_authenticated(self, conn: SSHServerProtocol) -> None:
        if conn.admitted:
            self.admission.authenticated(conn.source)

    def connection_lost(self, conn: SSHServerProtocol) -> None:
        self.connections.pop(conn.connection_id, None)
        if conn.admitted:
            conn.admitted = False
            self.admission.closed(conn.source, was_pending=conn.username is None)

    def close_all(self, description: str = "Server shutting down") -> None:
        for conn in list(self.connections.values()):
            conn.disconnect(c.SSH_DISCONNECT_BY_APPLICATION, description)
