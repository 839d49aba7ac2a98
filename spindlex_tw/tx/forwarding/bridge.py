"""Splicing a TCP connection onto an SSH channel, with back-pressure and half-close.

Each side is the other's producer: when the channel's output backlog grows,
the TCP socket stops reading; when the socket's send buffer fills, the channel
stops handing on data and so stops reopening the peer's window. Neither
direction can therefore hold more than about one channel window (or the
channel's output high-water mark) besides the kernel's socket buffers.

End of data travels separately in each direction (TCP FIN <-> CHANNEL_EOF);
the channel is closed and the socket dropped once both directions are done,
or at once when either side goes away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import interfaces, protocol
from twisted.python.failure import Failure
from zope.interface import implementer

if TYPE_CHECKING:
    from spindlex_tw.tx.channel import Channel


@implementer(interfaces.IHalfCloseableProtocol, interfaces.IPushProducer)
class SocketEnd(protocol.Protocol):
    """The TCP side of a bridge; it reads nothing until the bridge starts.

    Reading is held back from the moment of connection so that no byte
    arrives before there is a channel to carry it (a forwarded-tcpip channel
    waits for the client's confirmation, a direct-tcpip one for our reply).
    """

    def __init__(self, on_connected: Callable[[SocketEnd], None] | None = None) -> None:
        self._on_connected = on_connected
        self.bridge: Bridge | None = None
        self.tcp: Any = None  # the TCP transport, once connected
        self.lost = False
        self._started = False
        self._paused = False  # by the channel's back-pressure
        self._eof = False

    # --- IProtocol / IHalfCloseableProtocol (the TCP transport calls these) ------------

    def connectionMade(self) -> None:
        self.tcp = self.transport
        self.tcp.pauseProducing()
        if self._on_connected is not None:
            self._on_connected(self)

    def dataReceived(self, data: bytes) -> None:
        if self.bridge is not None:
            self.bridge.socket_data(data)

    def readConnectionLost(self) -> None:
        # Twisted reports EOF again if reading is resumed afterwards: once is enough.
        if not self._eof:
            self._eof = True
            if self.bridge is not None:
                self.bridge.socket_eof()

    def writeConnectionLost(self) -> None:
        """Our FIN went out; the other direction may still carry data."""

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.lost = True
        if self.bridge is not None:
            self.bridge.socket_lost()

    # --- IPushProducer (the channel calls these) ------------------------------------------

    def pauseProducing(self) -> None:
        self._paused = True
        self._update_reading()

    def resumeProducing(self) -> None:
        self._paused = False
        self._update_reading()

    def stopProducing(self) -> None:
        """The channel is gone; the bridge drops the socket itself."""

    # --- used by the bridge -------------------------------------------------------------------

    def start(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self._started = True
        self._update_reading()

    def drop(self) -> None:
        """Close without waiting for the peer (refused or abandoned before bridging)."""
        if not self.lost and self.tcp is not None:
            self.tcp.loseConnection()

    def _update_reading(self) -> None:
        if self.lost or self.tcp is None:
            return
        if self._started and not self._paused and not self._eof:
            self.tcp.resumeProducing()
        else:
            self.tcp.pauseProducing()


@implementer(interfaces.IHalfCloseableProtocol, interfaces.IPushProducer)
class ChannelEnd(protocol.Protocol):
    """The SSH side of a bridge, attached to the channel as its protocol."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    # --- IProtocol / IHalfCloseableProtocol (the channel calls these) -------------------

    def dataReceived(self, data: bytes) -> None:
        self._bridge.channel_data(data)

    def readConnectionLost(self) -> None:
        self._bridge.channel_eof()

    def writeConnectionLost(self) -> None:
        """We sent CHANNEL_EOF; the peer may still send data."""

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._bridge.channel_lost()

    # --- IPushProducer (the TCP transport calls these) --------------------------------------

    def pauseProducing(self) -> None:
        self._bridge.channel.pauseProducing()

    def resumeProducing(self) -> None:
        self._bridge.channel.resumeProducing()

    def stopProducing(self) -> None:
        """The socket is gone; the bridge closes the channel itself."""


class Bridge:
    """Moves bytes between one open channel and one connected TCP socket."""

    def __init__(self, channel: Channel, socket: SocketEnd) -> None:
        self.channel = channel
        self.socket = socket
        self._socket_eof = False
        self._channel_eof = False
        self._done = False

    def start(self) -> None:
        """Wire both producers, hand over what the channel holds, then start reading."""
        if self.socket.lost:
            self._finish()
            return
        channel_end = ChannelEnd(self)
        self.socket.tcp.registerProducer(channel_end, True)
        self.channel.registerProducer(self.socket, True)
        self.channel.attach_protocol(channel_end)
        self.socket.start(self)

    # --- TCP -> channel ---------------------------------------------------------------------

    def socket_data(self, data: bytes) -> None:
        self.channel.write(data)

    def socket_eof(self) -> None:
        self._socket_eof = True
        self.channel.send_eof()
        if self._channel_eof:
            self._finish()

    def socket_lost(self) -> None:
        self._socket_eof = True
        self.channel.send_eof()
        self._finish()

    # --- channel -> TCP ---------------------------------------------------------------------

    def channel_data(self, data: bytes) -> None:
        if not self.socket.lost:
            self.socket.tcp.write(data)

    def channel_eof(self) -> None:
        # The channel repeats EOF when its protocol is resumed later: act once.
        if self._channel_eof:
            return
        self._channel_eof = True
        if not self.socket.lost:
            self._release_socket_producer()
            self.socket.tcp.loseWriteConnection()
        if self._socket_eof:
            self._finish()

    def channel_lost(self) -> None:
        self._channel_eof = True
        self._finish()

    def _finish(self) -> None:
        """Both directions are over, or one side vanished: release both."""
        if self._done:
            return
        self._done = True
        self.channel.close()
        if not self.socket.lost:
            self._release_socket_producer()
        # loseConnection still delivers what the socket's buffer holds.
        self.socket.drop()

    def _release_socket_producer(self) -> None:
        # No more channel data will come. Twisted holds back a FIN (half or
        # full close) while a paused producer is registered, so let go of it.
        self.socket.tcp.unregisterProducer()
