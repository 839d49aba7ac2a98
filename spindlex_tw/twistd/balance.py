"""Even shares of connections for the processes accepting from one listening socket.

Every process sharing a socket is woken for each new connection, and the
first to call ``accept`` wins it; Twisted's port then accepts everything else
waiting in the same turn. Under load the process that happens to be quickest
ends up with most connections (10 of 16 in the bench), and each of its
clients gets less of a core than the others'. Here each accepting process
keeps its count of live connections in a slot of a small shared-memory file,
and accepts (one per turn) only while no live sibling holds more than
:data:`SLACK` fewer. A process further ahead leaves the connection in the
backlog for its siblings and looks again after :data:`TICK` seconds, then
after twice as long each time (a sibling mostly takes it within a tick or
two; a stuck one should not cost many wake-ups); if none has taken it within
:data:`BOUND` seconds (a sibling busy with a long computation, or stopped), it
accepts anyway, so a stuck process never stalls a login for longer than that.
Within the slack every process accepts at once, as before. (With no slack,
short logins left one process ahead by one every other turn, waiting on a
sibling busy with a key exchange: 0.5 ms more server CPU per ``ssh true``
login, 10 at a time.)

The file is a memfd (or an unlinked temporary file) the first process
creates and its workers inherit; each process claims a slot (its pid and its
count) under an ``flock`` and frees it when it stops accepting. A slot whose
process died unannounced is skipped: its pid no longer exists.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import socket
import tempfile
from typing import Any

from twisted.internet import tcp

#: The environment variable naming the descriptor a worker inherits the file on.
BALANCE_FD_ENV = "SPINDLEX_TW_BALANCE_FD"
#: Seconds to the first look again while this process leaves a connection to its siblings.
TICK = 0.002
#: Seconds a connection waits for a less loaded sibling before this process takes it.
BOUND = 0.05
#: How many connections a process may hold beyond the least loaded sibling and still accept.
SLACK = 1

# A slot is two native 64-bit words: pid (0: free), live connections. Each is
# read and written whole, so a sibling sees a count as it was or as it is.
_SLOTS = 256  # one page: more processes than any machine has cores
_SIZE = 16 * _SLOTS


class Shares:
    """The shared file of slots, one per accepting process, and this process's slot."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, _SIZE)
        self._words = memoryview(self._map).cast("q")
        self._slot: int | None = None
        self._pid = os.getpid()
        self._ports = 0  # this process's ports on the shares (one per --listen)
        self.count = 0

    @classmethod
    def create(cls) -> Shares:
        """A new, empty file of slots (in the process that starts the workers)."""
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("spindlex-tw-balance")
        else:
            fd, path = tempfile.mkstemp(prefix="spindlex-tw-balance-")
            os.unlink(path)
        os.ftruncate(fd, _SIZE)
        return cls(fd)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        """Close this process's mapping and descriptor (the workers keep theirs)."""
        self._words.release()
        self._map.close()
        os.close(self.fd)

    def claim(self) -> None:
        """Take a free slot for this process, unless it has one (a port starts)."""
        self._ports += 1
        if self._slot is not None:
            return
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            for slot in range(_SLOTS):
                pid = self._words[2 * slot]
                if pid == 0 or not _alive(pid):
                    self._words[2 * slot + 1] = self.count
                    self._words[2 * slot] = self._pid
                    self._slot = slot
                    return
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        raise RuntimeError(f"more than {_SLOTS} processes accept from one socket")

    def release(self) -> None:
        """A port stops; with the last, free the slot (so siblings stop waiting for it)."""
        self._ports -= 1
        if self._ports == 0 and self._slot is not None:
            self._words[2 * self._slot] = 0
            self._slot = None

    def changed(self, delta: int) -> None:
        self.count += delta
        if self._slot is not None:
            self._words[2 * self._slot + 1] = self.count

    def within_share(self) -> bool:
        """Whether no live sibling holds more than :data:`SLACK` connections fewer."""
        pids, counts = self._words[0::2].tolist(), self._words[1::2].tolist()
        floor = self.count - SLACK
        for pid, count in zip(pids, counts, strict=True):
            if count < floor and pid != 0 and pid != self._pid and _alive(pid):
                return False
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class _CountedServer(tcp.Server):
    """A connection that counts itself in its port's shares while it lives."""

    server: BalancedPort

    def __init__(
        self, sock: Any, protocol: Any, client: Any, server: Any, sessionno: int, reactor: Any
    ) -> None:
        super().__init__(sock, protocol, client, server, sessionno, reactor)
        self.server.shares.changed(+1)

    def connectionLost(self, reason: Any) -> None:
        try:
            super().connectionLost(reason)
        finally:
            self.server.shares.changed(-1)


class BalancedPort(tcp.Port):
    """A port adopted from a shared listening socket that accepts only its share."""

    transport = _CountedServer
    shares: Shares

    _held_since: float | None = None

    def startListening(self) -> None:
        super().startListening()
        self.shares.claim()

    def doRead(self) -> None:
        if self.shares.within_share():
            self._accept_one()
            return
        self.stopReading()
        self._held_since = self.reactor.seconds()
        self.reactor.callLater(TICK, self._look_again, TICK)

    def _look_again(self, delay: float) -> None:
        if not self.connected or self._held_since is None:
            return  # stopped listening meanwhile
        waited = self.reactor.seconds() - self._held_since
        if self.shares.within_share():
            self._held_since = None
            self.startReading()  # the reactor calls doRead if a connection still waits
        elif waited >= BOUND:
            self._held_since = None
            self.startReading()
            self._accept_one()  # nobody took it: this process does (nothing if none waits)
        else:
            delay = min(2 * delay, BOUND - waited)
            self.reactor.callLater(delay, self._look_again, delay)

    def _accept_one(self) -> None:
        # One per turn: the counts are looked at again before the next.
        self.numberAccepts = 1
        super().doRead()

    def connectionLost(self, reason: Any) -> None:
        self._held_since = None
        self.shares.release()
        super().connectionLost(reason)


def adopt(reactor: Any, factory: Any, fd: int, shares: Shares) -> BalancedPort:
    """Accept for ``factory`` from the listening socket ``fd``, taking this process's share.

    Like ``reactor.adoptStreamPort`` (whose port class this subclasses); the
    port keeps a duplicate, so ``fd`` is closed here.
    """
    try:
        with socket.socket(fileno=os.dup(fd)) as probe:  # the family, read from the socket
            family = probe.family
        port: BalancedPort = BalancedPort._fromListeningDescriptor(reactor, fd, family, factory)
    finally:
        os.close(fd)
    port.shares = shares
    port.startListening()
    return port


def inherited() -> Shares | None:
    """In a worker, the shares its parent handed it; else None."""
    fd = os.environ.get(BALANCE_FD_ENV)
    return Shares(int(fd)) if fd else None
