"""What a failed request tells the client: status codes, their texts, errno mapping.

The texts are OpenSSH's sftp-server's, word for word, because users compare
them with what they see from OpenSSH; there is no "[code]" prefix.
"""

from __future__ import annotations

import errno
from typing import Final

# Re-exported: the sans-IO engine and the public API raise the one SpindleX class.
from spindlex_tw.exceptions import SFTPError as SFTPError
from spindlex_tw.protocol.constants import (
    SSH_FX_BAD_MESSAGE,
    SSH_FX_FAILURE,
    SSH_FX_NO_SUCH_FILE,
    SSH_FX_OP_UNSUPPORTED,
    SSH_FX_PERMISSION_DENIED,
)
from spindlex_tw.protocol.sftp_constants import SFTP_STATUS_MESSAGES

# The mapping of OpenSSH's errno_to_portable(); every other errno is a plain FAILURE.
_ERRNO_STATUS: Final[dict[int, int]] = {
    errno.ENOENT: SSH_FX_NO_SUCH_FILE,
    errno.ENOTDIR: SSH_FX_NO_SUCH_FILE,
    errno.EBADF: SSH_FX_NO_SUCH_FILE,
    errno.ELOOP: SSH_FX_NO_SUCH_FILE,
    errno.EPERM: SSH_FX_PERMISSION_DENIED,
    errno.EACCES: SSH_FX_PERMISSION_DENIED,
    errno.EFAULT: SSH_FX_PERMISSION_DENIED,
    errno.ENAMETOOLONG: SSH_FX_BAD_MESSAGE,
    errno.EINVAL: SSH_FX_BAD_MESSAGE,
    errno.ENOSYS: SSH_FX_OP_UNSUPPORTED,
}


def message_for(code: int) -> str:
    return SFTP_STATUS_MESSAGES.get(code, "Unknown error")


# Failures whose errno has a text of its own, OpenSSH's where it has one.
_ERRNO_MESSAGES: Final[dict[int, str]] = {
    errno.EDQUOT: "Quota exceeded",
}


def message_for_errno(number: int | None) -> str | None:
    """The text of a failure with errno ``number``; None for the status code's own."""
    return None if number is None else _ERRNO_MESSAGES.get(number)


def status_for_errno(number: int | None) -> int:
    if number is None:
        return SSH_FX_FAILURE
    return _ERRNO_STATUS.get(number, SSH_FX_FAILURE)

