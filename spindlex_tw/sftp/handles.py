"""The handles a session has handed out, and the requests still using each.

A handle's descriptor is closed only when no request is using it any more:
closing a descriptor another thread is reading from could let the number be
reused by the next open and the read land in the wrong file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from spindlex_tw.fs.interface import DirStream, OpenFile
from spindlex_tw.fs.staged import StagedFile
from spindlex_tw.sftp.codes import SSH_FXF_APPEND, SSH_FXF_READ, SSH_FXF_WRITE
from spindlex_tw.sftp.effects import Signal

HANDLE_BYTES = 4


def reads(pflags: int) -> bool:
    """Whether a file opened with SSH_FXF_* ``pflags`` may be read."""
    # Asking neither to read nor to write means read, as O_RDONLY is 0.
    return bool(pflags & SSH_FXF_READ) or not writes(pflags)


def writes(pflags: int) -> bool:
    """Whether a file opened with SSH_FXF_* ``pflags`` may be written."""
    return bool(pflags & (SSH_FXF_WRITE | SSH_FXF_APPEND))


class Handle:
    """What every handle has: an id, the path it was opened with, a use count."""

    __slots__ = ("busy", "bytes_read", "bytes_written", "handle_id", "host_path", "idle", "path")

    def __init__(self, path: bytes, host_path: str) -> None:
        self.handle_id = b""
        self.path = path
        self.host_path = host_path
        self.busy = 0
        self.idle = Signal()
        # What CLOSE's audit record reports; READ and WRITE are not recorded one by one.
        self.bytes_read = 0
        self.bytes_written = 0

    @contextmanager
    def use(self) -> Iterator[None]:
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            if not self.busy:
                self.idle.fire()


class FileHandle(Handle):
    __slots__ = (
        "appending",
        "cached_reads",
        "fd",
        "pflags",
        "staged",
        "write_done",
        "writing",
        "written_end",
    )

    def __init__(
        self,
        path: bytes,
        host_path: str,
        fd: OpenFile,
        pflags: int,
        staged: StagedFile | None = None,
    ) -> None:
        super().__init__(path, host_path)
        self.fd = fd
        self.pflags = pflags
        # An atomic upload: renamed into place on CLOSE, removed if the session ends first.
        self.staged = staged
        # O_APPEND writes land wherever the file ends when they run, so on an
        # APPEND handle they must run one at a time, in the order they came.
        self.appending = bool(pflags & SSH_FXF_APPEND)
        self.writing = False
        self.write_done = Signal()
        # Reads are first tried from the page cache, until the filesystem says
        # it cannot do that (tmpfs, for one).
        self.cached_reads = True
        # Where the next write must start on a storage without random-access writes.
        self.written_end = 0

    @property
    def readable(self) -> bool:
        return reads(self.pflags)

    @property
    def writable(self) -> bool:
        return writes(self.pflags)


class DirHandle(Handle):
    __slots__ = ("stream",)

    def __init__(self, path: bytes, host_path: str, stream: DirStream) -> None:
        super().__init__(path, host_path)
        self.stream = stream


class HandleTable:
    """At most ``limit`` handles, counting opens still in progress."""

    __slots__ = ("_handles", "_limit", "_next", "_reserved")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._handles: dict[bytes, Handle] = {}
        self._reserved = 0
        self._next = 0

    def __len__(self) -> int:
        return len(self._handles)

    def reserve(self) -> bool:
        """Claim room for one more handle before opening anything; False if full."""
        if len(self._handles) + self._reserved >= self._limit:
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        self._reserved -= 1

    def add(self, handle: Handle) -> bytes:
        """Install ``handle`` in a reserved slot and return its new id."""
        self._reserved -= 1
        while True:
            # Ids are never reused until the 32-bit counter wraps past every live one.
            self._next = (self._next + 1) & 0xFFFFFFFF
            handle_id = self._next.to_bytes(HANDLE_BYTES, "big")
            if handle_id not in self._handles:
                break
        handle.handle_id = handle_id
        self._handles[handle_id] = handle
        return handle_id

    def file(self, handle_id: bytes) -> FileHandle | None:
        handle = self._handles.get(handle_id)
        return handle if isinstance(handle, FileHandle) else None

    def directory(self, handle_id: bytes) -> DirHandle | None:
        handle = self._handles.get(handle_id)
        return handle if isinstance(handle, DirHandle) else None

    def pop(self, handle_id: bytes) -> Handle | None:
        return self._handles.pop(handle_id, None)

    def pop_all(self) -> list[Handle]:
        handles = list(self._handles.values())
        self._handles.clear()
        return handles
