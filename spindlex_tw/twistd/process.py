"""``--exec``: exec and shell requests run as real processes of the server's own user.

Each request becomes a child of ``reactor.spawnProcess`` bridged to its
channel: channel data to the child's stdin (EOF closes it), stdout and stderr
back as channel data and extended data, in a pseudo-terminal when the client
asked for one (set to the client's terminal modes, resized on
``window-change``). ``signal`` requests reach the child; its end is reported
as ``exit-status`` or ``exit-signal`` and the channel is closed. Flow control
holds both ways: a child that does not read stops the client's window, a
client that does not read pauses the child's output. When the channel goes
away first, the child gets SIGHUP, as a terminal hang-up would send.
"""

from __future__ import annotations

import fcntl
import os
import pty
import pwd
import signal
import struct
import termios
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet import error, interfaces, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from spindlex_tw.twistd import ttymodes

if TYPE_CHECKING:
    from spindlex_tw.tx.channel import Channel

log = Logger(namespace="spindlex_tw.process")

#: Signals a client may send (RFC 4254 section 6.10), by their names without "SIG".
SIGNALS: dict[str, signal.Signals] = {
    name: getattr(signal, "SIG" + name)
    for name in (
        "ABRT",
        "ALRM",
        "FPE",
        "HUP",
        "ILL",
        "INT",
        "KILL",
        "PIPE",
        "QUIT",
        "SEGV",
        "TERM",
        "USR1",
        "USR2",
    )
}
_SPAWN_FAILED_STATUS = 127


@dataclass
class ExecSettings:
    """Where and how commands run; the environment holds what every child gets."""

    cwd: str
    environment: dict[str, str] = field(default_factory=dict)


def base_environment() -> dict[str, str]:
    """The variables a login would set for the server's own user."""
    entry = pwd.getpwuid(os.getuid())
    home = os.environ.get("HOME", entry.pw_dir)
    env = {
        "USER": entry.pw_name,
        "LOGNAME": entry.pw_name,
        "HOME": home,
        "SHELL": entry.pw_shell or "/bin/sh",
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
    }
    for name in ("LANG", "TZ"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def login_shell() -> str:
    shell = pwd.getpwuid(os.getuid()).pw_shell
    return shell if shell and os.access(shell, os.X_OK) else "/bin/sh"


@implementer(interfaces.IPushProducer)
class _Throttle:
    """Lets a consumer pause and resume a producer, but never stop it.

    The child's pipes and the channel each end on their own terms; a closed
    stdin must not close the channel, nor a closed channel drop unread output.
    """

    def __init__(self, target: Any) -> None:
        self._target = target

    def pauseProducing(self) -> None:
        self._target.pauseProducing()

    def resumeProducing(self) -> None:
        self._target.resumeProducing()

    def stopProducing(self) -> None:
        """Ignored: see the class docstring."""


@implementer(interfaces.IHalfCloseableProtocol)
class _ChannelSide(protocol.Protocol):
    """Attached to the channel: the client's bytes and EOF go to the child."""

    def __init__(self, session: ProcessSession) -> None:
        self._session = session

    def dataReceived(self, data: bytes) -> None:
        self._session.input(data)

    def readConnectionLost(self) -> None:
        self._session.input_ended()

    def writeConnectionLost(self) -> None:
        """Our own EOF went out; nothing to do."""

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._session.channel_gone()


class ProcessSession(protocol.ProcessProtocol):
    """One child process serving one session channel."""

    def __init__(
        self, channel: Channel, executable: bytes, argv: list[bytes], env: dict[str, str], cwd: str
    ) -> None:
        self.channel = channel
        self._executable = executable
        self._argv = argv
        self._env = env
        self._cwd = cwd
        self._master_fd: int | None = None
        self._stdin: Any = None  # what the child's input is written to, for flow control
        self._ended = False
        self._channel_gone = False

    @property
    def uses_pty(self) -> bool:
        return self.channel.term is not None

    # --- starting ----------------------------------------------------------------------------

    def spawn(self, reactor: Any) -> None:
        """Start the child and connect it to the channel; a failure ends the channel."""
        env = dict(self._env)
        use_pty: Any = False
        if self.uses_pty:
            # Our own pty, so the window has the client's size before the child starts.
            master, slave = pty.openpty()
            self._master_fd = master
            ttymodes.apply(slave, self.channel.term_modes)
            _set_window_size(master, self.channel.term_size)
            env["TERM"] = self.channel.term or "vt100"
            env["SSH_TTY"] = os.ttyname(slave)
            use_pty = (master, slave, env["SSH_TTY"])
        try:
            reactor.spawnProcess(
                self, self._executable, self._argv, env=env, path=self._cwd, usePTY=use_pty
            )
        except OSError as exc:
            if use_pty:
                os.close(use_pty[0])
                os.close(use_pty[1])
                self._master_fd = None
            log.error("cannot start {argv}: {error}", argv=self._argv, error=exc)
            self.channel.send_stderr(f"cannot start the command: {exc.strerror}\r\n")
            self.channel.send_exit_status(_SPAWN_FAILED_STATUS)
            self.channel.close()
            return
        self.channel.attach_protocol(_ChannelSide(self))

    def connectionMade(self) -> None:
        transport = self._proc()
        self.channel.registerProducer(_Throttle(transport), True)
        stdin = transport if self.uses_pty else getattr(transport, "pipes", {}).get(0)
        if stdin is not None:
            stdin.registerProducer(_Throttle(self.channel), True)
            self._stdin = stdin

    def _proc(self) -> Any:
        # The process transport, typed loosely: zope interfaces confuse mypy.
        return self.transport

    # --- channel to child ----------------------------------------------------------------------

    def input(self, data: bytes) -> None:
        if not self._ended and self.transport is not None:
            self._proc().write(data)

    def input_ended(self) -> None:
        # A pty has no separate stdin to close: the child would be hung up instead.
        if self._ended or self.uses_pty or self.transport is None:
            return
        if self._stdin is not None:
            # A pipe with a paused producer never closes once drained (it asks the
            # producer for more instead), so there must be no producer left.
            self._stdin.unregisterProducer()
            self._stdin = None
        self._proc().closeStdin()

    def channel_gone(self) -> None:
        self._channel_gone = True
        if not self._ended:
            self.signal("HUP")
            if self.transport is not None:
                self._proc().loseConnection()

    def resize(self, size: tuple[int, int, int, int]) -> None:
        if self._master_fd is not None and not self._ended:
            _set_window_size(self._master_fd, size)

    def signal(self, name: str) -> bool:
        """Deliver a client's ``signal`` request; False for unknown names or a finished child."""
        number = SIGNALS.get(name)
        if number is None or self._ended or self.transport is None:
            return False
        try:
            self._proc().signalProcess(int(number))
        except error.ProcessExitedAlready:
            return False
        return True

    # --- child to channel ----------------------------------------------------------------------

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if self._channel_gone:
            return
        if childFD == 2:
            self.channel.send_stderr(data)
        else:
            self.channel.write(data)

    def processEnded(self, reason: Failure) -> None:
        self._ended = True
        # Twisted closes the pty master itself (it owns it after spawning).
        self._master_fd = None
        if self._channel_gone:
            return
        value = reason.value
        # As sshd: EOF once the output is all out, then how the child ended, then CLOSE.
        self.channel.send_eof()
        signal_number = getattr(value, "signal", None)
        if signal_number is not None:
            core = bool(os.WCOREDUMP(getattr(value, "status", 0) or 0))
            self.channel.send_exit_signal(signal.Signals(signal_number).name[3:], core, "")
        else:
            self.channel.send_exit_status(getattr(value, "exitCode", 0) or 0)
        self.channel.close()


def _set_window_size(fd: int, size: tuple[int, int, int, int]) -> None:
    width, height, pixel_width, pixel_height = (min(max(v, 0), 0xFFFF) for v in size)
    winsize = struct.pack("HHHH", height, width, pixel_width, pixel_height)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, winsize)


def start(
    reactor: Any,
    channel: Channel,
    command: bytes | None,
    settings: ExecSettings,
    extra_env: dict[str, str],
) -> ProcessSession:
    """Run ``command`` (``None``: a login shell) for ``channel``."""
    shell = os.fsencode(login_shell())
    # A leading "-" in argv[0] is how a shell learns it is a login shell.
    argv = [b"-" + os.path.basename(shell)] if command is None else [shell, b"-c", command]
    env = {**settings.environment, **channel.environment, **extra_env}
    session = ProcessSession(channel, shell, argv, env, settings.cwd)
    session.spawn(reactor)
    return session
