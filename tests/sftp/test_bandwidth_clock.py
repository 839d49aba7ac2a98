"""Bandwidth limits on a task.Clock: the bucket's arithmetic and the SFTP driver's pauses, exact."""

from __future__ import annotations

import pytest
from twisted.internet import task

from spindlex_tw.core.wire import uint32, uint64
from spindlex_tw.fs.memory import MemoryFileSystem
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.attrs import Attrs
from spindlex_tw.sftp.bandwidth import Bandwidth, TokenBucket
from spindlex_tw.tx.sftp import SFTPProtocol
from tests.sftp.sansio import AllowAll, packet, request, s
from tests.sftp.test_tx import FakeChannel


def test_bucket_charges_into_debt_and_says_how_long() -> None:
    bucket = TokenBucket(1000, burst=100)
    assert bucket.take(100, 0.0) == 0.0  # the saved-up burst
    assert bucket.take(500, 0.0) == 0.5
    # Half a second later the debt is paid; the next 250 bytes cost a quarter second.
    assert bucket.take(250, 0.5) == 0.25
    # Idle for a long time: only the burst is saved up, not ten seconds' worth.
    assert bucket.take(100, 10.0) == 0.0
    assert bucket.take(1, 10.0) == 0.001


def test_one_bucket_shared_by_two_sessions_adds_their_debts() -> None:
    bucket = TokenBucket(1000, burst=0)
    assert bucket.take(500, 0.0) == 0.5
    assert bucket.take(500, 0.0) == 1.0


def _session(bandwidth: Bandwidth, clock: task.Clock) -> FakeChannel:
    channel = FakeChannel()
    tree = MemoryFileSystem()
    protocol = SFTPProtocol(
        AllowAll(), "/", reactor=clock, disk_io="inline", storage=lambda: tree, bandwidth=bandwidth
    )
    channel.attach_protocol(protocol)
    channel.send(packet(codes.SSH_FXP_INIT, uint32(3)))
    return channel


def _open(channel: FakeChannel, rid: int, pflags: int) -> bytes:
    channel.send(request(codes.SSH_FXP_OPEN, rid, "/f", uint32(pflags), Attrs().encode()))
    kind, body = channel.replies()[rid]
    assert kind == codes.SSH_FXP_HANDLE
    return body.string()


def test_upload_over_the_limit_pauses_input_for_exactly_the_debt() -> None:
    clock = task.Clock()
    bucket = TokenBucket(10_000, burst=0)
    channel = _session(Bandwidth(upload=bucket), clock)
    assert channel.input_paused  # INIT's 9 bytes already owe 0.9 ms
    clock.advance(0.0009)
    assert not channel.input_paused
    handle = _open(channel, 1, codes.SSH_FXF_WRITE | codes.SSH_FXF_CREAT)
    clock.advance(1)  # pay the OPEN's bytes and let the bucket sit at zero
    write = request(codes.SSH_FXP_WRITE, 2, s(handle), uint64(0), s(b"x" * 4971))
    assert len(write) == 5000
    channel.send(write)
    assert channel.replies()[2][0] == codes.SSH_FXP_STATUS
    # 5000 bytes at 10000 B/s: input held exactly half a second.
    assert channel.input_paused
    clock.advance(0.4999)
    assert channel.input_paused
    clock.advance(0.0001)
    assert not channel.input_paused


def _download_session(clock: task.Clock, size: int) -> tuple[FakeChannel, bytes]:
    """A session under a 1 MB/s download limit with no burst, holding ``size`` bytes in /f."""
    channel = _session(Bandwidth(download=TokenBucket(1_000_000, burst=0)), clock)
    clock.advance(1)  # VERSION's bytes paid
    channel.send(request(codes.SSH_FXP_OPEN, 1, "/f", uint32(WRITE_READ), Attrs().encode()))
    clock.advance(1)
    handle = channel.replies()[1][1].string()
    channel.send(request(codes.SSH_FXP_WRITE, 2, s(handle), uint64(0), s(b"y" * size)))
    clock.advance(1)
    assert channel.replies()[2][0] == codes.SSH_FXP_STATUS
    return channel, handle


WRITE_READ = codes.SSH_FXF_WRITE | codes.SSH_FXF_CREAT | codes.SSH_FXF_READ


def test_download_replies_leave_once_paid_for() -> None:
    """READs packed into one message (AsyncSSH, OpenSSH) do not all leave at once.

    Charged after sending, the last batch of a transfer would never be paid
    for; holding input alone would let every request already read through.
    """
    clock = task.Clock()
    channel, handle = _download_session(clock, 150_000)
    before = len(channel.data)
    channel.send(
        b"".join(
            request(codes.SSH_FXP_READ, rid, s(handle), uint64(0), uint32(150_000))
            for rid in (3, 4, 5)
        )
    )
    total = 3 * (150_000 + 13)  # length, type, id, data's length, data
    start = clock.seconds()
    assert len(channel.data) == before and channel.input_paused
    # Step from timer to timer: at no moment has more left than the limit paid for.
    while clock.getDelayedCalls():
        clock.advance(min(call.getTime() for call in clock.getDelayedCalls()) - clock.seconds())
        assert len(channel.data) - before <= (clock.seconds() - start) * 1_000_000 + 1e-3
    assert len(channel.data) - before == total
    assert clock.seconds() - start == pytest.approx(total / 1_000_000)
    assert sorted(channel.replies()) == [0, 1, 2, 3, 4, 5]
    assert not channel.input_paused


def test_eof_waits_for_the_replies_the_limit_holds() -> None:
    clock = task.Clock()
    channel, handle = _download_session(clock, 100_000)
    channel.send(request(codes.SSH_FXP_READ, 3, s(handle), uint64(0), uint32(100_000)))
    channel.protocol.readConnectionLost()
    assert not channel.lost and 3 not in channel.replies()
    clock.advance(1)
    assert channel.replies()[3][0] == codes.SSH_FXP_DATA and channel.lost


def test_without_limits_nothing_is_scheduled() -> None:
    clock = task.Clock()
    channel = _session(Bandwidth(), clock)
    _open(channel, 1, codes.SSH_FXF_WRITE | codes.SSH_FXF_CREAT)
    assert clock.getDelayedCalls() == [] and not channel.input_paused
