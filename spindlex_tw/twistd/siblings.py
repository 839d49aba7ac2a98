"""``twistd spindlex --workers N``: N processes serving the same TCP ports.

One CPython reactor uses one core. With ``--workers N`` the twistd process
listens on each TCP port and starts N-1 copies of itself with the same
options, handing them its listening sockets; every process accepts from
them, so a new connection goes to a process that is waiting for work (see
:mod:`spindlex_tw.twistd.supervisor`). Each worker is a whole server: its own
reactor, connections and limits (so ``--max-connections`` is per worker).
The copies log where the twistd process does (see
:class:`spindlex_tw.twistd.text_log.CopiesLog`).
"""

from __future__ import annotations

import os
import re
import socket
import sys
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import usage

from spindlex_tw.twistd import balance, startup
from spindlex_tw.twistd.listening import ListenFailed
from spindlex_tw.twistd.supervisor import (
    FIRST_FD,
    Descriptor,
    Supervisor,
    listening_socket,
)
from spindlex_tw.twistd.text_log import CopiesLog

log = Logger(namespace="spindlex_tw.workers")

#: Set in the environment of the copies: they listen, but start no copies.
WORKER_ENV = "SPINDLEX_TW_WORKER"
#: The embedded default's one-time password, the same in every worker.
PASSWORD_ENV = "SPINDLEX_TW_ONE_TIME_PASSWORD"
#: The descriptors of the inherited listening sockets, in --listen order ("3,4").
LISTEN_FDS_ENV = "SPINDLEX_TW_LISTEN_FDS"

_TCP = re.compile(r"^tcp:(?:port=)?(?P<port>\d+)(?::interface=(?P<interface>[^:\\]+))?$")


def is_worker() -> bool:
    return os.environ.get(WORKER_ENV) == "1"


def inherited_fds(count: int) -> list[int | None]:
    """In a copy, the listening descriptors it inherited (one per --listen); else Nones."""
    if not is_worker():
        return [None] * count
    fds = [int(fd) for fd in os.environ.get(LISTEN_FDS_ENV, "").split(",") if fd]
    if len(fds) != count:
        raise RuntimeError(f"worker inherited {len(fds)} listening sockets for {count} --listen")
    return list(fds)


_shares: balance.Shares | None = None


def process_shares() -> balance.Shares:
    """The connection counts this process and its copies share (see :mod:`.balance`)."""
    global _shares
    if _shares is None:
        _shares = (balance.inherited() if is_worker() else None) or balance.Shares.create()
    return _shares


def tcp_address(description: str) -> tuple[str, int]:
    """``(interface, port)`` of a ``tcp:PORT[:interface=ADDR]`` endpoint."""
    match = _TCP.match(description)
    if match is None:
        raise usage.UsageError(
            f"--workers needs tcp:PORT[:interface=ADDR] endpoints, not --listen {description!r}"
        )
    return match["interface"] or "0.0.0.0", int(match["port"])


class SharedListener(service.Service):
    """One TCP address served by this process and its copies.

    The twistd process binds and listens (in ``privilegedStartService``, so a
    port below 1024 works before privileges are dropped) and keeps
    :attr:`socket` for :class:`SiblingProcesses` to hand on; a copy accepts
    from the descriptor it inherited, ``inherited_fd``.
    """

    def __init__(
        self,
        interface: str,
        port: int,
        factory: Any,
        reactor: Any,
        inherited_fd: int | None = None,
    ) -> None:
        self.interface = interface
        self.port_number = port
        self.factory = factory
        self.reactor = reactor
        self.inherited_fd = inherited_fd
        self.socket: socket.socket | None = None
        self.port: Any = None

    def privilegedStartService(self) -> None:
        service.Service.privilegedStartService(self)
        if self.inherited_fd is None:
            try:
                self.socket = listening_socket(self.interface, self.port_number)
            except OSError as exc:
                where = f"tcp:{self.port_number}:interface={self.interface}"
                raise ListenFailed(startup.listen_error(where, exc)) from exc
            fd = os.dup(self.socket.fileno())
        else:
            fd, self.inherited_fd = self.inherited_fd, None
        self.port = balance.adopt(self.reactor, self.factory, fd, process_shares())
        address = self.port.getHost()
        log.info(
            "listening on {address} (worker {pid})",
            address=f"{address.host}:{address.port}",
            pid=os.getpid(),
            host=address.host,
            port=address.port,
            event="listening",
        )

    def stopService(self) -> Any:
        service.Service.stopService(self)
        if self.socket is not None:
            self.socket.close()  # the copies keep theirs until they exit
            self.socket = None
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else None


class SiblingProcesses(Supervisor):
    """Starts ``count`` copies of this ``twistd spindlex`` and stops them with itself.

    The copies get the listening sockets of ``listeners`` (bound before any
    service starts) as descriptors 3, 4, ...; they log as :attr:`copies_log` says.
    """

    def __init__(
        self,
        count: int,
        arguments: list[str],
        password: str | None,
        reactor: Any,
        listeners: list[SharedListener],
    ) -> None:
        super().__init__(count, reactor)
        #: Set by :func:`log_copies` before the start: where the copies' log goes.
        self.copies_log = CopiesLog()
        self.arguments = arguments
        self.password = password
        self.listeners = listeners

    def startService(self) -> None:
        super().startService()
        if self.copies_log.file is not None:
            self.output = self.copies_log.file.write
        env = dict(os.environ)
        env[WORKER_ENV] = "1"
        if self.password is not None:
            env[PASSWORD_ENV] = self.password
        sockets: list[Descriptor] = []
        for listener in self.listeners:
            assert listener.socket is not None, "listeners bind before services start"
            sockets.append(listener.socket)
        env[LISTEN_FDS_ENV] = ",".join(str(fd) for fd in range(FIRST_FD, FIRST_FD + len(sockets)))
        # After the sockets: the counts that keep the copies' shares of connections even.
        env[balance.BALANCE_FD_ENV] = str(FIRST_FD + len(sockets))
        sockets.append(process_shares())
        # twistd's own entry point, run by this interpreter: no console script needed.
        twistd = "from twisted.scripts.twistd import run; run()"
        command = [sys.executable, "-c", twistd, "-n", "--pidfile=", *self.copies_log.arguments]
        command += ["spindlex", *self.arguments]
        self.spawn(command, sockets, env, path=os.getcwd())


def log_copies(spindle: service.MultiService, log: CopiesLog) -> None:
    """The copies ``spindle`` starts (if any) log as ``log`` says: where twistd logs."""
    for child in spindle:
        if isinstance(child, SiblingProcesses):
            child.copies_log = log
