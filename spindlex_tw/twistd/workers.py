"""Serving one address from worker processes built from a plain-data :class:`WorkerConfig`.

:class:`WorkerPool` is an ``IService`` (for ``twistd`` or any ``MultiService``)
on the one supervisor, :mod:`spindlex_tw.twistd.supervisor`: it binds and
listens (so port 0 works), never accepts itself, and starts the workers with
the socket as their descriptor 3. Each worker builds its factory from a :class:`WorkerConfig`,
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
import socket
import sys
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger, LogLevel, textFileLogObserver

from spindlex_tw.twistd import balance
from spindlex_tw.twistd.parent_watch import stop_when_parent_leaves
from spindlex_tw.twistd.supervisor import (
    FIRST_FD,
    Supervisor,
    listening_socket,
)
from spindlex_tw.twistd.text_log import TextLogFilter
from spindlex_tw.tx.settings import ServerSettings

log = Logger(namespace="spindlex_tw.workers")


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


def stderr_observer(level: str) -> Any:
    """A log observer writing events at ``level`` and above to stderr as text.

    Formatting is most of the cost of an event: filtering before it keeps
    debug events (several per login) from costing anything but their creation.
    """
    # The text log's own filter, SFTP operations included: a worker's log shows
    # every event at its level, as a WorkerConfig asks.
    return TextLogFilter(textFileLogObserver(sys.stderr), LogLevel.levelWithName(level), True)


def build_factory(config: WorkerConfig, reactor: Any = None) -> Any:
    """The ``SSHServerFactory`` a worker serves: the app, its host keys and settings."""
    from spindlex_tw.crypto.pkey import PKey
    from spindlex_tw.tx.factory import SSHServerFactory

    module, _, name = config.app.partition(":")
    app = getattr(importlib.import_module(module), name)()
    keys = [PKey.from_private_key_file(path) for path in config.host_keys]
    return SSHServerFactory(app, keys, server_settings(config.settings), reactor=reactor)


class WorkerPool(Supervisor):
    """Runs ``count`` worker processes serving ``config`` on one shared port.

    ``ready`` fires with the port once every worker listens (or fails if one
    cannot start).
    """

    def __init__(self, config: WorkerConfig, count: int, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        super().__init__(count, reactor, reports_ready=True)
        self.config = config
        self.port: int | None = None
        self._listening: socket.socket | None = None
        self._shares: balance.Shares | None = None
        self.ready.addCallback(self._all_ready)

    def startService(self) -> None:
        super().startService()
        self._listening = listening_socket(
            self.config.interface, self.config.port, self.config.backlog
        )
        self.port = self._listening.getsockname()[1]
        worker_config = replace(self.config, port=self.port).to_json()
        argv = [sys.executable, "-m", __name__, worker_config]
        # The counts that keep the workers' shares of connections even: descriptor 4.
        self._shares = balance.Shares.create()
        env = dict(os.environ, **{balance.BALANCE_FD_ENV: str(FIRST_FD + 1)})
        self.spawn(argv, [self._listening, self._shares], env)

    def _all_ready(self, ports: list[int | None]) -> int:
        assert self.port is not None
        log.info("{count} workers listening on port {port}", count=self.count, port=self.port)
        return self.port

    def stopService(self) -> defer.Deferred[list[None]]:
        if self._listening is not None:
            # The workers hold their own copies until they exit.
            self._listening.close()
            self._listening = None
        if self._shares is not None:
            self._shares.close()
            self._shares = None
        return super().stopService()


def main(argv: list[str]) -> None:
    """One worker process: accept from the inherited socket and serve until SIGTERM."""
    from twisted.internet import reactor as default_reactor
    from twisted.logger import globalLogBeginner

    reactor: Any = default_reactor
    config = WorkerConfig.from_json(argv[0])
    globalLogBeginner.beginLoggingTo([stderr_observer(config.log_level)], redirectStandardIO=False)
    factory = build_factory(config, reactor)
    # Run by hand (not by a WorkerPool), a worker has no siblings to share with.
    shares = balance.inherited() or balance.Shares.create()
    listening = balance.adopt(reactor, factory, FIRST_FD, shares)
    sys.stdout.write(f"READY {listening.getHost().port}\n")
    sys.stdout.flush()
    reactor.callWhenRunning(stop_when_parent_leaves, reactor)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
