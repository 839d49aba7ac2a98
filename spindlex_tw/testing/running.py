"""A server under test on an ephemeral 127.0.0.1 port, started and stopped cleanly.

Two ways to run it, as the manager has:

- :func:`start_server` / :func:`start_options_server` inside the reactor (a
  trial test, a pytest-twisted test): they return a Deferred of a
  :class:`ReactorServer`, whose ``stop()`` returns a Deferred too;
- :func:`start_threaded` / :func:`start_options_threaded` from plain
  synchronous code (a plain pytest test): the reactor runs in a background
  thread (:mod:`spindlex_tw.server.reactor_thread`) and every call blocks
  until it is done, giving a :class:`ThreadedServer`.

Either way the server's listening port is closed and every connection gone
once ``stop()`` is done, so trial finds a clean reactor.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from twisted.internet import defer, threads

from spindlex_tw.server import reactor_thread
from spindlex_tw.server.manager import SSHServerManager
from spindlex_tw.testing import clients
from spindlex_tw.testing.credentials import HOST, Credentials
from spindlex_tw.testing.openssh import BlockingOpenSSH, OpenSSH

if TYPE_CHECKING:
    from spindlex_tw.server.hooks import SSHServer
    from spindlex_tw.tx.settings import ServerSettings

T = TypeVar("T")


@dataclass(frozen=True)
class _Started:
    port: int
    stop: Callable[[], defer.Deferred[Any]]


#: Starts a server on the reactor thread.
Starter = Callable[[], "defer.Deferred[_Started]"]


class RunningServer:
    """A listening server and what a client needs: address, known_hosts, credentials."""

    host = HOST

    def __init__(
        self, port: int, credentials: Credentials, stop: Callable[[], defer.Deferred[Any]]
    ) -> None:
        self.port = port
        self.credentials = credentials
        self.known_hosts = credentials.directory / f"known_hosts-{port}"
        self.known_hosts.write_text(credentials.known_hosts_line(port) + "\n")
        self._stop_now: Callable[[], defer.Deferred[Any]] | None = stop

    def _stop(self) -> defer.Deferred[Any]:
        # Once: a test may stop its server and then its fixture or cleanup does.
        stop, self._stop_now = self._stop_now, None
        return stop() if stop is not None else defer.succeed(None)

    @property
    def username(self) -> str:
        return self.credentials.username

    @property
    def password(self) -> str:
        return self.credentials.password

    def paramiko_client(self, password: bool = False) -> Any:
        """A logged-in ``paramiko.SSHClient`` (blocking: call it off the reactor thread)."""
        return clients.paramiko_client(self, password=password)

    def asyncssh_connect(self, password: bool = False, **options: Any) -> Any:
        """``asyncssh.connect(...)`` for this server, to await in an asyncio loop."""
        return clients.asyncssh_connect(self, password=password, **options)


class ReactorServer(RunningServer):
    """A server on the running reactor; every call that waits returns a Deferred."""

    def stop(self) -> defer.Deferred[Any]:
        return self._stop()

    def openssh(self, directory: str | Path | None = None) -> OpenSSH:
        return OpenSSH(self, directory)

    def with_paramiko(self, func: Callable[[Any], T], password: bool = False) -> defer.Deferred[T]:
        """``func(client)`` with a logged-in Paramiko client, in a thread."""
        return threads.deferToThread(clients.with_paramiko, self, func, password)

    def with_asyncssh(
        self, func: Callable[[Any], Any], password: bool = False
    ) -> defer.Deferred[Any]:
        """``await func(connection)`` on AsyncSSH's connection, in a thread with its own loop."""
        return threads.deferToThread(clients.with_asyncssh, self, func, password)


class ThreadedServer(RunningServer):
    """A server on the background reactor thread; every call blocks until done."""

    def stop(self) -> None:
        reactor_thread.call(self._stop)

    def openssh(self, directory: str | Path | None = None) -> BlockingOpenSSH:
        return BlockingOpenSSH(self, directory)

    def with_paramiko(self, func: Callable[[Any], T], password: bool = False) -> T:
        return clients.with_paramiko(self, func, password)

    def with_asyncssh(self, func: Callable[[Any], Any], password: bool = False) -> Any:
        return clients.with_asyncssh(self, func, password)


def _manager_starter(
    server: SSHServer, credentials: Credentials, settings: ServerSettings | None
) -> Starter:
    def start() -> defer.Deferred[_Started]:
        manager = SSHServerManager(server, credentials.host_key, HOST, 0, settings=settings)

        def stop() -> defer.Deferred[None]:
            # On the reactor thread the manager answers with a Deferred.
            stopped = manager.stop_server()
            return stopped if stopped is not None else defer.succeed(None)

        def listening(_: object) -> _Started:
            return _Started(int(manager.get_port() or 0), stop)

        started = manager.start_server()
        return (started if started is not None else defer.succeed(None)).addCallback(listening)

    return start


def _options_starter(arguments: Sequence[str], credentials: Credentials) -> Starter:
    # twistd/ is imported only here: a test of a plain SSHServer never loads it.
    from spindlex_tw.testing.options import options_service

    def start() -> defer.Deferred[_Started]:
        service, port = options_service(arguments, credentials)
        return defer.succeed(_Started(port, service.stopService))

    return start


def _in_reactor(starter: Starter, credentials: Credentials) -> defer.Deferred[ReactorServer]:
    if not reactor_thread.runs_here(reactor_thread.get_reactor()):
        raise RuntimeError(
            "start_server() of spindlex_tw.testing runs inside the reactor (a trial or "
            "pytest-twisted test); from synchronous code use start_threaded()"
        )
    return starter().addCallback(
        lambda started: ReactorServer(started.port, credentials, started.stop)
    )


def _threaded(starter: Starter, credentials: Credentials) -> ThreadedServer:
    # call() waits for the Deferred and hands back its result.
    started = cast(_Started, reactor_thread.call(starter))
    return ThreadedServer(started.port, credentials, started.stop)


def start_server(
    server: SSHServer,
    directory: str | Path,
    credentials: Credentials | None = None,
    settings: ServerSettings | None = None,
) -> defer.Deferred[ReactorServer]:
    """Serve ``server`` on 127.0.0.1 (an ephemeral port) from inside the reactor.

    ``directory`` holds the generated keys and known_hosts; pass
    ``credentials`` (:meth:`Credentials.generate`) when the server has to know
    the password or the client key before it starts.
    """
    creds = credentials or Credentials.generate(directory)
    return _in_reactor(_manager_starter(server, creds, settings), creds)


def start_options_server(
    arguments: Sequence[str],
    directory: str | Path,
    credentials: Credentials | None = None,
) -> defer.Deferred[ReactorServer]:
    """Serve what ``twistd spindlex ARGUMENTS`` would, from inside the reactor.

    The listening address, the host key, a ``memory:`` password and an
    authorized_keys file with the client key are added to ``arguments``;
    the username is the server's own user, as for twistd's keys.
    """
    creds = credentials or _options_credentials(directory)
    return _in_reactor(_options_starter(arguments, creds), creds)


def start_threaded(
    server: SSHServer,
    directory: str | Path,
    credentials: Credentials | None = None,
    settings: ServerSettings | None = None,
) -> ThreadedServer:
    """:func:`start_server` from synchronous code, on the background reactor thread."""
    creds = credentials or Credentials.generate(directory)
    return _threaded(_manager_starter(server, creds, settings), creds)


def start_options_threaded(
    arguments: Sequence[str],
    directory: str | Path,
    credentials: Credentials | None = None,
) -> ThreadedServer:
    """:func:`start_options_server` from synchronous code."""
    creds = credentials or _options_credentials(directory)
    return _threaded(_options_starter(arguments, creds), creds)


def _options_credentials(directory: str | Path) -> Credentials:
    return Credentials.generate(directory, username=getpass.getuser())
