"""The exception classes of SpindleX's API, so ``except SSHException`` works unchanged.

spindlex_tw's own errors derive from these as well as from the builtin they
always were (``ServerStartError`` is a ``RuntimeError`` and a
``TransportException``), so code catching either keeps working.  No Twisted
here: the sans-IO layers raise ``SFTPError``.
"""

from __future__ import annotations

from typing import Any

from spindlex_tw.protocol.sftp_constants import (
    SSH_FX_BAD_MESSAGE,
    SSH_FX_CONNECTION_LOST,
    SSH_FX_EOF,
    SSH_FX_FAILURE,
    SSH_FX_NO_CONNECTION,
    SSH_FX_NO_SUCH_FILE,
    SSH_FX_OK,
    SSH_FX_OP_UNSUPPORTED,
    SSH_FX_PERMISSION_DENIED,
    get_status_message,
)

__all__ = [
    "AuthenticationException",
    "BadHostKeyException",
    "ChannelException",
    "ConfigurationException",
    "CryptoException",
    "IncompatiblePeer",
    "ProtocolException",
    "SFTPError",
    "SSHException",
    "ServerKeyMissing",
    "TimeoutException",
    "TransportException",
]


class SSHException(Exception):
    """The base of every SpindleX-API error; ``str()`` is ``[code] message`` given a code."""

    def __init__(self, message: str, error_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code

    def __str__(self) -> str:
        if self.error_code is None:
            return self.message
        return f"[{self.error_code}] {self.message}"


class AuthenticationException(SSHException):
    def __init__(self, message: str, allowed_methods: list[str] | None = None) -> None:
        super().__init__(message)
        self.allowed_methods = list(allowed_methods or [])


class BadHostKeyException(SSHException):
    """A client-side error in SpindleX; importable here so shared code still imports."""

    def __init__(self, hostname: str, key: Any, expected_key: Any = None) -> None:
        super().__init__(f"Host key verification failed for {hostname}")
        self.hostname = hostname
        self.key = key
        self.expected_key = expected_key


class ChannelException(SSHException):
    def __init__(self, message: str, channel_id: int | None = None) -> None:
        super().__init__(message)
        self.channel_id = channel_id


class SFTPError(SSHException):
    """An SFTP request fails with ``status_code``; ``message`` is the text the client sees.

    Raise it from an :class:`~spindlex_tw.server.sftp_server.SFTPServer` hook or
    handle to answer with that status.  ``sftp_code`` (SpindleX's name) and
    ``status_code`` are the same number; without one the answer is
    ``SSH_FX_FAILURE``.  The client is sent ``message``; ``str()`` is
    SpindleX's ``"[code] message"``, for logs.
    """

    SSH_FX_OK = SSH_FX_OK
    SSH_FX_EOF = SSH_FX_EOF
    SSH_FX_NO_SUCH_FILE = SSH_FX_NO_SUCH_FILE
    SSH_FX_PERMISSION_DENIED = SSH_FX_PERMISSION_DENIED
    SSH_FX_FAILURE = SSH_FX_FAILURE
    SSH_FX_BAD_MESSAGE = SSH_FX_BAD_MESSAGE
    SSH_FX_NO_CONNECTION = SSH_FX_NO_CONNECTION
    SSH_FX_CONNECTION_LOST = SSH_FX_CONNECTION_LOST
    SSH_FX_OP_UNSUPPORTED = SSH_FX_OP_UNSUPPORTED

    def __init__(
        self,
        message: str | None = None,
        sftp_code: int | None = None,
        filename: str | None = None,
        *,
        status_code: int | None = None,
    ) -> None:
        code = sftp_code if sftp_code is not None else status_code
        code = SSH_FX_FAILURE if code is None else code
        text = message if message is not None else get_status_message(code)
        super().__init__(text, code)
        self.sftp_code = code
        self.status_code = code
        self.filename = filename

    @classmethod
    def from_status(
        cls, status_code: int, message: str = "", filename: str | None = None
    ) -> SFTPError:
        """The error for ``status_code``, its standard text unless ``message`` is given."""
        text = message or get_status_message(status_code)
        if filename:
            text = f"{text}: {filename}"
        return cls(text, status_code, filename)


class TransportException(SSHException):
    def __init__(self, message: str, disconnect_code: int | None = None) -> None:
        super().__init__(message)
        self.disconnect_code = disconnect_code


class ServerKeyMissing(TransportException, ValueError):
    """``start_server()`` before ``set_server_key()``: SpindleX's TransportException,
    and the ValueError spindlex_tw raised before."""


class ProtocolException(SSHException):
    def __init__(self, message: str, protocol_version: str | None = None) -> None:
        super().__init__(message)
        self.protocol_version = protocol_version


class CryptoException(SSHException):
    def __init__(self, message: str, algorithm: str | None = None) -> None:
        super().__init__(message)
        self.algorithm = algorithm


class TimeoutException(SSHException):
    def __init__(self, message: str, timeout_value: float | None = None) -> None:
        super().__init__(message)
        self.timeout_value = timeout_value


class ConfigurationException(SSHException):
    """The server's configuration is invalid."""


class IncompatiblePeer(SSHException):
    def __init__(self, message: str, peer_version: str | None = None) -> None:
        super().__init__(message)
        self.peer_version = peer_version
