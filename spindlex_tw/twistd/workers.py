"""Serving one address from several worker processes sharing one listening socket.

CPython runs a reactor on one core at a time. To use more cores, N worker
processes each run their own reactor and accept from the same listening
socket, inherited from the supervisor. A new connection goes to whichever
worker is waiting for work: a worker busy with a slow login does not accept,
so the load follows the idle processes. (``SO_REUSEPORT`` would give each
worker a queue of its own, filled by a hash of the peer's address whether
or not that worker is busy: 1.64x the single-process rate of CPU-bound logins
with two workers, against 1.8x for the shared socket; see docs/performance.md.)

:class:`WorkerPool` is the supervisor, an ``IService`` (for ``twistd`` or any
``MultiService``): it binds and listens (so port 0 works), never accepts
itself, starts the workers as fresh interpreters (a fork would share the live
reactor's epoll descriptor) with the socket as their descriptor 3, and stops
them with itself. Each worker builds its factory from a :class:`WorkerConfig`,
which is plain data because it crosses a process boundary: the application
class by import path, host key files, settings.

    pool = WorkerPool(WorkerConfig(app="myapp:Server", host_keys=("/etc/key",)), count=2)
    pool.setServiceParent(application)      # or pool.startService()
    pool.ready.addCallback(lambda port: print("listening on", port))

A worker is ``python -m spindlex_tw.twistd.workers CONFIG_JSON`` with the listening
socket as descriptor 3; it prints ``READY <port>`` once it accepts.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, protocol
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    textFileLogObserver,
)

from spindlex_tw.twistd.parent_watch import stop_when_parent_leaves
from spindlex_tw.tx.settings import ServerSettings

log = Logger(namespace="spindlex_tw.workers")

_READY = b"READY "
#: The descriptor a worker finds the shared listening socket on.
LISTENING_FD = 3
_STOP_GRACE = 10.0  # seconds a worker gets to exit on SIGTERM before SIGKILL


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker process builds and listens with its ``SSHServerFactory``.

    ``settings`` overrides :class:`ServerSettings` fields; the nested sections
    ``transport``, ``auth`` and ``channels`` take dicts of their own fields,
    e.g. ``{"max_connections": 500, "channels": {"window": 8388608}}``.
    """

    app: str  # "package.module:Class", an SSHServer subclass constructed without arguments
    host_keys: tuple[str, ...]
    interface: str = "127.0.0.1"
    port: int = 0
    backlog: int = 128
    settings: dict[str, Any] = field(default_factory=dict)
    log_level: str = "info"  # a twisted.logger LogLevel name; events below it are not written

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        raw = json.loads(text)
        raw["host_keys"] = tuple(raw["host_keys"])
        return cls(**raw)


def server_settings(overrides: dict[str, Any]) -> ServerSettings:
    """:class:`ServerSettings` with ``overrides`` applied (see :class:`WorkerConfig`)."""
    settings = ServerSettings()
    for name, value in overrides.items():
        current = getattr(settings, name)
        if isinstance(value, dict):
            value = replace(current, **value)
        setattr(settings, name, value)
    return settings


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


def stderr_observer(level: str) -> Any:
    """A log observer writing events at ``level`` and above to stderr as text.

    Formatting is most of the cost of an event: filtering before it keeps
    debug events (several per login) from costing anything but their creation.
    """
    predicate: Any = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    observer: Any = textFileLogObserver(sys.stderr)
    return FilteringLogObserver(observer, [predicate])


def build_factory(config: WorkerConfig, reactor: Any = None) -> Any:
    """The ``SSHServerFactory`` a worker serves: the app, its host keys and settings."""
    from spindlex_tw.crypto.pkey import PKey
    from spindlex_tw.tx.factory import SSHServerFactory

    module, _, name = config.app.partition(":")
    app = getattr(importlib.import_module(module), name)()
    keys = [PKey.from_private_key_file(path) for path in config.host_keys]
    return SSHServerFactory(app, keys, server_settings(config.settings), reactor=reactor)


class _WorkerProcess(protocol.ProcessProtocol):
    """One worker: reports its READY line and its exit to the pool."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._line = b""
        self.ready: defer.Deferred[int] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.running = True

    def outReceived(self, data: bytes) -> None:
        if self.ready.called:
            return
        self._line += data
        if b"\n" in self._line:
            line = self._line.split(b"\n", 1)[0]
            if line.startswith(_READY):
                self.ready.callback(int(line[len(_READY) :]))
            else:
                self.ready.errback(RuntimeError(f"worker did not start: {line!r}"))

    def processEnded(self, reason: Any) -> None:
        self.running = False
        if not self.ready.called:
            self.ready.errback(RuntimeError("worker exited before it was ready"))
        self.ended.callback(None)
        self._pool._worker_ended(self, reason)


class WorkerPool(Service):
    """Runs ``count`` worker processes serving ``config`` on one shared port.

    ``ready`` fires with the port once every worker listens (or fails if one
    cannot start). A worker that dies while the pool runs is logged, not
    restarted: a crash loop should be seen, not hidden.
    """

    def __init__(self, config: WorkerConfig, count: int, reactor: Any = None) -> None:
        if count < 1:
            raise ValueError("at least one worker is needed")
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.config = config
        self.count = count
        self.reactor = reactor
        self.ready: defer.Deferred[int] = defer.Deferred()
        self.port: int | None = None
        self._listening: socket.socket | None = None
        self._workers: list[tuple[_WorkerProcess, Any]] = []

    def startService(self) -> None:
        super().startService()
        self._listening = listening_socket(
            self.config.interface, self.config.port, self.config.backlog
        )
        self.port = self._listening.getsockname()[1]
        worker_config = replace(self.config, port=self.port).to_json()
        argv = [sys.executable, "-m", __name__, worker_config]
        fds = {0: "w", 1: "r", 2: 2, LISTENING_FD: self._listening.fileno()}
        for _ in range(self.count):
            worker = _WorkerProcess(self)
            transport = self.reactor.spawnProcess(
                worker, sys.executable, argv, env=dict(os.environ), childFDs=fds
            )
            self._workers.append((worker, transport))
        started = defer.gatherResults([w.ready for w, _ in self._workers], consumeErrors=True)
        started.addCallbacks(self._all_ready, self._start_failed)

    def _all_ready(self, ports: list[int]) -> None:
        assert self.port is not None
        log.info("{count} workers listening on port {port}", count=self.count, port=self.port)
        self.ready.callback(self.port)

    def _start_failed(self, failure: Any) -> None:
        self._signal_all(signal.SIGTERM)
        self.ready.errback(failure)

    def _worker_ended(self, worker: _WorkerProcess, reason: Any) -> None:
        if self.running:
            log.warn("worker exited: {reason}", reason=reason.getErrorMessage())

    def pids(self) -> list[int]:
        return [transport.pid for worker, transport in self._workers if worker.running]

    def _signal_all(self, signum: int) -> None:
        for worker, transport in self._workers:
            if worker.running:
                transport.signalProcess(signum)

    def stopService(self) -> defer.Deferred[list[None]]:
        super().stopService()
        if self._listening is not None:
            # The workers hold their own copies until they exit.
            self._listening.close()
            self._listening = None
        self._signal_all(signal.SIGTERM)
        killer = self.reactor.callLater(_STOP_GRACE, self._signal_all, signal.SIGKILL)
        ended = defer.gatherResults([w.ended for w, _ in self._workers])

        def done(result: list[None]) -> list[None]:
            if killer.active():
                killer.cancel()
            return result

        return ended.addCallback(done)


def main(argv: list[str]) -> None:
    """One worker process: accept from the inherited socket and serve until SIGTERM."""
    from twisted.internet import reactor as default_reactor
    from twisted.logger import globalLogBeginner

    reactor: Any = default_reactor
    config = WorkerConfig.from_json(argv[0])
    globalLogBeginner.beginLoggingTo([stderr_observer(config.log_level)], redirectStandardIO=False)
    factory = build_factory(config, reactor)
    listening = adopt_listening(reactor, factory, LISTENING_FD)
    sys.stdout.write(f"READY {listening.getHost().port}\n")
    sys.stdout.flush()
    reactor.callWhenRunning(stop_when_parent_leaves, reactor)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
