"""The public ``Channel``: one SSH channel, driven three ways.

1. From the reactor: non-blocking ``send`` / ``send_stderr`` / ``send_exit_status``
   / ``close``; output beyond the peer's window is queued in order.
2. As the transport of any Twisted ``IProtocol`` (``attach_protocol``): the
   channel is its ``ITransport`` and ``IPushProducer`` and honours the producer
   it registers, so back-pressure runs from the peer's window to the protocol.
3. From a worker thread, SpindleX style: ``recv`` / ``send`` / ``sendall`` /
   ``send_stderr`` / ``send_exit_status`` / ``close`` are safe from any thread
   and block only the calling thread while flow control requires.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet import interfaces
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import Logger
from twisted.python import threadable
from twisted.python.failure import Failure
from zope.interface import implementer

from spindlex_tw.core import wire

if TYPE_CHECKING:
    from spindlex_tw.tx.protocol import SSHServerProtocol

log = Logger(namespace="spindlex_tw.channel")

# Above this much queued output, producers are paused and sendall() waits.
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024


class ChannelClosedError(EOFError):
    """The channel was closed; nothing more can be sent on it."""


@implementer(interfaces.ITransport, interfaces.IPushProducer, interfaces.IConsumer)
class Channel:
    """One open SSH channel of an authenticated connection."""

    def __init__(self, connection: SSHServerProtocol, channel_id: int, kind: str) -> None:
        self._connection = connection
        self._id = channel_id
        self.kind = kind
        self.username: str = connection.username or ""
        self._reactor = connection.reactor
        self._lock = threading.Condition()
        self._stdin: deque[bytes] = deque()
        self._stderr_in: deque[bytes] = deque()
        self._protocol: Any = None  # an IProtocol
        self._held: deque[tuple[bytes, int]] = deque()  # data held while the protocol is paused
        self._paused = False
        self._producer: Any = None  # an IPushProducer
        self._producer_paused = False
        self._timeout: float | None = None
        self._eof_received = False
        self._eof_sent = False
        self._closed = False
        self._exit_status_sent = False
        self._close_callbacks: list[Callable[[Channel], None]] = []
        # Session facts, filled by the session request handlers.
        self.term: str | None = None
        self.term_size: tuple[int, int, int, int] = (80, 24, 0, 0)
        self.term_modes: bytes = b""
        self.environment: dict[str, str] = {}
        self.command: bytes | None = None
        self.subsystem: str | None = None
        self.signals: list[str] = []
        self.started = False  # exec, shell or subsystem granted (one per channel)
        self._open_callbacks: list[Callable[[Channel], None]] = []
        self._confirmed = kind != "forwarded-tcpip"
        # Output made while an exec/shell/subsystem request awaits its reply.
        self._held_output: list[Callable[[], None]] | None = None
        # As Twisted's transports: protocols such as LineReceiver read it.
        self.disconnecting = False

    # --- identity ----------------------------------------------------------------------

    @property
    def channel_id(self) -> int:
        return self._id

    def get_id(self) -> int:
        return self._id

    def get_username(self) -> str:
        return self.username

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def eof_received(self) -> bool:
        return self._eof_received

    def getpeername(self) -> tuple[str, int]:
        peer = self._connection.transport.getPeer()
        return (peer.host, peer.port)

    def getsockname(self) -> tuple[str, int]:
        host = self._connection.transport.getHost()
        return (host.host, host.port)

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def on_open(self, callback: Callable[[Channel], None]) -> None:
        """Call ``callback(channel)`` once a channel we opened is confirmed by the peer."""
        if self._confirmed:
            callback(self)
        else:
            self._open_callbacks.append(callback)

    def opened(self) -> None:
        self._confirmed = True
        callbacks, self._open_callbacks = self._open_callbacks, []
        for callback in callbacks:
            callback(self)

    def on_close(self, callback: Callable[[Channel], None]) -> None:
        """Call ``callback(channel)`` in the reactor once the channel is closed."""
        if self._closed:
            callback(self)
        else:
            self._close_callbacks.append(callback)

    # --- sending (any thread) ---------------------------------------------------------------

    def send(self, data: bytes | str, timeout: float | None = None) -> int:
        return self._send(_as_bytes(data), 0, timeout)

    def sendall(self, data: bytes | str, timeout: float | None = None) -> None:
        self._send(_as_bytes(data), 0, timeout)

    def send_stderr(self, data: bytes | str, timeout: float | None = None) -> int:
        return self._send(_as_bytes(data), 1, timeout)

    def sendall_stderr(self, data: bytes | str, timeout: float | None = None) -> None:
        self._send(_as_bytes(data), 1, timeout)

    def send_exit_status(self, status: int) -> None:
        self._in_reactor(self._exit_status, status)

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
        self._in_reactor(self._request_out, "exit-signal", data)

    def send_eof(self) -> None:
        self._in_reactor(self._eof_out)

    def shutdown_write(self) -> None:
        self.send_eof()

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self.send_eof()

    def close(self) -> None:
        self._in_reactor(self._close_out)

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, data: bytes, stream: int, timeout: float | None) -> int:
        if threadable.isInIOThread():
            self._write_out(data, stream)
            return len(data)
        limit = timeout if timeout is not None else self._timeout
        with self._lock:
            if not self._lock.wait_for(
                lambda: self._closed or not self._congested(),
                limit,
            ):
                raise TimeoutError("channel send timed out")
            if self._closed:
                raise ChannelClosedError("channel is closed")
        self._in_reactor(self._write_out, data, stream)
        return len(data)

    def _in_reactor(self, func: Callable[..., Any], *args: Any) -> None:
        if threadable.isInIOThread():
            func(*args)
        else:
            self._reactor.callFromThread(func, *args)

    # --- receiving (worker threads) -----------------------------------------------------------

    def recv(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` of data; b"" at EOF. Blocks a worker thread, never the reactor."""
        return self._recv(self._stdin, nbytes)

    def recv_stderr(self, nbytes: int) -> bytes:
        return self._recv(self._stderr_in, nbytes)

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
        with self._lock:
            return bool(self._stdin)

    def _recv(self, queue: deque[bytes], nbytes: int) -> bytes:
        with self._lock:
            if not queue and not (self._eof_received or self._closed):
                if threadable.isInIOThread():
                    raise BlockingIOError("recv() would block the reactor; call it from a thread")
                if not self._lock.wait_for(
                    lambda: bool(queue) or self._eof_received or self._closed, self._timeout
                ):
                    raise TimeoutError("channel recv timed out")
            if not queue:
                return b""
            chunk = queue.popleft()
            if len(chunk) > nbytes:
                queue.appendleft(chunk[nbytes:])
                chunk = chunk[:nbytes]
        self._in_reactor(self._connection.channel_consumed, self._id, len(chunk))
        return chunk

    # --- ITransport / IConsumer for an attached protocol ----------------------------------------

    def attach_protocol(self, protocol: Any) -> None:
        """Make this channel the transport of ``protocol`` and feed it the channel's data."""
        self._protocol = protocol
        protocol.makeConnection(self)
        with self._lock:
            pending = [(chunk, 0) for chunk in self._stdin]
            self._stdin.clear()
        self._held.extend(pending)
        self._deliver_held()

    def write(self, data: bytes) -> None:
        self._write_out(data, 0)

    def writeSequence(self, data: list[bytes]) -> None:
        # Not joined here: the connection cuts packets across the pieces.
        self._write_parts(data, 0)

    def loseConnection(self) -> None:
        self.disconnecting = True
        if not self._exit_status_sent and self.kind == "session":
            self._exit_status(0)
        self._close_out()

    def getPeer(self) -> Any:
        return self._connection.transport.getPeer()

    def getHost(self) -> Any:
        return self._connection.transport.getHost()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer
        self._producer_paused = False
        self._check_backlog()

    def unregisterProducer(self) -> None:
        self._producer = None

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._deliver_held()

    def stopProducing(self) -> None:
        self.close()

    # --- called by the connection (reactor thread) -----------------------------------------------

    def data_received(self, data: bytes, stream: int) -> None:
        if self._protocol is not None and stream == 0:
            self._held.append((data, stream))
            self._deliver_held()
            return
        with self._lock:
            (self._stdin if stream == 0 else self._stderr_in).append(data)
            self._lock.notify_all()
        if stream != 0:
            self._connection.channel_consumed(self._id, len(data))

    def eof_received_from_peer(self) -> None:
        with self._lock:
            self._eof_received = True
            self._lock.notify_all()
        if self._protocol is not None and not self._held:
            self._protocol_eof()

    def writable(self) -> None:
        """The peer's window opened; resume whoever waits for room."""
        self._check_backlog()
        with self._lock:
            self._lock.notify_all()

    def closed_by_connection(self, error: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._lock.notify_all()
        if self._protocol is not None:
            protocol, self._protocol = self._protocol, None
            # Data held while the protocol was paused arrived before the CLOSE:
            # a peer may send its last data, EOF and CLOSE at once. Hand it over.
            held, self._held = self._held, deque()
            for data, _ in held:
                protocol.dataReceived(data)
            reason = ConnectionLost(error) if error else ConnectionDone()
            protocol.connectionLost(Failure(reason))
        if self._producer is not None:
            self._producer.stopProducing()
            self._producer = None
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback(self)

    # --- internals -------------------------------------------------------------------------------

    def _deliver_held(self) -> None:
        protocol = self._protocol
        while self._held and not self._paused and protocol is not None and not self._closed:
            data, _ = self._held.popleft()
            if not self._guarded(protocol.dataReceived, data):
                return
            self._connection.channel_consumed(self._id, len(data))
            protocol = self._protocol
        if not self._held and self._eof_received and self._protocol is not None:
            self._protocol_eof()

    def _protocol_eof(self) -> None:
        protocol = self._protocol
        if protocol is None:
            return
        if interfaces.IHalfCloseableProtocol.providedBy(protocol):
            self._guarded(protocol.readConnectionLost)
        else:
            self.loseConnection()

    def _guarded(self, callback: Callable[..., object], *args: object) -> bool:
        """Run an attached protocol's callback; if it raises, only this channel pays.

        The error is logged with its traceback and the channel closed; the
        connection and its other channels carry on. Returns False on error.
        """
        try:
            callback(*args)
        except Exception:
            log.failure("protocol on channel {id} raised; closing the channel", id=self._id)
            self._close_out()
            return False
        return True

    def _write_out(self, data: bytes, stream: int) -> None:
        self._write_parts((data,), stream)

    def _write_parts(self, parts: Sequence[bytes], stream: int) -> None:
        if self._held_output is not None:
            self._held_output.append(lambda: self._write_parts(parts, stream))
            return
        if self._closed or self._eof_sent or not any(parts):
            return
        self._connection.channel_send(self._id, parts, stream)
        self._check_backlog()

    def _check_backlog(self) -> None:
        producer = self._producer
        if producer is None:
            return
        if self._congested() and not self._producer_paused:
            self._producer_paused = True
            producer.pauseProducing()
        elif (
            self._producer_paused
            and not self._connection.write_paused
            and self._connection.channel_buffered(self._id) <= LOW_WATER
        ):
            self._producer_paused = False
            producer.resumeProducing()

    def _congested(self) -> bool:
        """Too much queued for the peer's window, or the TCP send buffer is full."""
        return (
            self._connection.write_paused
            or self._connection.channel_buffered(self._id) >= HIGH_WATER
        )

    def _exit_status(self, status: int) -> None:
        if self._exit_status_sent:
            return
        self._exit_status_sent = True
        self._request_out("exit-status", struct.pack(">I", status & 0xFFFFFFFF))

    def _request_out(self, name: str, data: bytes) -> None:
        if self._held_output is not None:
            self._held_output.append(lambda: self._request_out(name, data))
        elif not self._closed:
            self._connection.channel_request_out(self._id, name, data)

    def _eof_out(self) -> None:
        if self._held_output is not None:
            self._held_output.append(self._eof_out)
        elif not self._closed and not self._eof_sent:
            self._eof_sent = True
            self._connection.channel_eof_out(self._id)

    def _close_out(self) -> None:
        if self._held_output is not None:
            self._held_output.append(self._close_out)
        elif not self._closed:
            self._connection.channel_close_out(self._id)

    # --- ordering around a request's reply ----------------------------------------------------

    def hold_output(self) -> None:
        """Keep what the hook of a starting request sends until its reply has gone out.

        SpindleX hooks often write, send the exit status and close before
        returning True; sent at once, the CLOSE would precede the request's
        SUCCESS and clients such as Paramiko and AsyncSSH then fail the request.
        """
        if self._held_output is None:
            self._held_output = []

    def release_output(self) -> None:
        """Send, in order, what was held since hold_output()."""
        held, self._held_output = self._held_output, None
        for action in held or ():
            action()


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)
