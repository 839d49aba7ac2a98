"""The public SFTP server API of SpindleX: ``SFTPServer``, ``SFTPHandle``, ``SFTPError``.

Inside ``check_channel_subsystem_request(channel, "sftp")`` an application
writes ``SFTPServer(channel, root)`` (or builds a subclass that overrides the
hooks) and returns ``True``. The constructor attaches the SFTP protocol to the
channel; no thread is started, whatever ``start_thread`` says.

Limits are class attributes, so a subclass (or an instance, before the client
sends its first byte) may change them.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, BinaryIO

from spindlex_tw.fs.interface import FileSystem
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.fs.quota import Quota, QuotaFileSystem
from spindlex_tw.protocol.constants import SSH_FX_FAILURE, SSH_FX_PERMISSION_DENIED
from spindlex_tw.protocol.sftp_constants import MAX_SFTP_HANDLES
from spindlex_tw.sftp.bandwidth import Bandwidth
from spindlex_tw.sftp.codes import (
    SSH_FXF_APPEND,
    SSH_FXF_CREAT,
    SSH_FXF_EXCL,
    SSH_FXF_READ,
    SSH_FXF_TRUNC,
    SSH_FXF_WRITE,
)
from spindlex_tw.sftp.context import HEADER_ROOM, SIZE_LIMIT, Limits, fixed_answer
from spindlex_tw.sftp.path_ops import symlink_target_first
from spindlex_tw.sftp.status import SFTPError
from spindlex_tw.tx.hooks import DEFAULT_HOOK_TIMEOUT
from spindlex_tw.tx.sftp import SFTPProtocol

__all__ = [
    "MAX_SFTP_HANDLES",
    "SSH_FXF_APPEND",
    "SSH_FXF_CREAT",
    "SSH_FXF_EXCL",
    "SSH_FXF_READ",
    "SSH_FXF_TRUNC",
    "SSH_FXF_WRITE",
    "SFTPError",
    "SFTPHandle",
    "SFTPServer",
]


class SFTPHandle:
    """An open file (``file_obj`` given) or directory (``file_obj`` None) of an SFTP session.

    A convenience for applications that keep their own file objects; the
    server itself reads and writes its handles with positioned I/O.
    """

    def __init__(
        self, handle_id: bytes, path: str, flags: int, file_obj: BinaryIO | None = None
    ) -> None:
        self.handle_id = handle_id
        self.path = path
        self.flags = flags
        self.file_obj = file_obj
        self.is_directory = file_obj is None
        self.position = 0
        self.dir_entries: list[tuple[Any, ...]] | None = None
        self.dir_index = 0

    def _file(self) -> BinaryIO:
        if self.is_directory:
            raise SFTPError("Not a file handle", SSH_FX_FAILURE)
        if self.file_obj is None:
            raise SFTPError("Handle is closed", SSH_FX_FAILURE)
        return self.file_obj

    def read(self, length: int) -> bytes:
        """Up to ``length`` bytes from the current position (``b""`` at end of file)."""
        file_obj = self._file()
        if not self.flags & SSH_FXF_READ:
            raise SFTPError("Handle not open for reading", SSH_FX_PERMISSION_DENIED)
        try:
            data = file_obj.read(length)
        except (OSError, ValueError) as exc:
            raise SFTPError(f"Read failed: {exc}", SSH_FX_FAILURE) from exc
        self.position += len(data)
        return data

    def write(self, data: bytes) -> int:
        """Write all of ``data`` at the current position; returns its length."""
        file_obj = self._file()
        if not self.flags & (SSH_FXF_WRITE | SSH_FXF_APPEND):
            raise SFTPError("Handle not open for writing", SSH_FX_PERMISSION_DENIED)
        try:
            written = file_obj.write(data)
        except (OSError, ValueError) as exc:
            raise SFTPError(f"Write failed: {exc}", SSH_FX_FAILURE) from exc
        self.position += written
        return written

    def seek(self, offset: int) -> None:
        file_obj = self._file()
        try:
            file_obj.seek(offset)
        except (OSError, ValueError) as exc:
            raise SFTPError(f"Seek failed: {exc}", SSH_FX_FAILURE) from exc
        self.position = offset

    def close(self) -> None:
        """Close the file object; closing twice is harmless."""
        file_obj, self.file_obj = self.file_obj, None
        if file_obj is not None:
            # Nothing a caller could do about a failed close: the handle is gone either way.
            with contextlib.suppress(OSError):
                file_obj.close()


class SFTPServer:
    """An SFTP v3 session on ``channel`` serving the tree under ``root_path``.

    The client sees ``root_path`` as ``/`` and can never reach outside it, by
    ``..`` or by symbolic links (see docs/sftp.md). Override the hooks to
    decide access and the modes of what clients create.
    """

    #: Longest request accepted: 256 KiB of data plus room for the headers.
    max_message_length: int = SIZE_LIMIT + HEADER_ROOM
    #: READ lengths above this are served short, as OpenSSH does.
    max_read_length: int = SIZE_LIMIT
    #: Advertised to clients by limits@openssh.com.
    max_write_length: int = SIZE_LIMIT
    #: Open files and directories per session; OPEN beyond this fails.
    max_open_handles: int = MAX_SFTP_HANDLES
    #: Requests in progress before the server stops reading more. The SFTP
    #: sessions of one connection share this and the next budget (sized by the
    #: connection's first session); each session may always have one request.
    max_outstanding_requests: int = 64
    #: Bytes of requests and replies in progress before the server stops reading more.
    max_outstanding_bytes: int = 8 * 1024 * 1024
    #: The client's home and working directory, inside the root.
    home_directory: str = "/"
    #: Seconds a hook returning a Deferred may take before the request is refused.
    hook_timeout: float = DEFAULT_HOOK_TIMEOUT
    #: Where file calls run: "threads" keeps a slow disk from stalling other
    #: connections; "inline" runs them on the reactor thread, which halves the
    #: CPU per small file but lets one slow call hold up everyone; "auto" is
    #: inline when ``root_path`` is on tmpfs or ramfs (no call waits on a device)
    #: and threads anywhere else.
    disk_io: str = "auto"
    #: Uploads land whole or not at all: an OPEN with CREAT|TRUNC writes to a
    #: hidden temporary in the same directory (``.NAME.XXXXXXXXXXXX.part``),
    #: renamed over the real name on CLOSE and removed if the session ends
    #: without one. Appends and writes into an existing file without TRUNC
    #: (resumed uploads) still write in place, and so does every upload to a
    #: storage other than the local disk or under a quota (docs/operations.md).
    atomic_uploads: bool = False

    #: Refuse every request that would change the files (each "w" row of
    #: docs/sftp.md's table), whatever the hooks answer.
    read_only: bool = False
    #: The user's allowance of bytes and files; share one Quota between the
    #: sessions of one user so they draw on one allowance (docs/users.md).
    quota: Quota | None = None
    #: The client path below which the quota counts: "/" is everything served.
    quota_scope: str = "/"
    #: Upload and download limits; share one Bandwidth between the sessions of
    #: one user so they draw on one limit (docs/users.md).
    bandwidth: Bandwidth | None = None

    def __init__(self, channel: Any, root_path: str = "/", start_thread: bool = True) -> None:
        self._channel = channel
        # Resolved once: the jail is the directory this names now, whatever links change later.
        self._root_path = os.path.realpath(os.path.abspath(root_path))
        self._protocol = SFTPProtocol(
            self,
            self._root_path,
            self._limits(),
            self.hook_timeout,
            disk_io=self.disk_io,
            storage=self._storage,
            bandwidth=self.bandwidth,
        )
        channel.attach_protocol(self._protocol)

    @property
    def root_path(self) -> str:
        return self._root_path

    def open_storage(self) -> FileSystem:
        """The file system this session serves: by default the directory ``root_path``.

        Override to serve another storage (a shared
        :class:`~spindlex_tw.fs.memory.MemoryFileSystem`, say); called once
        when the session starts, and closed when it ends.
        """
        return LocalFileSystem(self._root_path)

    def _storage(self) -> FileSystem:
        fs = self.open_storage()
        if self.quota is None:
            return fs
        return QuotaFileSystem(fs, self.quota, os.fsencode(self.quota_scope))

    @property
    def protocol(self) -> SFTPProtocol:
        """The Twisted protocol carrying this session (``when_finished()`` is there)."""
        return self._protocol

    def _limits(self) -> Limits:
        home = "/" + self.home_directory.strip("/")
        return Limits(
            max_packet_length=self.max_message_length,
            max_read_length=self.max_read_length,
            max_write_length=self.max_write_length,
            max_open_handles=self.max_open_handles,
            max_outstanding_requests=self.max_outstanding_requests,
            max_outstanding_bytes=self.max_outstanding_bytes,
            home=os.fsencode(home),
            read_only=self.read_only,
            atomic_uploads=self.atomic_uploads,
            symlink_target_first=symlink_target_first(self._client_version()),
        )

    def _client_version(self) -> str:
        # A stand-in channel (a test's, an adapter's) may not know the client.
        return str(getattr(self._channel, "client_version", ""))

    # --- hooks: override in a subclass ---------------------------------------------------------

    @fixed_answer(True)
    def check_file_access(self, path: str, mode: str) -> bool:
        """May the client use the file at host path ``path``; ``mode`` is "r" or "w"?

        "r" for OPEN of a handle that reads, STAT, LSTAT and READLINK. "w" for
        whatever may change the data or give it a name: OPEN with WRITE,
        APPEND, CREAT or TRUNC, SETSTAT, FSETSTAT, lsetstat, REMOVE, both names
        of RENAME and posix-rename, both names of hardlink, and the new name of
        SYMLINK. docs/sftp.md has the table. Only ``True`` grants; a Deferred or
        coroutine may answer later.
        """
        return True

    @fixed_answer(True)
    def check_directory_access(self, path: str, mode: str) -> bool:
        """May the client use the directory at host path ``path``; ``mode`` is "r" or "w"?

        "r" for OPENDIR. "w" for the directory a name is added to or removed
        from (OPEN that creates, REMOVE, MKDIR, RMDIR, both names of RENAME and
        posix-rename, the new name of hardlink and SYMLINK), and for the
        directory itself that MKDIR creates or RMDIR removes.
        """
        return True

    @fixed_answer(0o644)
    def get_file_permissions(self, path: str) -> int:
        """The mode of a file the client creates at host path ``path``.

        A client asking for a narrower mode in OPEN keeps the narrower one.
        """
        return 0o644

    @fixed_answer(0o755)
    def get_directory_permissions(self, path: str) -> int:
        """The mode of a directory the client creates at host path ``path``.

        A client asking for a narrower mode in MKDIR keeps the narrower one.
        """
        return 0o755

    def close(self) -> None:
        """End the session; every open handle is closed once the channel is gone."""
        self._protocol.close()
