"""What port forwarding holds for each SSH connection, and its release when that ends.

Bridged channels close with their connection by themselves; what is tied to
the connection but to no channel (``tcpip-forward`` listening ports and
``streamlocal-forward`` sockets,
``direct-tcpip`` connects still in progress) is tracked here and released
by the connection's ``on_connection_lost`` callback, or one listener at a
time by the client's cancel (``cancel_listener``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from twisted.internet import defer
from twisted.logger import Logger

from spindlex_tw.core.requests import Malformed
from spindlex_tw.tx.hooks import call_hook

if TYPE_CHECKING:
    from spindlex_tw.core import events as ev
    from spindlex_tw.tx.interfaces import Connection
    from spindlex_tw.tx.settings import ServerSettings

log = Logger(namespace="spindlex_tw.forwarding")

_Key = TypeVar("_Key")


class Stoppable(Protocol):
    """A listener as the registry sees it."""

    def stop(self) -> None: ...


class ConnectionForwards:
    """Listeners and pending connects of one SSH connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.closed = False
        # Keyed by (address as the client sent it, bound port): what cancel names.
        self.listeners: dict[tuple[str, int], Stoppable] = {}
        # streamlocal-forward sockets, by path.
        self.sockets: dict[str, Stoppable] = {}
        self.reserved = 0  # forward requests granted a slot but not yet bound
        self._connects: set[defer.Deferred[Any]] = set()

    @property
    def settings(self) -> ServerSettings:
        settings: ServerSettings = self.conn.factory.settings
        return settings

    @property
    def reactor(self) -> Any:
        return self.conn.reactor

    def log_malformed(self, what: str, request: object) -> None:
        """Log a ``what`` whose body the core read and found Malformed (or did not decode)."""
        log.info(
            "malformed {what} from {peer}: {error}",
            what=what,
            peer=self.conn.peer,
            error=request.description if isinstance(request, Malformed) else "not decoded",
        )

    def listener_slots_used(self) -> int:
        return len(self.listeners) + len(self.sockets) + self.reserved

    def track_connect(self, connecting: defer.Deferred[Any]) -> None:
        """Cancel ``connecting`` if the SSH connection ends before it fires."""
        self._connects.add(connecting)

        def settled(result: object) -> object:
            self._connects.discard(connecting)
            return result

        connecting.addBoth(settled)

    def release(self) -> None:
        self.closed = True
        connects, self._connects = self._connects, set()
        for connecting in connects:
            connecting.cancel()
        listeners, self.listeners = self.listeners, {}
        sockets, self.sockets = self.sockets, {}
        for listener in [*listeners.values(), *sockets.values()]:
            listener.stop()


def cancel_listener(
    forwards: ConnectionForwards,
    event: ev.GlobalRequestReceived,
    held: dict[_Key, Stoppable],
    key: _Key,
    hook: Callable[..., object],
    args: tuple[object, ...],
    message: str,
    **fields: object,
) -> None:
    """Stop ``held[key]`` if ``hook(*args)`` grants the client's cancel, and reply.

    ``message`` with ``fields`` is the log line (the audit's ``forward_cancel``)
    of a granted cancel.
    """
    conn = forwards.conn
    listener = held.get(key)
    if listener is None:
        conn.global_reply(event, False)
        return
    decision = call_hook(
        conn.reactor, hook, *args, denied=False, timeout=forwards.settings.hook_timeout
    )

    def decided(allowed: object) -> None:
        # The same listener still: a second cancel racing this one, or the end of
        # the connection (which stops them all), must not stop it twice.
        granted = allowed is True and not forwards.closed and held.get(key) is listener
        if granted:
            del held[key]
            listener.stop()
            log.info(message, peer=conn.peer, event="forward_cancel", **fields)
        conn.global_reply(event, granted)

    decision.addCallback(decided)


class ForwardRegistry:
    """Finds (or starts) the forwarding state of a connection."""

    def __init__(self) -> None:
        self._by_connection: dict[Connection, ConnectionForwards] = {}

    def get(self, conn: Connection) -> ConnectionForwards:
        forwards = self._by_connection.get(conn)
        if forwards is None:
            forwards = ConnectionForwards(conn)
            self._by_connection[conn] = forwards
            # Runs at once for a connection already gone: the caller sees ``closed``.
            conn.on_connection_lost(lambda: self._release(conn))
        return forwards

    def _release(self, conn: Connection) -> None:
        forwards = self._by_connection.pop(conn, None)
        if forwards is not None:
            forwards.release()
