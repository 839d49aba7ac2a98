"""Unix-domain socket forwarding (OpenSSH PROTOCOL section 2.4): ``ssh -L``/``-R`` with paths.

- ``direct-streamlocal@openssh.com`` (``ssh -L ...:/remote.sock``): after
  ``check_channel_request`` accepted the kind, the application's
  ``check_channel_direct_streamlocal_request(chanid, path)`` decides; the
  server connects to the socket, and only then confirms the channel.
- ``streamlocal-forward@openssh.com`` (``ssh -R /remote.sock:...``): the
  application's ``check_streamlocal_forward_request(path)`` decides; the
  server listens on ``path`` and each connection accepted there opens a
  ``forwarded-streamlocal@openssh.com`` channel to the client.
  ``cancel-streamlocal-forward@openssh.com`` asks
  ``check_streamlocal_forward_cancel_request(path)``.

The socket a forward listens on is bound, set to mode 0600 and only then
listening, so no other user can ever connect to it (the effect of sshd's
umask 0177, without changing the process umask that the server's threads
share). A path that exists is replaced only if it is a socket that nobody
listens on any more (a stale one); anything else there (a file, a live
socket) refuses the forward. The socket is removed when the forward is
cancelled or the SSH connection ends; this is OpenSSH's
``StreamLocalBindUnlink yes`` limited to stale sockets.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, protocol
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.failure import Failure

from spindlex_tw.core.requests import (
    CancelStreamlocalForward,
    DirectStreamlocal,
    ForwardedStreamlocal,
    StreamlocalForward,
)
from spindlex_tw.tx.forwarding.bridge import SocketEnd
from spindlex_tw.tx.forwarding.inbound import AcceptingFactory, offer_channel
from spindlex_tw.tx.forwarding.outbound import ask_then_connect, bridge_connected, reject_open
from spindlex_tw.tx.forwarding.state import cancel_listener
from spindlex_tw.tx.hooks import call_hook

if TYPE_CHECKING:
    from spindlex_tw.core import events as ev
    from spindlex_tw.tx.forwarding.state import ConnectionForwards

log = Logger(namespace="spindlex_tw.forwarding")


# --- ssh -L to a socket path ----------------------------------------------------------------


def open_direct_streamlocal(forwards: ConnectionForwards, event: ev.ChannelOpenRequested) -> None:
    """Channel opener for ``direct-streamlocal@openssh.com``."""
    target = event.request
    if not isinstance(target, DirectStreamlocal):
        forwards.log_malformed("direct-streamlocal open", target)
        reject_open(forwards, event, "malformed direct-streamlocal request")
        return
    ask_then_connect(
        forwards,
        event,
        forwards.conn.server.check_channel_direct_streamlocal_request,
        (event.peer_id, target.path),
        lambda: _connect(forwards, event, target.path),
        f"direct-streamlocal to {target.path}",
    )


def _connect(forwards: ConnectionForwards, event: ev.ChannelOpenRequested, path: str) -> None:
    conn = forwards.conn
    timeout = forwards.settings.forward_connect_timeout
    endpoint = UNIXClientEndpoint(conn.reactor, path, timeout=timeout)
    factory: Any = protocol.Factory.forProtocol(SocketEnd)
    connecting = endpoint.connect(factory)
    forwards.track_connect(connecting)

    def connected(socket_end: SocketEnd) -> None:
        if bridge_connected(forwards, event, socket_end):
            log.debug("direct-streamlocal to {path} for {peer}", path=path, peer=conn.peer)

    def failed(failure: Failure) -> None:
        if forwards.closed:
            return  # cancelled because the SSH connection ended
        # Twisted's ConnectError carries the errno as ``osError``: the client reads its text.
        text = _describe(getattr(failure.value, "osError", None), "Connection failed")
        log.info(
            "direct-streamlocal to {path} for {peer} failed: {error}",
            path=path,
            peer=conn.peer,
            error=failure.getErrorMessage(),
        )
        reject_open(forwards, event, text)

    connecting.addCallbacks(connected, failed)


def _describe(error: object, fallback: str) -> str:
    """The text of an errno, or of an OSError, for a log line and the client."""
    number = error.errno if isinstance(error, OSError) else error
    return os.strerror(number) if isinstance(number, int) else fallback


# --- ssh -R from a socket path ----------------------------------------------------------------


class SocketListener:
    """The listening socket of one granted ``streamlocal-forward``."""

    def __init__(self, forwards: ConnectionForwards, path: str) -> None:
        self._forwards = forwards
        self.path = path
        self._port: Any = None

    def listen(self) -> str | None:
        """Listen on the path; None, or why it cannot be done."""
        problem = _clear_stale_socket(self.path)
        if problem is not None:
            return problem
        factory = AcceptingFactory(self._accepted)
        try:
            self._port = self._forwards.reactor.listenUNIX(self.path, factory, mode=0o600)
        except CannotListenError as exc:
            return _describe(exc.socketError, "cannot listen")
        return None

    def _accepted(self, socket_end: SocketEnd) -> None:
        if self._forwards.closed:
            socket_end.drop()
            return
        opening = ForwardedStreamlocal(self.path)
        offer_channel(self._forwards.conn, opening.NAME, opening.encode(), socket_end)

    def stop(self) -> None:
        """Stop listening; Twisted's port removes the socket file as it closes."""
        port, self._port = self._port, None
        if port is not None:
            stopped = defer.maybeDeferred(port.stopListening)
            stopped.addBoth(lambda _: log.info("socket {path} removed", path=self.path))


def _clear_stale_socket(path: str) -> str | None:
    """Remove a socket nobody listens on at ``path``; why not, if something else is there."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _describe(exc, "cannot use the path")
    if not stat.S_ISSOCK(mode):
        return "path exists and is not a socket"
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        # Only a refusal proves nobody listens: a socket we may not connect to
        # (EACCES) may well be someone's live one.
        stale = probe.connect_ex(path) == errno.ECONNREFUSED
    finally:
        probe.close()
    if not stale:
        return "a socket at that path is in use"
    try:
        os.unlink(path)
    except OSError as exc:
        return _describe(exc, "cannot use the path")
    return None


def handle_streamlocal_forward(
    forwards: ConnectionForwards, event: ev.GlobalRequestReceived
) -> None:
    """Global request handler: ask the hook, listen, reply."""
    conn = forwards.conn
    request = event.request
    if not isinstance(request, StreamlocalForward):
        forwards.log_malformed("streamlocal-forward", request)
        conn.global_reply(event, False)
        return
    path = request.path

    def refuse(reason: str) -> None:
        log.info(
            "streamlocal-forward {path} refused for {peer}: {reason}",
            path=path,
            peer=conn.peer,
            reason=reason,
        )
        conn.global_reply(event, False)

    limit = forwards.settings.max_forward_listeners
    if forwards.closed or forwards.listener_slots_used() >= limit or path in forwards.sockets:
        refuse("limit or duplicate")
        return
    forwards.reserved += 1
    decision = call_hook(
        conn.reactor,
        conn.server.check_streamlocal_forward_request,
        path,
        denied=False,
        timeout=forwards.settings.hook_timeout,
    )

    def decided(allowed: object) -> None:
        forwards.reserved -= 1
        if forwards.closed:
            return
        problem = "refused by the application" if allowed is not True else None
        if problem is None and path in forwards.sockets:
            problem = "duplicate"
        listener = SocketListener(forwards, path)
        if problem is None:
            problem = listener.listen()
        if problem is not None:
            refuse(problem)
            return
        forwards.sockets[path] = listener
        log.info("forwarding socket {path} for {peer}", path=path, peer=conn.peer, event="forward")
        conn.global_reply(event, True)

    decision.addCallback(decided)


def handle_cancel_streamlocal_forward(
    forwards: ConnectionForwards, event: ev.GlobalRequestReceived
) -> None:
    """Global request handler: stop (and remove) a socket this connection listens on."""
    conn = forwards.conn
    request = event.request
    if not isinstance(request, CancelStreamlocalForward):
        forwards.log_malformed("cancel-streamlocal-forward", request)
        conn.global_reply(event, False)
        return
    cancel_listener(
        forwards,
        event,
        forwards.sockets,
        request.path,
        conn.server.check_streamlocal_forward_cancel_request,
        (request.path,),
        "forwarding socket {path} cancelled by {peer}",
        path=request.path,
    )
