"""The identification-string exchange of RFC 4253 section 4.2."""

from __future__ import annotations

from dataclasses import dataclass

from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.protocol.constants import (
    SSH_DISCONNECT_PROTOCOL_ERROR,
    SSH_DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED,
)

SOFTWARE_VERSION = "spindlex_tw_0.1"


@dataclass(frozen=True)
class VersionLimits:
    max_line: int = 255  # RFC 4253: the identification line, CR LF included
    max_prelude_lines: int = 20  # other lines a peer may send before it


class VersionError(ProtocolError):
    """The peer's identification was unusable.

    No binary packet protocol is agreed yet, so the adapter answers with
    :attr:`reply` as a plain text line (as OpenSSH does) and closes.
    """

    def __init__(self, description: str, reason: int, reply: bytes) -> None:
        super().__init__(description, reason)
        self.reply = reply


class VersionExchange:
    """Collects the peer's identification line from the first bytes it sends."""

    def __init__(self, limits: VersionLimits) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._prelude_lines = 0
        self.peer_version: bytes | None = None

    def feed(self, data: bytes) -> bytes | None:
        """Consume ``data``; once the identification line is complete, return the bytes after it."""
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self._limits.max_line:
                    raise self._bad("identification line too long")
                return None
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) + 2 > self._limits.max_line:
                raise self._bad("identification line too long")
            if line.startswith(b"SSH-"):
                self._check(line)
                self.peer_version = line
                rest = bytes(self._buffer)
                self._buffer.clear()
                return rest
            self._prelude_lines += 1
            if self._prelude_lines > self._limits.max_prelude_lines:
                raise self._bad("too many lines before the identification line")

    def _check(self, line: bytes) -> None:
        parts = line.split(b"-", 2)
        if len(parts) < 3 or not parts[2]:
            raise self._bad("malformed identification line")
        if parts[1] not in (b"2.0", b"1.99"):
            raise VersionError(
                f"unsupported protocol version {parts[1].decode('ascii', 'replace')!r}",
                SSH_DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED,
                b"Protocol major versions differ.\r\n",
            )
        if any(byte < 0x20 or byte > 0x7E for byte in line):
            raise self._bad("identification line has control characters")

    @staticmethod
    def _bad(description: str) -> VersionError:
        return VersionError(
            description, SSH_DISCONNECT_PROTOCOL_ERROR, b"Invalid SSH identification string.\r\n"
        )


def identification_line(software: str = SOFTWARE_VERSION) -> bytes:
    return b"SSH-2.0-" + software.encode("ascii") + b"\r\n"
