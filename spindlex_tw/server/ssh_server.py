"""``SSHServer``: the hooks an application overrides; ``SSHServerManager``: runs it.

The public import path of both (as SpindleX's ``spindlex.server.ssh_server``);
they are defined in :mod:`spindlex_tw.server.hooks` and
:mod:`spindlex_tw.server.manager`.
"""

from __future__ import annotations

from spindlex_tw.server.hooks import SSHServer
from spindlex_tw.server.manager import SSHServerManager

__all__ = ["SSHServer", "SSHServerManager"]
