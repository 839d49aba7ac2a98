"""The one worker-process supervisor: starts N processes on shared sockets, stops them with itself.

CPython runs a reactor on one core at a time. To use more, N worker processes
each run their own reactor and accept from the same listening sockets,
inherited from the supervisor as descriptors 3, 4, ... A new connection goes
to whichever worker is waiting for work: a worker busy with a slow login does
not accept, so the load follows the idle processes; and a worker holding more
live connections than a sibling leaves new ones to it for a moment, so the
shares stay even (:mod:`spindlex_tw.twistd.balance`). (``SO_REUSEPORT`` would
give each worker a queue of its own, filled by a hash of the peer's address
whether or not that worker is busy; see docs/performance.md.)

Workers are fresh interpreters, never forks (a fork would share the live
reactor's epoll descriptor). Standard input is a pipe the worker watches
(:mod:`spindlex_tw.twistd.parent_watch`), so a worker whose supervisor is gone,
even by SIGKILL, stops too. A worker that dies while the supervisor runs is
logged, not restarted: a crash loop should be seen, not hidden.

A worker's standard output is this process's, a pipe read for a ``READY``
line (``reports_ready``), or a pipe whose lines this process writes on
(``output``: into the one log file, see :mod:`spindlex_tw.twistd.output_lines`).

Two products use it: ``twistd spindlex --workers N``
(:mod:`spindlex_tw.twistd.siblings`, copies of the same twistd command) and
:class:`spindlex_tw.twistd.workers.WorkerPool` (bench/ and programs of users).
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.application import service
from twisted.internet import defer, protocol
from twisted.logger import Logger

from spindlex_tw.twistd.output_lines import OutputLines

log = Logger(namespace="spindlex_tw.workers")

#: The descriptor a worker finds the first shared listening socket on.
FIRST_FD = 3
_READY = b"READY "
#: Seconds a worker gets to exit on SIGTERM before SIGKILL, unless an owner says otherwise.
STOP_GRACE = 10.0


def listening_socket(interface: str, port: int, backlog: int = 128) -> socket.socket:
    """A non-blocking TCP socket listening on ``(interface, port)``, to hand to workers."""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((interface, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def adopt_listening(reactor: Any, factory: Any, fd: int) -> Any:
    """Accept connections for ``factory`` from the listening socket ``fd``; returns the port.

    The reactor keeps a duplicate, so ``fd`` is closed here.
    """
    try:
        with socket.socket(fileno=os.dup(fd)) as probe:  # the family, read from the socket
            family = probe.family
        return reactor.adoptStreamPort(fd, family, factory)
    finally:
        os.close(fd)


class Descriptor(Protocol):
    """What a worker inherits: a listening socket, or another open file (fileno())."""

    def fileno(self) -> int: ...


class _Worker(protocol.ProcessProtocol):
    """One worker process: its pid, its READY line (if it reports one) and its end."""

    transport: Any  # IProcessTransport; zope interfaces are opaque to mypy

    def __init__(
        self,
        supervisor: Supervisor,
        reports_ready: bool,
        output: Callable[[bytes], None] | None,
    ) -> None:
        self._supervisor = supervisor
        self._line = b""
        self._output = OutputLines(output) if output is not None else None
        self.pid: int | None = None
        self.ready: defer.Deferred[int | None] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.running = True
        if not reports_ready:
            self.ready.callback(None)

    def connectionMade(self) -> None:
        self.pid = self.transport.pid

    def outReceived(self, data: bytes) -> None:
        if self.ready.called:
            if self._output is not None:
                self._output.feed(data)
            return
        self._line += data
        if b"\n" in self._line:
            line = self._line.split(b"\n", 1)[0]
            if line.startswith(_READY):
                self.ready.callback(int(line[len(_READY) :]))
            else:
                self.ready.errback(RuntimeError(f"worker did not start: {line!r}"))

    def processEnded(self, reason: Any) -> None:
        # Called once the worker's pipes are closed too: all it wrote has been read.
        if self._output is not None:
            self._output.close()
        self.running = False
        if not self.ready.called:
            self.ready.errback(RuntimeError("worker exited before it was ready"))
        self.ended.callback(None)
        self._supervisor.worker_ended(self, reason)


class Supervisor(service.Service):
    """Runs ``count`` copies of ``argv`` handed ``sockets`` as descriptors 3, 4, ...

    With ``reports_ready`` a worker's standard output is read for a
    ``READY <port>`` line and :attr:`ready` fires once every worker wrote one
    (or fails if one cannot start); otherwise :attr:`ready` fires once they
    are spawned. The workers' standard output (after a READY line) goes to
    ``output`` in whole lines if it is given, else it is this process's own.
    """

    def __init__(
        self,
        count: int,
        reactor: Any,
        reports_ready: bool = False,
        output: Callable[[bytes], None] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("at least one worker is needed")
        self.count = count
        self.reactor = reactor
        self.reports_ready = reports_ready
        self.output = output
        self.ready: defer.Deferred[list[int | None]] = defer.Deferred()
        self._workers: list[_Worker] = []
        #: Seconds the workers get to exit on SIGTERM (a draining server needs its drain).
        self.stop_grace = STOP_GRACE

    def spawn(
        self,
        argv: Sequence[str],
        sockets: Sequence[Descriptor],
        env: dict[str, str],
        path: str | None = None,
    ) -> None:
        """Start the workers; called from the owner's ``startService``."""
        piped = self.reports_ready or self.output is not None
        fds: dict[int, Any] = {0: "w", 1: "r" if piped else 1, 2: 2}
        for number, sock in enumerate(sockets, FIRST_FD):
            fds[number] = sock.fileno()
        for _ in range(self.count):
            worker = _Worker(self, self.reports_ready, self.output)
            self.reactor.spawnProcess(
                worker, argv[0], list(argv), env=env, path=path, childFDs=fds
            )
            self._workers.append(worker)
            log.info("started worker {pid}", pid=worker.pid)
        started = defer.gatherResults([w.ready for w in self._workers], consumeErrors=True)
        started.addCallbacks(self.ready.callback, self._start_failed)

    def _start_failed(self, failure: Any) -> None:
        self.signal_all(signal.SIGTERM)
        self.ready.errback(failure)

    def worker_ended(self, worker: _Worker, reason: Any) -> None:
        if self.running:  # not asked to stop: say so, but do not restart it
            log.error(
                "worker {pid} ended: {reason}", pid=worker.pid, reason=reason.getErrorMessage()
            )

    def pids(self) -> list[int]:
        return [w.pid for w in self._workers if w.running and w.pid is not None]

    def signal_all(self, signum: int) -> None:
        """Send ``signum`` to every worker still running (SIGHUP: they reload)."""
        for worker in self._workers:
            if worker.running:
                worker.transport.signalProcess(signum)

    def stopService(self) -> defer.Deferred[list[None]]:
        service.Service.stopService(self)
        self.signal_all(signal.SIGTERM)
        killer = self.reactor.callLater(self.stop_grace, self.signal_all, signal.SIGKILL)
        ended = defer.gatherResults([w.ended for w in self._workers], consumeErrors=True)

        def done(result: list[None]) -> list[None]:
            if killer.active():
                killer.cancel()
            return result

        return ended.addCallback(done)
