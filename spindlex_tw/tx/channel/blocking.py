"""The thread-safe, blocking face of a channel, for SpindleX-style worker threads.

``recv`` waits for data the reactor queued here; ``send`` waits while the
peer's window (or the TCP send buffer) is full, then hands the data to the
reactor thread. Only the calling worker thread blocks; on the reactor thread
sends go out at once and ``recv`` refuses to block.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.python import threadable

from spindlex_tw.tx.channel.driver import ChannelDriver


class ChannelClosedError(EOFError):
    """The channel was closed; nothing more can be sent on it."""


class BlockingEnd:
    """Input queues and waits of one channel; every method is safe from any thread."""

    def __init__(self, driver: ChannelDriver, reactor: Any) -> None:
        self._driver = driver
        self._reactor = reactor
        self._lock = threading.Condition()
        self._stdin: deque[bytes] = deque()
        self._stderr: deque[bytes] = deque()
        self.timeout: float | None = None

    def in_reactor(self, func: Callable[..., Any], *args: Any) -> None:
        if threadable.isInIOThread():
            func(*args)
        else:
            self._reactor.callFromThread(func, *args)

    # --- sending -------------------------------------------------------------------------------

    def send(self, data: bytes, stream: int, timeout: float | None) -> int:
        driver = self._driver
        if threadable.isInIOThread():
            driver.write_parts((data,), stream)
            return len(data)
        limit = timeout if timeout is not None else self.timeout
        with self._lock:
            if not self._lock.wait_for(lambda: driver.closed or not driver.congested(), limit):
                raise TimeoutError("channel send timed out")
            if driver.closed:
                raise ChannelClosedError("channel is closed")
        self.in_reactor(driver.write_parts, (data,), stream)
        return len(data)

    # --- receiving -----------------------------------------------------------------------------

    def recv(self, nbytes: int, stream: int = 0) -> bytes:
        """Up to ``nbytes`` of data; b"" at EOF. Blocks a worker thread, never the reactor."""
        queue = self._stderr if stream else self._stdin
        driver = self._driver
        with self._lock:
            if not queue and not (driver.eof_received or driver.closed):
                if threadable.isInIOThread():
                    raise BlockingIOError("recv() would block the reactor; call it from a thread")
                if not self._lock.wait_for(
                    lambda: bool(queue) or driver.eof_received or driver.closed, self.timeout
                ):
                    raise TimeoutError("channel recv timed out")
            if not queue:
                return b""
            chunk = queue.popleft()
            if len(chunk) > nbytes:
                queue.appendleft(chunk[nbytes:])
                chunk = chunk[:nbytes]
        self.in_reactor(driver.link.channel_consumed, driver.id, len(chunk))
        return chunk

    def recv_ready(self) -> bool:
        with self._lock:
            return bool(self._stdin)

    # --- from the reactor ------------------------------------------------------------------------

    def data_received(self, data: bytes, stream: int) -> None:
        """Queue data for recv(); stderr is counted as read at once (nobody must read it)."""
        with self._lock:
            (self._stderr if stream else self._stdin).append(data)
            self._lock.notify_all()
        if stream:
            self._driver.link.channel_consumed(self._driver.id, len(data))

    def take_stdin(self) -> list[bytes]:
        """Everything recv() has not read yet, for a protocol attached now."""
        with self._lock:
            pending = list(self._stdin)
            self._stdin.clear()
        return pending

    def wake(self) -> None:
        """EOF, close or room in the window: let waiting threads look again."""
        with self._lock:
            self._lock.notify_all()
