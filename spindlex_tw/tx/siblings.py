"""``twistd spindlex --workers N``: N processes serving the same TCP ports.

One CPython reactor uses one core. With ``--workers N`` the twistd process
listens on each TCP port with ``SO_REUSEPORT`` and starts N-1 copies of
itself with the same options, which do the same; the kernel spreads new
connections over the processes. Each worker is a whole server: its own
reactor, connections and limits (so ``--max-connections`` is per worker).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from typing import Any

from twisted.application import service
from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.python import usage

from spindlex_tw.tx.workers import listen_reuseport

log = Logger(namespace="spindlex_tw.workers")

#: Set in the environment of the copies: they listen, but start no copies.
WORKER_ENV = "SPINDLEX_TW_WORKER"
#: The embedded default's one-time password, the same in every worker.
PASSWORD_ENV = "SPINDLEX_TW_ONE_TIME_PASSWORD"

_TCP = re.compile(r"^tcp:(?:port=)?(?P<port>\d+)(?::interface=(?P<interface>[^:\\]+))?$")


def is_worker() -> bool:
    return os.environ.get(WORKER_ENV) == "1"


def tcp_address(description: str) -> tuple[str, int]:
    """``(interface, port)`` of a ``tcp:PORT[:interface=ADDR]`` endpoint with a fixed port."""
    match = _TCP.match(description)
    if match is None or int(match["port"]) == 0:
        raise usage.UsageError(
            f"--workers needs tcp:PORT[:interface=ADDR] endpoints with a fixed port, "
            f"not --listen {description!r}"
        )
    return match["interface"] or "0.0.0.0", int(match["port"])


class ReusePortListener(service.Service):
    """Listens on one TCP address that sibling processes share."""

    def __init__(self, interface: str, port: int, factory: Any, reactor: Any) -> None:
        self.interface = interface
        self.port_number = port
        self.factory = factory
        self.reactor = reactor
        self.port: Any = None

    def privilegedStartService(self) -> None:
        service.Service.privilegedStartService(self)
        self.port = listen_reuseport(
            self.reactor, self.factory, self.interface, self.port_number, backlog=128
        )
        log.info(
            "listening on {address} (worker {pid})",
            address=f"{self.interface}:{self.port_number}",
            pid=os.getpid(),
            host=self.interface,
            port=self.port_number,
            event="listening",
        )

    def stopService(self) -> Any:
        service.Service.stopService(self)
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else None


class _Sibling(protocol.ProcessProtocol):
    transport: Any  # IProcessTransport; zope interfaces are opaque to mypy

    def __init__(self, owner: SiblingProcesses) -> None:
        self.owner = owner
        self.pid: int | None = None
        self.ended: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.pid = self.transport.pid

    def processEnded(self, reason: Any) -> None:
        if self.owner.running:  # not asked to stop: say so, but do not restart it
            log.error("worker {pid} ended: {reason}", pid=self.pid, reason=reason.getErrorMessage())
        self.ended.callback(None)


class SiblingProcesses(service.Service):
    """Starts ``count`` copies of this ``twistd spindlex`` and stops them with itself."""

    def __init__(
        self, count: int, arguments: list[str], password: str | None, reactor: Any
    ) -> None:
        self.count = count
        self.arguments = arguments
        self.password = password
        self.reactor = reactor
        self._children: list[_Sibling] = []

    def startService(self) -> None:
        service.Service.startService(self)
        env = dict(os.environ)
        env[WORKER_ENV] = "1"
        if self.password is not None:
            env[PASSWORD_ENV] = self.password
        # twistd's own entry point, run by this interpreter: no console script needed.
        twistd = "from twisted.scripts.twistd import run; run()"
        command = [sys.executable, "-c", twistd, "-n", "--pidfile=", "spindlex", *self.arguments]
        for _ in range(self.count):
            child = _Sibling(self)
            self.reactor.spawnProcess(
                child,
                sys.executable,
                command,
                env=env,
                path=os.getcwd(),
                childFDs={0: "w", 1: 1, 2: 2},
            )
            self._children.append(child)
            log.info("started worker {pid}", pid=child.pid)

    def stopService(self) -> Any:
        service.Service.stopService(self)
        for child in self._children:
            if child.transport.pid is not None:  # still running
                child.transport.signalProcess(signal.SIGTERM)
        return defer.gatherResults([c.ended for c in self._children], consumeErrors=True)
