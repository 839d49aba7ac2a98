"""The public server API under SpindleX's path: ``from spindlex_tw.server import SSHServer``.

``SSHServer``, ``SSHServerManager`` and ``SFTPServer`` (and ``SFTPHandle``)
load on first use, as in the top-level package, so importing a module below
this package does not pull in more of Twisted than that module needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spindlex_tw.server.sftp_server import SFTPHandle, SFTPServer
    from spindlex_tw.server.ssh_server import SSHServer, SSHServerManager

# name -> module that defines it
_LAZY = {
    "SSHServer": "spindlex_tw.server.hooks",
    "SSHServerManager": "spindlex_tw.server.manager",
    "SFTPServer": "spindlex_tw.server.sftp_server",
    "SFTPHandle": "spindlex_tw.server.sftp_server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["SFTPHandle", "SFTPServer", "SSHServer", "SSHServerManager"]
