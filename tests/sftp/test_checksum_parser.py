"""spindlex_tw.fs.checksums without a server: the strict parser and coreutils' output."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from spindlex_tw.fs import checksums
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.fs.memory import MemoryFileSystem


def _memory_with(files: dict[bytes, bytes]) -> MemoryFileSystem:
    fs = MemoryFileSystem()
    for name, data in files.items():
        handle, _ = fs.open_path(name, b"/", True, os.O_WRONLY, 0o644)
        fs.write(handle, data, 0)
        fs.close_file(handle)
    return fs


@pytest.mark.parametrize(
    ("line", "files"),
    [
        (b"md5sum", ()),
        (b"md5sum /a.txt", (b"/a.txt",)),
        (b"sha1sum a b", (b"a", b"b")),
        # rclone's escaping of a unix shell path: a backslash before each special byte.
        (b"sha256sum /dir/with\\ space\\ \\(1\\).bin", (b"/dir/with space (1).bin",)),
        (b"sha512sum 'it''s' \"q\\\"uote\"", (b"its", b'q"uote')),
        (b"md5sum 'new\nline'", (b"new\nline",)),
        (b"md5sum -", (b"-",)),
    ],
)
def test_accepted_forms(line: bytes, files: tuple[bytes, ...]) -> None:
    command = checksums.parse(line)
    assert command.files == files


@pytest.mark.parametrize(
    "line",
    [
        b"md5sum a; rm -rf /",
        b"md5sum $(id)",
        b"md5sum `id`",
        b'md5sum "$HOME"',
        b"md5sum *",
        b"md5sum a | cat",
        b"md5sum > out",
        b"md5sum --check sums",
        b"md5sum 'open",
        b"md5sum - file",
        b"cat /etc/passwd",
        b"",
    ],
)
def test_refused_forms(line: bytes) -> None:
    with pytest.raises(checksums.NotAChecksumCommand) as caught:
        checksums.parse(line)
    assert "\n" not in str(caught.value)


def test_sums_in_coreutils_format() -> None:
    fs = _memory_with({b"/a.txt": b"hello\n", b"/back\\slash": b"x"})
    result = checksums.run_command(checksums.parse(b"md5sum a.txt /back\\\\slash"), fs)
    assert result.status == 0 and result.stderr == b""
    assert result.stdout == (
        hashlib.md5(b"hello\n").hexdigest().encode()
        + b"  a.txt\n\\"
        + hashlib.md5(b"x").hexdigest().encode()
        + b"  /back\\\\slash\n"
    )


def test_standard_input_is_summed_as_it_arrives() -> None:
    for line in (b"sha1sum", b"sha1sum -"):
        command = checksums.parse(line)
        assert command.reads_stdin
        piped = checksums.StdinSum(command)
        piped.update(b"ab")
        piped.update(b"c\n")
        assert piped.result().stdout == hashlib.sha1(b"abc\n").hexdigest().encode() + b"  -\n"


def test_large_file_is_read_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(checksums.CHUNK * 3 + 17)
    (tmp_path / "big").write_bytes(data)
    reads: list[int] = []

    class CountingFileSystem(LocalFileSystem):
        @staticmethod
        def read(fd: int, length: int, offset: int) -> bytes:
            reads.append(length)
            return LocalFileSystem.read(fd, length, offset)

    fs = CountingFileSystem(str(tmp_path))
    result = checksums.run_command(checksums.parse(b"sha256sum big"), fs)
    assert result.stdout == hashlib.sha256(data).hexdigest().encode() + b"  big\n"
    assert set(reads) == {checksums.CHUNK} and len(reads) == 5


def test_errors_are_lines_and_status_one(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(b"ok")
    (tmp_path / "dir").mkdir()
    fs = LocalFileSystem(str(tmp_path))
    result = checksums.run_command(
        checksums.parse(b"md5sum missing dir ../../../etc/passwd ok"), fs
    )
    assert result.status == 1
    assert result.stdout == hashlib.md5(b"ok").hexdigest().encode() + b"  ok\n"
    assert result.stderr.decode().splitlines() == [
        "md5sum: missing: No such file or directory",
        "md5sum: dir: Is a directory",
        # The jail: .. stops at the root, so the host's /etc/passwd is not there.
        "md5sum: ../../../etc/passwd: No such file or directory",
    ]
