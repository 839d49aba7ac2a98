"""``--rekey-limit BYTES[:SECONDS]``, read as OpenSSH reads its ``RekeyLimit``.

BYTES is a number with an optional K, M, G or T suffix (powers of 1024), or
``default``; SECONDS is an OpenSSH time (``90``, ``30m``, ``1h30m``; units s,
m, h, d, w), ``default``, or ``none`` for no re-key by time. A bare ``none``
is OpenSSH's ``default none``: the default volume, no re-key by time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spindlex_tw.core.transport import TransportConfig
from spindlex_tw.tx.settings import ServerSettings

_SIZE = re.compile(r"(\d+)([kmgt]?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_TIME_PART = re.compile(r"(\d+)([smhdw]?)", re.IGNORECASE)
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# OpenSSH refuses smaller volumes too: a key exchange every few packets is no limit.
_MIN_BYTES = 16


@dataclass(frozen=True)
class RekeyLimit:
    rekey_bytes: int
    rekey_seconds: float  # 0: no re-key by time

    def apply(self, settings: ServerSettings) -> None:
        settings.transport.rekey_bytes = self.rekey_bytes
        settings.rekey_seconds = self.rekey_seconds


def parse_rekey_limit(text: str) -> RekeyLimit:
    """The limit ``text`` names; ``ValueError`` saying what is wrong otherwise."""
    if text.lower() == "none":
        return RekeyLimit(TransportConfig.rekey_bytes, 0)
    volume, sep, interval = text.partition(":")
    seconds = ServerSettings.rekey_seconds
    if sep:
        seconds = _seconds(interval)
    return RekeyLimit(_bytes(volume), seconds)


def _bytes(text: str) -> int:
    if text.lower() == "default":
        return TransportConfig.rekey_bytes
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 512K, 1M or 1G")
    value = int(match[1]) * _SIZE_UNITS[match[2].lower()]
    if value < _MIN_BYTES:
        raise ValueError(f"{text!r} is below {_MIN_BYTES} bytes")
    return value


def _seconds(text: str) -> float:
    lowered = text.lower()
    if lowered == "none":
        return 0
    if lowered == "default":
        return ServerSettings.rekey_seconds
    parts = list(_TIME_PART.finditer(text))
    if not text or "".join(part[0] for part in parts) != text:
        raise ValueError(f"{text!r} is not a time such as 90, 30m or 1h30m")
    value = sum(int(part[1]) * _TIME_UNITS[part[2].lower()] for part in parts)
    if value <= 0:
        raise ValueError(f"{text!r} is not a time after which to re-key")
    return float(value)
