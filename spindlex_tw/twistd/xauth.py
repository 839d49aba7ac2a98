"""The X11 cookie of a forwarded display, written with ``xauth`` for an ``--exec`` program.

sshd runs ``xauth`` for the session, feeding it ``add unix:N.S PROTO COOKIE``
on standard input (the cookie never appears in a process listing). Here each
session gets its own authority file, in a directory only the server's user
may enter, named by ``XAUTHORITY`` in the program's environment and removed
when the session channel closes. Without ``xauth`` on the ``PATH`` the display
still works, for X servers that need no cookie, and a warning says so once.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from spindlex_tw.core.requests import X11Request
    from spindlex_tw.tx.channel import Channel

log = Logger(namespace="spindlex_tw.x11")

# What sshd accepts in an x11-req's protocol name and cookie (xauth_valid_string):
# anything else could end the line fed to xauth and add a command of its own.
_VALID = re.compile(r"[A-Za-z0-9._/-]+")
_XAUTH_TIMEOUT = 10.0

_warned = False


def valid_request(request: X11Request) -> bool:
    """Are the protocol name and cookie safe to hand to xauth?"""
    cookie = request.auth_cookie.decode("ascii", "replace")
    return bool(_VALID.fullmatch(request.auth_protocol) and _VALID.fullmatch(cookie))


class _Feed(protocol.ProcessProtocol):
    """Writes the commands to xauth's standard input; fires ``done`` with its exit code."""

    def __init__(self, commands: bytes) -> None:
        self._commands = commands
        self.done: defer.Deferred[int | None] = defer.Deferred()

    def connectionMade(self) -> None:
        process: Any = self.transport
        process.write(self._commands)
        process.closeStdin()

    def processEnded(self, reason: Failure) -> None:
        self.done.callback(getattr(reason.value, "exitCode", None))


async def authority_file(reactor: Any, channel: Channel) -> str | None:
    """Write the channel's X11 cookie to a private file; its path, or None if not written."""
    global _warned
    request, display = channel.x11_request, channel.x11_display
    if request is None or display is None:
        return None
    xauth = shutil.which("xauth")
    if xauth is None:
        if not _warned:
            _warned = True
            log.warn("xauth is not installed: X11 programs get no cookie (apt-get install xauth)")
        return None
    number = display.partition(":")[2]
    cookie = request.auth_cookie.decode("ascii")
    commands = f"add unix:{number} {request.auth_protocol} {cookie}\n".encode("ascii")
    feed = _Feed(commands)
    try:
        directory = tempfile.mkdtemp(prefix="spindlex-x11-")
        channel.on_close(lambda _channel: shutil.rmtree(directory, ignore_errors=True))
        path = os.path.join(directory, "Xauthority")
        process = reactor.spawnProcess(
            feed, xauth, [xauth, "-q", "-f", path, "-"], env={"PATH": os.defpath}
        )
    except OSError as exc:
        log.error(
            "xauth could not be run for display {display}: {error}", display=display, error=exc
        )
        return None
    try:
        code = await feed.done.addTimeout(_XAUTH_TIMEOUT, reactor)
    except defer.TimeoutError:
        process.signalProcess("KILL")
        code = None
    if code != 0:
        log.error("xauth could not add the X11 cookie for display {display}", display=display)
        return None
    return path
