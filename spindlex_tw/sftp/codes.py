"""SFTP v3 numbers (draft-ietf-secsh-filexfer-02 and OpenSSH's PROTOCOL), named as there.

Status codes, open flags and attribute flags live in
:mod:`spindlex_tw.protocol.constants`, beside the other numbers users compare
against, and are re-exported here; this module defines what only the SFTP
engine needs.
"""

from typing import Final

from spindlex_tw.protocol import constants as _c
from spindlex_tw.protocol import sftp_constants as _sc

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

# Packet types (section 3) and the version, defined once under SpindleX's names.
SFTP_VERSION: Final = _sc.SFTP_VERSION
SSH_FXP_INIT: Final = _sc.SSH_FXP_INIT
SSH_FXP_VERSION: Final = _sc.SSH_FXP_VERSION
SSH_FXP_OPEN: Final = _sc.SSH_FXP_OPEN
SSH_FXP_CLOSE: Final = _sc.SSH_FXP_CLOSE
SSH_FXP_READ: Final = _sc.SSH_FXP_READ
SSH_FXP_WRITE: Final = _sc.SSH_FXP_WRITE
SSH_FXP_LSTAT: Final = _sc.SSH_FXP_LSTAT
SSH_FXP_FSTAT: Final = _sc.SSH_FXP_FSTAT
SSH_FXP_SETSTAT: Final = _sc.SSH_FXP_SETSTAT
SSH_FXP_FSETSTAT: Final = _sc.SSH_FXP_FSETSTAT
SSH_FXP_OPENDIR: Final = _sc.SSH_FXP_OPENDIR
SSH_FXP_READDIR: Final = _sc.SSH_FXP_READDIR
SSH_FXP_REMOVE: Final = _sc.SSH_FXP_REMOVE
SSH_FXP_MKDIR: Final = _sc.SSH_FXP_MKDIR
SSH_FXP_RMDIR: Final = _sc.SSH_FXP_RMDIR
SSH_FXP_REALPATH: Final = _sc.SSH_FXP_REALPATH
SSH_FXP_STAT: Final = _sc.SSH_FXP_STAT
SSH_FXP_RENAME: Final = _sc.SSH_FXP_RENAME
SSH_FXP_READLINK: Final = _sc.SSH_FXP_READLINK
SSH_FXP_SYMLINK: Final = _sc.SSH_FXP_SYMLINK
SSH_FXP_STATUS: Final = _sc.SSH_FXP_STATUS
SSH_FXP_HANDLE: Final = _sc.SSH_FXP_HANDLE
SSH_FXP_DATA: Final = _sc.SSH_FXP_DATA
SSH_FXP_NAME: Final = _sc.SSH_FXP_NAME
SSH_FXP_ATTRS: Final = _sc.SSH_FXP_ATTRS
SSH_FXP_EXTENDED: Final = _sc.SSH_FXP_EXTENDED
SSH_FXP_EXTENDED_REPLY: Final = _sc.SSH_FXP_EXTENDED_REPLY

# --- statvfs@openssh.com f_flag bits (PROTOCOL 4.4) -----------------------------------------
SSH_FXE_STATVFS_ST_RDONLY: Final = 0x1
SSH_FXE_STATVFS_ST_NOSUID: Final = 0x2
