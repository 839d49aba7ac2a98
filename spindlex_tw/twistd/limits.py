"""The limit options of ``twistd spindlex``: every limit the library has, settable.

Each option is read as sshd reads its counterpart where one exists
(``--max-startups`` is ``MaxStartups start:rate:full``); a bad value raises
``usage.UsageError`` naming the option and the value, which twistd turns
into one line and exit status 2. docs/twistd.md lists each default beside
OpenSSH's and SFTPGo's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

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
        "Bytes of SFTP requests and replies in progress per session (K, M, G suffixes) "
        "before the server stops reading more from that client.",
    ],
    [
        "sftp-max-requests",
        None,
        str(_SFTP_DEFAULTS.max_outstanding_requests),
        "SFTP requests in progress per session before the server stops reading more.",
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


def apply(options: usage.Options, settings: ServerSettings) -> SftpLimits:
    """Put the connection limits in ``settings``; returns the SFTP ones."""
    settings.max_connections_per_source = _count(
        "max-connections-per-source", str(options["max-connections-per-source"])
    )
    settings.max_startups = _startups("max-startups", str(options["max-startups"]))
    settings.max_startups_per_source = _count(
        "max-startups-per-source", str(options["max-startups-per-source"])
    )
    settings.channels = replace(
        settings.channels, max_channels=_count("max-channels", str(options["max-channels"]))
    )
    rate, burst = _rate("max-request-rate", str(options["max-request-rate"]))
    settings.max_requests_per_second = rate
    settings.max_requests_burst = burst
    settings.max_forward_listeners = _count(
        "max-forward-listeners", str(options["max-forward-listeners"])
    )
    settings.forward_connect_timeout = _seconds(
        "forward-connect-timeout", str(options["forward-connect-timeout"])
    )
    settings.hook_timeout = _seconds("hook-timeout", str(options["hook-timeout"]))
    return SftpLimits(
        max_open_handles=_count("sftp-max-handles", str(options["sftp-max-handles"])),
        max_outstanding_bytes=_size("sftp-max-inflight", str(options["sftp-max-inflight"])),
        max_outstanding_requests=_count("sftp-max-requests", str(options["sftp-max-requests"])),
    )
