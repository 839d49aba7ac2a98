"""``SSHServerManager``: SpindleX's listening server, backed by the reactor.

The same object works three ways:

- a synchronous script (SpindleX's own usage) calls ``start_server()`` with
  no reactor in sight: the reactor is started in a background thread and the
  call returns once the port is bound; every other method may then be called
  from the script's threads and blocks only until the reactor has answered;
- code already on the reactor thread (pytest-twisted), or a trial test that
  trial has not yet run the reactor for, calls the same methods; those that
  have to wait (``start_server``, ``stop_server``) return a ``Deferred``
  instead of blocking;
- a Twisted application adds it to a ``MultiService`` (it is an ``IService``):
  the port is bound by ``privilegedStartService``, released by ``stopService``.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet import defer, endpoints
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.logger import Logger
from twisted.python.failure import Failure

from spindlex_tw.crypto.cert_checks import CertificateRefused, check_host_certificate
from spindlex_tw.crypto.certificate import SSHCertificate
from spindlex_tw.crypto.pkey import PKey
from spindlex_tw.exceptions import TransportException
from spindlex_tw.protocol import constants as c
from spindlex_tw.server import reactor_thread
from spindlex_tw.tx.factory import SSHServerFactory
from spindlex_tw.tx.settings import ServerSettings

if TYPE_CHECKING:
    from spindlex_tw.server.hooks import SSHServer
    from spindlex_tw.tx.protocol import SSHServerProtocol

log = Logger(namespace="spindlex_tw.manager")

#: Seconds stop_server() waits for clients to go after DISCONNECT before dropping them.
STOP_GRACE = 5.0


class ServerStartError(TransportException, RuntimeError):
    """The server could not start (or was already running); the message is one line.

    A ``TransportException`` as SpindleX raises, and the ``RuntimeError`` it always was.
    """


class ManagedFactory(SSHServerFactory):
    """The factory of a manager: adds the seed's statistics and a key-exchange deadline."""

    # Twisted's "Starting factory" lines say nothing the "listening on" line does not.
    noisy = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failed_connections = 0
        self.handshake_timeout: float | None = None
        self._deadlines: dict[str, Any] = {}
        self._idle_waiters: list[defer.Deferred[None]] = []

    def buildProtocol(self, addr: Any) -> Any:
        refused_before = self.refused_connections
        proto = super().buildProtocol(addr)
        self.failed_connections += self.refused_connections - refused_before
        return proto

    def connection_made(self, conn: SSHServerProtocol) -> None:
        super().connection_made(conn)
        if self.handshake_timeout:
            self._deadlines[conn.connection_id] = self.reactor.callLater(
                self.handshake_timeout, self._handshake_expired, conn
            )

    def connection_lost(self, conn: SSHServerProtocol) -> None:
        super().connection_lost(conn)
        timer = self._deadlines.pop(conn.connection_id, None)
        if timer is not None and timer.active():
            timer.cancel()
        if conn.username is None:
            self.failed_connections += 1
        if not self.connections:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _handshake_expired(self, conn: SSHServerProtocol) -> None:
        self._deadlines.pop(conn.connection_id, None)
        core = conn.core
        if core is not None and core.session_id is None and not conn.lost:
            log.info("key exchange with {peer} not finished in time", peer=conn.peer)
            conn.disconnect(c.SSH_DISCONNECT_PROTOCOL_ERROR, "Key exchange timed out")

    def when_idle(self) -> defer.Deferred[None]:
        """Fires once no connection is left."""
        if not self.connections:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        return d


class SSHServerManager(Service):
    """Listens on ``bind_address:port`` and serves ``server_interface`` to every client."""

    def __init__(
        self,
        server_interface: SSHServer,
        server_key: PKey,
        bind_address: str = "0.0.0.0",
        port: int = 22,
        settings: ServerSettings | None = None,
        reactor: Any = None,
    ) -> None:
        self._server_interface = server_interface
        self._server_key = server_key
        # Each holds server_key's private half: offered beside it (-cert-v01 algorithms).
        self._host_certificates: list[PKey] = []
        self._bind_address = bind_address
        self._port_number = port
        server_interface.set_server_key(server_key)
        self._reactor = reactor
        self._settings = settings or ServerSettings()
        self._factory: ManagedFactory | None = None
        # The IListeningPort while listening (typed loosely: zope interfaces confuse mypy).
        self._listening: Any = None
        self._connection_timeout: float | None = None

    # --- configuration (takes effect at once, for the connections that follow) -------------------

    def add_host_certificate(self, certificate: PKey | str) -> None:
        """Offer an OpenSSH host certificate of ``server_key`` (``ssh-keygen -s CA -h``).

        ``certificate`` is the ``-cert.pub`` line or a parsed
        :class:`~spindlex_tw.crypto.certificate.SSHCertificate`. Clients that
        trust its CA (``@cert-authority`` in known_hosts) then connect without
        a prompt; others still see the plain key. ValueError if it is not a
        host certificate of ``server_key`` or not valid now.
        """
        parsed = PKey.from_public_line(certificate) if isinstance(certificate, str) else certificate
        if not isinstance(parsed, SSHCertificate):
            raise ValueError("not an OpenSSH certificate")
        try:
            check_host_certificate(parsed)
        except CertificateRefused as exc:
            raise ValueError(str(exc)) from exc
        signing = parsed.with_private_key(self._server_key)
        self._host_certificates.append(signing)
        if self._factory is not None:
            self._on_reactor(self._factory.host_keys.append, signing)

    def set_max_connections(self, max_connections: int) -> None:
        """Concurrent connections; those beyond are refused with a DISCONNECT."""
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._settings.max_connections = max_connections

    def set_connection_timeout(self, timeout: float) -> None:
        """Seconds a client has, from connecting, to finish the key exchange.

        It bounds the handshake only: an established session may stay idle.
        """
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._connection_timeout = timeout
        if self._factory is not None:
            self._on_reactor(self._apply_connection_timeout)

    def set_auth_timeout(self, timeout: float) -> None:
        """Seconds a client has, from connecting, to log in (the login grace time)."""
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._settings.login_grace = timeout

    def _apply_connection_timeout(self) -> None:
        if self._factory is not None:
            self._factory.handshake_timeout = self._connection_timeout

    # --- lifecycle --------------------------------------------------------------------------------

    def start_server(self) -> defer.Deferred[None] | None:
        """Bind and start accepting clients.

        From synchronous code this returns once listening (raising
        :class:`ServerStartError` if the port cannot be bound); on the reactor
        thread, and in a trial test before trial runs the reactor, it returns
        a Deferred that fires then.
        """
        if self.is_running():
            raise ServerStartError("server is already running")
        if reactor_thread.runs_here(self._get_reactor()):
            return self._listen().addCallback(lambda _: None)
        reactor_thread.call(self._listen)
        return None

    def stop_server(self) -> defer.Deferred[None] | None:
        """Stop accepting, DISCONNECT every client and wait (bounded) until they are gone.

        Blocks synchronous callers until done; returns a Deferred on the reactor thread.
        """
        if reactor_thread.on_reactor_thread() or not self._get_reactor().running:
            return self._stop()
        reactor_thread.call(self._stop)
        return None

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        # Bind here, before twistd drops privileges, so low ports work.
        self._listen()

    def startService(self) -> None:
        Service.startService(self)
        if self._listening is None:
            self._listen()

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        return self._stop()

    # --- reactor-thread implementations -------------------------------------------------------

    def _get_reactor(self) -> Any:
        return self._reactor if self._reactor is not None else reactor_thread.get_reactor()

    def _on_reactor(self, func: Any, *args: Any) -> Any:
        if not self._get_reactor().running or reactor_thread.on_reactor_thread():
            return func(*args)
        return reactor_thread.call(func, *args)

    def _endpoint(self, reactor: Any) -> Any:
        address = self._bind_address or "0.0.0.0"
        if not (isIPAddress(address) or isIPv6Address(address)):
            try:
                infos = socket.getaddrinfo(
                    address,
                    self._port_number,
                    socket.AF_UNSPEC,
                    socket.SOCK_STREAM,
                    0,
                    socket.AI_PASSIVE,
                )
            except OSError as exc:
                raise ServerStartError(f"cannot resolve {address!r}: {exc.strerror}") from exc
            address = str(infos[0][4][0])
        if isIPv6Address(address):
            return endpoints.TCP6ServerEndpoint(reactor, self._port_number, interface=address)
        return endpoints.TCP4ServerEndpoint(reactor, self._port_number, interface=address)

    def _listen(self) -> defer.Deferred[Any]:
        reactor = self._get_reactor()
        if self._factory is None or self._factory.reactor is not reactor:
            self._factory = ManagedFactory(
                self._server_interface,
                [self._server_key, *self._host_certificates],
                self._settings,
                reactor,
            )
        self._apply_connection_timeout()
        d: defer.Deferred[Any] = self._endpoint(reactor).listen(self._factory)

        def listening(port: Any) -> Any:
            self._listening = port
            host = port.getHost()
            log.info(
                "listening on {host}:{port}", host=host.host, port=host.port, event="listening"
            )
            return port

        def failed(failure: Failure) -> None:
            raise ServerStartError(
                f"cannot listen on {self._bind_address}:{self._port_number}: "
                f"{failure.getErrorMessage()}"
            )

        d.addCallbacks(listening, failed)
        if d.called:
            # TCP binds at once: surface the error synchronously, as the seed did.
            outcome: list[Any] = []
            d.addBoth(outcome.append)
            if isinstance(outcome[0], Failure):
                outcome[0].raiseException()
            return defer.succeed(outcome[0])
        return d

    def _stop(self) -> defer.Deferred[None]:
        port, self._listening = self._listening, None
        factory = self._factory
        if port is None or factory is None:
            return defer.succeed(None)
        stopped = defer.maybeDeferred(port.stopListening)
        factory.close_all("Server shutting down")
        idle = factory.when_idle()
        reactor = self._get_reactor()
        timer = reactor.callLater(STOP_GRACE, self._drop_remaining, factory)

        def done(_: object) -> None:
            if timer.active():
                timer.cancel()

        return defer.gatherResults([stopped, idle]).addCallback(done)

    @staticmethod
    def _drop_remaining(factory: ManagedFactory) -> None:
        for conn in list(factory.connections.values()):
            if conn.transport is not None:
                conn.transport.abortConnection()

    # --- state and statistics ---------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._listening is not None

    def get_port(self) -> int | None:
        """The bound port (the real one when constructed with port 0), or None."""
        port = self._listening
        return None if port is None else int(port.getHost().port)

    def get_connection_count(self) -> int:
        return int(self._on_reactor(self._count))

    def _count(self) -> int:
        return 0 if self._factory is None else len(self._factory.connections)

    def get_connection_stats(self) -> dict[str, int]:
        stats: dict[str, int] = self._on_reactor(self._stats)
        return stats

    def _stats(self) -> dict[str, int]:
        factory = self._factory
        return {
            "total_connections": factory.total_connections if factory else 0,
            "active_connections": len(factory.connections) if factory else 0,
            "failed_connections": factory.failed_connections if factory else 0,
            "max_connections": self._settings.max_connections,
        }

    def get_active_connections(self) -> list[str]:
        """The ids of the open connections (``host:port#n``), for close_connection()."""
        ids: list[str] = self._on_reactor(self._ids)
        return ids

    def _ids(self) -> list[str]:
        return [] if self._factory is None else list(self._factory.connections)

    def close_connection(self, connection_id: str) -> bool:
        """DISCONNECT one client; False if there is no such connection."""
        closed: bool = self._on_reactor(self._close_one, connection_id)
        return closed

    def _close_one(self, connection_id: str) -> bool:
        conn = None if self._factory is None else self._factory.connections.get(connection_id)
        if conn is None:
            return False
        conn.disconnect(c.SSH_DISCONNECT_BY_APPLICATION, "Closed by the server")
        return True
