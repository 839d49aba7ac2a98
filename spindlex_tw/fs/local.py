"""The local file system: a directory of this host, served through the
:class:`~spindlex_tw.fs.interface.FileSystem` interface.

All methods block and are meant for worker threads; they raise :class:`OSError`
and the SFTP layer maps its errno to a status. Paths arrive as
:class:`~spindlex_tw.fs.jail.Location` values and are acted on relative to
their directory descriptor without following links, so a name swapped for a
link after resolution is never followed out of the root. Open files are plain
descriptors used with ``pread``/``pwrite``, so concurrent requests on one
handle need no shared file position.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from collections.abc import Iterator

from spindlex_tw.fs import openat2
from spindlex_tw.fs.interface import CachedReadUnsupported, Capabilities, DirEntry, SetStat
from spindlex_tw.fs.jail import O_PATH, Jail, Location
from spindlex_tw.fs.storage import in_memory

__all__ = ["CachedReadUnsupported", "DirEntry", "DirStream", "LocalFileSystem", "SetStat"]

_OPEN_EXTRA = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
# Takes an entry to look at, never opens it: a FIFO or device is not opened.
_PROBE_FLAGS = O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
# Reopening a probed descriptor follows /proc's link to it: no O_NOFOLLOW there.
_REOPEN_EXTRA = os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
_SEEK_DATA = getattr(os, "SEEK_DATA", None)
_RWF_NOWAIT = getattr(os, "RWF_NOWAIT", 0) if hasattr(os, "preadv") else 0


def _unsupported() -> OSError:
    return OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))


class DirStream:
    """An open directory being listed: ``.`` and ``..`` first, then its entries."""

    __slots__ = ("_entries", "_scan", "fd", "is_root", "started")

    def __init__(self, fd: int, is_root: bool) -> None:
        self.fd = fd
        self.is_root = is_root
        self.started = False
        self._scan = os.scandir(fd)
        self._entries: Iterator[os.DirEntry[str]] = iter(self._scan)

    def next_entry(self) -> os.DirEntry[str] | None:
        return next(self._entries, None)

    def close(self) -> None:
        self._scan.close()
        os.close(self.fd)


class LocalFileSystem:
    """Disk access confined to one root directory (see :mod:`spindlex_tw.fs.jail`)."""

    def __init__(self, root: str) -> None:
        self.jail = Jail(root)
        # A directory on tmpfs or ramfs never waits on a device (see fs/storage.py).
        self.capabilities = Capabilities(never_waits=in_memory(self.jail.root))
        self._user_names: dict[int, str] = {}
        self._group_names: dict[int, str] = {}

    def close(self) -> None:
        self.jail.close()

    def host_path(self, virtual: bytes) -> str:
        return self.jail.host_path(virtual)

    def locate(self, path: bytes, base: bytes, follow: bool) -> Location:
        return self.jail.locate(path, base, follow)

    # --- files -----------------------------------------------------------------------------

    def open_path(
        self, path: bytes, base: bytes, follow: bool, flags: int, create_mode: int | None
    ) -> tuple[int, bytes]:
        """:meth:`locate` then :meth:`open_file` in one call: the descriptor and resolved path."""
        loc = self.locate(path, base, follow)
        try:
            return self.open_file(loc, flags, create_mode), loc.path
        finally:
            loc.close()

    def open_file(self, loc: Location, flags: int, create_mode: int | None) -> int:
        """Open a regular file; with ``create_mode``, create it (mode exactly that) if absent.

        ``flags`` are O_* access and O_APPEND/O_TRUNC/O_EXCL bits; O_EXCL with a
        create mode refuses an existing name.
        """
        flags |= _OPEN_EXTRA
        created = False
        if create_mode is None:
            fd = os.open(loc.name, flags, dir_fd=loc.dir_fd)
        elif flags & os.O_EXCL:
            fd = os.open(loc.name, flags | os.O_CREAT, 0o600, dir_fd=loc.dir_fd)
            created = True
        else:
            fd, created = self._open_or_create(loc, flags)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
            if not stat.S_ISREG(st.st_mode):
                # FIFOs and devices could block a worker forever or have side effects.
                raise OSError(errno.ENXIO, "not a regular file")
            if created and create_mode is not None:
                # Exactly the mode asked for, whatever the process umask says.
                os.fchmod(fd, create_mode & 0o7777)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_cached(
        self, path: bytes, base: bytes, follow: bool, flags: int
    ) -> tuple[int, bytes] | None:
        """:meth:`open_path` of a regular file for reading, if nothing can wait on the disk.

        None where it might wait, or where this cannot answer exactly as
        :meth:`open_path` would: then that runs on a worker and gives the answer
        (an error included). Every lookup is served from the kernel's caches
        (``RESOLVE_CACHED``) below the root without any link on the way. The
        entry is first taken by an ``O_PATH`` descriptor, which opens nothing,
        and only a regular file is then opened, through that descriptor: a FIFO
        or device is never opened here, even one renamed over the name
        meanwhile. A subclass with its own way of finding or opening files keeps it.
        """
        if flags != os.O_RDONLY or not openat2.cached_usable():
            return None
        cls = type(self)
        if (
            cls.open_path is not LocalFileSystem.open_path
            or cls.open_file is not LocalFileSystem.open_file
            or cls.locate is not LocalFileSystem.locate
        ):
            return None
        names = self.jail.plain_names(path, base)
        if names is None:
            return None
        relative = b"/".join(names)
        root = self.jail.root_fd
        try:
            probe = openat2.openat2(root, relative, _PROBE_FLAGS, openat2.BENEATH_CACHED)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(probe).st_mode):
                return None
            # Reopened through its descriptor, not by name again: the file opened is
            # the one just found regular, whatever is renamed over the name meanwhile
            # (a FIFO put there must never be opened on the event loop).
            fd = os.open(f"/proc/self/fd/{probe}", flags | _REOPEN_EXTRA)
        except OSError:
            return None  # no /proc here, or the kernel said no: the worker answers
        finally:
            os.close(probe)
        return fd, b"/" + relative

    @staticmethod
    def _open_or_create(loc: Location, flags: int) -> tuple[int, bool]:
        # Creating exclusively first tells us whether the file is new (and needs its mode);
        # an existing file is then opened as it is. Retry if it vanishes in between.
        for _ in range(8):
            try:
                fd = os.open(loc.name, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=loc.dir_fd)
                return fd, True
            except FileExistsError:
                pass
            try:
                return os.open(loc.name, flags, dir_fd=loc.dir_fd), False
            except FileNotFoundError:
                continue
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    @staticmethod
    def read(fd: int, length: int, offset: int) -> bytes:
        return os.pread(fd, length, offset)

    @staticmethod
    def read_cached(fd: int, length: int, offset: int) -> bytearray | None:
        """:meth:`read` if it cannot wait on the disk, else None (Linux ``RWF_NOWAIT``).

        The data comes from the page cache or not at all: a read the kernel
        would have to wait for fails at once, and so does a read only partly
        cached; a short read that reaches the end of the file is the answer.
        Raises :class:`CachedReadUnsupported` where the filesystem (tmpfs) or
        the system cannot read so. The buffer read into is the answer: a copy
        to bytes would be one more pass over every byte a download sends.
        """
        if not _RWF_NOWAIT:
            raise CachedReadUnsupported
        buffer = bytearray(length)
        try:
            got = os.preadv(fd, [buffer], offset, _RWF_NOWAIT)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise CachedReadUnsupported from exc
            raise
        if got == length:
            return buffer
        # Short: the end of the file (the whole rest was cached: a small file's
        # only READ), or only a cached part of the range, to be read in full.
        if got == 0 or offset + got >= os.fstat(fd).st_size:
            del buffer[got:]
            return buffer
        return None

    @staticmethod
    def write(fd: int, data: memoryview | bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            # With O_APPEND the kernel appends whatever the offset says.
            done = os.pwrite(fd, view, offset)
            if done <= 0:
                raise OSError(errno.EIO, "short write")
            view = view[done:]
            offset += done

    @staticmethod
    def close_file(fd: int) -> None:
        os.close(fd)

    def close_read_only(self, fd: int) -> bool | None:
        """Close ``fd``, opened only for reading, if that cannot wait on the disk; else None.

        Closing a descriptor nothing was written through writes nothing back.
        The close that does disk work is the last one of a file whose last
        name is gone (the file is freed then): that one is left to a worker,
        and so is every close of a subclass with a ``close_file`` of its own.
        """
        if type(self).close_file is not LocalFileSystem.close_file:
            return None
        if os.fstat(fd).st_nlink == 0:
            return None
        os.close(fd)
        return True

    @staticmethod
    def fstat(fd: int) -> os.stat_result:
        return os.fstat(fd)

    @staticmethod
    def fsync(fd: int) -> None:
        os.fsync(fd)

    @staticmethod
    def fstatvfs(fd: int) -> os.statvfs_result:
        return os.fstatvfs(fd)

    @staticmethod
    def fsetstat(fd: int, change: SetStat) -> None:
        if change.size is not None:
            os.ftruncate(fd, change.size)
        if change.permissions is not None:
            os.fchmod(fd, change.permissions & 0o7777)
        if change.times is not None:
            os.utime(fd, change.times)
        if change.owner is not None:
            os.fchown(fd, *change.owner)

    def copy_step(
        self, src: int, src_offset: int, end: int, dst: int, dst_offset: int, step: int
    ) -> int:
        """Copy the next piece of ``src`` below ``end``; returns how far it went (0 at the end).

        A piece is at most ``step`` bytes of data, or a whole hole of a sparse
        source: where the target ends before the hole, the hole is kept (the
        target grows by ftruncate and reads back as zeros) instead of written out,
        so a file made huge by SETSTAT copies in one step and takes no disk.
        """
        end = min(end, os.fstat(src).st_size)
        if src_offset >= end:
            return 0
        data = self._next_data(src, src_offset, end)
        if data > src_offset and dst_offset >= os.fstat(dst).st_size:
            hole = data - src_offset
            os.ftruncate(dst, dst_offset + hole)
            return hole
        chunk = os.pread(src, min(step, end - src_offset), src_offset)
        if chunk:
            self.write(dst, chunk, dst_offset)
        return len(chunk)

    @staticmethod
    def _next_data(fd: int, offset: int, end: int) -> int:
        """Where data starts at or after ``offset`` (``end`` if only a hole is left)."""
        if _SEEK_DATA is None:
            return offset
        try:
            return min(os.lseek(fd, offset, _SEEK_DATA), end)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a hole from here to the end of the file
                return end
            if exc.errno == errno.EINVAL:  # a filesystem that cannot tell: all data
                return offset
            raise

    # --- names -----------------------------------------------------------------------------

    @staticmethod
    def stat(loc: Location) -> os.stat_result:
        return os.stat(loc.name, dir_fd=loc.dir_fd, follow_symlinks=False)

    @staticmethod
    def setstat(loc: Location, change: SetStat) -> None:
        if change.size is not None:
            fd = os.open(loc.name, os.O_WRONLY | _OPEN_EXTRA, dir_fd=loc.dir_fd)
            try:
                os.ftruncate(fd, change.size)
            finally:
                os.close(fd)
        if change.permissions is not None:
            try:
                os.chmod(
                    loc.name,
                    change.permissions & 0o7777,
                    dir_fd=loc.dir_fd,
                    follow_symlinks=False,
                )
            except (NotImplementedError, ValueError):
                # Linux has no mode of its own for a link: refused, never followed.
                raise _unsupported() from None
        if change.times is not None:
            os.utime(loc.name, change.times, dir_fd=loc.dir_fd, follow_symlinks=False)
        if change.owner is not None:
            os.chown(loc.name, *change.owner, dir_fd=loc.dir_fd, follow_symlinks=False)

    @staticmethod
    def statvfs(loc: Location) -> os.statvfs_result:
        fd = os.open(loc.name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=loc.dir_fd)
        try:
            return os.fstatvfs(fd)
        finally:
            os.close(fd)

    @staticmethod
    def opendir(loc: Location) -> DirStream:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(loc.name, flags, dir_fd=loc.dir_fd)
        try:
            return DirStream(fd, is_root=not loc.parts)
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def read_dir(stream: DirStream, count: int) -> list[DirEntry]:
        """Up to ``count`` entries, ``lstat``-ed; an empty list at the end."""
        batch: list[DirEntry] = []
        if not stream.started:
            stream.started = True
            here = os.fstat(stream.fd)
            batch.append(DirEntry(b".", here))
            # The root's parent is itself: nothing above the root is ever shown.
            above = here if stream.is_root else os.stat(b"..", dir_fd=stream.fd)
            batch.append(DirEntry(b"..", above))
        while len(batch) < count:
            entry = stream.next_entry()
            if entry is None:
                break
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while listing
            batch.append(DirEntry(os.fsencode(entry.name), st))
        return batch

    @staticmethod
    def remove(loc: Location) -> None:
        os.unlink(loc.name, dir_fd=loc.dir_fd)

    @staticmethod
    def mkdir(loc: Location, mode: int) -> None:
        os.mkdir(loc.name, 0o700, dir_fd=loc.dir_fd)
        # Exactly the mode asked for, whatever the process umask says.
        os.chmod(loc.name, mode & 0o7777, dir_fd=loc.dir_fd, follow_symlinks=False)

    @staticmethod
    def rmdir(loc: Location) -> None:
        os.rmdir(loc.name, dir_fd=loc.dir_fd)

    @staticmethod
    def rename(old: Location, new: Location) -> None:
        """POSIX rename: replaces an existing ``new``."""
        os.rename(old.name, new.name, src_dir_fd=old.dir_fd, dst_dir_fd=new.dir_fd)

    @staticmethod
    def rename_no_replace(old: Location, new: Location) -> None:
        """Rename that fails with EEXIST if ``new`` exists, as OpenSSH's SSH_FXP_RENAME.

        A regular file is linked to its new name and then unlinked, which
        cannot replace anything; other kinds (or filesystems without hard
        links) are checked first and then renamed.
        """
        st = os.stat(old.name, dir_fd=old.dir_fd, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            try:
                os.link(
                    old.name,
                    new.name,
                    src_dir_fd=old.dir_fd,
                    dst_dir_fd=new.dir_fd,
                    follow_symlinks=False,
                )
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
            else:
                try:
                    os.unlink(old.name, dir_fd=old.dir_fd)
                except OSError:
                    os.unlink(new.name, dir_fd=new.dir_fd)
                    raise
                return
        try:
            os.stat(new.name, dir_fd=new.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            os.rename(old.name, new.name, src_dir_fd=old.dir_fd, dst_dir_fd=new.dir_fd)
            return
        raise OSError(errno.EEXIST, os.strerror(errno.EEXIST))

    @staticmethod
    def readlink(loc: Location) -> bytes:
        return os.readlink(loc.name, dir_fd=loc.dir_fd)

    @staticmethod
    def symlink(target: bytes, loc: Location) -> None:
        if b"\0" in target:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        os.symlink(target, loc.name, dir_fd=loc.dir_fd)

    @staticmethod
    def link(old: Location, new: Location) -> None:
        os.link(
            old.name,
            new.name,
            src_dir_fd=old.dir_fd,
            dst_dir_fd=new.dir_fd,
            follow_symlinks=False,
        )

    def usage(self, loc: Location) -> tuple[int, int]:
        """Bytes and files below ``loc``: a walk by descriptors that never follows a link."""
        st = self.stat(loc)
        if not stat.S_ISDIR(st.st_mode):
            return (st.st_size if stat.S_ISREG(st.st_mode) else 0), 1
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(loc.name, flags, dir_fd=loc.dir_fd)
        return self._tree_usage(fd)

    def _tree_usage(self, fd: int) -> tuple[int, int]:
        total = files = 0
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed while counting
                    if stat.S_ISDIR(st.st_mode):
                        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                        more, count = self._tree_usage(os.open(entry.name, flags, dir_fd=fd))
                        total += more
                        files += count
                    else:
                        total += st.st_size if stat.S_ISREG(st.st_mode) else 0
                        files += 1
        finally:
            os.close(fd)
        return total, files

    # --- accounts --------------------------------------------------------------------------

    def user_name(self, uid: int) -> str | None:
        if uid not in self._user_names:
            try:
                self._user_names[uid] = pwd.getpwuid(uid).pw_name
            except (KeyError, OverflowError):
                self._user_names[uid] = ""
        return self._user_names[uid] or None

    def group_name(self, gid: int) -> str | None:
        if gid not in self._group_names:
            try:
                self._group_names[gid] = grp.getgrgid(gid).gr_name
            except (KeyError, OverflowError):
                self._group_names[gid] = ""
        return self._group_names[gid] or None
