"""What the SFTP engine asks of a file system: the interface every storage implements.

The engine (``spindlex_tw.sftp``) holds a :class:`FileSystem` and nothing
else of the storage. :class:`~spindlex_tw.fs.local.LocalFileSystem` serves a
directory of this host, :class:`~spindlex_tw.fs.memory.MemoryFileSystem` a
tree kept in memory; another storage plugs in by implementing these methods.

The contract every implementation keeps:

- **Confinement.** Client paths name entries below the file system's own
  root, which the client sees as ``/``. No path, ``..`` or symbolic link
  (whether the client made it or it was there) resolves outside the root:
  ``..`` at the root is the root, and an absolute link target is read
  from the root, as in a chroot. :meth:`FileSystem.locate` does the
  resolution once, and every later call on the location it returns acts on
  that entry without following a final link again.
- **Errors are OSError.** Every failure is an :class:`OSError` whose errno
  says what went wrong (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, EACCES,
  ENOSPC, EDQUOT...); the engine turns it into the SFTP status.
- **Blocking is allowed.** Methods may block; the engine runs them on worker
  threads (or inline where :attr:`Capabilities.never_waits` says they never
  wait), so an implementation must tolerate calls from several threads.
- **Capabilities are declared.** What the storage cannot do — write at an
  arbitrary offset, keep symbolic or hard links, report its space — is said
  in :attr:`FileSystem.capabilities`; the engine then refuses the request
  with SSH_FX_OP_UNSUPPORTED and a plain text, without calling the method.

Locations, open files and directory streams are the implementation's own
objects: the engine only hands back what the implementation gave it.

A storage that stores a file only when it is closed (an object store's
upload) may also have ``abandon_file(file)``: the engine calls it instead of
``close_file`` for a file the client never closed (its session ended first).

A storage whose calls may wait may also have calls that try the same work
without waiting, which the engine runs on the event-loop thread first and
hands to a worker only when they answer None: ``close_read_only(file)``, and
``open_cached(path, base, follow, flags) -> (file, resolved path) | None``,
:meth:`FileSystem.open_path` of a file opened only for reading (``flags`` is
``os.O_RDONLY``). None from either means "it might wait, or ask the worker":
the worker's call then gives the answer, errors included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

#: What :meth:`FileSystem.locate` returned: a resolved entry of this file system,
#: with ``path`` (the resolved client path, ``b"/dir/name"``) and ``close()``.
Location = Any
#: What :meth:`FileSystem.open_file` returned: an open regular file.
OpenFile = Any
#: What :meth:`FileSystem.opendir` returned: a :class:`DirStream` of this file system.
OpenDir = Any


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a storage supports beyond reading, writing at the end, and naming files."""

    #: WRITE at any offset of a file, and a size changed by SETSTAT; without it a
    #: file can only be written from its start to its end (an object store's upload).
    random_writes: bool = True
    symlinks: bool = True
    hard_links: bool = True
    #: statvfs@openssh.com and fstatvfs@openssh.com: the storage knows its size.
    statvfs: bool = True
    #: No call waits on a device (memory, tmpfs): calls run inline, not on threads.
    never_waits: bool = False


@dataclass(frozen=True, slots=True)
class SetStat:
    """The changes of a SETSTAT, in the order OpenSSH applies them."""

    size: int | None = None
    permissions: int | None = None
    times: tuple[int, int] | None = None
    owner: tuple[int, int] | None = None


@dataclass(slots=True)
class DirEntry:
    name: bytes
    stat: os.stat_result


class DirStream(Protocol):
    """An open directory being listed."""

    def close(self) -> None: ...


class CachedReadUnsupported(Exception):
    """This file cannot be read with a promise not to wait (see ``read_cached``)."""


class FileSystem(Protocol):
    """The storage one SFTP session serves; see the module's contract."""

    capabilities: Capabilities

    def close(self) -> None:
        """The session is over: release what this object holds for it."""

    def host_path(self, virtual: bytes) -> str:
        """What the access hooks are told for the client's resolved ``virtual`` path."""

    def locate(self, path: bytes, base: bytes, follow: bool) -> Location:
        """Resolve ``path`` (relative ones against ``base``) inside the root.

        With ``follow`` a link in the final component is followed; without,
        the location names the link itself. A missing final component is not
        an error (it may be about to be created); a missing directory on the
        way is (ENOENT). The location has ``path``, the resolved client path,
        and must be closed.
        """

    # --- files -----------------------------------------------------------------------------

    def open_path(
        self, path: bytes, base: bytes, follow: bool, flags: int, create_mode: int | None
    ) -> tuple[OpenFile, bytes]:
        """:meth:`locate` then :meth:`open_file` in one call: the file and its resolved path."""

    def open_file(self, loc: Location, flags: int, create_mode: int | None) -> OpenFile:
        """Open a regular file; with ``create_mode``, create it (mode exactly that) if absent.

        ``flags`` are ``os.O_*`` access bits and O_APPEND, O_TRUNC, O_EXCL.
        """

    def read(self, file: OpenFile, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; ``b""`` at or past the end."""

    def read_cached(self, file: OpenFile, length: int, offset: int) -> bytes | bytearray | None:
        """:meth:`read` if it cannot wait, else None; may raise CachedReadUnsupported.

        The data may come in a bytearray, the buffer it was read into."""

    def write(self, file: OpenFile, data: memoryview | bytes, offset: int) -> None:
        """All of ``data`` at ``offset`` (at the end on a file opened O_APPEND)."""

    def close_file(self, file: OpenFile) -> None: ...

    def fstat(self, file: OpenFile) -> os.stat_result: ...

    def fsync(self, file: OpenFile) -> None: ...

    def fstatvfs(self, file: OpenFile) -> os.statvfs_result: ...

    def fsetstat(self, file: OpenFile, change: SetStat) -> None: ...

    def copy_step(
        self,
        src: OpenFile,
        src_offset: int,
        end: int,
        dst: OpenFile,
        dst_offset: int,
        step: int,
    ) -> int:
        """Copy the next piece (at most ``step`` bytes of data) of ``src`` below ``end``.

        Returns how far it went, 0 at the end of the source.
        """

    # --- names -----------------------------------------------------------------------------

    def stat(self, loc: Location) -> os.stat_result: ...

    def setstat(self, loc: Location, change: SetStat) -> None: ...

    def statvfs(self, loc: Location) -> os.statvfs_result: ...

    def opendir(self, loc: Location) -> DirStream: ...

    def read_dir(self, stream: OpenDir, count: int) -> list[DirEntry]:
        """Up to ``count`` entries, ``.`` and ``..`` first, not following links; [] at the end."""

    def remove(self, loc: Location) -> None: ...

    def mkdir(self, loc: Location, mode: int) -> None: ...

    def rmdir(self, loc: Location) -> None: ...

    def rename(self, old: Location, new: Location) -> None:
        """POSIX rename: replaces an existing ``new``."""

    def rename_no_replace(self, old: Location, new: Location) -> None:
        """Rename that fails with EEXIST if ``new`` exists."""

    def readlink(self, loc: Location) -> bytes: ...

    def symlink(self, target: bytes, loc: Location) -> None: ...

    def link(self, old: Location, new: Location) -> None: ...

    def usage(self, loc: Location) -> tuple[int, int]:
        """Bytes and files (regular files and links) below ``loc``, links not followed."""

    # --- accounts --------------------------------------------------------------------------

    def user_name(self, uid: int) -> str | None: ...

    def group_name(self, gid: int) -> str | None: ...
