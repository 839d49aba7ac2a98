"""Framing, attributes, longnames and replies; random input never breaks the session."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.wire import Reader, uint32
from spindlex_tw.sftp import codes, replies
from spindlex_tw.sftp.attrs import Attrs, encode_stat
from spindlex_tw.sftp.framing import FramingError, PacketBuffer
from spindlex_tw.sftp.longname import longname
from tests.sftp.sansio import Driver, packet

REPLY_KINDS = {
    codes.SSH_FXP_STATUS,
    codes.SSH_FXP_HANDLE,
    codes.SSH_FXP_DATA,
    codes.SSH_FXP_NAME,
    codes.SSH_FXP_ATTRS,
    codes.SSH_FXP_EXTENDED_REPLY,
}


def _frames(*payloads: bytes) -> bytes:
    return b"".join(uint32(len(p)) + p for p in payloads)


def test_packet_buffer_any_chunking() -> None:
    payloads = [b"\x10" + bytes(range(i, i + 4 + i)) for i in range(1, 40)]
    stream = _frames(*payloads)
    for size in (1, 2, 3, 5, 7, 64, len(stream)):
        buf = PacketBuffer(1000)
        got = []
        for i in range(0, len(stream), size):
            buf.feed(stream[i : i + size])
            while (p := buf.next_packet()) is not None:
                got.append(bytes(p))
        assert got == payloads
        assert len(buf) == 0


def test_whole_packet_in_one_chunk_is_not_copied() -> None:
    data = _frames(b"\x06" + b"x" * 5000)
    buf = PacketBuffer(10_000)
    buf.feed(data)
    packet_view = buf.next_packet()
    assert isinstance(packet_view, memoryview) and packet_view.obj is data


def test_mutable_input_is_copied() -> None:
    data = bytearray(_frames(b"\x06abcd"))
    buf = PacketBuffer(100)
    buf.feed(data)  # type: ignore[arg-type]
    data[5:] = b"zzzz"
    assert bytes(buf.next_packet() or b"") == b"\x06abcd"


@pytest.mark.parametrize("length", [0, 4, 1001])
def test_bad_lengths_are_framing_errors(length: int) -> None:
    buf = PacketBuffer(1000)
    buf.feed(uint32(length) + b"\x01" * 8)
    with pytest.raises(FramingError):
        buf.next_packet()


def test_attrs_roundtrip() -> None:
    full = Attrs(
        size=1 << 40,
        uid=1,
        gid=2,
        permissions=0o100644,
        atime=3,
        mtime=4,
        extended=((b"k", b"v"),),
    )
    for attrs in (Attrs(), Attrs(size=0), Attrs(permissions=0o755), full):
        reader = Reader(attrs.encode())
        assert Attrs.decode(reader) == attrs
        reader.done()
    # Half a pair is not sent.
    assert Attrs(uid=5).encode() == uint32(0)


def test_attrs_truncated() -> None:
    data = Attrs(size=1, uid=1, gid=1).encode()
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            Attrs.decode(Reader(data[:cut]))


def test_longname_layout() -> None:
    now = time.time()
    st = os.stat_result((stat.S_IFREG | 0o4755, 0, 0, 3, 0, 0, 123456, now, now - 60, now))
    line = longname(b"prog", st, "alice", "staff", now).decode()
    date = time.strftime("%b %e %H:%M", time.localtime(now - 60))
    assert line == f"-rwsr-xr-x    3 alice    staff      123456 {date} prog"
    old = now - 400 * 86400
    st = os.stat_result((stat.S_IFDIR | 0o700, 0, 0, 12, 0, 0, 4096, old, old, old))
    line = longname(b"dir", st, "a-very-long-user", "g", now).decode()
    year = time.strftime("%b %e  %Y", time.localtime(old))
    assert line == f"drwx------   12 a-very-long-user g            4096 {year} dir"


def test_status_reply_layout() -> None:
    (data,) = replies.status(7, 2)
    assert data == uint32(1 + 4 + 4 + 4 + 12 + 4) + bytes([101]) + uint32(7) + uint32(2) + (
        uint32(12) + b"No such file" + uint32(0)
    )


def test_data_reply_is_header_plus_payload() -> None:
    payload = b"p" * 100
    header, body = replies.data(3, payload)
    assert body is payload
    assert header == uint32(109) + bytes([103]) + uint32(3) + uint32(100)


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-root")


def _check_replies(drv: Driver) -> list[int]:
    kinds = []
    for reply in drv.replies():
        assert reply.kind in REPLY_KINDS
        kinds.append(reply.kind)
    return kinds


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_random_stream_gives_replies_or_a_framing_error(fuzz_root: Path, data: bytes) -> None:
    drv = Driver(fuzz_root)
    drv.init()
    drv.feed(data)
    _check_replies(drv)
    assert not drv.errors, drv.errors
    drv.session.connection_lost()
    drv.run()
    assert drv.session.finished


KNOWN = sorted(
    {
        codes.SSH_FXP_OPEN,
        codes.SSH_FXP_CLOSE,
        codes.SSH_FXP_READ,
        codes.SSH_FXP_WRITE,
        codes.SSH_FXP_LSTAT,
        codes.SSH_FXP_FSTAT,
        codes.SSH_FXP_SETSTAT,
        codes.SSH_FXP_FSETSTAT,
        codes.SSH_FXP_OPENDIR,
        codes.SSH_FXP_READDIR,
        codes.SSH_FXP_REMOVE,
        codes.SSH_FXP_MKDIR,
        codes.SSH_FXP_RMDIR,
        codes.SSH_FXP_REALPATH,
        codes.SSH_FXP_STAT,
        codes.SSH_FXP_RENAME,
        codes.SSH_FXP_READLINK,
        codes.SSH_FXP_SYMLINK,
        codes.SSH_FXP_EXTENDED,
    }
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from([*KNOWN, 0, 2, 21, 99, 255]),
    rid=st.integers(0, 2**32 - 1),
    body=st.one_of(
        st.binary(max_size=64),
        st.builds(
            lambda n, rest: uint32(len(n)) + n + rest,
            st.sampled_from(
                [
                    b"posix-rename@openssh.com",
                    b"statvfs@openssh.com",
                    b"copy-data",
                    b"users-groups-by-id@openssh.com",
                    b"expand-path@openssh.com",
                    b"lsetstat@openssh.com",
                ]
            ),
            st.binary(max_size=40),
        ),
    ),
)
def test_any_framed_request_gets_exactly_one_answer(
    fuzz_root: Path, kind: int, rid: int, body: bytes
) -> None:
    drv = Driver(fuzz_root)
    drv.init()
    drv.session.receive_data(packet(kind, uint32(rid), body))
    drv.run()
    replies_ = drv.replies()
    assert len(replies_) == 1 and replies_[0].kind in REPLY_KINDS
    assert replies_[0].request_id == rid
    assert not drv.errors, drv.errors
    assert drv.session.protocol_error is None
    drv.session.connection_lost()
    drv.run()
    assert drv.session.finished


@given(
    st.tuples(
        st.integers(0, 0o177777),
        st.integers(0, 2**32 + 5),
        st.integers(0, 2**32 + 5),
        st.integers(0, 2**63 - 1),
        st.floats(-(2.0**33), 2.0**34),
        st.floats(-(2.0**33), 2.0**34),
    )
)
def test_a_listing_entry_encodes_as_its_attrs(
    fields: tuple[int, int, int, int, float, float],
) -> None:
    mode, uid, gid, size, atime, mtime = fields
    # os.stat_result from a sequence: mode, ino, dev, nlink, uid, gid, size, then
    # the integer times, then the float times st_atime/st_mtime/st_ctime.
    result = os.stat_result(
        (mode, 1, 1, 1, uid, gid, size, int(atime), int(mtime), 0, atime, mtime, 0.0)
    )
    assert encode_stat(result) == Attrs.from_stat(result).encode()
