"""Client paths confined under a root directory, as if the root were ``/`` (chroot).

Resolution walks one component at a time with directory descriptors and
``O_NOFOLLOW``; a multi-component path goes to the kernel only under the rules
below. A symbolic link met on the way is read and its text spliced into the walk,
so ``..`` and absolute link targets are interpreted inside the root exactly as
a chroot would, and nothing — a link created by the client, a link already on
disk, a component renamed by someone else mid-walk — can lead outside it.

Most paths have neither ``..`` nor a link on the way; for those the kernel
resolves the directories in one ``openat2`` call (fs/openat2.py) with
``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS``, which refuses any link and any
step out of the root, renames mid-walk included. Whatever it refuses, and
every failure, goes to the walk above, which gives the answer; the walk
stays the one place links and ``..`` are interpreted.

The result is a :class:`Location`: an open descriptor of the parent directory
plus the final name. Operations then act on that name relative to that
descriptor without following links, so swapping the name for a link between
resolution and use does not escape either.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque

from spindlex_tw.fs import openat2

# O_PATH (Linux) opens a directory for lookups only: no read permission needed.
O_PATH: int = getattr(os, "O_PATH", os.O_RDONLY)
DIR_FLAGS = O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# For openat2, whose RESOLVE_NO_SYMLINKS refuses a final link as any other.
_BENEATH_DIR = O_PATH | os.O_DIRECTORY | os.O_CLOEXEC

MAX_SYMLINKS = 40  # as Linux: more links than this in one lookup is a loop
MAX_PATH_BYTES = 4096  # PATH_MAX
# Directories one lookup may open: links full of names and ".." over a deep tree
# could otherwise keep a worker busy for minutes; real paths need tens.
MAX_WALK = 8192


def plain_names(path: bytes) -> list[bytes] | None:
    """The names of an absolute ``path`` without ``..``, ending in a name; else None.

    ``[]`` is the root itself.
    """
    raw = path.split(b"/")
    names = [name for name in raw if name not in (b"", b".")]
    if b".." in names or (names and raw[-1] in (b"", b".")):
        return None
    return names


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _error(number: int, name: bytes = b"") -> OSError:
    return OSError(number, os.strerror(number), os.fsdecode(name))


class Location:
    """A resolved path: ``name`` inside the open directory ``dir_fd``.

    ``parts`` are the components of the resolved path below the root; the root
    itself is ``parts == ()`` with ``name == b"."``. The location owns ``dir_fd``
    and must be closed.
    """

    __slots__ = ("dir_fd", "name", "parts")

    def __init__(self, dir_fd: int, name: bytes, parts: tuple[bytes, ...]) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self.parts = parts

    @property
    def path(self) -> bytes:
        """The resolved path as the client sees it, e.g. ``b"/dir/file"``."""
        return b"/" + b"/".join(self.parts)

    @property
    def parent_path(self) -> bytes:
        return b"/" + b"/".join(self.parts[:-1])

    def close(self) -> None:
        # Closing a lookup-only descriptor never waits on the disk.
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1


class Jail:
    """Resolves client paths below ``root``; safe to use from several threads."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.root_fd = os.open(self.root, DIR_FLAGS)
        self.root_id = _identity(os.fstat(self.root_fd))

    def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def host_path(self, virtual: bytes) -> str:
        """Where the client's resolved ``virtual`` path lies on this host."""
        if virtual in (b"", b"/"):
            return self.root
        return os.path.join(self.root, os.fsdecode(virtual.lstrip(b"/")))

    def _open_dirs(self, names: list[bytes]) -> int:
        """A descriptor of root/names..., refusing links (the names are already resolved)."""
        fd = os.dup(self.root_fd)
        try:
            for name in names:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def locate(self, path: bytes, base: bytes, follow: bool) -> Location:
        """Resolve ``path`` (relative ones against ``base``) to a :class:`Location`.

        With ``follow`` a link in the final component is followed too (stat,
        open); without, the location names the link itself (lstat, remove).
        A missing final component is not an error: it may be about to be created.
        """
        path = self._absolute(path, base)
        names = plain_names(path)
        if names and openat2.usable():
            found = self._locate_beneath(names, follow)
            if found is not None:
                return found
        return self._walk(path, follow)

    @staticmethod
    def _absolute(path: bytes, base: bytes) -> bytes:
        if b"\0" in path:
            raise _error(errno.EINVAL)
        if not path.startswith(b"/"):
            path = base.rstrip(b"/") + b"/" + path
        if len(path) > MAX_PATH_BYTES:
            raise _error(errno.ENAMETOOLONG)
        return path

    def plain_names(self, path: bytes, base: bytes) -> list[bytes] | None:
        """The names of ``path`` below the root if the kernel may resolve it in one call.

        None for a path :meth:`locate` must walk itself: one with ``..``, one
        naming a directory with a final ``/``, the root, or an invalid one.
        """
        try:
            return plain_names(self._absolute(path, base)) or None
        except OSError:
            return None

    def _locate_beneath(self, names: list[bytes], follow: bool) -> Location | None:
        """:meth:`locate` of a plain path by one openat2; None where the walk must decide.

        The kernel refuses any link on the way (ELOOP) and any step outside
        the root; then, and for every other failure, the walk runs and gives
        its own answer. A link as the final name, to be followed, is left to it too.
        """
        if len(names) == 1:
            fd = os.dup(self.root_fd)
        else:
            try:
                fd = openat2.openat2(
                    self.root_fd, b"/".join(names[:-1]), _BENEATH_DIR, openat2.BENEATH
                )
            except OSError:
                return None
        try:
            st = self._lstat(names[-1], fd) if follow else None
        except BaseException:
            os.close(fd)
            raise
        if st is not None and stat.S_ISLNK(st.st_mode):
            os.close(fd)
            return None
        return Location(fd, names[-1], tuple(names))

    def _walk(self, path: bytes, follow: bool) -> Location:
        """:meth:`locate` one component at a time, splicing in the text of links."""
        pending = deque(path.split(b"/"))
        names: list[bytes] = []
        ids: list[tuple[int, int]] = []  # (st_dev, st_ino) of each directory in names
        links = 0
        walked = 0
        cur = os.dup(self.root_fd)
        try:
            while pending:
                name = pending.popleft()
                if name in (b"", b"."):
                    continue
                if name == b"..":
                    if names:
                        names.pop()
                        ids.pop()
                        walked += 1
                        if walked > MAX_WALK:
                            raise _error(errno.ELOOP)
                        below, cur = cur, -1
                        cur = self._parent(below, ids[-1] if ids else self.root_id, names)
                    continue
                if not pending:
                    # The final name: a link there is followed only on request.
                    st = self._lstat(name, cur) if follow else None
                    if st is None or not stat.S_ISLNK(st.st_mode):
                        return self._hand_over(cur, name, names)
                else:
                    walked += 1
                    if walked > MAX_WALK:
                        raise _error(errno.ELOOP)
                    child = self._enter(name, cur)
                    if child >= 0:
                        os.close(cur)
                        cur = child
                        names.append(name)
                        ids.append(_identity(os.fstat(child)))
                        continue
                # A symbolic link: splice its text into what is left to walk.
                links += 1
                if links > MAX_SYMLINKS:
                    raise _error(errno.ELOOP, name)
                target = os.readlink(name, dir_fd=cur)
                if target.startswith(b"/"):
                    names.clear()
                    ids.clear()
                    os.close(cur)
                    cur = -1
                    cur = os.dup(self.root_fd)
                pending.extendleft(reversed(target.split(b"/")))
                if len(pending) > MAX_PATH_BYTES:
                    raise _error(errno.ENAMETOOLONG)
            # The path ended on a directory ("/", "a/..", "a/b/"): name it from its parent.
            if not names:
                return self._hand_over(cur, b".", names)
            os.close(cur)
            cur = -1
            cur = self._open_dirs(names[:-1])
            return self._hand_over(cur, names[-1], names[:-1])
        except BaseException:
            if cur >= 0:
                os.close(cur)
            raise

    def _parent(self, cur: int, expected: tuple[int, int], names: list[bytes]) -> int:
        """Step from ``cur`` up to root/names, whose identity is ``expected``; closes ``cur``.

        The kernel's ".." is taken only if it is the directory we came through:
        a directory moved out of the root meanwhile has another parent, and the
        walk then starts again from the root.
        """
        try:
            parent = os.open(b"..", DIR_FLAGS, dir_fd=cur)
        finally:
            os.close(cur)
        if _identity(os.fstat(parent)) == expected:
            return parent
        os.close(parent)
        return self._open_dirs(names)

    @staticmethod
    def _hand_over(fd: int, name: bytes, names: list[bytes]) -> Location:
        parts = tuple(names) if name == b"." else (*names, name)
        return Location(fd, name, parts)

    @staticmethod
    def _lstat(name: bytes, dir_fd: int) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    @staticmethod
    def _enter(name: bytes, dir_fd: int) -> int:
        """Open the directory ``name``; -1 if it is a symbolic link to follow instead."""
        try:
            return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            if not stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                raise
            return -1
