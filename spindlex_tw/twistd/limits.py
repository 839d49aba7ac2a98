"""The limit options of ``twistd spindlex``: every limit the library has, settable.

Each option is read as sshd reads its counterpart where one exists
(``--max-startups`` is ``MaxStartups start:rate:full``); a bad value raises
``usage.UsageError`` naming the option and the value, which twistd turns
into one line and exit status 2. docs/twistd.md lists each default beside
OpenSSH's and SFTPGo's.

``--limits-file FILE`` holds ``name = value`` lines with the same names
(``max-connections-per-source = 200``); its values override the command
line's, at start and again on each SIGHUP (:mod:`.reload`). A file is used
whole or not at all: the first bad line is named in the one-line error.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from twisted.python import usage

from spindlex_tw.sftp.context import Limits
from spindlex_tw.tx.settings import ServerSettings

_SIZE = re.compile(r"(\d+)([kmg]?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}

_DEFAULTS = ServerSettings()
_SFTP_DEFAULTS = Limits()

#: twistd's optParameters rows for the limits: name, short, default, help.
OPTIONS: list[list[str | None]] = [
    [
        "max-connections-per-source",
        None,
        str(_DEFAULTS.max_connections_per_source),
        "Connections one client address may hold at once (raise it for many clients "
        "behind one NAT or load generator).",
    ],
    [
        "max-startups",
        None,
        ":".join(str(n) for n in _DEFAULTS.max_startups),
        "START:RATE:FULL, as sshd's MaxStartups: past START unauthenticated connections "
        "refuse new ones with RATE percent chance, rising to all at FULL (or one number N "
        "for N:100:N).",
    ],
    [
        "max-startups-per-source",
        None,
        str(_DEFAULTS.max_startups_per_source),
        "Unauthenticated connections one client address may hold, as sshd's PerSourceMaxStartups.",
    ],
    [
        "max-channels",
        None,
        str(_DEFAULTS.channels.max_channels),
        "Channels (sessions, forwards) open at once on one connection.",
    ],
    [
        "max-request-rate",
        None,
        f"{_DEFAULTS.max_requests_per_second:g}:{_DEFAULTS.max_requests_burst:g}",
        "RATE[:BURST]: global and channel requests and channel opens one connection may "
        "make per second on average, BURST of them at once; faster clients are "
        "disconnected.",
    ],
    [
        "max-forward-listeners",
        None,
        str(_DEFAULTS.max_forward_listeners),
        "Ports one connection may have listening for ssh -R at once.",
    ],
    [
        "forward-connect-timeout",
        None,
        f"{_DEFAULTS.forward_connect_timeout:g}",
        "Seconds an ssh -L/-D/-W connection to its destination may take.",
    ],
    [
        "hook-timeout",
        None,
        f"{_DEFAULTS.hook_timeout:g}",
        "Seconds an --app hook that answers later (Deferred, coroutine) may take; "
        "slower is a refusal.",
    ],
    [
        "sftp-max-handles",
        None,
        str(_SFTP_DEFAULTS.max_open_handles),
        "Files and directories one SFTP session may have open.",
    ],
    [
        "sftp-max-inflight",
        None,
        str(_SFTP_DEFAULTS.max_outstanding_bytes),
        "Bytes of SFTP requests and replies in progress per connection, all its SFTP "
        "sessions together (K, M, G suffixes) "
        "before the server stops reading more from that client.",
    ],
    [
        "sftp-max-requests",
        None,
        str(_SFTP_DEFAULTS.max_outstanding_requests),
        "SFTP requests in progress per connection before the server stops reading more.",
    ],
    [
        "limits-file",
        None,
        None,
        "File of NAME = VALUE lines naming the options above (max-channels = 200); "
        "its values override the command line's and are read again on SIGHUP.",
    ],
]


@dataclass(frozen=True)
class SftpLimits:
    """What the SFTP options set on each session (``SFTPServer``'s attributes)."""

    max_open_handles: int = _SFTP_DEFAULTS.max_open_handles
    max_outstanding_bytes: int = _SFTP_DEFAULTS.max_outstanding_bytes
    max_outstanding_requests: int = _SFTP_DEFAULTS.max_outstanding_requests


def _bad(name: str, text: str, expected: str) -> usage.UsageError:
    return usage.UsageError(f"--{name} expects {expected}, got {text!r}")


def _count(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise _bad(name, text, "a whole number of at least 1")
    return value


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise _bad(name, text, "a number of seconds above 0")
    return value


def _size(name: str, text: str) -> int:
    match = _SIZE.fullmatch(text)
    if match is None or int(match[1]) < 1:
        raise _bad(name, text, "a size such as 65536, 512K or 8M")
    return int(match[1]) * _SIZE_UNITS[match[2].lower()]


def _rate(name: str, text: str) -> tuple[float, float]:
    rate_text, sep, burst_text = text.partition(":")
    try:
        rate = float(rate_text)
        burst = float(burst_text) if sep else max(rate, 1.0) * 5
    except ValueError:
        rate = burst = math.nan
    if not (math.isfinite(rate) and math.isfinite(burst) and rate > 0 and burst >= 1):
        raise _bad(name, text, "RATE[:BURST] with RATE above 0 and BURST of at least 1")
    return rate, burst


def _startups(name: str, text: str) -> tuple[int, int, int]:
    parts = text.split(":")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        numbers = [numbers[0], 100, numbers[0]]
    if not (len(numbers) == 3 and 1 <= numbers[0] <= numbers[2] and 1 <= numbers[1] <= 100):
        raise _bad(name, text, "START:RATE:FULL with 1 <= START <= FULL and RATE 1-100, or N")
    start, rate, full = numbers
    return start, rate, full


#: How each limit option's text becomes its value (a bad one raises usage.UsageError).
_CONVERTERS: dict[str, Callable[[str, str], Any]] = {
    "max-connections-per-source": _count,
    "max-startups": _startups,
    "max-startups-per-source": _count,
    "max-channels": _count,
    "max-request-rate": _rate,
    "max-forward-listeners": _count,
    "forward-connect-timeout": _seconds,
    "hook-timeout": _seconds,
    "sftp-max-handles": _count,
    "sftp-max-inflight": _size,
    "sftp-max-requests": _count,
}


@dataclass(frozen=True)
class LimitValues:
    """Every limit, checked: put to use at once by :meth:`set_on` (nothing can fail there)."""

    values: dict[str, Any]

    def set_on(self, settings: ServerSettings) -> SftpLimits:
        """Put the connection limits in ``settings``; returns the SFTP ones.

        ``settings`` is the object the factory and its admission read: the
        per-source caps, MaxStartups, forward listeners and timeouts apply
        at their next use; the channel and request-rate limits are taken by
        each connection as it starts, so open connections keep theirs.
        """
        v = self.values
        settings.max_connections_per_source = v["max-connections-per-source"]
        settings.max_startups = v["max-startups"]
        settings.max_startups_per_source = v["max-startups-per-source"]
        # A new object, not a change in place: open connections hold the old one.
        settings.channels = replace(settings.channels, max_channels=v["max-channels"])
        settings.max_requests_per_second, settings.max_requests_burst = v["max-request-rate"]
        settings.max_forward_listeners = v["max-forward-listeners"]
        settings.forward_connect_timeout = v["forward-connect-timeout"]
        settings.hook_timeout = v["hook-timeout"]
        return SftpLimits(
            max_open_handles=v["sftp-max-handles"],
            max_outstanding_bytes=v["sftp-max-inflight"],
            max_outstanding_requests=v["sftp-max-requests"],
        )


def read(options: usage.Options) -> LimitValues:
    """The limits of the command line, overridden by ``--limits-file``'s lines.

    Raises :class:`usage.UsageError` with one line naming the bad value (and
    the file's line, for a value from the file).
    """
    values = {name: convert(name, str(options[name])) for name, convert in _CONVERTERS.items()}
    path = options["limits-file"]
    if path:
        values.update(_read_file(os.path.expanduser(path)))
    return LimitValues(values)


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read(1 << 20).splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise usage.UsageError(f"--limits-file {path}: {reason}") from exc
    values: dict[str, Any] = {}
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = (part.strip() for part in text.partition("="))
        where = f"--limits-file {path} line {number}"
        if not sep:
            raise usage.UsageError(f"{where}: expected NAME = VALUE, got {text!r}")
        convert = _CONVERTERS.get(name)
        if convert is None:
            raise usage.UsageError(f"{where}: {name!r} is not a limit option")
        try:
            values[name] = convert(name, value)
        except usage.UsageError as exc:
            raise usage.UsageError(f"{where}: {exc}") from exc
    return values


def apply(options: usage.Options, settings: ServerSettings) -> SftpLimits:
    """Put the connection limits in ``settings``; returns the SFTP ones."""
    return read(options).set_on(settings)
