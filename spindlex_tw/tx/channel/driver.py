"""The reactor side of one channel: its output, in order, and its state.

Everything that leaves on the channel (data, requests such as exit-status,
EOF, CLOSE) goes through :class:`ChannelDriver` in the reactor thread. While
a starting request (exec, shell, subsystem) awaits its reply, output is held
in its one queue and sent after the reply. It also paces the producer an
application registers with the channel against the peer's window.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from spindlex_tw.tx.channel.link import ChannelLink

# Above this much queued output, producers are paused and sendall() waits.
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024


class ChannelDriver:
    """Sends for one channel, on the reactor thread."""

    def __init__(self, link: ChannelLink, channel_id: int, kind: str) -> None:
        self.link = link
        self.id = channel_id
        self.kind = kind
        self.closed = False
        self.eof_received = False
        self.eof_sent = False
        self.exit_status_sent = False
        # As Twisted's transports: protocols such as LineReceiver read it.
        self.disconnecting = False
        self._producer: Any = None  # an IPushProducer
        self._producer_paused = False
        # Output made while a starting request awaits its reply (hold_output).
        self._held: list[Callable[[], None]] | None = None

    # --- output --------------------------------------------------------------------------

    def write_parts(self, parts: Sequence[bytes], stream: int) -> None:
        # Not joined here: the connection cuts packets across the pieces.
        if self._held is not None:
            self._held.append(lambda: self.write_parts(parts, stream))
            return
        if self.closed or self.eof_sent or not any(parts):
            return
        self.link.channel_send(self.id, parts, stream)
        self.check_backlog()

    def exit_status(self, status: int) -> None:
        if self.exit_status_sent:
            return
        self.exit_status_sent = True
        self.request_out("exit-status", struct.pack(">I", status & 0xFFFFFFFF))

    def request_out(self, name: str, data: bytes) -> None:
        if self._held is not None:
            self._held.append(lambda: self.request_out(name, data))
        elif not self.closed:
            self.link.channel_request_out(self.id, name, data)

    def eof_out(self) -> None:
        if self._held is not None:
            self._held.append(self.eof_out)
        elif not self.closed and not self.eof_sent:
            self.eof_sent = True
            self.link.channel_eof_out(self.id)

    def close_out(self) -> None:
        if self._held is not None:
            self._held.append(self.close_out)
        elif not self.closed:
            self.link.channel_close_out(self.id)

    def lose_connection(self) -> None:
        """ITransport.loseConnection: a session ends with exit status 0 unless one was sent."""
        self.disconnecting = True
        if not self.exit_status_sent and self.kind == "session":
            self.exit_status(0)
        self.close_out()

    # --- ordering around a request's reply ------------------------------------------------

    def hold_output(self) -> None:
        """Keep what the hook of a starting request sends until its reply has gone out.

        SpindleX hooks often write, send the exit status and close before
        returning True; sent at once, the CLOSE would precede the request's
        SUCCESS and clients such as Paramiko and AsyncSSH then fail the request.
        """
        if self._held is None:
            self._held = []

    def release_output(self) -> None:
        """Send, in order, what was held since hold_output()."""
        held, self._held = self._held, None
        for action in held or ():
            action()

    # --- the producer that feeds the channel ----------------------------------------------

    def register_producer(self, producer: Any) -> None:
        self._producer = producer
        self._producer_paused = False
        self.check_backlog()

    def unregister_producer(self) -> None:
        self._producer = None

    def stop_producer(self) -> None:
        """The channel closed: the producer has nowhere to write any more."""
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stopProducing()

    def check_backlog(self) -> None:
        producer = self._producer
        if producer is None:
            return
        if self.congested() and not self._producer_paused:
            self._producer_paused = True
            producer.pauseProducing()
        elif (
            self._producer_paused
            and not self.link.write_paused
            and self.link.channel_buffered(self.id) <= LOW_WATER
        ):
            self._producer_paused = False
            producer.resumeProducing()

    def congested(self) -> bool:
        """Too much queued for the peer's window, or the TCP send buffer is full."""
        return self.link.write_paused or self.link.channel_buffered(self.id) >= HIGH_WATER
