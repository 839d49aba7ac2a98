"""What a channel needs of its connection, as a typing ``Protocol``.

``SSHServerProtocol`` provides it; the channel's pieces are typed against this
and never import the connection class, so the channel sits below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from spindlex_tw.core.transport import ServerTransport


class ChannelLink(Protocol):
    """The connection as its channels see it (all calls in the reactor thread)."""

    @property
    def username(self) -> str | None: ...
    @property
    def connection_id(self) -> str: ...  # the session id of audit events
    @property
    def reactor(self) -> Any: ...
    @property
    def transport(self) -> Any: ...  # the TCP ITransport: getPeer(), getHost()
    @property
    def write_paused(self) -> bool: ...  # the TCP send buffer is full
    @property
    def core(self) -> ServerTransport | None: ...  # its peer_version names the client

    def channel_send(self, channel_id: int, parts: Sequence[bytes], stream: int) -> None: ...
    def channel_buffered(self, channel_id: int) -> int: ...
    def channel_consumed(self, channel_id: int, count: int) -> None: ...
    def channel_request_out(self, channel_id: int, name: str, data: bytes) -> None: ...
    def channel_eof_out(self, channel_id: int) -> None: ...
    def channel_close_out(self, channel_id: int) -> None: ...
