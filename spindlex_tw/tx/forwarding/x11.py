"""X11 forwarding (RFC 4254 section 6.3): a display on the loopback for a session.

Once ``check_channel_x11_request`` grants ``x11-req``, the session gets the
first free display from :data:`X11_DISPLAY_OFFSET` up, as sshd's
``X11DisplayOffset 10`` and ``X11UseLocalhost yes``: TCP port 6000+N on the
loopback (127.0.0.1, and ::1 where the host has it). ``channel.x11_display``
is then ``localhost:N.screen`` for the program's ``DISPLAY`` and
``channel.x11_request`` the client's request, whose cookie the program's
xauth file must hold. Each connection to the display opens an ``x11`` channel
to the client, naming who connected; with ``single_connection`` the display
takes one connection only. It closes with the session channel.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from spindlex_tw.core.requests import X11Channel, X11Request
from spindlex_tw.tx.forwarding.inbound import AcceptingFactory, offer_channel

if TYPE_CHECKING:
    from spindlex_tw.tx.channel import Channel
    from spindlex_tw.tx.forwarding.bridge import SocketEnd
    from spindlex_tw.tx.interfaces import Connection

log = Logger(namespace="spindlex_tw.forwarding")

X11_BASE_PORT = 6000
X11_DISPLAY_OFFSET = 10
MAX_DISPLAYS = 1000  # sshd's limit on the displays it tries


class X11Display:
    """The listening sockets of one forwarded display."""

    def __init__(self, conn: Connection, single_connection: bool) -> None:
        self._conn = conn
        self._single = single_connection
        self._ports: list[Any] = []
        self.number: int | None = None

    def listen(self) -> bool:
        """Take the first display whose port is free on every loopback; False if none is."""
        factory = AcceptingFactory(self._accepted)
        reactor = self._conn.reactor
        for number in range(X11_DISPLAY_OFFSET, X11_DISPLAY_OFFSET + MAX_DISPLAYS):
            port = X11_BASE_PORT + number
            try:
                ports = [reactor.listenTCP(port, factory, interface="127.0.0.1")]
            except CannotListenError:
                continue
            try:
                ports.append(reactor.listenTCP(port, factory, interface="::1"))
            except CannotListenError as exc:
                # Taken on ::1: a client resolving localhost there would reach someone else.
                if getattr(exc.socketError, "errno", None) == errno.EADDRINUSE:
                    ports[0].stopListening()
                    continue
            self._ports = ports
            self.number = number
            return True
        return False

    def _accepted(self, socket_end: SocketEnd) -> None:
        if self._single:
            self.stop()
        peer = socket_end.tcp.getPeer()
        opening = X11Channel(peer.host, peer.port)
        offer_channel(self._conn, opening.NAME, opening.encode(), socket_end)

    def stop(self) -> None:
        ports, self._ports = self._ports, []
        for port in ports:
            port.stopListening()


def forward_x11(conn: Connection, channel: Channel, request: X11Request) -> bool:
    """Give ``channel`` a display forwarded to the client; False if it has one or none is free."""
    if channel.x11_display is not None:
        return False  # one display per session, as sshd
    display = X11Display(conn, request.single_connection)
    if not display.listen():
        log.error("X11 forwarding for {peer} failed: no free display", peer=conn.peer)
        return False
    channel.x11_display = f"localhost:{display.number}.{request.screen}"
    channel.x11_request = request
    channel.on_close(lambda _channel: display.stop())
    log.info(
        "X11 forwarding for {peer} on display {display}",
        peer=conn.peer,
        display=channel.x11_display,
    )
    return True
