"""A PROXY-protocol endpoint (``haproxy:tcp:2222``): connections start once the client is known.

Twisted's ``haproxy:`` endpoint wrapper builds the protocol as soon as the
load balancer connects, with the balancer's address, and only later reads
the PROXY header that names the real client. Admission (the per-source caps)
and the connection's name (logs, ``current_connection().peer``) would then
see the balancer. :class:`ProxiedFactory` waits instead: the wrapper hands on
data only after the header, so when the first bytes arrive ``getPeer()`` is
the client, and the SSH factory builds its connection for that address.

The server's identification line therefore goes out once the client's
first bytes arrive; SSH clients send theirs without waiting (RFC 4253 4.2).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import protocol


class ProxiedFactory(protocol.Factory):
    """Wraps an SSH server factory for a ``haproxy:`` endpoint."""

    def __init__(self, wrapped: Any, reactor: Any, header_timeout: float) -> None:
        self.wrapped = wrapped
        self.reactor = reactor
        #: Seconds a connection may sit without data before it is closed.
        self.header_timeout = header_timeout

    def doStart(self) -> None:
        self.wrapped.doStart()

    def doStop(self) -> None:
        self.wrapped.doStop()

    def logPrefix(self) -> str:
        return f"{type(self.wrapped).__name__} (PROXY)"

    def buildProtocol(self, addr: Any) -> protocol.Protocol:
        return _AwaitClient(self)


class _AwaitClient(protocol.Protocol):
    """Holds a proxied connection until its first data, then becomes the real protocol."""

    transport: Any

    def __init__(self, owner: ProxiedFactory) -> None:
        self._owner = owner
        self._inner: Any = None
        self._timer: Any = None

    def connectionMade(self) -> None:
        # A balancer (or anyone who can reach the port) that never sends would
        # otherwise hold the socket without counting against any limit.
        self._timer = self._owner.reactor.callLater(
            self._owner.header_timeout, self.transport.loseConnection
        )

    def dataReceived(self, data: bytes) -> None:
        if self._inner is None:
            self._cancel_timer()
            inner = self._owner.wrapped.buildProtocol(self.transport.getPeer())
            if inner is None:
                self.transport.loseConnection()
                return
            self._inner = inner
            inner.makeConnection(self.transport)
        self._inner.dataReceived(data)

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        self._cancel_timer()
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connectionLost(reason)

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


def for_endpoint(description: str, factory: Any, reactor: Any, header_timeout: float) -> Any:
    """``factory`` as a ``haproxy:`` endpoint (``description``) needs it; else unchanged."""
    if description.partition(":")[0].lower() == "haproxy":
        return ProxiedFactory(factory, reactor, header_timeout)
    return factory
