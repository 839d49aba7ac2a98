"""tx.twisted_private.quickack: TCP sockets acknowledge small messages at once; others not."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.internet.testing import StringTransport

from spindlex_tw.tx.twisted_private.quickack import acknowledge_now, quickack_socket

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux only"
)


class Remember(protocol.Protocol):
    def __init__(self, made: defer.Deferred[Any]) -> None:
        self.made = made

    def connectionMade(self) -> None:
        self.made.callback(self.transport)


async def _server_transport(listen: Any, connect: Any) -> tuple[Any, Any, Any]:
    made: defer.Deferred[Any] = defer.Deferred()
    port = listen(protocol.ServerFactory.forProtocol(lambda: Remember(made)))
    client = await connect(port)
    return port, client, await made


@pytest_twisted.ensureDeferred
async def test_a_tcp_connection_acknowledges_at_once() -> None:
    port, client, transport = await _server_transport(
        lambda factory: reactor.listenTCP(0, factory, interface="127.0.0.1"),
        lambda port: protocol.ClientCreator(reactor, protocol.Protocol).connectTCP(
            "127.0.0.1", port.getHost().port
        ),
    )
    try:
        sock = quickack_socket(transport)
        assert sock is not None
        acknowledge_now(sock)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
    finally:
        client.transport.loseConnection()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_unix_sockets_and_other_transports_are_left_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    port, client, transport = await _server_transport(
        lambda factory: reactor.listenUNIX(path, factory),
        lambda port: protocol.ClientCreator(reactor, protocol.Protocol).connectUNIX(path),
    )
    try:
        assert quickack_socket(transport) is None
    finally:
        client.transport.loseConnection()
        await port.stopListening()
    assert quickack_socket(StringTransport()) is None
