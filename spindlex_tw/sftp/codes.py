"""SFTP v3 numbers (draft-ietf-secsh-filexfer-02 and OpenSSH's PROTOCOL), named as there.

Status codes, open flags and attribute flags live in
:mod:`spindlex_tw.protocol.constants`, beside the other numbers users compare
against, and are re-exported here; this module defines what only the SFTP
engine needs.
"""

from typing import Final

from spindlex_tw.protocol import constants as _c

# Defined once, beside the other numbers users compare against.
SSH_FILEXFER_ATTR_ACMODTIME: Final = _c.SSH_FILEXFER_ATTR_ACMODTIME
SSH_FILEXFER_ATTR_EXTENDED: Final = _c.SSH_FILEXFER_ATTR_EXTENDED
SSH_FILEXFER_ATTR_PERMISSIONS: Final = _c.SSH_FILEXFER_ATTR_PERMISSIONS
SSH_FILEXFER_ATTR_SIZE: Final = _c.SSH_FILEXFER_ATTR_SIZE
SSH_FILEXFER_ATTR_UIDGID: Final = _c.SSH_FILEXFER_ATTR_UIDGID
SSH_FXF_APPEND: Final = _c.SSH_FXF_APPEND
SSH_FXF_CREAT: Final = _c.SSH_FXF_CREAT
SSH_FXF_EXCL: Final = _c.SSH_FXF_EXCL
SSH_FXF_READ: Final = _c.SSH_FXF_READ
SSH_FXF_TRUNC: Final = _c.SSH_FXF_TRUNC
SSH_FXF_WRITE: Final = _c.SSH_FXF_WRITE

SFTP_VERSION: Final = 3

# --- Packet types (section 3) ---------------------------------------------------------
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
SSH_FXP_STATUS: Final = 101
SSH_FXP_HANDLE: Final = 102
SSH_FXP_DATA: Final = 103
SSH_FXP_NAME: Final = 104
SSH_FXP_ATTRS: Final = 105
SSH_FXP_EXTENDED: Final = 200
SSH_FXP_EXTENDED_REPLY: Final = 201

# --- statvfs@openssh.com f_flag bits (PROTOCOL 4.4) -----------------------------------------
SSH_FXE_STATVFS_ST_RDONLY: Final = 0x1
SSH_FXE_STATVFS_ST_NOSUID: Final = 0x2
