"""The operations the sans-IO session reports to its driver for the audit trail."""

from __future__ import annotations

from pathlib import Path

from spindlex_tw.core.wire import uint32
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.protocol.constants import SSH_FX_BAD_MESSAGE, SSH_FX_OK
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.attrs import Attrs
from spindlex_tw.sftp.audit import Operation
from spindlex_tw.sftp.session import SftpSession
from tests.sftp.sansio import Driver, packet, s

R, W, C, T = codes.SSH_FXF_READ, codes.SSH_FXF_WRITE, codes.SSH_FXF_CREAT, codes.SSH_FXF_TRUNC


def recording(root: Path) -> tuple[Driver, list[Operation]]:
    records: list[Operation] = []
    drv = Driver(root)
    drv.session = SftpSession(
        LocalFileSystem(str(root)), drv.policy, drv.limits, drv.username, record=records.append
    )
    drv.init()
    return drv, records


def test_open_and_close_carry_flags_handle_and_bytes(tmp_path: Path) -> None:
    drv, records = recording(tmp_path)
    handle = drv.open("/f.bin", W | C | T)
    assert drv.write(handle, 0, b"x" * 1000)[0] == SSH_FX_OK
    assert drv.write(handle, 1000, b"y" * 24)[0] == SSH_FX_OK
    drv.read(handle, 0, 10)  # opened write-only: refused, nothing read
    assert drv.close(handle)[0] == SSH_FX_OK
    assert records == [
        Operation("open", "/f.bin", "ok", flags=("write", "creat", "trunc"), handle=handle.hex()),
        Operation("close", "/f.bin", "ok", handle=handle.hex(), bytes_read=0, bytes_written=1024),
    ]
    records.clear()
    handle = drv.open("/f.bin", R)
    assert drv.read(handle, 0, 4096).kind == codes.SSH_FXP_DATA
    drv.close(handle)
    assert records[-1].bytes_read == 1024 and records[-1].bytes_written == 0


def test_failures_carry_the_status_the_client_got(tmp_path: Path) -> None:
    drv, records = recording(tmp_path)
    drv.status(codes.SSH_FXP_OPEN, "/missing", uint32(R), Attrs().encode())
    drv.status(codes.SSH_FXP_RMDIR, "/missing")
    drv.status(codes.SSH_FXP_RENAME, "/missing", "/elsewhere")
    assert records == [
        Operation("open", "/missing", "no_such_file", flags=("read",)),
        Operation("rmdir", "/missing", "no_such_file"),
        Operation("rename", "/missing", "no_such_file", target="/elsewhere"),
    ]


def test_reads_of_names_are_not_reported(tmp_path: Path) -> None:
    drv, records = recording(tmp_path)
    (tmp_path / "d").mkdir()
    drv.call(codes.SSH_FXP_STAT, "/d")
    drv.call(codes.SSH_FXP_REALPATH, ".")
    drv.listdir("/d")
    assert records == []


def test_a_lost_session_closes_its_files(tmp_path: Path) -> None:
    drv, records = recording(tmp_path)
    handle = drv.open("/cut.bin", W | C | T)
    drv.write(handle, 0, b"z" * 10)
    drv.session.connection_lost()
    drv.run()
    assert records[-1] == Operation(
        "close",
        "/cut.bin",
        "connection_lost",
        handle=handle.hex(),
        bytes_read=0,
        bytes_written=10,
    )


def test_malformed_request_is_not_reported(tmp_path: Path) -> None:
    drv, records = recording(tmp_path)
    # A REMOVE whose path length runs past the packet.
    [reply] = drv.feed(packet(codes.SSH_FXP_REMOVE, uint32(7), uint32(99), b"ab"))
    assert reply.status()[0] == SSH_FX_BAD_MESSAGE
    assert records == []


def test_paths_that_are_not_utf8_are_escaped(tmp_path: Path) -> None:
    drv, records = recording(tmp_path)
    drv.status(codes.SSH_FXP_MKDIR, s(b"/caf\xe9"), Attrs().encode())
    assert records == [Operation("mkdir", "/caf\\xe9", "ok")]
