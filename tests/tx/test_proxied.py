"""ProxiedFactory: the SSH connection is built for the address the PROXY header named.

Twisted's PROXY wrapper hands data on only after the header, with getPeer()
then the client; these stand-ins (a StringTransport whose peer changes, a
task.Clock) show what the factory does at each step. tests/interop/
test_haproxy.py runs the real thing behind HAProxy.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import address, protocol, task
from twisted.internet.testing import StringTransport

from spindlex_tw.tx.proxied import ProxiedFactory, for_endpoint

BALANCER = address.IPv4Address("TCP", "10.0.0.1", 40000)
CLIENT = address.IPv4Address("TCP", "203.0.113.9", 50122)


class Recorder(protocol.Protocol):
    def __init__(self, built_for: Any) -> None:
        self.built_for = built_for
        self.peer_at_start: Any = None
        self.received = b""
        self.lost = False

    transport: Any

    def connectionMade(self) -> None:
        self.peer_at_start = self.transport.getPeer()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any = None) -> None:
        self.lost = True


class RecordingFactory(protocol.Factory):
    def __init__(self) -> None:
        self.built: list[Recorder] = []

    def buildProtocol(self, addr: Any) -> Recorder:
        built = Recorder(addr)
        self.built.append(built)
        return built


def _connected(clock: task.Clock) -> tuple[RecordingFactory, protocol.Protocol, Any]:
    wrapped = RecordingFactory()
    proxied = ProxiedFactory(wrapped, clock, header_timeout=30)
    conn = proxied.buildProtocol(BALANCER)
    transport: Any = StringTransport(peerAddress=BALANCER)  # type: ignore[no-untyped-call]
    conn.makeConnection(transport)  # type: ignore[no-untyped-call]
    return wrapped, conn, transport


def test_the_connection_is_built_for_the_client_once_data_follows_the_header() -> None:
    clock = task.Clock()
    wrapped, conn, transport = _connected(clock)
    assert wrapped.built == []  # nothing decided on the balancer's address
    transport.peerAddr = CLIENT  # what the PROXY wrapper reports once it read the header
    conn.dataReceived(b"SSH-2.0-client\r\n")
    [built] = wrapped.built
    assert built.built_for == CLIENT
    assert built.peer_at_start == CLIENT
    assert built.received == b"SSH-2.0-client\r\n"
    conn.dataReceived(b"more")
    assert built.received.endswith(b"more")
    conn.connectionLost(protocol.connectionDone)
    assert built.lost
    assert clock.getDelayedCalls() == []


def test_a_connection_that_never_sends_is_closed_after_the_timeout() -> None:
    clock = task.Clock()
    wrapped, conn, transport = _connected(clock)
    clock.advance(29)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnecting
    conn.connectionLost(protocol.connectionDone)
    assert wrapped.built == []


def test_only_haproxy_endpoints_are_wrapped() -> None:
    factory = RecordingFactory()
    clock = task.Clock()
    assert isinstance(for_endpoint("haproxy:tcp:2222", factory, clock, 30), ProxiedFactory)
    assert for_endpoint("tcp:2222", factory, clock, 30) is factory
    assert for_endpoint("unix:/run/haproxy.sock", factory, clock, 30) is factory
