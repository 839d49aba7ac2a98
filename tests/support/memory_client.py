"""The raw client of rawssh.py, wired to a server protocol in memory.

No socket, no reactor run, no thread: the client's bytes go straight into
``SSHServerProtocol.dataReceived`` and the server's replies are read back from
a ``StringTransport``, as Twisted's own protocol tests do. Time is the
factory's ``task.Clock``, so timers (login grace, hook timeouts, the re-key
interval, the refused-password delay) fire only when a test advances it.

Everything runs to completion inside each call, so a reply that is not there
yet is an error at once (:class:`Silent`), never a wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from spindlex_tw.core import wire
from spindlex_tw.protocol import constants as c
from spindlex_tw.tx.factory import SSHServerFactory
from spindlex_tw.tx.protocol import SSHServerProtocol
from tests.support.rawssh import Closed, RawClient

# Messages a test asserting on the connection protocol does not care about.
NOISE = (c.SSH_MSG_IGNORE, c.SSH_MSG_DEBUG, c.SSH_MSG_EXT_INFO, c.SSH_MSG_USERAUTH_BANNER)


class Silent(AssertionError):
    """The server has not sent what the test reads (it would wait forever)."""


@dataclass
class ChannelMessage:
    """One connection-protocol message sent to the client, decoded enough to assert on."""

    kind: int
    recipient: int
    payload: bytes

    def body(self) -> wire.Reader:
        """A fresh reader of what follows the recipient channel id."""
        return wire.Reader(self.payload, 5)


class MemoryClient(RawClient):
    """A ``RawClient`` whose peer is a protocol built by ``factory``, in this thread."""

    def __init__(self, factory: SSHServerFactory, port: int = 50022) -> None:
        self._start_codec()
        self.factory = factory
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 22),
            peerAddress=IPv4Address("TCP", "127.0.0.1", port),
        )
        protocol = factory.buildProtocol(self.transport.getPeer())
        assert isinstance(protocol, SSHServerProtocol), protocol
        self.protocol = protocol
        protocol.makeConnection(self.transport)

    # --- bytes: RawClient's socket replaced by the StringTransport ---------------------------

    def send_raw(self, data: bytes) -> None:
        if self.transport.disconnecting:
            raise Closed
        self.protocol.dataReceived(data)

    def recv_raw(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        if data:
            return data
        if self.transport.disconnecting:
            raise Closed
        raise Silent("the server has sent nothing more")

    def payloads(self) -> list[bytes]:
        """Every whole packet the server has sent and the client not yet read."""
        self.decoder.feed(self.transport.value())
        self.transport.clear()
        found = []
        while (payload := self.decoder.next_payload()) is not None:
            if payload[0] not in NOISE:
                found.append(payload)
        return found

    def lose(self) -> None:
        """What the reactor does after the server's loseConnection (or when the peer goes)."""
        self.protocol.connectionLost(Failure(ConnectionDone()))

    def close(self) -> None:
        if not self.protocol.lost:
            self.lose()

    # --- the connection protocol (RFC 4254) ---------------------------------------------------

    def open_channel(
        self,
        kind: str = "session",
        sender: int = 0,
        window: int = 1 << 20,
        max_packet: int = 32768,
        extra: bytes = b"",
    ) -> None:
        self.send(
            wire.byte(c.SSH_MSG_CHANNEL_OPEN)
            + wire.string(kind)
            + wire.uint32(sender)
            + wire.uint32(window)
            + wire.uint32(max_packet)
            + extra
        )

    def open_session(self, sender: int = 0, window: int = 1 << 20, max_packet: int = 32768) -> int:
        """Open a session channel and return the server's id for it."""
        self.open_channel("session", sender, window, max_packet)
        confirmation = self.expect(c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION)
        assert confirmation.recipient == sender
        return confirmation.body().uint32()

    def request(self, channel: int, name: str, data: bytes = b"", want_reply: bool = True) -> None:
        self.send(
            wire.byte(c.SSH_MSG_CHANNEL_REQUEST)
            + wire.uint32(channel)
            + wire.string(name)
            + wire.boolean(want_reply)
            + data
        )

    def exec(self, channel: int, command: bytes) -> None:
        self.request(channel, "exec", wire.string(command))

    def data(self, channel: int, data: bytes) -> None:
        self.send(wire.byte(c.SSH_MSG_CHANNEL_DATA) + wire.uint32(channel) + wire.string(data))

    def adjust_window(self, channel: int, count: int) -> None:
        self.send(
            wire.byte(c.SSH_MSG_CHANNEL_WINDOW_ADJUST) + wire.uint32(channel) + wire.uint32(count)
        )

    def eof(self, channel: int) -> None:
        self.send(wire.byte(c.SSH_MSG_CHANNEL_EOF) + wire.uint32(channel))

    def close_channel(self, channel: int) -> None:
        self.send(wire.byte(c.SSH_MSG_CHANNEL_CLOSE) + wire.uint32(channel))

    def expect(self, kind: int) -> ChannelMessage:
        """The next channel message, which must be of ``kind``."""
        message = decode(self.recv_skipping(*NOISE))
        assert message.kind == kind, (message.kind, kind)
        return message

    def channel_messages(self) -> list[ChannelMessage]:
        """Every channel message sent and not yet read (none at all is a valid answer)."""
        return [decode(payload) for payload in self.payloads()]


def decode(payload: bytes) -> ChannelMessage:
    return ChannelMessage(payload[0], wire.Reader(payload, 1).uint32(), payload)


def data_of(messages: list[ChannelMessage]) -> bytes:
    """The bytes of the CHANNEL_DATA messages among ``messages``, in order."""
    return b"".join(m.body().string() for m in messages if m.kind == c.SSH_MSG_CHANNEL_DATA)


def kinds(messages: list[ChannelMessage]) -> list[int]:
    return [m.kind for m in messages]


def exit_status(message: ChannelMessage) -> int:
    """The status of an exit-status CHANNEL_REQUEST (RFC 4254 6.10)."""
    assert message.kind == c.SSH_MSG_CHANNEL_REQUEST
    reader = message.body()
    assert reader.ascii() == "exit-status"
    assert reader.boolean() is False  # exit-status never wants a reply
    return int(reader.uint32())
