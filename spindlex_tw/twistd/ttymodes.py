"""Encoded terminal modes of a ``pty-req`` (RFC 4254 section 8) applied to a pty.

The client sends its own terminal's settings (interrupt character, echo,
CR/NL translation...) so that the remote terminal behaves like the local one.
Each opcode maps to one termios field; opcodes this system lacks are skipped,
as sshd does.
"""

from __future__ import annotations

import struct
import termios
from typing import Any

from twisted.logger import Logger

log = Logger(namespace="spindlex_tw.ttymodes")

TTY_OP_END = 0
TTY_OP_ISPEED = 128
TTY_OP_OSPEED = 129
_FIRST_UNDEFINED = 160  # RFC 4254: opcodes 160-255 are undefined and stop parsing

# termios.tcgetattr() list positions
_IFLAG, _OFLAG, _CFLAG, _LFLAG, _ISPEED, _OSPEED, _CC = range(7)
# Linux disables a special character with 0 (_POSIX_VDISABLE); SSH says 255.
_SSH_DISABLED = 255

# opcode -> (field, termios name); "cc" entries name a control character.
_MODES: dict[int, tuple[int, str]] = {
    1: (_CC, "VINTR"), 2: (_CC, "VQUIT"), 3: (_CC, "VERASE"), 4: (_CC, "VKILL"),
    5: (_CC, "VEOF"), 6: (_CC, "VEOL"), 7: (_CC, "VEOL2"), 8: (_CC, "VSTART"),
    9: (_CC, "VSTOP"), 10: (_CC, "VSUSP"), 11: (_CC, "VDSUSP"), 12: (_CC, "VREPRINT"),
    13: (_CC, "VWERASE"), 14: (_CC, "VLNEXT"), 15: (_CC, "VFLUSH"), 16: (_CC, "VSWTCH"),
    17: (_CC, "VSTATUS"), 18: (_CC, "VDISCARD"),
    30: (_IFLAG, "IGNPAR"), 31: (_IFLAG, "PARMRK"), 32: (_IFLAG, "INPCK"),
    33: (_IFLAG, "ISTRIP"), 34: (_IFLAG, "INLCR"), 35: (_IFLAG, "IGNCR"),
    36: (_IFLAG, "ICRNL"), 37: (_IFLAG, "IUCLC"), 38: (_IFLAG, "IXON"),
    39: (_IFLAG, "IXANY"), 40: (_IFLAG, "IXOFF"), 41: (_IFLAG, "IMAXBEL"),
    42: (_IFLAG, "IUTF8"),
    50: (_LFLAG, "ISIG"), 51: (_LFLAG, "ICANON"), 52: (_LFLAG, "XCASE"),
    53: (_LFLAG, "ECHO"), 54: (_LFLAG, "ECHOE"), 55: (_LFLAG, "ECHOK"),
    56: (_LFLAG, "ECHONL"), 57: (_LFLAG, "NOFLSH"), 58: (_LFLAG, "TOSTOP"),
    59: (_LFLAG, "IEXTEN"), 60: (_LFLAG, "ECHOCTL"), 61: (_LFLAG, "ECHOKE"),
    62: (_LFLAG, "PENDIN"),
    70: (_OFLAG, "OPOST"), 71: (_OFLAG, "OLCUC"), 72: (_OFLAG, "ONLCR"),
    73: (_OFLAG, "OCRNL"), 74: (_OFLAG, "ONOCR"), 75: (_OFLAG, "ONLRET"),
    92: (_CFLAG, "PARENB"), 93: (_CFLAG, "PARODD"),
}  # fmt: skip
# Character size: CS7 and CS8 replace the CSIZE bits rather than set a flag.
_SIZES = {90: "CS7", 91: "CS8"}


def decode(modes: bytes) -> list[tuple[int, int]]:
    """``[(opcode, value), ...]`` up to TTY_OP_END, an undefined opcode or the end."""
    result = []
    pos = 0
    while pos + 5 <= len(modes):
        opcode = modes[pos]
        if opcode == TTY_OP_END or opcode >= _FIRST_UNDEFINED:
            break
        (value,) = struct.unpack_from(">I", modes, pos + 1)
        result.append((opcode, value))
        pos += 5
    return result


def _apply_one(attrs: list[Any], opcode: int, value: int) -> None:
    if opcode in (TTY_OP_ISPEED, TTY_OP_OSPEED):
        speed = getattr(termios, f"B{value}", None)
        if speed is not None:
            attrs[_ISPEED if opcode == TTY_OP_ISPEED else _OSPEED] = speed
        return
    if opcode in _SIZES:
        size = getattr(termios, _SIZES[opcode])
        if value:
            attrs[_CFLAG] = (attrs[_CFLAG] & ~termios.CSIZE) | size
        return
    entry = _MODES.get(opcode)
    constant = getattr(termios, entry[1], None) if entry is not None else None
    if entry is None or constant is None:
        return
    field = entry[0]
    if field == _CC:
        char = 0 if value == _SSH_DISABLED else value & 0xFF
        attrs[_CC][constant] = bytes([char])
    elif value:
        attrs[field] |= constant
    else:
        attrs[field] &= ~constant


def apply(fd: int, modes: bytes) -> None:
    """Set the terminal at ``fd`` as the client's ``modes`` ask; errors are logged, not raised."""
    decoded = decode(modes)
    if not decoded:
        return
    try:
        attrs = termios.tcgetattr(fd)
        for opcode, value in decoded:
            _apply_one(attrs, opcode, value)
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (termios.error, OSError) as exc:
        log.warn("cannot apply the client's terminal modes: {error}", error=exc)
