"""How ``twistd spindlex`` stops and reloads: its signals and the graceful drain.

- **SIGHUP** reloads the files the options name (:mod:`.reload`); with
  ``--workers`` the twistd process passes it on, so every process reloads.
- **SIGTERM** (or SIGINT) stops the reactor, and so the service (twistd runs
  ``stopService`` as a *before shutdown* trigger and waits for its Deferred):
  the listeners close at once, connections refuse new channels, and those
  with a channel open get up to ``--drain-timeout`` seconds to finish it.
  Then every client still there gets a DISCONNECT and its SFTP writes in
  flight reach the disk (:data:`CLOSE_GRACE`), and the reactor stops.
- A **second** SIGTERM or SIGINT ends all that at once: connections are cut.

Twisted's own SIGTERM/SIGINT handlers would make twistd re-raise the signal
after stopping, so the exit status would say "killed"; a drained stop is a
normal exit, so these handlers replace them and twistd exits with status 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from spindlex_tw.protocol import constants as c
from spindlex_tw.server.manager import ManagedFactory
from spindlex_tw.twistd.supervisor import Supervisor

log = Logger(namespace="spindlex_tw.service")

#: Seconds running transfers and commands get to finish after SIGTERM (--drain-timeout).
DEFAULT_DRAIN_TIMEOUT = 30.0
#: Seconds, after the drain, for SFTP writes to reach the disk and clients to leave.
CLOSE_GRACE = 10.0

#: The options of ``twistd spindlex`` about stopping.
OPTIONS = [
    [
        "drain-timeout",
        None,
        str(int(DEFAULT_DRAIN_TIMEOUT)),
        "Seconds that running transfers and commands get to finish after SIGTERM "
        "(a second SIGTERM stops at once).",
    ],
]


def drain_timeout(text: str) -> float:
    """``--drain-timeout``'s value; :class:`usage.UsageError` (one line) if it is not one."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise usage.UsageError(f"--drain-timeout expects seconds (0 or more), got {text!r}")
    return value


class Lifecycle:
    """What a service does on SIGHUP, SIGTERM and a second SIGTERM (see the module).

    ``reload`` reads the configuration files again; ``workers``, once the
    service started copies of itself (``--workers``), get each signal too.
    """

    def __init__(
        self,
        factory: ManagedFactory,
        reactor: Any,
        timeout: float,
        reload: Callable[[], object],
        sftp_done: Callable[[], Any],
    ) -> None:
        self.factory = factory
        self.reactor = reactor
        self._reload = reload
        self._sftp_done = sftp_done
        self.drain = Drain(factory, reactor, timeout)
        self.signals = Signals(reactor, self.reload, self.stop_now, timeout)
        self.workers: Supervisor | None = None

    def adopt_workers(self, workers: Supervisor) -> None:
        # They drain as this process does, then get the time to close.
        workers.stop_grace = self.drain.timeout + 2 * CLOSE_GRACE
        self.workers = workers

    def reload(self) -> None:
        """SIGHUP: read the configuration files again (the workers do the same)."""
        if self.workers is not None:
            self.workers.signal_all(signal.SIGHUP)
        self._reload()

    def stop_now(self) -> None:
        """A second SIGTERM: cut every connection (the workers' too) and stop."""
        if self.workers is not None:
            self.workers.signal_all(signal.SIGTERM)
        self.drain.stop_now()

    def stop(self, stopped: defer.Deferred[Any]) -> defer.Deferred[None]:
        """The service stops: ``stopped`` fires once the listeners are closed."""
        drained = self.drain.run()
        drained.addCallback(lambda _: close_remaining(self.factory, self.reactor, self._sftp_done))
        d = defer.gatherResults([stopped, drained], consumeErrors=True)
        return d.addCallback(lambda _: None)


class Signals:
    """SIGTERM/SIGINT: drain then stop, a second one stops at once; SIGHUP: ``reload``."""

    def __init__(
        self,
        reactor: Any,
        reload: Callable[[], object],
        stop_now: Callable[[], None],
        drain_timeout: float,
    ) -> None:
        self.reactor = reactor
        self.drain_timeout = drain_timeout
        self.reload = reload
        self.stop_now = stop_now
        self.stopping = False

    def install(self) -> None:
        """Take over the reactor's handlers; call once the reactor runs (it installs its own)."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only: an embedding program keeps its own
        for number, name in ((signal.SIGTERM, "sigTerm"), (signal.SIGINT, "sigInt")):
            if signal.getsignal(number) == getattr(self.reactor, name, None):
                signal.signal(number, self._terminate)
        signal.signal(signal.SIGHUP, self._hang_up)
        log.info(
            "SIGHUP reloads the configuration files; SIGTERM stops, letting transfers and "
            "commands finish for up to {timeout} s",
            timeout=self.drain_timeout,
            event="signals",
        )

    def _terminate(self, number: int, frame: Any) -> None:
        name = signal.Signals(number).name
        if self.stopping:
            log.info("received {signal} again: stopping now", signal=name, event="stop_now")
            self.reactor.callFromThread(self.stop_now)
            return
        self.stopping = True
        log.info("received {signal}, shutting down", signal=name, event="stopping")
        self.reactor.callFromThread(self._stop_reactor)

    def _stop_reactor(self) -> None:
        if self.reactor.running:
            self.reactor.stop()

    def _hang_up(self, number: int, frame: Any) -> None:
        self.reactor.callFromThread(self.reload)


class Drain:
    """The connections of ``factory`` finishing their work before the service stops.

    A connection is left alone while a channel of it is busy (a command, a
    forward, an SFTP session with a file open or a request running); one with
    nothing running is closed, at the start and as soon as its work ends
    (checked every :data:`CHECK_INTERVAL` seconds), so an idle ``sftp``
    prompt does not hold the stop for the whole timeout.
    """

    #: Seconds between looks for connections whose work has ended.
    CHECK_INTERVAL = 0.2

    def __init__(self, factory: ManagedFactory, reactor: Any, timeout: float) -> None:
        self.factory = factory
        self.reactor = reactor
        self.timeout = timeout
        self._done: defer.Deferred[None] | None = None
        self._timer: Any = None
        self._checks: task.LoopingCall | None = None
        self.cut = False

    def run(self) -> defer.Deferred[None]:
        """Refuse new channels and close idle connections; fires once the rest have left,
        or at the timeout."""
        self.factory.draining = True
        done: defer.Deferred[None] = defer.Deferred()
        self._done = done
        busy = self._close_idle()
        if self.cut or busy == 0:
            self._end()
            return done
        log.info(
            "draining {count} connections for up to {timeout} s",
            count=busy,
            timeout=self.timeout,
            event="drain_started",
        )
        self._timer = self.reactor.callLater(self.timeout, self._time_up)
        self._checks = task.LoopingCall(self._close_idle)
        self._checks.clock = self.reactor
        self._checks.start(self.CHECK_INTERVAL, now=False)
        self.factory.when_idle().addCallback(self._finished)
        return done

    def _close_idle(self) -> int:
        """DISCONNECT every connection with nothing running; returns how many are busy."""
        busy = 0
        for conn in list(self.factory.connections.values()):
            if conn.busy:
                busy += 1
            else:  # a second DISCONNECT of the same connection does nothing
                conn.disconnect(c.SSH_DISCONNECT_BY_APPLICATION, "Server shutting down")
        return busy

    def _finished(self, _: object) -> None:
        if self._done is not None and not self._done.called:
            log.info("drained: every connection has finished", event="drain_finished")
            self._end()

    def _time_up(self) -> None:
        if self._done is not None and not self._done.called:
            log.warn(
                "drain timeout: closing {count} connections still working",
                count=len(self.factory.connections),
                event="drain_timeout",
            )
            self._end()

    def _end(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._checks is not None and self._checks.running:
            self._checks.stop()
        if self._done is not None and not self._done.called:
            self._done.callback(None)

    def stop_now(self) -> None:
        """A second SIGTERM: end the drain and cut every connection."""
        self.cut = True
        self._end()
        abort_all(self.factory)


def close_remaining(factory: ManagedFactory, reactor: Any, sftp_done: Any) -> Any:
    """DISCONNECT every client; wait (at most :data:`CLOSE_GRACE`) for SFTP writes and exits."""
    factory.close_all("Server shutting down")
    d = defer.gatherResults([sftp_done(), factory.when_idle()], consumeErrors=True)
    d.addTimeout(CLOSE_GRACE, reactor)

    def give_up(failure: Failure) -> None:
        log.warn(
            "stopping with {count} connections still open: {error}",
            count=len(factory.connections),
            error=failure.getErrorMessage(),
        )
        abort_all(factory)

    return d.addErrback(give_up)


def abort_all(factory: ManagedFactory) -> None:
    for conn in list(factory.connections.values()):
        if conn.transport is not None:
            conn.transport.abortConnection()
