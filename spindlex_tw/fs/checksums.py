"""The checksum commands SFTP clients run over exec, answered from a :class:`FileSystem`.

rclone, and users checking a transfer by hand, run ``md5sum FILE`` (or
sha1sum, sha256sum, sha512sum) over an exec channel beside their SFTP
session. Answered by a shell, the command would read the host's file system,
not the user's SFTP view (their home, the memory storage, the jail), and the
sums would not match what SFTP served. This module answers them from the
same :class:`~spindlex_tw.fs.interface.FileSystem`, with no shell.

:func:`parse` accepts exactly the forms those clients send and nothing else:
``NAMEsum`` followed by file arguments (words quoted with ``'...'``,
``"..."`` or backslashes as a POSIX shell would read them, which is how
rclone escapes its paths), or ``NAMEsum`` alone (or with ``-``) to sum
standard input (rclone's probe, run with empty input). Any other character
a shell would act on (``$``, ``;``, ``|``, globs...) makes it not a
checksum command. :func:`run_command` (files, blocking) and
:class:`StdinSum` (fed as input arrives) then give coreutils' output:
``HEX  NAME`` per file, a line on standard error and exit status 1 for a
file it could not read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from spindlex_tw.fs.interface import FileSystem

#: The command names answered, and the hash each computes.
ALGORITHMS = {"md5sum": "md5", "sha1sum": "sha1", "sha256sum": "sha256", "sha512sum": "sha512"}
#: Exit status and message for a command line this module will not run (a shell's "not found").
NOT_FOUND = 127
#: Bytes hashed per read: large files are streamed, never held whole.
CHUNK = 256 * 1024
# Outside quotes, these would make a shell do something a file name cannot ask for.
_SPECIAL = set("$`;|&<>()*?[]{}~#!\n")


class NotAChecksumCommand(ValueError):
    """The line is not one of the accepted forms; the message is one line for stderr."""


@dataclass(frozen=True)
class ChecksumCommand:
    name: str
    #: The file arguments as the client wrote them; empty: sum standard input.
    files: tuple[bytes, ...]

    @property
    def reads_stdin(self) -> bool:
        return self.files in ((), (b"-",))


@dataclass(frozen=True)
class Result:
    stdout: bytes
    stderr: bytes
    status: int


def command_name(line: bytes) -> bytes:
    """The first word of an exec line, whether or not :func:`parse` would accept the rest."""
    words = line.split(None, 1)
    return words[0] if words else b""


def is_checksum_name(line: bytes) -> bool:
    return command_name(line).decode("ascii", "replace") in ALGORITHMS


def parse(line: bytes) -> ChecksumCommand:
    """The command ``line`` asks for; :class:`NotAChecksumCommand` if it is anything else."""
    words = _split(line)
    if not words or words[0].decode("ascii", "replace") not in ALGORITHMS:
        raise NotAChecksumCommand(f"{command_name(line).decode('utf-8', 'replace')}: not found")
    name = words[0].decode("ascii")
    files = tuple(words[1:])
    for word in files:
        if word.startswith(b"-") and word != b"-":
            raise NotAChecksumCommand(f"{name}: options are not supported")
    if b"-" in files and len(files) > 1:
        raise NotAChecksumCommand(f"{name}: standard input is summed alone, not with files")
    return ChecksumCommand(name, files)


def _split(line: bytes) -> list[bytes]:
    """Words as a POSIX shell splits them, for quotes and backslashes only."""
    words: list[bytes] = []
    word = bytearray()
    in_word = False
    i = 0
    text = line.decode("utf-8", "surrogateescape")
    while i < len(text):
        char = text[i]
        if char in " \t":
            if in_word:
                words.append(bytes(word))
                word.clear()
                in_word = False
            i += 1
            continue
        in_word = True
        if char == "\\":
            if i + 1 == len(text):
                raise NotAChecksumCommand("a trailing backslash escapes nothing")
            word += text[i + 1].encode("utf-8", "surrogateescape")
            i += 2
        elif char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise NotAChecksumCommand("unterminated quote")
            word += text[i + 1 : end].encode("utf-8", "surrogateescape")
            i = end + 1
        elif char == '"':
            i = _double_quoted(text, i + 1, word)
        elif char in _SPECIAL:
            raise NotAChecksumCommand(f"{char!r} is not accepted: no shell runs this command")
        else:
            word += char.encode("utf-8", "surrogateescape")
            i += 1
    if in_word:
        words.append(bytes(word))
    return words


def _double_quoted(text: str, i: int, word: bytearray) -> int:
    """Append the inside of a double-quoted string starting at ``i``; return the index after it."""
    while i < len(text):
        char = text[i]
        if char == '"':
            return i + 1
        if char in "$`":
            raise NotAChecksumCommand(f"{char!r} is not accepted: no shell runs this command")
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\$`':
            char = text[i + 1]
            i += 1
        word += char.encode("utf-8", "surrogateescape")
        i += 1
    raise NotAChecksumCommand("unterminated quote")


class StdinSum:
    """The sum of standard input, fed as it arrives (so it is never held whole)."""

    def __init__(self, command: ChecksumCommand) -> None:
        self._digest = hashlib.new(ALGORITHMS[command.name])

    def update(self, data: bytes) -> None:
        self._digest.update(data)

    def result(self) -> Result:
        return Result(_line(self._digest.hexdigest(), b"-"), b"", 0)


def run_command(command: ChecksumCommand, fs: FileSystem) -> Result:
    """Sum each file of ``command`` in ``fs`` (blocking; run it off the reactor).

    Paths are the client's SFTP paths, relative ones from the root of the view;
    a command that reads standard input is :class:`StdinSum`'s.
    """
    if command.reads_stdin:
        raise ValueError("standard input is summed by StdinSum")
    algorithm = ALGORITHMS[command.name]
    out: list[bytes] = []
    err: list[bytes] = []
    for name in command.files:
        try:
            digest = hashlib.new(algorithm)
            for chunk in _file_chunks(fs, name):
                digest.update(chunk)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            shown = name.decode("utf-8", "replace")
            err.append(f"{command.name}: {shown}: {reason}\n".encode())
            continue
        out.append(_line(digest.hexdigest(), name))
    return Result(b"".join(out), b"".join(err), 1 if err else 0)


def _file_chunks(fs: FileSystem, name: bytes) -> Iterable[bytes]:
    # A generator: the caller hashes chunk by chunk, so a large file is never held whole.
    file, _path = fs.open_path(name, b"/", True, os.O_RDONLY, None)
    try:
        offset = 0
        while True:
            chunk = fs.read(file, CHUNK, offset)
            if not chunk:
                return
            offset += len(chunk)
            yield chunk
    finally:
        fs.close_file(file)


def _line(hexdigest: str, name: bytes) -> bytes:
    # coreutils marks a name holding a backslash or a newline with a leading backslash.
    if b"\\" in name or b"\n" in name:
        escaped = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")
        return b"\\" + hexdigest.encode() + b"  " + escaped + b"\n"
    return hexdigest.encode() + b"  " + name + b"\n"


def refusal(message: str) -> Result:
    """What a line that is not an accepted checksum command gets: one stderr line, 127."""
    return Result(b"", f"{message}\n".encode(), NOT_FOUND)


__all__ = [
    "ALGORITHMS",
    "ChecksumCommand",
    "NotAChecksumCommand",
    "Result",
    "StdinSum",
    "is_checksum_name",
    "parse",
    "refusal",
    "run_command",
]
