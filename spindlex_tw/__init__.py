"""spindlex_tw: an SSH-2 and SFTP server library on Twisted with the SpindleX server API.

The public names are importable from here, as from ``spindlex``::

    from spindlex_tw import SSHServer, SSHServerManager, SFTPServer, Ed25519Key, AUTH_SUCCESSFUL
    from spindlex_tw import SSHException, __version__

They are loaded on first use, so importing a sans-IO module such as
``spindlex_tw.core.wire`` does not pull in Twisted.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import TYPE_CHECKING, Any

from spindlex_tw import _moved
from spindlex_tw.exceptions import (
    AuthenticationException,
    BadHostKeyException,
    ChannelException,
    ConfigurationException,
    CryptoException,
    IncompatiblePeer,
    ProtocolException,
    SFTPError,
    SSHException,
    TimeoutException,
    TransportException,
)
from spindlex_tw.protocol.constants import (
    AUTH_FAILED,
    AUTH_PARTIAL,
    AUTH_SUCCESSFUL,
    SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
    SSH_OPEN_CONNECT_FAILED,
    SSH_OPEN_CONNECT_SUCCESS,
    SSH_OPEN_RESOURCE_SHORTAGE,
    SSH_OPEN_UNKNOWN_CHANNEL_TYPE,
)

_moved.install()

if TYPE_CHECKING:
    from spindlex_tw.crypto.pkey import ECDSAKey, Ed25519Key, PKey, RSAKey
    from spindlex_tw.server.sftp_server import SFTPHandle, SFTPServer
    from spindlex_tw.server.ssh_server import SSHServer, SSHServerManager
    from spindlex_tw.tx.channel import Channel

# name -> module that defines it
_LAZY = {
    "SSHServer": "spindlex_tw.server.ssh_server",
    "SSHServerManager": "spindlex_tw.server.manager",
    "SFTPServer": "spindlex_tw.server.sftp_server",
    "SFTPHandle": "spindlex_tw.server.sftp_server",
    "Channel": "spindlex_tw.tx.channel",
    "PKey": "spindlex_tw.crypto.pkey",
    "Ed25519Key": "spindlex_tw.crypto.pkey",
    "RSAKey": "spindlex_tw.crypto.pkey",
    "ECDSAKey": "spindlex_tw.crypto.pkey",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # One source of truth, the installed distribution's metadata (pyproject.toml).
        return importlib.metadata.version("spindlex_tw")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AUTH_FAILED",
    "AUTH_PARTIAL",
    "AUTH_SUCCESSFUL",
    "SSH_OPEN_ADMINISTRATIVELY_PROHIBITED",
    "SSH_OPEN_CONNECT_FAILED",
    "SSH_OPEN_CONNECT_SUCCESS",
    "SSH_OPEN_RESOURCE_SHORTAGE",
    "SSH_OPEN_UNKNOWN_CHANNEL_TYPE",
    "AuthenticationException",
    "BadHostKeyException",
    "Channel",
    "ChannelException",
    "ConfigurationException",
    "CryptoException",
    "ECDSAKey",
    "Ed25519Key",
    "IncompatiblePeer",
    "PKey",
    "ProtocolException",
    "RSAKey",
    "SFTPError",
    "SFTPHandle",
    "SFTPServer",
    "SSHException",
    "SSHServer",
    "SSHServerManager",
    "TimeoutException",
    "TransportException",
    "__version__",
]
