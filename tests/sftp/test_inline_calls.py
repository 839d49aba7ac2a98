"""Context.io places each call on the files: inline, tried first, or in a worker.

Inline calls finish inside ``receive_data`` with no job for the driver; the
replies they produce still count against the budget until the driver takes
them, so a burst of requests cannot pile replies up past it.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from spindlex_tw.core.wire import uint32, uint64
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.fs.storage import in_memory
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.context import INLINE, THREADS, TRY_FIRST, Limits
from spindlex_tw.sftp.effects import Blocking
from spindlex_tw.sftp.session import SftpSession
from tests.sftp.sansio import Defaults, packet, request, s

CHUNK = 32 * 1024


def _replies(data: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    while data:
        (length,) = struct.unpack(">I", data[:4])
        body, data = data[4 : 4 + length], data[4 + length :]
        out.append((body[0], int.from_bytes(body[1:5], "big"), body[5:]))
    return out


def _take(session: SftpSession) -> list[tuple[int, int, bytes]]:
    return _replies(b"".join(session.data_to_send()))


def _opened(session: SftpSession, name: str) -> bytes:
    session.receive_data(packet(codes.SSH_FXP_INIT, uint32(3)))
    session.receive_data(
        request(codes.SSH_FXP_OPEN, 1, name, uint32(codes.SSH_FXF_READ), uint32(0))
    )
    assert session.take_jobs() == []
    replies = _take(session)
    assert replies[-1][0] == codes.SSH_FXP_HANDLE, replies
    handle = replies[-1][2]
    return handle[4 : 4 + int.from_bytes(handle[:4], "big")]


def _reads(handle: bytes, first_id: int, count: int) -> bytes:
    return b"".join(
        request(codes.SSH_FXP_READ, first_id + i, s(handle), uint64(i * CHUNK), uint32(CHUNK))
        for i in range(count)
    )


def test_inline_calls_finish_inside_receive_data(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    session = SftpSession(LocalFileSystem(str(tmp_path)), Defaults(), file_calls=INLINE)
    handle = _opened(session, "/f")
    session.receive_data(_reads(handle, 10, 1))
    assert session.take_jobs() == []  # nothing for the driver: answered already
    ((kind, rid, body),) = _take(session)
    assert (kind, rid, body[4:]) == (codes.SSH_FXP_DATA, 10, b"abc")


def test_inline_replies_stay_within_the_budget(tmp_path: Path) -> None:
    content = os.urandom(CHUNK * 40)
    (tmp_path / "big").write_bytes(content)
    limits = Limits(max_outstanding_bytes=4 * CHUNK)
    session = SftpSession(LocalFileSystem(str(tmp_path)), Defaults(), limits, file_calls=INLINE)
    handle = _opened(session, "/big")
    # 40 READs in one burst, and the driver takes no reply meanwhile.
    session.receive_data(_reads(handle, 100, 40))
    assert session.take_jobs() == []
    assert not session.wants_input
    held = sum(len(part) for reply, _ in session._out for part in reply)
    # Replies pile up only until the budget is spent: one request more than fits, at most.
    assert held <= limits.max_outstanding_bytes + CHUNK + 1024, held
    got: dict[int, bytes] = {}
    for _ in range(200):
        for kind, rid, body in _take(session):
            assert kind == codes.SSH_FXP_DATA
            got[rid] = body[4:]
        session.take_jobs()
        if len(got) == 40:
            break
    assert b"".join(got[100 + i] for i in range(40)) == content
    assert session.wants_input


def _drive(session: SftpSession) -> int:
    """Run the session's jobs as a worker would, until it has none; how many there were."""
    ran = 0
    while jobs := session.take_jobs():
        for job in jobs:
            assert isinstance(job.effect, Blocking), job.effect
            session.complete(job, job.effect.function())
            ran += 1
    return ran


def test_try_first_uses_the_attempt_or_hands_the_call_to_a_worker(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"cached")
    (tmp_path / "f").read_bytes()  # in the page cache
    session = SftpSession(LocalFileSystem(str(tmp_path)), Defaults(), file_calls=TRY_FIRST)
    session.receive_data(packet(codes.SSH_FXP_INIT, uint32(3)))
    _take(session)
    # A directory listing has no call that promises not to wait: workers do it.
    session.receive_data(request(codes.SSH_FXP_OPENDIR, 1, "/"))
    assert _drive(session) >= 1
    ((kind, rid, _),) = _take(session)
    assert (kind, rid) == (codes.SSH_FXP_HANDLE, 1)
    # A READ of cached data is answered by its attempt, on the spot.
    session.receive_data(
        request(codes.SSH_FXP_OPEN, 2, "/f", uint32(codes.SSH_FXF_READ), uint32(0))
    )
    _drive(session)  # the OPEN may or may not find every name cached
    ((kind, _, body),) = _take(session)
    assert kind == codes.SSH_FXP_HANDLE
    handle = body[4 : 4 + int.from_bytes(body[:4], "big")]
    session.receive_data(_reads(handle, 3, 1))
    if in_memory(str(tmp_path)):
        pytest.skip("tmpfs has no reads that promise not to wait (RWF_NOWAIT)")
    assert _drive(session) == 0
    ((kind, rid, body),) = _take(session)
    assert (kind, rid, body[4:]) == (codes.SSH_FXP_DATA, 3, b"cached")


def test_threads_send_every_file_call_to_a_worker(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    (tmp_path / "f").read_bytes()
    session = SftpSession(LocalFileSystem(str(tmp_path)), Defaults(), file_calls=THREADS)
    handle_reply = None
    session.receive_data(packet(codes.SSH_FXP_INIT, uint32(3)))
    _take(session)
    session.receive_data(
        request(codes.SSH_FXP_OPEN, 2, "/f", uint32(codes.SSH_FXF_READ), uint32(0))
    )
    assert _drive(session) >= 1
    ((kind, _, handle_reply),) = _take(session)
    assert kind == codes.SSH_FXP_HANDLE
    handle = handle_reply[4 : 4 + int.from_bytes(handle_reply[:4], "big")]
    # Even a READ the page cache could answer goes to a worker.
    session.receive_data(_reads(handle, 3, 1))
    assert _drive(session) == 1
    ((kind, rid, body),) = _take(session)
    assert (kind, rid, body[4:]) == (codes.SSH_FXP_DATA, 3, b"x")
