"""The SFTP operations an audit trail records, described without I/O.

The session does not log: it hands each finished :class:`Operation` to the
``record`` callback its driver gave it, and the driver (``tx/sftp.py``) turns
it into a log event. Only requests that change or open something are
described (OPEN, CLOSE of a file, REMOVE, RENAME, MKDIR, RMDIR, SETSTAT,
FSETSTAT, SYMLINK and the rename, link, lsetstat and copy extensions); READ
and WRITE are not, they only add to their handle's byte counts, which CLOSE
reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.wire import Reader
from spindlex_tw.protocol.constants import (
    SSH_FX_BAD_MESSAGE,
    SSH_FX_CONNECTION_LOST,
    SSH_FX_EOF,
    SSH_FX_FAILURE,
    SSH_FX_NO_CONNECTION,
    SSH_FX_NO_SUCH_FILE,
    SSH_FX_OK,
    SSH_FX_OP_UNSUPPORTED,
    SSH_FX_PERMISSION_DENIED,
)
from spindlex_tw.sftp.codes import (
    SSH_FXF_APPEND,
    SSH_FXF_CREAT,
    SSH_FXF_EXCL,
    SSH_FXF_READ,
    SSH_FXF_TRUNC,
    SSH_FXF_WRITE,
    SSH_FXP_CLOSE,
    SSH_FXP_EXTENDED,
    SSH_FXP_FSETSTAT,
    SSH_FXP_HANDLE,
    SSH_FXP_MKDIR,
    SSH_FXP_OPEN,
    SSH_FXP_REMOVE,
    SSH_FXP_RENAME,
    SSH_FXP_RMDIR,
    SSH_FXP_SETSTAT,
    SSH_FXP_STATUS,
    SSH_FXP_SYMLINK,
)
from spindlex_tw.sftp.context import SessionClosed
from spindlex_tw.sftp.handles import FileHandle, HandleTable
from spindlex_tw.sftp.replies import Reply
from spindlex_tw.sftp.status import SFTPError, status_for_errno

#: The request types that may be described; everything else costs one set lookup.
AUDITED = frozenset(
    {
        SSH_FXP_OPEN,
        SSH_FXP_CLOSE,
        SSH_FXP_REMOVE,
        SSH_FXP_RENAME,
        SSH_FXP_MKDIR,
        SSH_FXP_RMDIR,
        SSH_FXP_SETSTAT,
        SSH_FXP_FSETSTAT,
        SSH_FXP_SYMLINK,
        SSH_FXP_EXTENDED,
    }
)

#: Status codes as they appear in audit records.
STATUS_NAMES = {
    SSH_FX_OK: "ok",
    SSH_FX_EOF: "eof",
    SSH_FX_NO_SUCH_FILE: "no_such_file",
    SSH_FX_PERMISSION_DENIED: "permission_denied",
    SSH_FX_FAILURE: "failure",
    SSH_FX_BAD_MESSAGE: "bad_message",
    SSH_FX_NO_CONNECTION: "no_connection",
    SSH_FX_CONNECTION_LOST: "connection_lost",
    SSH_FX_OP_UNSUPPORTED: "op_unsupported",
}

_FLAG_NAMES = (
    (SSH_FXF_READ, "read"),
    (SSH_FXF_WRITE, "write"),
    (SSH_FXF_APPEND, "append"),
    (SSH_FXF_CREAT, "creat"),
    (SSH_FXF_TRUNC, "trunc"),
    (SSH_FXF_EXCL, "excl"),
)

# Extended requests described, by name: the operation and whether its two
# first fields are paths (rename, link) or one path (lsetstat).
_EXTENDED_PATHS = {
    b"posix-rename@openssh.com": ("rename", 2),
    b"hardlink@openssh.com": ("link", 2),
    b"lsetstat@openssh.com": ("setstat", 1),
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One finished SFTP operation. Paths are as the client named them."""

    #: open, close, remove, rename, mkdir, rmdir, setstat, symlink, link or copy
    name: str
    path: str
    #: "ok", or the SFTP status the client got (STATUS_NAMES)
    status: str = "ok"
    #: the second path: rename's and link's new name, symlink's target, copy's destination
    target: str | None = None
    #: open's SSH_FXF_* flags by name
    flags: tuple[str, ...] = ()
    #: the handle (hex) that pairs an open with its close
    handle: str | None = None
    bytes_read: int | None = None
    bytes_written: int | None = None
    #: copy's requested length (0: to the end of the file)
    length: int | None = None


Record = Callable[[Operation], None]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def flag_names(pflags: int) -> tuple[str, ...]:
    return tuple(name for bit, name in _FLAG_NAMES if pflags & bit)


def describe(
    kind: int, packet: memoryview | bytes, handles: HandleTable, symlink_target_first: bool = True
) -> Pending | None:
    """What request ``packet`` (of type ``kind``) is about to do, or None if not audited.

    ``symlink_target_first`` is the session's SYMLINK order (Limits.symlink_target_first).
    """
    r = Reader(packet, 5)  # type, request id: the fields follow
    try:
        if kind == SSH_FXP_OPEN:
            path = _text(r.string())
            return Pending("open", path, flags=flag_names(r.uint32()))
        if kind == SSH_FXP_CLOSE:
            handle = handles.file(r.string())
            return None if handle is None else Pending("close", file=handle)
        if kind in _ONE_PATH:
            return Pending(_ONE_PATH[kind], _text(r.string()))
        if kind == SSH_FXP_FSETSTAT:
            handle = handles.file(r.string())
            return None if handle is None else Pending("setstat", _text(handle.path))
        if kind == SSH_FXP_RENAME:
            return Pending("rename", _text(r.string()), target=_text(r.string()))
        if kind == SSH_FXP_SYMLINK:
            first, second = _text(r.string()), _text(r.string())
            target, link = (first, second) if symlink_target_first else (second, first)
            return Pending("symlink", link, target=target)
        if kind == SSH_FXP_EXTENDED:
            return _extended(r, handles)
    except DecodeError:
        return None  # the handler answers BAD_MESSAGE; nothing was done
    return None


_ONE_PATH = {
    SSH_FXP_REMOVE: "remove",
    SSH_FXP_MKDIR: "mkdir",
    SSH_FXP_RMDIR: "rmdir",
    SSH_FXP_SETSTAT: "setstat",
}


def _extended(r: Reader, handles: HandleTable) -> Pending | None:
    name = r.string()
    if name in _EXTENDED_PATHS:
        operation, paths = _EXTENDED_PATHS[name]
        path = _text(r.string())
        target = _text(r.string()) if paths == 2 else None
        return Pending(operation, path, target=target)
    if name == b"copy-data":
        source = handles.file(r.string())
        r.uint64()  # read offset
        length = r.uint64()
        destination = handles.file(r.string())
        if source is None or destination is None:
            return None
        return Pending("copy", _text(source.path), target=_text(destination.path), length=length)
    return None


class Pending:
    """An operation under way; ``finish`` makes its record once the outcome is known.

    Only the description is kept until then: the record (a frozen dataclass,
    slow to build) is made once, with the outcome, not once here and again
    with the outcome filled in.
    """

    __slots__ = ("file", "flags", "length", "name", "path", "target")

    def __init__(
        self,
        name: str,
        path: str = "",
        target: str | None = None,
        flags: tuple[str, ...] = (),
        length: int | None = None,
        file: FileHandle | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.target = target
        self.flags = flags
        self.length = length
        self.file = file  # CLOSE: the handle, whose path and byte counts the record reports

    def finish(self, reply: Reply | None, error: BaseException | None) -> Operation:
        """The record of this operation, which answered ``reply`` or raised ``error``."""
        status = reply_status(reply) if error is None else error_status(error)
        if self.file is not None:
            return closed(self.file, status)
        handle = None
        if self.name == "open" and reply is not None and status == "ok":
            handle = _handle_of(reply)
        return Operation(
            self.name, self.path, status, self.target, self.flags, handle, length=self.length
        )


def closed(handle: FileHandle, status: str) -> Operation:
    """The close of ``handle``, by the client or because the session ended."""
    return Operation(
        "close",
        _text(handle.path),
        status,
        handle=handle.handle_id.hex(),
        bytes_read=handle.bytes_read,
        bytes_written=handle.bytes_written,
    )


def _handle_of(reply: Reply) -> str | None:
    first = reply[0]
    if len(first) < 13 or first[4] != SSH_FXP_HANDLE:
        return None
    return bytes(Reader(first, 9).string()).hex()


def reply_status(reply: Reply | None) -> str:
    if not reply:
        return STATUS_NAMES[SSH_FX_CONNECTION_LOST]
    first = reply[0]
    if len(first) >= 13 and first[4] == SSH_FXP_STATUS:
        code = int.from_bytes(first[9:13], "big")
        return STATUS_NAMES.get(code, str(code))
    return "ok"


def error_status(error: BaseException) -> str:
    """The status the session answers ``error`` with (see SftpSession._failure_reply)."""
    if isinstance(error, SFTPError):
        code = error.status_code
    elif isinstance(error, DecodeError):
        code = SSH_FX_BAD_MESSAGE
    elif isinstance(error, OSError):
        code = status_for_errno(error.errno)
    elif isinstance(error, SessionClosed) or not isinstance(error, Exception):
        code = SSH_FX_CONNECTION_LOST
    else:
        code = SSH_FX_FAILURE
    return STATUS_NAMES.get(code, str(code))
