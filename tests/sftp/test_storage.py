"""spindlex_tw.fs.storage: telling a filesystem held in memory from a disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spindlex_tw.fs.storage import filesystem_type, in_memory
from spindlex_tw.server.sftp_server import SFTPServer


def _mountinfo(tmp_path: Path, lines: list[str]) -> str:
    table = tmp_path / "mountinfo"
    table.write_text("".join(line + "\n" for line in lines))
    return str(table)


def _device(path: Path) -> str:
    device = os.stat(path).st_dev
    return f"{os.major(device)}:{os.minor(device)}"


def test_the_type_comes_from_the_mount_with_the_same_device(tmp_path: Path) -> None:
    here = _device(tmp_path)
    table = _mountinfo(
        tmp_path,
        [
            "22 27 0:9999 / /proc rw,relatime - proc proc rw",
            # Optional fields before the separator do not shift the type.
            f"25 24 {here} / /srv rw,relatime shared:7 master:1 - tmpfs tmpfs rw,size=10k",
        ],
    )
    assert filesystem_type(str(tmp_path), table) == "tmpfs"
    assert in_memory(str(tmp_path), table)


def test_a_disk_and_an_unknown_device_are_not_memory(tmp_path: Path) -> None:
    here = _device(tmp_path)
    disk = _mountinfo(tmp_path, [f"25 24 {here} / / rw - ext4 /dev/sda1 rw"])
    assert filesystem_type(str(tmp_path), disk) == "ext4"
    assert not in_memory(str(tmp_path), disk)
    elsewhere = _mountinfo(tmp_path, ["25 24 0:9999 / /dev/shm rw - tmpfs tmpfs rw"])
    assert filesystem_type(str(tmp_path), elsewhere) is None
    assert not in_memory(str(tmp_path), elsewhere)


def test_an_unreadable_table_or_missing_path_is_unknown(tmp_path: Path) -> None:
    assert filesystem_type(str(tmp_path), str(tmp_path / "absent")) is None
    assert filesystem_type(str(tmp_path / "absent")) is None


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_dev_shm_is_memory_on_this_machine() -> None:
    assert in_memory("/dev/shm")


def test_a_bad_disk_io_setting_is_refused_by_name(tmp_path: Path) -> None:
    class Odd(SFTPServer):
        disk_io = "fast"

    class Channel:
        def attach_protocol(self, protocol: object) -> None:
            raise AssertionError("attached despite a bad setting")

    with pytest.raises(ValueError, match="'fast'"):
        Odd(Channel(), str(tmp_path))
