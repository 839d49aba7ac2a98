"""Exec of md5sum, sha1sum, sha256sum and sha512sum, answered inside the user's SFTP view.

``DefaultServer`` sends an exec request here when its first word is one of
:data:`~spindlex_tw.fs.checksums.ALGORITHMS`, with or without ``--exec``
(as SFTPGo does): the sums are of the files SFTP serves the user (their
home, their storage, the jail), so they match what a client transferred.
The work runs on a worker thread, which uses the channel's blocking API
to read standard input and write the answer; the reactor never waits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from twisted.internet import threads
from twisted.logger import Logger

from spindlex_tw.fs import checksums

if TYPE_CHECKING:
    from spindlex_tw.twistd.users import Account
    from spindlex_tw.tx.channel import Channel

log = Logger(namespace="spindlex_tw.app")


def start(channel: Channel, line: bytes, account: Account | None) -> None:
    """Answer exec ``line`` on ``channel`` (already granted); ``account`` None: no SFTP view."""
    threads.deferToThread(_answer, channel, line, account).addErrback(
        lambda failure: log.failure("checksum command failed", failure)
    )


def _answer(channel: Channel, line: bytes, account: Account | None) -> None:
    try:
        command = checksums.parse(line)
    except checksums.NotAChecksumCommand as exc:
        result = checksums.refusal(str(exc))
    else:
        if account is None:
            result = checksums.refusal(f"{command.name}: no files are served to this user")
        else:
            fs = account.storage()
            try:
                result = checksums.run_command(command, fs, lambda: _stdin(channel))
            finally:
                fs.close()
    if result.stdout:
        channel.sendall(result.stdout)
    if result.stderr:
        channel.sendall_stderr(result.stderr)
    channel.send_exit_status(result.status)
    channel.send_eof()
    channel.close()


def _stdin(channel: Channel) -> Iterator[bytes]:
    while chunk := channel.recv(checksums.CHUNK):
        yield chunk
