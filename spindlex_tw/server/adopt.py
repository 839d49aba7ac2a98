"""``SSHServer.start_server(sock)``: serve a socket someone else accepted.

The socket's descriptor is handed to the reactor with
``adoptStreamConnection``, which duplicates it; our copy is then closed, so
the connection lives on the reactor alone and the caller's thread is free.
Works from any thread, starting a background reactor when none runs (see
:mod:`spindlex_tw.server.reactor_thread`).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from spindlex_tw.server import reactor_thread
from spindlex_tw.tx.factory import SSHServerFactory
from spindlex_tw.tx.settings import ServerSettings

if TYPE_CHECKING:
    from spindlex_tw.crypto.pkey import PKey
    from spindlex_tw.tx.application import Application
    from spindlex_tw.tx.protocol import SSHServerProtocol


def adopt_socket(
    server: Application,
    host_keys: Sequence[PKey],
    sock: socket.socket,
    timeout: float | None = None,
) -> SSHServerProtocol:
    """Serve ``server`` on the connected stream socket ``sock``; returns the connection.

    ``timeout`` is the login grace time in seconds (default: the settings'
    30 s). The caller's ``sock`` is closed: the reactor holds its own copy.
    """
    if sock.type != socket.SOCK_STREAM:
        raise ValueError("start_server() needs a connected stream socket")
    settings = ServerSettings()
    if timeout is not None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        settings.login_grace = timeout
    keys = list(host_keys)
    return reactor_thread.call(_adopt, server, keys, settings, sock)


def _adopt(
    server: Application, keys: list[PKey], settings: ServerSettings, sock: socket.socket
) -> SSHServerProtocol:
    reactor = reactor_thread.get_reactor()
    factory = SSHServerFactory(server, keys, settings, reactor)
    try:
        reactor.adoptStreamConnection(sock.fileno(), sock.family, factory)
    finally:
        sock.close()
    # adoptStreamConnection builds the protocol and calls connectionMade at once.
    connections = list(factory.connections.values())
    if len(connections) != 1:
        raise RuntimeError("the adopted socket was not served")
    return connections[0]
