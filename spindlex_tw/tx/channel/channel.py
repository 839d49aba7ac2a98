"""The public ``Channel``: one SSH channel, driven three ways.

1. From the reactor: non-blocking ``send`` / ``send_stderr`` / ``send_exit_status``
   / ``close``; output beyond the peer's window is queued in order.
2. As the transport of any Twisted ``IProtocol`` (``attach_protocol``): the
   channel is its ``ITransport`` and ``IPushProducer`` and honours the producer
   it registers, so back-pressure runs from the peer's window to the protocol.
3. From a worker thread, SpindleX style: ``recv`` / ``send`` / ``sendall`` /
   ``send_stderr`` / ``send_exit_status`` / ``close`` are safe from any thread
   and block only the calling thread while flow control requires.

``Channel`` is the API and the connection's handle; the work is done by its
pieces: :class:`~.driver.ChannelDriver` (all output, in the reactor),
:class:`~.blocking.BlockingEnd` (worker threads), :class:`~.attach.ProtocolEnd`
(an attached protocol) and :class:`~.facts.SessionFacts` (what session
requests granted).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import interfaces
from zope.interface import implementer

from spindlex_tw.core import wire
from spindlex_tw.core.requests import X11Request
from spindlex_tw.tx.channel.attach import ProtocolEnd
from spindlex_tw.tx.channel.blocking import BlockingEnd
from spindlex_tw.tx.channel.driver import ChannelDriver
from spindlex_tw.tx.channel.facts import Fact, SessionFacts
from spindlex_tw.tx.channel.link import ChannelLink


@implementer(interfaces.ITransport, interfaces.IPushProducer, interfaces.IConsumer)
class Channel:
    """One open SSH channel of an authenticated connection."""

    # The connection calls this for each packet's data. It is the reading end
    # itself (the blocking queues, or the attached protocol once there is one),
    # so the data path tests nothing on its way there.
    data_received: Callable[[bytes, int], None]

    #: ``write`` and ``writeSequence`` take any bytes-like buffer, not only bytes (Twisted's
    #: own transports refuse others): a file's data goes out without a copy to bytes first.
    takes_buffers = True

    # Session facts (see facts.py), written by tx/session.py when a request is granted.
    term = Fact[str | None]()
    term_size = Fact[tuple[int, int, int, int]]()
    term_modes = Fact[bytes]()
    environment = Fact[dict[str, str]]()
    command = Fact[bytes | None]()
    subsystem = Fact[str | None]()
    signals = Fact[list[str]]()
    started = Fact[bool]()
    agent_socket = Fact[str | None]()
    x11_display = Fact[str | None]()
    x11_request = Fact[X11Request | None]()

    def __init__(
        self, connection: ChannelLink, channel_id: int, kind: str, *, confirmed: bool = True
    ) -> None:
        """``confirmed=False`` for a channel we opened: on_open() waits for the peer's yes."""
        self._connection = connection
        self.username: str = connection.username or ""
        self._driver = ChannelDriver(connection, channel_id, kind)
        self._blocking = BlockingEnd(self._driver, connection.reactor)
        self._protocol_end = ProtocolEnd(self._driver, self._blocking)
        self.facts = SessionFacts()
        self.data_received = self._blocking.data_received
        self._confirmed = confirmed
        self._open_callbacks: list[Callable[[Channel], None]] = []
        self._close_callbacks: list[Callable[[Channel], None]] = []

    # --- identity and state ------------------------------------------------------------------

    @property
    def channel_id(self) -> int:
        return self._driver.id

    def get_id(self) -> int:
        return self._driver.id

    @property
    def kind(self) -> str:
        """``"session"``, ``"direct-tcpip"`` or ``"forwarded-tcpip"``."""
        return self._driver.kind

    def get_username(self) -> str:
        return self.username

    @property
    def session_id(self) -> str:
        """The connection's id, as audit events name the session (tx/audit.py)."""
        return self._connection.connection_id

    @property
    def client_version(self) -> str:
        """The client's identification string ("SSH-2.0-OpenSSH_9.2p1 Debian-2")."""
        core = self._connection.core
        return "" if core is None or core.peer_version is None else core.peer_version

    @property
    def closed(self) -> bool:
        return self._driver.closed

    @property
    def eof_received(self) -> bool:
        return self._driver.eof_received

    @property
    def disconnecting(self) -> bool:
        """As Twisted's transports: protocols such as LineReceiver read it."""
        return self._driver.disconnecting

    def getpeername(self) -> tuple[str, int]:
        peer = self._connection.transport.getPeer()
        return (peer.host, peer.port)

    def getsockname(self) -> tuple[str, int]:
        host = self._connection.transport.getHost()
        return (host.host, host.port)

    def settimeout(self, timeout: float | None) -> None:
        self._blocking.timeout = timeout

    def gettimeout(self) -> float | None:
        return self._blocking.timeout

    def on_open(self, callback: Callable[[Channel], None]) -> None:
        """Call ``callback(channel)`` once a channel we opened is confirmed by the peer."""
        if self._confirmed:
            callback(self)
        else:
            self._open_callbacks.append(callback)

    def on_close(self, callback: Callable[[Channel], None]) -> None:
        """Call ``callback(channel)`` in the reactor once the channel is closed."""
        if self._driver.closed:
            callback(self)
        else:
            self._close_callbacks.append(callback)

    # --- sending (any thread) ---------------------------------------------------------------

    def send(self, data: bytes | str, timeout: float | None = None) -> int:
        return self._blocking.send(_as_bytes(data), 0, timeout)

    def sendall(self, data: bytes | str, timeout: float | None = None) -> None:
        self._blocking.send(_as_bytes(data), 0, timeout)

    def send_stderr(self, data: bytes | str, timeout: float | None = None) -> int:
        return self._blocking.send(_as_bytes(data), 1, timeout)

    def sendall_stderr(self, data: bytes | str, timeout: float | None = None) -> None:
        self._blocking.send(_as_bytes(data), 1, timeout)

    def send_exit_status(self, status: int) -> None:
        self._blocking.in_reactor(self._driver.exit_status, status)

    def send_exit_signal(
        self, signal_name: str, core_dumped: bool = False, message: str = ""
    ) -> None:
        """exit-signal (RFC 4254 6.10); ``signal_name`` without "SIG", e.g. "TERM"."""
        data = (
            wire.string(signal_name)
            + wire.boolean(core_dumped)
            + wire.string(message)
            + wire.string(b"")
        )
        self._blocking.in_reactor(self._driver.request_out, "exit-signal", data)

    def send_eof(self) -> None:
        self._blocking.in_reactor(self._driver.eof_out)

    def shutdown_write(self) -> None:
        self.send_eof()

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self.send_eof()

    def close(self) -> None:
        self._blocking.in_reactor(self._driver.close_out)

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- receiving (worker threads) -----------------------------------------------------------

    def recv(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` of data; b"" at EOF. Blocks a worker thread, never the reactor."""
        return self._blocking.recv(nbytes)

    def recv_stderr(self, nbytes: int) -> bytes:
        return self._blocking.recv(nbytes, 1)

    def recv_exactly(self, nbytes: int) -> bytes:
        parts: list[bytes] = []
        needed = nbytes
        while needed:
            chunk = self.recv(needed)
            if not chunk:
                raise EOFError(f"channel closed after {nbytes - needed} of {nbytes} bytes")
            parts.append(chunk)
            needed -= len(chunk)
        return b"".join(parts)

    def recv_ready(self) -> bool:
        return self._blocking.recv_ready()

    # --- ITransport / IConsumer / IPushProducer for an attached protocol ------------------------

    @property
    def busy(self) -> bool:
        """Whether this channel has work in progress, which a graceful stop lets finish.

        An attached protocol can say it has none with a false ``busy`` (an
        SFTP session with nothing open); any other open channel is busy.
        """
        return bool(getattr(self._protocol_end.protocol, "busy", True))

    def attach_protocol(self, protocol: Any) -> None:
        """Make this channel the transport of ``protocol`` and feed it the channel's data."""
        self.data_received = self._protocol_end.data_received
        self._protocol_end.attach(protocol, self)

    def write(self, data: bytes) -> None:
        self._driver.write_parts((data,), 0)

    def writeSequence(self, data: list[bytes]) -> None:
        self._driver.write_parts(data, 0)

    def loseConnection(self) -> None:
        self._driver.lose_connection()

    def getPeer(self) -> Any:
        return self._connection.transport.getPeer()

    def getHost(self) -> Any:
        return self._connection.transport.getHost()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._driver.register_producer(producer)

    def unregisterProducer(self) -> None:
        self._driver.unregister_producer()

    def pauseProducing(self) -> None:
        self._protocol_end.pause()

    def resumeProducing(self) -> None:
        self._protocol_end.resume()

    def stopProducing(self) -> None:
        self.close()

    # --- called by the connection (reactor thread) -----------------------------------------------

    def opened(self) -> None:
        """The peer confirmed a channel we opened."""
        self._confirmed = True
        callbacks, self._open_callbacks = self._open_callbacks, []
        for callback in callbacks:
            callback(self)

    def eof_received_from_peer(self) -> None:
        self._driver.eof_received = True
        self._blocking.wake()
        self._protocol_end.eof_received()

    def writable(self) -> None:
        """The peer's window opened; resume whoever waits for room."""
        self._driver.check_backlog()
        self._blocking.wake()

    def closed_by_connection(self, error: str | None = None) -> None:
        if self._driver.closed:
            return
        self._driver.closed = True
        self._blocking.wake()
        self._protocol_end.connection_lost(error)
        self._driver.stop_producer()
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback(self)

    def hold_output(self) -> None:
        """Hold what the hook of a starting request sends until its reply went out."""
        self._driver.hold_output()

    def release_output(self) -> None:
        self._driver.release_output()


def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    # bytes(12345) would be 12,345 NUL bytes, and bytes([1, 2]) a guess: only
    # what already is bytes goes out.
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"channel data must be bytes or str, not {type(data).__name__}")
    return bytes(data)
