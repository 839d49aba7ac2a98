"""Port forwarding: direct-tcpip (ssh -L, -D) and tcpip-forward (ssh -R)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spindlex_tw.tx.factory import SSHServerFactory


def install(factory: SSHServerFactory) -> None:
    """Register the forwarding handlers on ``factory``."""
