"""The exceptions raised when key data or a key file cannot be used.

Messages are short, lower-case and single-line so that a command line tool
can print them as they are after its own prefix.
"""

from __future__ import annotations

import os

from spindlex_tw.exceptions import CryptoException


# Both are SpindleX's CryptoException too, so ``except SSHException`` catches them.
class KeyFormatError(CryptoException, ValueError):
    """Key data is malformed, truncated, inconsistent or of an unsupported kind."""


class KeyPassphraseError(KeyFormatError):
    """An encrypted private key needs a passphrase, or the one given is wrong."""


def _one_line(text: str) -> str:
    # A file name may hold newlines or escapes; they must not break the
    # "one line per error" promise nor forge extra log lines.
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class KeyFileError(CryptoException):
    """A key file could not be read or written.

    ``str(error)`` is one line naming the file and the reason, e.g.
    ``cannot load key /etc/ssh/host_ed25519: passphrase required``.
    The underlying :class:`KeyFormatError`, :class:`KeyPassphraseError` or
    :class:`OSError` is kept as ``__cause__``.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, action: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self.action = action
        super().__init__(_one_line(f"cannot {action} {self.path}: {reason}"))

    @property
    def needs_passphrase(self) -> bool:
        """True when the file is fine but the passphrase was missing or wrong."""
        return isinstance(self.__cause__, KeyPassphraseError)


_OS_REASONS: dict[type[OSError], str] = {
    FileNotFoundError: "no such file",
    PermissionError: "permission denied",
    IsADirectoryError: "is a directory",
    NotADirectoryError: "a parent is not a directory",
    FileExistsError: "file exists",
}


def describe_os_error(error: OSError) -> str:
    """A short reason for ``error`` without the file name (the caller adds it)."""
    for kind, reason in _OS_REASONS.items():
        if isinstance(error, kind):
            return reason
    return (error.strerror or type(error).__name__).lower()
