"""twistd's text log for ``twistd spindlex``: ``--log-level`` and ``--log-sftp``.

twistd writes every event to its text log, debug ones included, and each
SFTP OPEN and CLOSE is an audit event: formatting and writing two lines per
file cost a fifth of the reactor thread in a many-small-files transfer. As
sshd (``LogLevel INFO``) and sftp-server (no per-file lines without ``-l
INFO``) do, the text log shows events from ``--log-level`` up (default
info) and SFTP operations only with ``--log-sftp``. Only that log leaves
them out: ``--audit-log``, ``--metrics`` and any observer a program adds to
``globalLogPublisher`` still get every event.

twistd builds its log observer before the plugin's service exists, but takes
an ``ILogObserver`` component of the application instead when one is set
(twisted's way for .tac files) and ``--logger`` is not given. So the
service sets one: twistd's own destination, worked out from twistd's
options as twistd does it (``--syslog``, ``--logfile``, ``-n``, the
daemon's ``twistd.log``), behind :class:`TextLogFilter`.

The ``--workers`` copies run ``twistd -n`` with the same spindlex options,
filtering alike, and reach the same destination (:class:`CopiesLog`): to
syslog or a ``--logger`` by themselves, given the same twistd options; to a
log file through this process, which writes the lines they print into its
own :class:`LogFile`, so that the file has one writer, one rotation and whole
lines; to standard output by sharing it.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.logger import (
    ILogObserver,
    LegacyLogObserverWrapper,
    LogLevel,
    textFileLogObserver,
)
from twisted.python import usage
from twisted.python.logfile import LogFile
from twisted.python.reflect import fullyQualifiedName, namedAny
from zope.interface import implementer

from spindlex_tw.twistd import startup
from spindlex_tw.tx.audit import NAMESPACE

FLAGS = [
    [
        "log-sftp",
        None,
        "Show SFTP file operations (open, close, remove, rename...) in twistd's text log, "
        "as sftp-server -l INFO does; --audit-log and --metrics get them either way.",
    ],
]

OPTIONS = [
    [
        "log-level",
        None,
        "info",
        "Lowest level twistd's text log shows, as sshd's LogLevel: debug, info, warn, "
        "error or critical.",
    ],
]

_LEVELS = list(LogLevel.iterconstants())


@dataclass(frozen=True)
class TextLogChoice:
    """What ``--log-level`` and ``--log-sftp`` ask of the text log."""

    level: LogLevel = LogLevel.info
    sftp: bool = False


def text_log_choice(options: Mapping[str, Any]) -> TextLogChoice:
    """The parsed ``--log-level`` and ``--log-sftp``; a bad level is a ``UsageError`` naming it."""
    name = str(options["log-level"])
    names = [level.name for level in _LEVELS]
    if name not in names:
        raise usage.UsageError(f"--log-level expects one of {', '.join(names)}, got {name!r}")
    return TextLogChoice(LogLevel.levelWithName(name), bool(options["log-sftp"]))


@implementer(ILogObserver)
class TextLogFilter:
    """Passes to ``observer`` the events at ``level`` and above, SFTP operations only if
    ``sftp``.

    Called for every event of the process: two dictionary look-ups and a set
    test, before any formatting.
    """

    def __init__(self, observer: Any, level: LogLevel, sftp: bool) -> None:
        self.observer = observer
        self._shown = frozenset(_LEVELS[_LEVELS.index(level) :])
        self._sftp = sftp

    def __call__(self, event: dict[str, Any]) -> None:
        # An event without a level (one handed to the publisher by hand) counts as
        # info, the level twisted.logger's text formatting assumes for it.
        if event.get("log_level", LogLevel.info) not in self._shown:
            return
        if (
            not self._sftp
            and event.get("audit_event") == "sftp"
            and event.get("log_namespace") == NAMESPACE
        ):
            return
        self.observer(event)


@dataclass(frozen=True)
class CopiesLog:
    """How the ``--workers`` copies log where this process does.

    They are started with the twistd options ``arguments`` (``--syslog``,
    ``--logger``) and log there themselves; or, with ``file``, their standard
    output is a pipe whose lines this process writes into ``file``; with
    neither, they share its standard output.
    """

    arguments: tuple[str, ...] = ()
    file: LogFile | None = None


def twistd_destination(twistd: Mapping[str, Any]) -> tuple[Any, CopiesLog]:
    """The observer twistd itself would log to, from twistd's own options ``twistd``,
    and how the ``--workers`` copies get there.

    The same choices as twistd's Unix logger: ``--syslog`` (with
    ``--prefix``); ``--logfile -``, or ``-n`` without ``--logfile``, to
    standard output (never for a daemon); otherwise ``--logfile FILE`` or
    ``twistd.log``, rotated on SIGUSR1 unless something else handles that
    signal.
    """
    if twistd.get("syslog"):
        from twisted.python import syslog

        prefix = twistd.get("prefix", "")
        legacy: Any = syslog.SyslogObserver(prefix).emit
        return LegacyLogObserverWrapper(legacy), CopiesLog(("--syslog", "--prefix", prefix))
    path = twistd.get("logfile") or ""
    foreground = bool(twistd.get("nodaemon"))
    if path == "-" and not foreground:
        raise usage.UsageError("--logfile -: a daemon cannot log to standard output; add -n")
    if path == "-" or (foreground and not path):
        return textFileLogObserver(sys.stdout), CopiesLog()
    path = path or "twistd.log"
    try:
        log_file = LogFile.fromFullPath(path)
    except OSError as exc:
        raise usage.UsageError(f"--logfile {path}: {exc.strerror or exc}") from exc
    if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGUSR1, _rotate_on_signal(log_file))
    return textFileLogObserver(log_file), CopiesLog(file=log_file)


def _rotate_on_signal(log_file: LogFile) -> Any:
    def rotate(signum: int, frame: Any) -> None:
        from twisted.internet import reactor

        # Not in the handler: the reactor thread may be writing to the file.
        reactor.callFromThread(log_file.rotate)

    return rotate


def for_twistd(options: Any, wanted: TextLogChoice) -> tuple[TextLogFilter | None, CopiesLog]:
    """The filtered text log for ``options`` parsed by twistd, or None to leave logging alone:
    options not from twistd (a .tac's own), or twistd's ``--logger`` (the user's observer wins);
    and how the ``--workers`` copies log there.
    """
    twistd = getattr(options, "parent", None)
    if twistd is None:
        return None, CopiesLog()
    if twistd.get("logger"):
        return None, _same_logger(twistd["logger"])
    try:
        destination, copies = twistd_destination(twistd)
    except usage.UsageError as exc:
        startup.fail(str(exc))
    return TextLogFilter(destination, wanted.level, wanted.sftp), copies


def _same_logger(factory: Any) -> CopiesLog:
    """The copies use ``--logger``'s factory too, named again from the object twistd imported;
    one that cannot be named so (not a module's attribute) leaves them on standard output."""
    try:
        name = fullyQualifiedName(factory)
        found = namedAny(name)
    except Exception:  # any import error of the user's module means: no name to pass on
        return CopiesLog()
    return CopiesLog(("--logger", name)) if found is factory else CopiesLog()
