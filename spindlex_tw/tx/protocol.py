"""``SSHServerProtocol``: one connection; the Twisted face of the sans-IO core.

Bytes from TCP go into :class:`~spindlex_tw.core.transport.ServerTransport`;
the events that come out become hook calls on the application's ``SSHServer``
(through :func:`~spindlex_tw.tx.hooks.call_hook`, so hooks may be slow or
async), and the answers go back into the core. Whatever the core has to send is
written after each step.
"""

from __future__ import annotations

import contextvars
import os
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from twisted.internet import defer, interfaces, protocol
from twisted.logger import Logger
from zope.interface import implementer

from spindlex_tw.core import events as ev
from spindlex_tw.core.connection import ConnectionService
from spindlex_tw.core.transport import ServerTransport
from spindlex_tw.core.userauth import UserAuthService
from spindlex_tw.protocol import constants as c
from spindlex_tw.tx import audit, deadlines
from spindlex_tw.tx.auth import AuthDriver
from spindlex_tw.tx.channel import Channel
from spindlex_tw.tx.hooks import call_hook, is_code
from spindlex_tw.tx.peer import peer_name
from spindlex_tw.tx.ratelimit import TokenBucket
from spindlex_tw.tx.session import handle_channel_request
from spindlex_tw.tx.twisted_private import sendnow
from spindlex_tw.tx.twisted_private.quickack import acknowledge_now, quickack_socket

if TYPE_CHECKING:
    from spindlex_tw.crypto.pkey import PKey
    from spindlex_tw.tx.application import Application
    from spindlex_tw.tx.interfaces import ChannelOpener, GlobalHandler
    from spindlex_tw.tx.settings import ServerSettings

log = Logger(namespace="spindlex_tw.connection")

_T = TypeVar("_T")

_current: contextvars.ContextVar[SSHServerProtocol | None] = contextvars.ContextVar(
    "spindlex_tw_connection", default=None
)


def current_connection() -> SSHServerProtocol | None:
    """The connection whose message the running hook is answering, or None.

    SpindleX's authentication hooks get no connection argument; this is how
    a hook keeps per-connection state (key it by ``connection_id``) or reads
    the client's address (``peer``). Coroutine hooks keep it across awaits.
    """
    return _current.get()


# Reads and the write backlog of connections that move bulk data (see _bulk),
# which a read or a channel write this large reveals.
_BULK_BUFFER = 256 * 1024
_BULK_READ = 64 * 1024  # Twisted's default read size: the read was full
_BULK_WRITE = 64 * 1024

_OPEN_FAILURE_TEXT = {
    c.SSH_OPEN_ADMINISTRATIVELY_PROHIBITED: "administratively prohibited",
    c.SSH_OPEN_CONNECT_FAILED: "connect failed",
    c.SSH_OPEN_UNKNOWN_CHANNEL_TYPE: "unknown channel type",
    c.SSH_OPEN_RESOURCE_SHORTAGE: "resource shortage",
}


class ConnectionOwner(Protocol):
    """The factory, as each of its connections sees it (``SSHServerFactory`` is one)."""

    @property
    def server(self) -> Application: ...
    @property
    def reactor(self) -> Any: ...
    @property
    def settings(self) -> ServerSettings: ...
    @property
    def host_keys(self) -> Sequence[PKey]: ...
    @property
    def global_handlers(self) -> dict[str, GlobalHandler]: ...
    @property
    def channel_openers(self) -> dict[str, ChannelOpener]: ...
    @property
    def draining(self) -> bool: ...

    def connection_made(self, conn: SSHServerProtocol) -> None: ...
    def connection_authenticated(self, conn: SSHServerProtocol) -> None: ...
    def connection_lost(self, conn: SSHServerProtocol) -> None: ...


@implementer(interfaces.IPushProducer)
class SSHServerProtocol(protocol.Protocol):
    """Server side of one SSH connection (the :class:`~.interfaces.Connection` of its parts)."""

    transport: Any  # Twisted's ITransport; zope interfaces are opaque to mypy
    factory: ConnectionOwner

    def __init__(self, factory: ConnectionOwner) -> None:
        self.factory = factory
        self.server = factory.server
        self.reactor: Any = factory.reactor
        self.core: ServerTransport | None = None
        self.connection: ConnectionService | None = None
        self.auth: AuthDriver | None = None
        self.username: str | None = None
        self._channels: dict[int, Channel] = {}
        self._grace_timer: deadlines.Deadline | None = None
        self._rekey_timer: deadlines.Deadline | None = None
        self.write_paused = False
        self.peer = "?"
        self.source = "?"  # the peer's address, as the factory's admission counts it
        self.admitted = False  # counted by the factory's admission control
        self.connection_id = ""
        self.lost = False
        self._lost_callbacks: list[Callable[[], None]] = []
        self._quickack: socket.socket | None = None
        # For the audit trail (tx/audit.py): when, how much, how it ended.
        self.connected_at = 0.0
        self.bytes_in = 0
        self.bytes_out = 0
        self.method: str | None = None
        self.key_fingerprint: str | None = None
        self.end_reason = "connection closed"
        self._kex_done = False

    # --- Twisted protocol ---------------------------------------------------------------

    def connectionMade(self) -> None:
        # Replies and window adjusts are small writes; with Nagle each would wait
        # for the peer's delayed ACK (40 ms) whenever a segment is in flight.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        self._quickack = quickack_socket(self.transport)
        self.peer = peer_name(self.transport)
        # 64 random bits, not id(self): ids stay distinct across --workers
        # processes, restarts and reused addresses, so an audit log can be merged.
        self.connection_id = f"{self.peer}#{os.urandom(8).hex()}"
        self.connected_at = self.reactor.seconds()
        audit.connected(self, self.transport.getHost())
        settings = self.factory.settings
        core = ServerTransport(settings.transport, self.factory.host_keys, os.urandom)
        self.core = core
        self.auth = AuthDriver(self)
        core.register_service(
            "ssh-userauth",
            lambda: UserAuthService(
                core,
                settings.auth,
                self.auth.verify_signature,  # type: ignore[union-attr]
                self._start_connection_service,
            ),
        )
        self.transport.registerProducer(self, True)
        self._grace_timer = deadlines.of(self.reactor).call_at(
            self.connected_at + settings.login_grace, self._grace_expired
        )
        self._requests = TokenBucket(
            settings.max_requests_per_second, settings.max_requests_burst, self.reactor.seconds
        )
        if settings.rekey_seconds:
            self._rekey_timer = deadlines.of(self.reactor).call_at(
                self.connected_at + settings.rekey_seconds, self._rekey_by_time
            )
        self.factory.connection_made(self)
        self.flush()

    def dataReceived(self, data: bytes) -> None:
        core = self.core
        if core is None:
            return
        self.bytes_in += len(data)
        bulk = len(data) >= _BULK_READ
        if bulk:
            self._bulk()
        sent_before = self.bytes_out
        # In context: the core itself asks get_allowed_auths while parsing requests.
        self.in_context(self._receive, core, data)
        self.flush()
        if not bulk and self.bytes_out == sent_before and self._quickack is not None:
            # Nothing went back to carry the acknowledgement: send it on its own
            # now. An answer sent above carried it already, so a request answered
            # at once costs no extra packet and no extra system call.
            acknowledge_now(self._quickack)

    def _receive(self, core: ServerTransport, data: bytes) -> None:
        # Already in context (dataReceived): dispatch directly, not through process().
        self._dispatch(core.feed(data))
        while (events := core.next_events()) is not None:
            self._dispatch(events)

    def connectionLost(self, reason: Any = None) -> None:
        if self._grace_timer is not None:
            self._grace_timer.release()
        if self._rekey_timer is not None:
            self._rekey_timer.release()
            self._rekey_timer = None
        self.lost = True
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            channel.closed_by_connection("connection lost")
            self.call_hook(self.server.on_channel_closed, channel, denied=None)
        if self.connection is not None:
            self.connection.discard()
        callbacks, self._lost_callbacks = self._lost_callbacks, []
        for callback in callbacks:
            callback()
        if self.username is not None:
            log.info(
                "logout {user} from {peer}",
                user=self.username,
                peer=self.peer,
                event="logout",
            )
        audit.ended(self)
        self.factory.connection_lost(self)

    def on_connection_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the connection is gone (at once if it already is).

        For resources tied to the connection but not to a channel, such as the
        listening ports of ``tcpip-forward``.
        """
        if self.lost:
            callback()
        else:
            self._lost_callbacks.append(callback)

    # IPushProducer: the TCP transport tells us when its send buffer is full.
    # Then we also stop reading: a peer that does not read our answers (to
    # keepalives, window adjusts, pings...) must not make us queue without end.
    def pauseProducing(self) -> None:
        self.write_paused = True
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.write_paused = False
        self.transport.resumeProducing()
        for channel in list(self._channels.values()):
            channel.writable()

    def stopProducing(self) -> None:
        self.write_paused = True

    # --- event handling -------------------------------------------------------------------

    def process(self, events: list[ev.Event]) -> None:
        self.in_context(self._dispatch, events)

    def _dispatch(self, events: list[ev.Event]) -> None:
        for event in events:
            handler = _EVENT_HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)
            elif self.auth is not None:
                self.auth.handle(event)

    def in_context(self, func: Callable[..., _T], *args: Any) -> _T:
        """Call ``func(*args)`` with this connection as ``current_connection()``.

        Everything that may call a hook on this connection's behalf runs so:
        event dispatch, and continuations after an asynchronous hook.
        """
        token = _current.set(self)
        try:
            return func(*args)
        finally:
            _current.reset(token)

    def call_hook(self, func: Callable[..., Any], *args: Any, denied: Any) -> defer.Deferred[Any]:
        """Run an application hook under this server's ``hook_timeout``."""
        return call_hook(
            self.reactor, func, *args, denied=denied, timeout=self.factory.settings.hook_timeout
        )

    def _rekey_by_time(self) -> None:
        # A deadline in the reactor's shared heap, not a LoopingCall: that is a
        # timer, a Deferred and a DelayedCall, 600 bytes on every idle connection.
        assert self._rekey_timer is not None
        self._rekey_timer.release()
        self._rekey_timer = deadlines.of(self.reactor).call_at(
            self.reactor.seconds() + self.factory.settings.rekey_seconds, self._rekey_by_time
        )
        # The KEXINIT goes out now: an idle connection has no other write to carry it.
        if self.core is not None:
            self.core.request_rekey()
            self.flush()

    def flush(self) -> None:
        core = self.core
        if core is None or self.transport is None:
            return
        packets = core.packets_to_send()
        if packets:
            self.bytes_out += sum(map(len, packets))
            sendnow.write_sequence(self.transport, packets)
        if core.closed:
            self.transport.loseConnection()

    def _bulk(self) -> None:
        """This connection moves bulk data: read and buffer in larger steps.

        Twisted's 64 KiB ``bufferSize`` is both the size of each read and the
        write backlog that pauses us; at SFTP speeds that means four times the
        reads and a pause/resume per 256 KiB reply. Raised only for connections
        that fill a read or write big chunks, so a small read (most logins) does
        not pay for a large receive buffer.
        """
        if getattr(self.transport, "bufferSize", _BULK_BUFFER) < _BULK_BUFFER:
            self.transport.bufferSize = _BULK_BUFFER

    @property
    def busy(self) -> bool:
        """Whether a channel has work in progress, which a graceful stop lets finish."""
        return any(channel.busy for channel in self._channels.values())

    def disconnect(self, reason: int, description: str) -> None:
        if self.core is not None:
            if not self.core.closed:
                self.end_reason = f"disconnected by the server: {description}"
            self.core.disconnect(reason, description)
            self.flush()

    def _grace_expired(self) -> None:
        if self.username is None:
            log.info("login grace time over for {peer}", peer=self.peer, event="grace")
            audit.auth_failed(
                self.connection_id, self.peer, None, None, "login grace time exceeded"
            )
            self.disconnect(c.SSH_DISCONNECT_PROTOCOL_ERROR, "Login grace time exceeded")

    def _on_failed(self, event: ev.ConnectionFailed) -> None:
        self.end_reason = f"protocol error: {event.description}"
        log.info(
            "disconnected {peer}: {reason}",
            peer=self.peer,
            reason=event.description,
            event="protocol_error",
        )

    def _on_peer_disconnect(self, event: ev.PeerDisconnected) -> None:
        self.end_reason = f"disconnected by the client: {event.description}"
        log.debug("peer {peer} disconnected: {reason}", peer=self.peer, reason=event.description)

    def _on_version(self, event: ev.VersionReceived) -> None:
        log.debug("peer {peer} is {version}", peer=self.peer, version=event.version)

    def _on_kex(self, event: ev.KeyExchangeCompleted) -> None:
        if not self._kex_done:
            self._kex_done = True
            audit.key_exchanged(self, event.negotiated)
        log.debug("key exchange with {peer}: {algs}", peer=self.peer, algs=event.negotiated)

    def authenticated(self, username: str, method: str) -> None:
        self.username = username
        self.method = method
        if method == "publickey" and self.auth is not None:
            self.key_fingerprint = self.auth.key_fingerprint
        audit.logged_in(self)
        self.factory.connection_authenticated(self)
        if self._grace_timer is not None:
            self._grace_timer.withdraw()
        log.info(
            "login {user} from {peer} by {method}",
            user=username,
            peer=self.peer,
            method=method,
            event="login",
        )

    def _start_connection_service(self) -> ConnectionService:
        assert self.core is not None
        self.connection = ConnectionService(self.core, self.factory.settings.channels)
        return self.connection

    # --- connection protocol events --------------------------------------------------------

    def _too_fast(self) -> bool:
        """Global requests, channel opens and channel requests share one rate limit."""
        if self._requests.take():
            return False
        log.info("disconnected {peer}: too many requests", peer=self.peer, event="rate")
        self.disconnect(c.SSH_DISCONNECT_BY_APPLICATION, "Too many requests")
        return True

    def _on_global_request(self, event: ev.GlobalRequestReceived) -> None:
        if self._too_fast():
            return
        handler = self.factory.global_handlers.get(event.name)
        if handler is not None:
            handler(self, event)
            return
        d = self.call_hook(self.server.check_global_request, event.name, event.data, denied=False)
        d.addCallback(lambda ok: self.global_reply(event, ok is True))

    def global_reply(
        self, event: ev.GlobalRequestReceived, success: bool, data: bytes = b""
    ) -> None:
        audit.global_forward(self, event, success, data)
        if event.want_reply and self.connection is not None:
            self.connection.global_reply(event.request_id, success, data)
            self.flush()

    def _on_channel_open(self, event: ev.ChannelOpenRequested) -> None:
        if self._too_fast():
            return
        if self.factory.draining:
            # Shutting down: the channels running may finish, no new one starts.
            self.reject_channel(event, c.SSH_OPEN_ADMINISTRATIVELY_PROHIBITED)
            return
        d = self.call_hook(
            self.server.check_channel_request,
            event.kind,
            event.peer_id,
            denied=c.SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
        )

        def decided(code: object) -> None:
            if self.connection is None or self.core is None or self.core.closed:
                return
            if is_code(code, c.SSH_OPEN_CONNECT_SUCCESS):
                opener = self.factory.channel_openers.get(event.kind)
                if opener is not None:
                    opener(self, event)
                else:
                    self.accept_channel(event)
            else:
                self.reject_channel(event, code)

        d.addCallback(decided)

    def accept_channel(self, event: ev.ChannelOpenRequested) -> Channel | None:
        """Confirm a channel the peer asked for; returns the new ``Channel``."""
        if self.connection is None:
            return None
        local_id = self.connection.accept_open(event.peer_id)
        audit.channel_forward(self, event, "ok")
        channel = Channel(self, local_id, event.kind)
        self._channels[local_id] = channel
        self.flush()
        self.call_hook(self.server.on_channel_opened, channel, denied=None)
        return channel

    def reject_channel(self, event: ev.ChannelOpenRequested, code: object) -> None:
        if self.connection is None:
            return
        reason = (
            code if is_code(code, *_OPEN_FAILURE_TEXT) else c.SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
        )
        self.connection.reject_open(event.peer_id, reason, _OPEN_FAILURE_TEXT[reason])
        self.flush()
        audit.channel_refused(self, event, _OPEN_FAILURE_TEXT[reason])

    def _on_channel_request(self, event: ev.ChannelRequestReceived) -> None:
        if self._too_fast():
            return
        channel = self._channels.get(event.channel_id)
        if channel is not None:
            handle_channel_request(self, channel, event)

    def channel_reply(self, channel: Channel, want_reply: bool, success: bool) -> None:
        if want_reply and self.connection is not None:
            self.connection.channel_reply(channel.channel_id, success)
            self.flush()

    def _on_channel_data(self, event: ev.ChannelDataReceived) -> None:
        channel = self._channels.get(event.channel_id)
        if channel is not None:
            channel.data_received(event.data, event.stream)

    def _on_channel_eof(self, event: ev.ChannelEOFReceived) -> None:
        channel = self._channels.get(event.channel_id)
        if channel is not None:
            channel.eof_received_from_peer()

    def _on_channel_closed(self, event: ev.ChannelClosed) -> None:
        channel = self._channels.pop(event.channel_id, None)
        if channel is None:
            return
        if event.error:
            log.info(
                "channel {id} of {peer} dropped: {error}",
                id=event.channel_id,
                peer=self.peer,
                error=event.error,
            )
        channel.closed_by_connection(event.error)
        self.call_hook(self.server.on_channel_closed, channel, denied=None)

    def _on_channel_writable(self, event: ev.ChannelWritable) -> None:
        channel = self._channels.get(event.channel_id)
        if channel is not None:
            channel.writable()

    # --- called by Channel objects (reactor thread) --------------------------------------------

    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def channel_send(self, channel_id: int, parts: Sequence[bytes], stream: int) -> None:
        if sum(map(len, parts)) >= _BULK_WRITE:
            self._bulk()
        if self.connection is not None:
            self.connection.send_parts(channel_id, parts, stream)
            self.flush()

    def channel_buffered(self, channel_id: int) -> int:
        if self.connection is None:
            return 0
        return self.connection.buffered(channel_id)

    def channel_consumed(self, channel_id: int, count: int) -> None:
        if self.connection is not None:
            self.connection.consume(channel_id, count)
            self.flush()

    def channel_request_out(self, channel_id: int, name: str, data: bytes) -> None:
        if name in ("exit-status", "exit-signal") and channel_id in self._channels:
            audit.exited(self, self._channels[channel_id], name, data)
        if self.connection is not None:
            self.connection.send_request(channel_id, name, data)
            self.flush()

    def channel_eof_out(self, channel_id: int) -> None:
        if self.connection is not None:
            self.connection.send_eof(channel_id)
            self.flush()

    def channel_close_out(self, channel_id: int) -> None:
        if self.connection is not None:
            self.connection.close_channel(channel_id)
            self.flush()

    def open_channel(self, kind: str, data: bytes) -> Channel | None:
        """Open a channel towards the client (forwarded-tcpip)."""
        if self.connection is None:
            return None
        local_id = self.connection.open_channel(kind, data)
        # Ours to open: the peer has yet to confirm it (ChannelOpened).
        channel = Channel(self, local_id, kind, confirmed=False)
        self._channels[local_id] = channel
        self.flush()
        return channel

    def _on_channel_opened(self, event: ev.ChannelOpened) -> None:
        channel = self._channels.get(event.channel_id)
        if channel is not None:
            channel.opened()

    def _on_channel_open_failed(self, event: ev.ChannelOpenFailed) -> None:
        channel = self._channels.pop(event.channel_id, None)
        if channel is not None:
            channel.closed_by_connection(f"open failed: {event.description}")


_EVENT_HANDLERS: dict[type, Callable[[SSHServerProtocol, Any], None]] = {
    ev.ConnectionFailed: SSHServerProtocol._on_failed,
    ev.PeerDisconnected: SSHServerProtocol._on_peer_disconnect,
    ev.VersionReceived: SSHServerProtocol._on_version,
    ev.KeyExchangeCompleted: SSHServerProtocol._on_kex,
    ev.GlobalRequestReceived: SSHServerProtocol._on_global_request,
    ev.ChannelOpenRequested: SSHServerProtocol._on_channel_open,
    ev.ChannelOpened: SSHServerProtocol._on_channel_opened,
    ev.ChannelOpenFailed: SSHServerProtocol._on_channel_open_failed,
    ev.ChannelRequestReceived: SSHServerProtocol._on_channel_request,
    ev.ChannelDataReceived: SSHServerProtocol._on_channel_data,
    ev.ChannelEOFReceived: SSHServerProtocol._on_channel_eof,
    ev.ChannelClosed: SSHServerProtocol._on_channel_closed,
    ev.ChannelWritable: SSHServerProtocol._on_channel_writable,
}
