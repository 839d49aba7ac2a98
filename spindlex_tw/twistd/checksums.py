"""Exec of md5sum, sha1sum, sha256sum and sha512sum, answered inside the user's SFTP view.

``DefaultServer`` sends an exec request here when its first word is one of
:data:`~spindlex_tw.fs.checksums.ALGORITHMS`, with or without ``--exec``
(as SFTPGo does): the sums are of the files SFTP serves the user (their
home, their storage, the jail), so they match what a client transferred.

Files are hashed on a worker thread, which never waits on the client;
standard input is hashed on the reactor as it arrives, so a client that
never sends EOF holds no thread (and so cannot starve the pool that
password checks use). Output goes out from the reactor once the sums are done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import interfaces, threads
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from zope.interface import implementer

from spindlex_tw.fs import checksums

if TYPE_CHECKING:
    from spindlex_tw.twistd.users import Account
    from spindlex_tw.tx.channel import Channel

log = Logger(namespace="spindlex_tw.app")


def start(channel: Channel, line: bytes, account: Account | None) -> None:
    """Answer exec ``line`` on ``channel`` (already granted); ``account`` None: no SFTP view."""
    if channel.closed:
        return
    try:
        command = checksums.parse(line)
    except checksums.NotAChecksumCommand as exc:
        _finish(channel, checksums.refusal(str(exc)))
        return
    if account is None:
        _finish(channel, checksums.refusal(f"{command.name}: no files are served to this user"))
    elif command.reads_stdin:
        channel.attach_protocol(_StdinSum(channel, checksums.StdinSum(command)))
    else:
        d = threads.deferToThread(_sum_files, command, account)
        d.addCallback(lambda result: _finish(channel, result))
        d.addErrback(_failed, channel)


def _sum_files(command: checksums.ChecksumCommand, account: Account) -> checksums.Result:
    fs = account.storage()
    try:
        return checksums.run_command(command, fs)
    finally:
        fs.close()


def _failed(failure: Any, channel: Channel) -> None:
    log.failure("checksum command failed", failure)
    _finish(channel, checksums.Result(b"", b"checksum failed on the server\n", 1))


def _finish(channel: Channel, result: checksums.Result) -> None:
    """Write the answer and close; on the reactor thread, so nothing here waits."""
    if channel.closed:
        return
    if result.stdout:
        channel.sendall(result.stdout)
    if result.stderr:
        channel.sendall_stderr(result.stderr)
    channel.send_exit_status(result.status)
    channel.send_eof()
    channel.close()


@implementer(interfaces.IHalfCloseableProtocol)
class _StdinSum(Protocol):
    """Standard input fed to the sum; the answer at EOF."""

    def __init__(self, channel: Channel, digest: checksums.StdinSum) -> None:
        self._channel = channel
        self._digest = digest

    def dataReceived(self, data: bytes) -> None:
        self._digest.update(data)

    def readConnectionLost(self) -> None:
        _finish(self._channel, self._digest.result())

    def writeConnectionLost(self) -> None:
        """Nobody reads the answer any more; the channel's close ends the rest."""
