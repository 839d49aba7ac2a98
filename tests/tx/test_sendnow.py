"""tx.twisted_private.sendnow: sending at once when nothing is queued, in order when not."""

from __future__ import annotations

import os
from typing import Any

import pytest_twisted
from twisted.internet import defer, protocol, reactor
from twisted.internet.testing import StringTransport

from spindlex_tw.tx.twisted_private import sendnow


class Collector(protocol.Protocol):
    def __init__(self, expected: int, done: defer.Deferred[bytes]) -> None:
        self.expected = expected
        self.done = done
        self.chunks: list[bytes] = []
        self.received = 0

    def dataReceived(self, data: bytes) -> None:
        self.chunks.append(data)
        self.received += len(data)
        if self.received >= self.expected and not self.done.called:
            self.done.callback(b"".join(self.chunks))


class Sender(protocol.Protocol):
    def __init__(self, writes: list[list[bytes]], queued_after_first: list[int]) -> None:
        self.writes = writes
        self.queued_after_first = queued_after_first

    def connectionMade(self) -> None:
        transport: Any = self.transport
        for number, parts in enumerate(self.writes):
            sendnow.write_sequence(transport, parts)
            if number == 0:
                # A small first write went straight to the kernel: nothing is queued.
                self.queued_after_first.append(transport._tempDataLen + len(transport.dataBuffer))


@pytest_twisted.ensureDeferred
async def test_small_writes_go_out_at_once_and_big_ones_keep_their_order() -> None:
    # Far more than the socket buffers hold, so a gathering send stops inside a
    # part, what is left of it is queued, and later parts queue behind it: all
    # must still arrive in order, byte for byte.
    writes = [
        [b"hello", b" ", b"world"],
        [os.urandom(8 << 20), bytearray(b"middle")],
        [os.urandom(8 << 20), b"end"],
    ]
    expected = b"".join(b"".join(parts) for parts in writes)
    queued: list[int] = []
    done: defer.Deferred[bytes] = defer.Deferred()
    server = protocol.ServerFactory.forProtocol(lambda: Sender(writes, queued))
    port = reactor.listenTCP(0, server, interface="127.0.0.1")
    client = protocol.ClientCreator(reactor, Collector, len(expected), done)
    connection = await client.connectTCP("127.0.0.1", port.getHost().port)
    try:
        received = await done
    finally:
        connection.transport.loseConnection()
        await port.stopListening()
    assert queued == [0]
    assert received == expected


def test_transports_other_than_sockets_just_queue() -> None:
    transport = StringTransport()
    sendnow.write_sequence(transport, [b"a", bytearray(b"bc")])
    assert transport.value() == b"abc"
    assert not sendnow.can_send_now(transport)
