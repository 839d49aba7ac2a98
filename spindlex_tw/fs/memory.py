"""A file system kept in memory: for tests, and for drop boxes that need no disk.

One :class:`MemoryFileSystem` is one tree; every session given the same
instance sees the same files, and they last as long as the instance.
It keeps the contract of :mod:`spindlex_tw.fs.interface`: paths resolve
below its root as in a chroot (``..`` at the root stays there, link
targets are read inside the tree), and a resolved location acts on its
entry without following a final link again. ``capacity`` bounds the bytes
it holds (ENOSPC past it), so a client cannot make the process allocate
without limit, with a SETSTAT of a huge size for one. Capabilities can be
turned off to stand in for a storage that lacks them (an object store
without random-access writes or links).
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Iterator

from spindlex_tw.fs.interface import Capabilities, DirEntry, SetStat

MAX_SYMLINKS = 40
MAX_PATH_BYTES = 4096
BLOCK = 4096
NAME_MAX = 255


def _error(number: int) -> OSError:
    return OSError(number, os.strerror(number))


class _Node:
    __slots__ = ("atime", "gid", "ino", "mode", "mtime", "nlink", "uid")

    def __init__(self, mode: int, ino: int) -> None:
        self.mode = mode
        self.ino = ino
        self.uid = os.getuid()
        self.gid = os.getgid()
        self.atime = self.mtime = int(time.time())
        self.nlink = 1

    def size(self) -> int:
        return 0

    def stat(self) -> os.stat_result:
        size = self.size()
        fields = (self.mode, self.ino, 0, self.nlink, self.uid, self.gid, size)
        return os.stat_result((*fields, self.atime, self.mtime, self.mtime))


class _File(_Node):
    __slots__ = ("data",)

    def __init__(self, mode: int, ino: int) -> None:
        super().__init__(stat.S_IFREG | mode, ino)
        self.data = bytearray()

    def size(self) -> int:
        return len(self.data)


class _Dir(_Node):
    __slots__ = ("entries", "parent")

    def __init__(self, mode: int, ino: int, parent: _Dir | None) -> None:
        super().__init__(stat.S_IFDIR | mode, ino)
        self.entries: dict[bytes, _Node] = {}
        self.parent = parent if parent is not None else self


class _Link(_Node):
    __slots__ = ("target",)

    def __init__(self, target: bytes, ino: int) -> None:
        super().__init__(stat.S_IFLNK | 0o777, ino)
        self.target = target

    def size(self) -> int:
        return len(self.target)


class MemoryLocation:
    """``name`` in the directory ``parent``; ``parts`` the resolved path below the root."""

    __slots__ = ("name", "parent", "parts")

    def __init__(self, parent: _Dir, name: bytes, parts: tuple[bytes, ...]) -> None:
        self.parent = parent
        self.name = name
        self.parts = parts

    @property
    def path(self) -> bytes:
        return b"/" + b"/".join(self.parts)

    def close(self) -> None:
        """Nothing is held open for a location in memory."""

    def node(self) -> _Node | None:
        if self.name == b".":
            return self.parent
        return self.parent.entries.get(self.name)


class MemoryFile:
    """An open regular file: the node and whether writes append."""

    __slots__ = ("append", "node")

    def __init__(self, node: _File, append: bool) -> None:
        self.node = node
        self.append = append


class MemoryDirStream:
    """A directory being listed: a snapshot of its names taken at OPENDIR."""

    __slots__ = ("_names", "directory", "started")

    def __init__(self, directory: _Dir) -> None:
        self.directory = directory
        self.started = False
        self._names: Iterator[bytes] = iter(list(directory.entries))

    def next_name(self) -> bytes | None:
        return next(self._names, None)

    def close(self) -> None:
        self._names = iter(())


class MemoryFileSystem:
    """A tree in memory holding at most ``capacity`` bytes of file data."""

    def __init__(
        self,
        capacity: int = 1 << 30,
        *,
        random_writes: bool = True,
        symlinks: bool = True,
        hard_links: bool = True,
    ) -> None:
        self.capabilities = Capabilities(
            random_writes=random_writes,
            symlinks=symlinks,
            hard_links=hard_links,
            statvfs=True,
            never_waits=True,
        )
        self.capacity = capacity
        self._inodes = itertools.count(2)
        self._root = _Dir(0o755, 1, None)
        self._used = 0
        self._files = 0
        # Sessions may call from several worker threads: one lock keeps the tree whole.
        self._lock = threading.RLock()

    def close(self) -> None:
        """The tree outlives each session: it goes when the instance does."""

    def host_path(self, virtual: bytes) -> str:
        return os.fsdecode(virtual or b"/")

    # --- resolution --------------------------------------------------------------------------

    def locate(self, path: bytes, base: bytes, follow: bool) -> MemoryLocation:
        if b"\0" in path:
            raise _error(errno.EINVAL)
        if not path.startswith(b"/"):
            path = base.rstrip(b"/") + b"/" + path
        if len(path) > MAX_PATH_BYTES:
            raise _error(errno.ENAMETOOLONG)
        with self._lock:
            return self._walk(path, follow)

    def _walk(self, path: bytes, follow: bool) -> MemoryLocation:
        pending = deque(path.split(b"/"))
        stack: list[tuple[bytes, _Dir]] = []  # the directories walked through, below the root
        links = 0
        while pending:
            name = pending.popleft()
            if name in (b"", b"."):
                continue
            if name == b"..":
                if stack:
                    stack.pop()
                continue
            current = stack[-1][1] if stack else self._root
            node = current.entries.get(name)
            last = not pending
            if isinstance(node, _Link) and (follow or not last):
                links += 1
                if links > MAX_SYMLINKS:
                    raise _error(errno.ELOOP)
                if node.target.startswith(b"/"):
                    stack.clear()
                pending.extendleft(reversed(node.target.split(b"/")))
                continue
            if last:
                return MemoryLocation(current, name, (*(n for n, _ in stack), name))
            if node is None:
                raise _error(errno.ENOENT)
            if not isinstance(node, _Dir):
                raise _error(errno.ENOTDIR)
            stack.append((name, node))
        # The path ended on a directory: name it from its parent.
        if not stack:
            return MemoryLocation(self._root, b".", ())
        parent = stack[-2][1] if len(stack) > 1 else self._root
        return MemoryLocation(parent, stack[-1][0], tuple(n for n, _ in stack))

    @staticmethod
    def _existing(loc: MemoryLocation) -> _Node:
        node = loc.node()
        if node is None:
            raise _error(errno.ENOENT)
        return node

    # --- files -----------------------------------------------------------------------------

    def open_path(
        self, path: bytes, base: bytes, follow: bool, flags: int, create_mode: int | None
    ) -> tuple[MemoryFile, bytes]:
        loc = self.locate(path, base, follow)
        return self.open_file(loc, flags, create_mode), loc.path

    def open_file(self, loc: MemoryLocation, flags: int, create_mode: int | None) -> MemoryFile:
        with self._lock:
            node = loc.node()
            if node is None:
                if create_mode is None:
                    raise _error(errno.ENOENT)
                node = self._add(loc, _File(create_mode & 0o7777, next(self._inodes)))
            elif create_mode is not None and flags & os.O_EXCL:
                raise _error(errno.EEXIST)
            elif isinstance(node, _Dir):
                raise _error(errno.EISDIR)
            elif isinstance(node, _Link):
                raise _error(errno.ELOOP)  # a final link is never followed here
            assert isinstance(node, _File)
            if flags & os.O_TRUNC and flags & os.O_ACCMODE != os.O_RDONLY:
                self._resize(node, 0)
            return MemoryFile(node, bool(flags & os.O_APPEND))

    def _add(self, loc: MemoryLocation, node: _Node) -> _Node:
        if loc.name == b"." or loc.name in loc.parent.entries:
            raise _error(errno.EEXIST)
        if len(loc.name) > NAME_MAX:
            raise _error(errno.ENAMETOOLONG)
        loc.parent.entries[loc.name] = node
        loc.parent.mtime = int(time.time())
        if not isinstance(node, _Dir):
            self._files += 1
        return node

    def _resize(self, node: _File, size: int) -> None:
        grow = size - len(node.data)
        if grow > 0 and self._used + grow > self.capacity:
            raise _error(errno.ENOSPC)
        if grow > 0:
            node.data.extend(bytes(grow))
        else:
            del node.data[size:]
        self._used += grow
        node.mtime = int(time.time())

    def read(self, file: MemoryFile, length: int, offset: int) -> bytes:
        with self._lock:
            return bytes(file.node.data[offset : offset + length])

    def read_cached(self, file: MemoryFile, length: int, offset: int) -> bytes | None:
        return self.read(file, length, offset)  # memory never waits

    def write(self, file: MemoryFile, data: memoryview | bytes, offset: int) -> None:
        with self._lock:
            node = file.node
            if file.append:
                offset = len(node.data)
            end = offset + len(data)
            if end > len(node.data):
                self._resize(node, end)
            node.data[offset:end] = data
            node.mtime = int(time.time())

    def close_file(self, file: MemoryFile) -> None:
        """Nothing to flush: every write is already in the tree."""

    def fstat(self, file: MemoryFile) -> os.stat_result:
        with self._lock:
            return file.node.stat()

    def fsync(self, file: MemoryFile) -> None:
        """Memory has nothing to flush to."""

    def fstatvfs(self, file: MemoryFile) -> os.statvfs_result:
        return self._statvfs()

    def fsetstat(self, file: MemoryFile, change: SetStat) -> None:
        with self._lock:
            self._apply(file.node, change)

    def _apply(self, node: _Node, change: SetStat) -> None:
        if change.size is not None:
            if not isinstance(node, _File):
                raise _error(errno.EISDIR if isinstance(node, _Dir) else errno.EINVAL)
            self._resize(node, change.size)
        if change.permissions is not None:
            if isinstance(node, _Link):
                raise _error(errno.EOPNOTSUPP)
            node.mode = stat.S_IFMT(node.mode) | (change.permissions & 0o7777)
        if change.times is not None:
            node.atime, node.mtime = change.times
        if change.owner is not None:
            if change.owner != (node.uid, node.gid) and os.geteuid() != 0:
                raise _error(errno.EPERM)  # as chown(2) for anyone but root
            node.uid, node.gid = change.owner

    def copy_step(
        self,
        src: MemoryFile,
        src_offset: int,
        end: int,
        dst: MemoryFile,
        dst_offset: int,
        step: int,
    ) -> int:
        with self._lock:
            end = min(end, len(src.node.data))
            if src_offset >= end:
                return 0
            chunk = bytes(src.node.data[src_offset : min(end, src_offset + step)])
            self.write(MemoryFile(dst.node, append=False), chunk, dst_offset)
            return len(chunk)

    # --- names -----------------------------------------------------------------------------

    def stat(self, loc: MemoryLocation) -> os.stat_result:
        with self._lock:
            return self._existing(loc).stat()

    def setstat(self, loc: MemoryLocation, change: SetStat) -> None:
        with self._lock:
            self._apply(self._existing(loc), change)

    def statvfs(self, loc: MemoryLocation) -> os.statvfs_result:
        self.stat(loc)
        return self._statvfs()

    def _statvfs(self) -> os.statvfs_result:
        with self._lock:
            blocks = self.capacity // BLOCK
            free = max(0, blocks - -(-self._used // BLOCK))
            files = 1 << 20
            inodes_free = files - self._files
            fields = (BLOCK, BLOCK, blocks, free, free, files, inodes_free, inodes_free, 0)
            return os.statvfs_result((*fields, NAME_MAX), {"f_fsid": id(self) & 0xFFFFFFFF})

    def opendir(self, loc: MemoryLocation) -> MemoryDirStream:
        with self._lock:
            node = self._existing(loc)
            if not isinstance(node, _Dir):
                raise _error(errno.ENOTDIR)
            return MemoryDirStream(node)

    def read_dir(self, stream: MemoryDirStream, count: int) -> list[DirEntry]:
        with self._lock:
            directory = stream.directory
            batch: list[DirEntry] = []
            if not stream.started:
                stream.started = True
                batch.append(DirEntry(b".", directory.stat()))
                batch.append(DirEntry(b"..", directory.parent.stat()))
            while len(batch) < count:
                name = stream.next_name()
                if name is None:
                    break
                node = directory.entries.get(name)
                if node is not None:  # else removed while listing
                    batch.append(DirEntry(name, node.stat()))
            return batch

    def remove(self, loc: MemoryLocation) -> None:
        with self._lock:
            node = self._existing(loc)
            if isinstance(node, _Dir):
                raise _error(errno.EISDIR)
            self._unlink(loc, node)

    def _unlink(self, loc: MemoryLocation, node: _Node) -> None:
        del loc.parent.entries[loc.name]
        loc.parent.mtime = int(time.time())
        node.nlink -= 1
        if not isinstance(node, _Dir):
            self._files -= 1
        if isinstance(node, _File) and not node.nlink:
            self._used -= len(node.data)

    def mkdir(self, loc: MemoryLocation, mode: int) -> None:
        with self._lock:
            self._add(loc, _Dir(mode & 0o7777, next(self._inodes), loc.parent))

    def rmdir(self, loc: MemoryLocation) -> None:
        with self._lock:
            node = self._existing(loc)
            if not isinstance(node, _Dir):
                raise _error(errno.ENOTDIR)
            if node is self._root:
                raise _error(errno.EBUSY)
            if node.entries:
                raise _error(errno.ENOTEMPTY)
            self._unlink(loc, node)

    def rename(self, old: MemoryLocation, new: MemoryLocation) -> None:
        with self._lock:
            self._move(old, new, replace=True)

    def rename_no_replace(self, old: MemoryLocation, new: MemoryLocation) -> None:
        with self._lock:
            self._move(old, new, replace=False)

    def _move(self, old: MemoryLocation, new: MemoryLocation, replace: bool) -> None:
        node = self._existing(old)
        if node is self._root or new.name == b".":
            raise _error(errno.EBUSY)
        there = new.node()
        if there is node:
            return
        if isinstance(node, _Dir) and new.parts[: len(old.parts)] == old.parts:
            raise _error(errno.EINVAL)  # a directory into itself
        if there is not None:
            if not replace:
                raise _error(errno.EEXIST)
            if isinstance(node, _Dir) != isinstance(there, _Dir):
                raise _error(errno.EISDIR if isinstance(there, _Dir) else errno.ENOTDIR)
            if isinstance(there, _Dir) and there.entries:
                raise _error(errno.ENOTEMPTY)
            self._unlink(new, there)
        del old.parent.entries[old.name]
        new.parent.entries[new.name] = node
        if isinstance(node, _Dir):
            node.parent = new.parent
        old.parent.mtime = new.parent.mtime = int(time.time())

    def readlink(self, loc: MemoryLocation) -> bytes:
        with self._lock:
            node = self._existing(loc)
            if not isinstance(node, _Link):
                raise _error(errno.EINVAL)
            return node.target

    def symlink(self, target: bytes, loc: MemoryLocation) -> None:
        if b"\0" in target or len(target) > MAX_PATH_BYTES:
            raise _error(errno.EINVAL)
        with self._lock:
            self._add(loc, _Link(target, next(self._inodes)))

    def link(self, old: MemoryLocation, new: MemoryLocation) -> None:
        with self._lock:
            node = self._existing(old)
            if isinstance(node, _Dir):
                raise _error(errno.EPERM)
            self._add(new, node)
            node.nlink += 1

    def usage(self, loc: MemoryLocation) -> tuple[int, int]:
        with self._lock:
            return self._usage(self._existing(loc))

    def _usage(self, node: _Node) -> tuple[int, int]:
        if not isinstance(node, _Dir):
            return (node.size() if isinstance(node, _File) else 0), 1
        total = files = 0
        for child in node.entries.values():
            more, count = self._usage(child)
            total += more
            files += count
        return total, files

    # --- accounts --------------------------------------------------------------------------

    def user_name(self, uid: int) -> str | None:
        return None  # the tree has no accounts: owners show as numbers

    def group_name(self, gid: int) -> str | None:
        return None
