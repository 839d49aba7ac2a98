"""A Twisted protocol attached to a channel: data in order, pauses, EOF and the end.

The channel is the protocol's ``ITransport``; this is the other half, which
calls the protocol. Data that arrives while the protocol has paused the
channel (it is the channel's ``IPushProducer`` consumer) waits here, unread,
so the peer's window stays closed until the protocol resumes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import interfaces
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import Logger
from twisted.python.failure import Failure

from spindlex_tw.tx.channel.blocking import BlockingEnd
from spindlex_tw.tx.channel.driver import ChannelDriver

log = Logger(namespace="spindlex_tw.channel")


class ProtocolEnd:
    """Feeds one attached protocol (reactor thread only)."""

    def __init__(self, driver: ChannelDriver, blocking: BlockingEnd) -> None:
        self._driver = driver
        self._blocking = blocking
        self.protocol: Any = None  # an IProtocol, once attached
        self._pending: deque[bytes] = deque()  # received, not yet delivered
        self._paused = False

    def attach(self, protocol: Any, transport: object) -> None:
        """Connect ``protocol`` to ``transport`` and hand it what threads did not read."""
        self.protocol = protocol
        protocol.makeConnection(transport)
        self._pending.extend(self._blocking.take_stdin())
        self._deliver()

    def data_received(self, data: bytes, stream: int) -> None:
        if stream:  # stderr from the peer is not the protocol's: recv_stderr() reads it
            self._blocking.data_received(data, stream)
            return
        self._pending.append(data)
        self._deliver()

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._deliver()

    def eof_received(self) -> None:
        if self.protocol is not None and not self._pending:
            self._protocol_eof()

    def connection_lost(self, error: str | None) -> None:
        protocol, self.protocol = self.protocol, None
        if protocol is None:
            return
        # Data held while the protocol was paused arrived before the CLOSE: a
        # peer may send its last data, EOF and CLOSE at once. Hand it over.
        pending, self._pending = self._pending, deque()
        for data in pending:
            protocol.dataReceived(data)
        reason = ConnectionLost(error) if error else ConnectionDone()
        protocol.connectionLost(Failure(reason))

    def _deliver(self) -> None:
        driver = self._driver
        protocol = self.protocol
        while self._pending and not self._paused and protocol is not None and not driver.closed:
            data = self._pending.popleft()
            if not self._guarded(protocol.dataReceived, data):
                return
            driver.link.channel_consumed(driver.id, len(data))  # the window may reopen
            protocol = self.protocol
        if not self._pending and driver.eof_received and self.protocol is not None:
            self._protocol_eof()

    def _protocol_eof(self) -> None:
        protocol = self.protocol
        if interfaces.IHalfCloseableProtocol.providedBy(protocol):
            self._guarded(protocol.readConnectionLost)
        else:
            self._driver.lose_connection()

    def _guarded(self, callback: Callable[..., object], *args: object) -> bool:
        """Run an attached protocol's callback; if it raises, only this channel pays.

        The error is logged with its traceback and the channel closed; the
        connection and its other channels carry on. Returns False on error.
        """
        try:
            callback(*args)
        except Exception:
            log.failure(
                "protocol on channel {id} raised; closing the channel", id=self._driver.id
            )
            self._driver.close_out()
            return False
        return True
