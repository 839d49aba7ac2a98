"""Quotas: a user's bytes and files, counted across all their sessions, enforced on writes.

A :class:`Quota` is one user's account: the limits and what the storage
holds. Every session of that user wraps its file system in a
:class:`QuotaFileSystem` sharing the one :class:`Quota`, so concurrent
sessions draw on one allowance. The usage is counted from the storage the
first time it is needed (a walk of the tree), so it survives a restart,
and is then kept up to date by the calls that change it.

Every call that can grow what the user holds — a write past the end, a
copy-data step, a size set by SETSTAT, a new file, a symbolic or hard link,
a rename into the counted tree — is checked before it happens, under the
quota's lock, and refused whole with ``OSError(EDQUOT, "Quota exceeded")``
if it would go past a limit: nothing is written past the quota. The counted
tree is ``scope`` (a client path; ``/`` is everything the session sees), so a
rename from outside it into it counts what it brings.
"""

from __future__ import annotations

import errno
import os
import stat
import threading

from spindlex_tw.fs.interface import (
    Capabilities,
    DirEntry,
    DirStream,
    FileSystem,
    Location,
    OpenDir,
    OpenFile,
    SetStat,
)

QUOTA_EXCEEDED = "Quota exceeded"


def _exceeded() -> OSError:
    return OSError(errno.EDQUOT, QUOTA_EXCEEDED)


class Quota:
    """At most ``max_bytes`` of file data and ``max_files`` files (None: no limit)."""

    def __init__(self, max_bytes: int | None = None, max_files: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.used_bytes = 0
        self.used_files = 0
        self.loaded = False
        # Held across each check and the change it allows, from any worker thread.
        self.lock = threading.RLock()

    def load(self, fs: FileSystem, scope: bytes) -> None:
        """Count what the storage holds, once; call with the lock held."""
        if self.loaded:
            return
        loc = fs.locate(scope, b"/", True)
        try:
            self.used_bytes, self.used_files = fs.usage(loc)
        except FileNotFoundError:
            self.used_bytes, self.used_files = 0, 0
        finally:
            loc.close()
        self.loaded = True

    def check(self, grow_bytes: int, grow_files: int = 0) -> None:
        """Refuse a change that would take usage past a limit (shrinking always passes)."""
        if (
            grow_bytes > 0
            and self.max_bytes is not None
            and self.used_bytes + grow_bytes > self.max_bytes
        ):
            raise _exceeded()
        if (
            grow_files > 0
            and self.max_files is not None
            and self.used_files + grow_files > self.max_files
        ):
            raise _exceeded()

    def charge(self, grow_bytes: int, grow_files: int = 0) -> None:
        self.used_bytes = max(0, self.used_bytes + grow_bytes)
        self.used_files = max(0, self.used_files + grow_files)


class QuotaFile:
    """An open file of a :class:`QuotaFileSystem`: the inner one, and whether it counts."""

    __slots__ = ("append", "counted", "file")

    def __init__(self, file: OpenFile, counted: bool, append: bool) -> None:
        self.file = file
        self.counted = counted
        self.append = append


def _size(st: os.stat_result) -> int:
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


class QuotaFileSystem:
    """``inner`` with ``quota`` enforced on everything below the client path ``scope``."""

    def __init__(self, inner: FileSystem, quota: Quota, scope: bytes = b"/") -> None:
        self.inner = inner
        self.quota = quota
        self.scope = b"/" + scope.strip(b"/")
        self.capabilities: Capabilities = inner.capabilities

    def _counts(self, path: bytes) -> bool:
        return self.scope == b"/" or path == self.scope or path.startswith(self.scope + b"/")

    def _loaded(self) -> Quota:
        self.quota.load(self.inner, self.scope)
        return self.quota

    def _usage_of(self, loc: Location) -> tuple[int, int]:
        try:
            return self.inner.usage(loc)
        except FileNotFoundError:
            return 0, 0

    def close(self) -> None:
        self.inner.close()

    def host_path(self, virtual: bytes) -> str:
        return self.inner.host_path(virtual)

    def locate(self, path: bytes, base: bytes, follow: bool) -> Location:
        return self.inner.locate(path, base, follow)

    # --- files -----------------------------------------------------------------------------

    def open_path(
        self, path: bytes, base: bytes, follow: bool, flags: int, create_mode: int | None
    ) -> tuple[QuotaFile, bytes]:
        loc = self.inner.locate(path, base, follow)
        try:
            return self.open_file(loc, flags, create_mode), loc.path
        finally:
            loc.close()

    def open_file(self, loc: Location, flags: int, create_mode: int | None) -> QuotaFile:
        append = bool(flags & os.O_APPEND)
        if not self._counts(loc.path):
            return QuotaFile(self.inner.open_file(loc, flags, create_mode), False, append)
        with self.quota.lock:
            quota = self._loaded()
            try:
                before: int | None = _size(self.inner.stat(loc))
            except FileNotFoundError:
                before = None
            new = before is None and create_mode is not None
            quota.check(0, 1 if new else 0)
            file = self.inner.open_file(loc, flags, create_mode)
            truncated = before if before is not None and flags & os.O_TRUNC else 0
            quota.charge(-truncated, 1 if new else 0)
        return QuotaFile(file, True, append)

    def read(self, file: QuotaFile, length: int, offset: int) -> bytes:
        return self.inner.read(file.file, length, offset)

    def read_cached(self, file: QuotaFile, length: int, offset: int) -> bytes | bytearray | None:
        return self.inner.read_cached(file.file, length, offset)

    def write(self, file: QuotaFile, data: memoryview | bytes, offset: int) -> None:
        if not file.counted:
            self.inner.write(file.file, data, offset)
            return
        with self.quota.lock:
            quota = self._loaded()
            size = self.inner.fstat(file.file).st_size
            end = (size if file.append else offset) + len(data)
            grow = max(0, end - size)
            quota.check(grow)
            self.inner.write(file.file, data, offset)
            quota.charge(grow)

    def close_file(self, file: QuotaFile) -> None:
        self.inner.close_file(file.file)

    def abandon_file(self, file: QuotaFile) -> None:
        """The client never closed ``file``: passed on to a storage that drops such files."""
        abandon = getattr(self.inner, "abandon_file", None)
        if abandon is None:
            self.inner.close_file(file.file)
            return
        with self.quota.lock:
            abandon(file.file)
            # What the dropped upload was charged never landed: count the storage again.
            self.quota.loaded = False

    def fstat(self, file: QuotaFile) -> os.stat_result:
        return self.inner.fstat(file.file)

    def fsync(self, file: QuotaFile) -> None:
        self.inner.fsync(file.file)

    def fstatvfs(self, file: QuotaFile) -> os.statvfs_result:
        return self._report(self.inner.fstatvfs(file.file))

    def fsetstat(self, file: QuotaFile, change: SetStat) -> None:
        if change.size is None or not file.counted:
            self.inner.fsetstat(file.file, change)
            return
        with self.quota.lock:
            quota = self._loaded()
            grow = change.size - self.inner.fstat(file.file).st_size
            quota.check(grow)
            self.inner.fsetstat(file.file, change)
            quota.charge(grow)

    def copy_step(
        self,
        src: QuotaFile,
        src_offset: int,
        end: int,
        dst: QuotaFile,
        dst_offset: int,
        step: int,
    ) -> int:
        if not dst.counted:
            return self.inner.copy_step(src.file, src_offset, end, dst.file, dst_offset, step)
        with self.quota.lock:
            quota = self._loaded()
            before = self.inner.fstat(dst.file).st_size
            # What the rest of the copy would add, checked at every step: a copy that
            # cannot finish within the quota writes nothing more.
            source_end = min(end, self.inner.fstat(src.file).st_size)
            quota.check(dst_offset + max(0, source_end - src_offset) - before)
            moved = self.inner.copy_step(src.file, src_offset, end, dst.file, dst_offset, step)
            quota.charge(self.inner.fstat(dst.file).st_size - before)
            return moved

    # --- names -----------------------------------------------------------------------------

    def stat(self, loc: Location) -> os.stat_result:
        return self.inner.stat(loc)

    def setstat(self, loc: Location, change: SetStat) -> None:
        if change.size is None or not self._counts(loc.path):
            self.inner.setstat(loc, change)
            return
        with self.quota.lock:
            quota = self._loaded()
            grow = change.size - _size(self.inner.stat(loc))
            quota.check(grow)
            self.inner.setstat(loc, change)
            quota.charge(grow)

    def statvfs(self, loc: Location) -> os.statvfs_result:
        return self._report(self.inner.statvfs(loc))

    def _report(self, st: os.statvfs_result) -> os.statvfs_result:
        """The quota as the file system's size, so ``df`` shows what the user may use."""
        with self.quota.lock:
            quota = self._loaded()
            blocks, free = st.f_blocks, st.f_bavail
            if quota.max_bytes is not None:
                size = max(1, st.f_frsize)
                blocks = quota.max_bytes // size
                free = min(free, max(0, quota.max_bytes - quota.used_bytes) // size)
            files, files_free = st.f_files, st.f_favail
            if quota.max_files is not None:
                files = quota.max_files
                files_free = min(files_free, max(0, quota.max_files - quota.used_files))
        fields = (st.f_bsize, st.f_frsize, blocks, free, free, files, files_free, files_free)
        return os.statvfs_result((*fields, st.f_flag, st.f_namemax), {"f_fsid": st.f_fsid})

    def opendir(self, loc: Location) -> DirStream:
        return self.inner.opendir(loc)

    def read_dir(self, stream: OpenDir, count: int) -> list[DirEntry]:
        return self.inner.read_dir(stream, count)

    def remove(self, loc: Location) -> None:
        if not self._counts(loc.path):
            self.inner.remove(loc)
            return
        with self.quota.lock:
            quota = self._loaded()
            size = _size(self.inner.stat(loc))
            self.inner.remove(loc)
            quota.charge(-size, -1)

    def mkdir(self, loc: Location, mode: int) -> None:
        self.inner.mkdir(loc, mode)

    def rmdir(self, loc: Location) -> None:
        self.inner.rmdir(loc)

    def rename(self, old: Location, new: Location) -> None:
        self._move(old, new, replace=True)

    def rename_no_replace(self, old: Location, new: Location) -> None:
        self._move(old, new, replace=False)

    def _move(self, old: Location, new: Location, replace: bool) -> None:
        move = self.inner.rename if replace else self.inner.rename_no_replace
        old_in, new_in = self._counts(old.path), self._counts(new.path)
        if not old_in and not new_in:
            move(old, new)
            return
        with self.quota.lock:
            quota = self._loaded()
            moved = self._usage_of(old)
            replaced = self._usage_of(new) if replace and new_in else (0, 0)
            if new_in and not old_in:
                # Brought in from outside the counted tree: it must fit.
                quota.check(moved[0] - replaced[0], moved[1] - replaced[1])
            move(old, new)
            grow_bytes = (moved[0] if new_in else 0) - (moved[0] if old_in else 0) - replaced[0]
            grow_files = (moved[1] if new_in else 0) - (moved[1] if old_in else 0) - replaced[1]
            quota.charge(grow_bytes, grow_files)

    def readlink(self, loc: Location) -> bytes:
        return self.inner.readlink(loc)

    def symlink(self, target: bytes, loc: Location) -> None:
        if not self._counts(loc.path):
            self.inner.symlink(target, loc)
            return
        with self.quota.lock:
            quota = self._loaded()
            quota.check(0, 1)
            self.inner.symlink(target, loc)
            quota.charge(0, 1)

    def link(self, old: Location, new: Location) -> None:
        if not self._counts(new.path):
            self.inner.link(old, new)
            return
        with self.quota.lock:
            quota = self._loaded()
            # A second name counts as a second file of its size, as the walk at load counts it.
            size = _size(self.inner.stat(old))
            quota.check(size, 1)
            self.inner.link(old, new)
            quota.charge(size, 1)

    def usage(self, loc: Location) -> tuple[int, int]:
        return self.inner.usage(loc)

    # --- accounts --------------------------------------------------------------------------

    def user_name(self, uid: int) -> str | None:
        return self.inner.user_name(uid)

    def group_name(self, gid: int) -> str | None:
        return self.inner.group_name(gid)
