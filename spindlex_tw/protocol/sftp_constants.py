"""SFTP numbers under SpindleX's names (``spindlex.protocol.sftp_constants``).

The codes of draft-ietf-secsh-filexfer-02 that this server speaks (version 3)
plus the status codes later drafts added, which an application may raise in an
:class:`~spindlex_tw.exceptions.SFTPError`; a version-3 client shows them as
plain failures.  Status texts are OpenSSH's sftp-server's for the version-3
codes, so users see what they see from OpenSSH.
"""

from __future__ import annotations

from typing import Final

from spindlex_tw.protocol.constants import (
    SSH_FILEXFER_ATTR_ACMODTIME,
    SSH_FILEXFER_ATTR_EXTENDED,
    SSH_FILEXFER_ATTR_PERMISSIONS,
    SSH_FILEXFER_ATTR_SIZE,
    SSH_FILEXFER_ATTR_UIDGID,
    SSH_FX_BAD_MESSAGE,
    SSH_FX_CONNECTION_LOST,
    SSH_FX_EOF,
    SSH_FX_FAILURE,
    SSH_FX_NO_CONNECTION,
    SSH_FX_NO_SUCH_FILE,
    SSH_FX_OK,
    SSH_FX_OP_UNSUPPORTED,
    SSH_FX_PERMISSION_DENIED,
    SSH_FXF_APPEND,
    SSH_FXF_CREAT,
    SSH_FXF_EXCL,
    SSH_FXF_READ,
    SSH_FXF_TRUNC,
    SSH_FXF_WRITE,
)

SFTP_VERSION: Final = 3
SFTP_SUBSYSTEM: Final = "sftp"
MAX_SFTP_HANDLES: Final = 100  # open handles per session (SFTPLimits.max_open_handles)

# --- Packet types (draft 02 section 3; LINK from later drafts) ---------------------
SSH_FXP_INIT: Final = 1
SSH_FXP_VERSION: Final = 2
SSH_FXP_OPEN: Final = 3
SSH_FXP_CLOSE: Final = 4
SSH_FXP_READ: Final = 5
SSH_FXP_WRITE: Final = 6
SSH_FXP_LSTAT: Final = 7
SSH_FXP_FSTAT: Final = 8
SSH_FXP_SETSTAT: Final = 9
SSH_FXP_FSETSTAT: Final = 10
SSH_FXP_OPENDIR: Final = 11
SSH_FXP_READDIR: Final = 12
SSH_FXP_REMOVE: Final = 13
SSH_FXP_MKDIR: Final = 14
SSH_FXP_RMDIR: Final = 15
SSH_FXP_REALPATH: Final = 16
SSH_FXP_STAT: Final = 17
SSH_FXP_RENAME: Final = 18
SSH_FXP_READLINK: Final = 19
SSH_FXP_SYMLINK: Final = 20
SSH_FXP_LINK: Final = 21
SSH_FXP_STATUS: Final = 101
SSH_FXP_HANDLE: Final = 102
SSH_FXP_DATA: Final = 103
SSH_FXP_NAME: Final = 104
SSH_FXP_ATTRS: Final = 105
SSH_FXP_EXTENDED: Final = 200
SSH_FXP_EXTENDED_REPLY: Final = 201

# --- Status codes of later drafts (filexfer-13 section 9.1) ------------------------
SSH_FX_INVALID_HANDLE: Final = 9
SSH_FX_NO_SUCH_PATH: Final = 10
SSH_FX_FILE_ALREADY_EXISTS: Final = 11
SSH_FX_WRITE_PROTECT: Final = 12
SSH_FX_NO_MEDIA: Final = 13
SSH_FX_NO_SPACE_ON_FILESYSTEM: Final = 14
SSH_FX_QUOTA_EXCEEDED: Final = 15
SSH_FX_UNKNOWN_PRINCIPAL: Final = 16
SSH_FX_LOCK_CONFLICT: Final = 17
SSH_FX_DIR_NOT_EMPTY: Final = 18
SSH_FX_NOT_A_DIRECTORY: Final = 19
SSH_FX_INVALID_FILENAME: Final = 20
SSH_FX_LINK_LOOP: Final = 21

# --- File types of a v4+ ATTRS "type" byte, as S_IFMT bits -------------------------
SSH_FILEXFER_TYPE_UNKNOWN: Final = 0
SSH_FILEXFER_TYPE_DIRECTORY: Final = 0o040000
SSH_FILEXFER_TYPE_REGULAR: Final = 0o100000
SSH_FILEXFER_TYPE_SPECIAL: Final = 0o060000
SSH_FILEXFER_TYPE_SYMLINK: Final = 0o120000

SFTP_STATUS_MESSAGES: Final[dict[int, str]] = {
    SSH_FX_OK: "Success",
    SSH_FX_EOF: "End of file",
    SSH_FX_NO_SUCH_FILE: "No such file",
    SSH_FX_PERMISSION_DENIED: "Permission denied",
    SSH_FX_FAILURE: "Failure",
    SSH_FX_BAD_MESSAGE: "Bad message",
    SSH_FX_NO_CONNECTION: "No connection",
    SSH_FX_CONNECTION_LOST: "Connection lost",
    SSH_FX_OP_UNSUPPORTED: "Operation unsupported",
    SSH_FX_INVALID_HANDLE: "Invalid handle",
    SSH_FX_NO_SUCH_PATH: "No such path",
    SSH_FX_FILE_ALREADY_EXISTS: "File already exists",
    SSH_FX_WRITE_PROTECT: "Write protected",
    SSH_FX_NO_MEDIA: "No media",
    SSH_FX_NO_SPACE_ON_FILESYSTEM: "No space on filesystem",
    SSH_FX_QUOTA_EXCEEDED: "Quota exceeded",
    SSH_FX_UNKNOWN_PRINCIPAL: "Unknown principal",
    SSH_FX_LOCK_CONFLICT: "Lock conflict",
    SSH_FX_DIR_NOT_EMPTY: "Directory not empty",
    SSH_FX_NOT_A_DIRECTORY: "Not a directory",
    SSH_FX_INVALID_FILENAME: "Invalid filename",
    SSH_FX_LINK_LOOP: "Link loop",
}

_PACKET_NAMES: Final[dict[int, str]] = {
    value: name
    for name, value in list(globals().items())
    if name.startswith("SSH_FXP_") and isinstance(value, int)
}

_NOT_FOUND: Final = frozenset({SSH_FX_NO_SUCH_FILE, SSH_FX_NO_SUCH_PATH})
_PERMISSION: Final = frozenset({SSH_FX_PERMISSION_DENIED, SSH_FX_WRITE_PROTECT})
_CATEGORIES: Final[dict[int, str]] = {
    SSH_FX_OK: "success",
    **dict.fromkeys(_NOT_FOUND, "not_found"),
    **dict.fromkeys(_PERMISSION, "permission"),
    SSH_FX_NO_SPACE_ON_FILESYSTEM: "storage",
    SSH_FX_QUOTA_EXCEEDED: "storage",
    SSH_FX_NO_CONNECTION: "connection",
    SSH_FX_CONNECTION_LOST: "connection",
    SSH_FX_BAD_MESSAGE: "protocol",
    SSH_FX_INVALID_HANDLE: "protocol",
    SSH_FX_INVALID_FILENAME: "protocol",
}


def get_status_message(status_code: int) -> str:
    return SFTP_STATUS_MESSAGES.get(status_code, f"Unknown status code: {status_code}")


def is_success_status(status_code: int) -> bool:
    return status_code == SSH_FX_OK


def is_error_status(status_code: int) -> bool:
    return status_code != SSH_FX_OK


def is_file_not_found_error(status_code: int) -> bool:
    return status_code in _NOT_FOUND


def is_permission_error(status_code: int) -> bool:
    return status_code in _PERMISSION


def get_error_category(status_code: int) -> str:
    """"success", "not_found", "permission", "storage", "connection", "protocol" or "general"."""
    return _CATEGORIES.get(status_code, "general")


def validate_sftp_message_type(msg_type: int) -> bool:
    """True for an SFTP packet type number."""
    return msg_type in _PACKET_NAMES


def get_message_name(msg_type: int) -> str:
    """``"SSH_FXP_OPEN"`` for 3; ``"UNKNOWN(n)"`` for a number that is no packet type."""
    return _PACKET_NAMES.get(msg_type, f"UNKNOWN({msg_type})")


__all__ = [
    "MAX_SFTP_HANDLES",
    "SFTP_STATUS_MESSAGES",
    "SFTP_SUBSYSTEM",
    "SFTP_VERSION",
    "SSH_FILEXFER_ATTR_ACMODTIME",
    "SSH_FILEXFER_ATTR_EXTENDED",
    "SSH_FILEXFER_ATTR_PERMISSIONS",
    "SSH_FILEXFER_ATTR_SIZE",
    "SSH_FILEXFER_ATTR_UIDGID",
    "SSH_FILEXFER_TYPE_DIRECTORY",
    "SSH_FILEXFER_TYPE_REGULAR",
    "SSH_FILEXFER_TYPE_SPECIAL",
    "SSH_FILEXFER_TYPE_SYMLINK",
    "SSH_FILEXFER_TYPE_UNKNOWN",
    "SSH_FXF_APPEND",
    "SSH_FXF_CREAT",
    "SSH_FXF_EXCL",
    "SSH_FXF_READ",
    "SSH_FXF_TRUNC",
    "SSH_FXF_WRITE",
    *sorted(name for name in _PACKET_NAMES.values()),
    "SSH_FX_BAD_MESSAGE",
    "SSH_FX_CONNECTION_LOST",
    "SSH_FX_DIR_NOT_EMPTY",
    "SSH_FX_EOF",
    "SSH_FX_FAILURE",
    "SSH_FX_FILE_ALREADY_EXISTS",
    "SSH_FX_INVALID_FILENAME",
    "SSH_FX_INVALID_HANDLE",
    "SSH_FX_LINK_LOOP",
    "SSH_FX_LOCK_CONFLICT",
    "SSH_FX_NOT_A_DIRECTORY",
    "SSH_FX_NO_CONNECTION",
    "SSH_FX_NO_MEDIA",
    "SSH_FX_NO_SPACE_ON_FILESYSTEM",
    "SSH_FX_NO_SUCH_FILE",
    "SSH_FX_NO_SUCH_PATH",
    "SSH_FX_OK",
    "SSH_FX_OP_UNSUPPORTED",
    "SSH_FX_PERMISSION_DENIED",
    "SSH_FX_QUOTA_EXCEEDED",
    "SSH_FX_UNKNOWN_PRINCIPAL",
    "SSH_FX_WRITE_PROTECT",
    "get_error_category",
    "get_message_name",
    "get_status_message",
    "is_error_status",
    "is_file_not_found_error",
    "is_permission_error",
    "is_success_status",
    "validate_sftp_message_type",
]
