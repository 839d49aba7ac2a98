"""Atomic uploads: a file written under a hidden temporary name, renamed into place when done.

A client that is cut off in the middle of an upload must not leave a file
under the real name that looks complete and is not. A staged file is
created next to its target as ``.NAME.XXXXXXXXXXXX.part`` (hidden, unique,
in the same directory so the final ``rename`` is atomic and never crosses a
file system), written through its own descriptor, and then either committed
(renamed over the real name: readers see the old file or the whole new one,
never a part) or discarded (removed).

Replacing a file this way keeps its permission bits, but the new file
belongs to the server's user and is a new inode: hard links to the old one
keep the old content. The temporary name of a server killed outright
(SIGKILL, a power cut) stays behind; its ``.part`` suffix says what it is.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from spindlex_tw.fs.jail import Location

_OPEN_EXTRA = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
# Room for the prefix dot and the suffix below NAME_MAX (255 bytes on Linux).
_NAME_ROOM = 255 - len(b"..XXXXXXXXXXXX.part")


def temporary_name(name: bytes) -> bytes:
    """A hidden name for a staged copy of ``name``, random so two uploads never share it."""
    return b"." + name[:_NAME_ROOM] + b"." + os.urandom(6).hex().encode("ascii") + b".part"


def _replaced_mode(loc: Location, create_mode: int) -> int:
    """The mode of the file the upload will replace, or ``create_mode`` for a new name.

    Opening the existing file for writing (without truncating it) checks that
    the client could have overwritten it in place: a read-only file stays
    protected even though its directory would allow the rename.
    """
    try:
        fd = os.open(loc.name, os.O_WRONLY | _OPEN_EXTRA, dir_fd=loc.dir_fd)
    except FileNotFoundError:
        return create_mode
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if stat.S_ISDIR(st.st_mode):
        raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.ENXIO, "not a regular file")
    return stat.S_IMODE(st.st_mode)


class StagedFile:
    """An upload in progress to ``name`` in the directory ``dir_fd``, written to ``fd``."""

    __slots__ = ("dir_fd", "fd", "name", "temporary")

    def __init__(self, dir_fd: int, fd: int, name: bytes, temporary: bytes) -> None:
        self.dir_fd = dir_fd
        self.fd = fd
        self.name = name
        self.temporary = temporary

    @classmethod
    def create(cls, loc: Location, flags: int, create_mode: int) -> StagedFile:
        """Stage a write of ``loc``; ``flags`` are the O_* access bits of the OPEN.

        The temporary starts empty, which is what the truncating OPEN this
        stands for would give.
        """
        mode = _replaced_mode(loc, create_mode)
        opening = (flags & (os.O_WRONLY | os.O_RDWR)) | os.O_CREAT | os.O_EXCL | _OPEN_EXTRA
        dir_fd = os.dup(loc.dir_fd)  # the location is closed after OPEN; the upload outlives it
        try:
            for _ in range(8):
                temporary = temporary_name(loc.name)
                try:
                    fd = os.open(temporary, opening, 0o600, dir_fd=dir_fd)
                    break
                except FileExistsError:
                    continue
            else:
                raise OSError(errno.EEXIST, "no free temporary name")
            try:
                # Exactly the mode asked for (or kept), whatever the umask says.
                os.fchmod(fd, mode & 0o7777)
            except BaseException:
                os.close(fd)
                os.unlink(temporary, dir_fd=dir_fd)
                raise
        except BaseException:
            os.close(dir_fd)
            raise
        return cls(dir_fd, fd, loc.name, temporary)

    def commit(self) -> None:
        """The upload is complete: close it and rename it over the real name."""
        try:
            os.close(self.fd)
            os.rename(self.temporary, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        except BaseException:
            self._remove_temporary()
            raise
        finally:
            os.close(self.dir_fd)

    def discard(self) -> None:
        """The upload ended without CLOSE: close and remove the temporary, keep the real name."""
        try:
            os.close(self.fd)
            self._remove_temporary()
        finally:
            os.close(self.dir_fd)

    def _remove_temporary(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temporary, dir_fd=self.dir_fd)
