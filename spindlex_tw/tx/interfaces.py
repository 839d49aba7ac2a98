"""The connection that the adapter's parts share, as typing ``Protocol`` classes.

``auth.py``, ``session.py`` and ``forwarding/`` are handed the connection (an
``SSHServerProtocol``) and call back into it; the channel is handed its
:class:`~spindlex_tw.tx.channel.link.ChannelLink`. Typed against these, none
of them imports ``tx/protocol.py`` or ``tx/factory.py``, which import them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from spindlex_tw.core import events as ev
from spindlex_tw.core.connection import ConnectionService
from spindlex_tw.core.transport import ServerTransport
from spindlex_tw.tx.application import Application
from spindlex_tw.tx.channel import Channel
from spindlex_tw.tx.channel.link import ChannelLink
from spindlex_tw.tx.settings import ServerSettings

_T = TypeVar("_T")


class Configured(Protocol):
    """Where a connection's limits come from (its factory)."""

    @property
    def settings(self) -> ServerSettings: ...


class Connection(ChannelLink, Protocol):
    """One SSH connection as its parts see it (all calls in the reactor thread)."""

    @property
    def server(self) -> Application: ...
    @property
    def factory(self) -> Configured: ...
    @property
    def peer(self) -> str: ...  # "host:port", for the log
    @property
    def core(self) -> ServerTransport | None: ...
    @property
    def connection(self) -> ConnectionService | None: ...  # once ssh-connection runs

    def in_context(self, func: Callable[..., _T], *args: Any) -> _T:
        """Run ``func`` as this connection's (``current_connection()``)."""
        ...

    def process(self, events: list[ev.Event]) -> None: ...
    def flush(self) -> None: ...
    def authenticated(self, username: str, method: str) -> None: ...
    def on_connection_lost(self, callback: Callable[[], None]) -> None: ...

    def channel_reply(self, channel: Channel, want_reply: bool, success: bool) -> None: ...
    def global_reply(
        self, event: ev.GlobalRequestReceived, success: bool, data: bytes = b""
    ) -> None: ...
    def accept_channel(self, event: ev.ChannelOpenRequested) -> Channel | None: ...
    def reject_channel(self, event: ev.ChannelOpenRequested, code: object) -> None: ...
    def open_channel(self, kind: str, data: bytes) -> Channel | None: ...


#: Answers a global request by name instead of check_global_request.
GlobalHandler = Callable[[Connection, ev.GlobalRequestReceived], None]
#: Opens a channel of one kind once check_channel_request accepted it.
ChannelOpener = Callable[[Connection, ev.ChannelOpenRequested], None]


class Extensions(Protocol):
    """The factory's tables of request handlers, which ``forwarding.install`` fills."""

    @property
    def global_handlers(self) -> dict[str, GlobalHandler]: ...
    @property
    def channel_openers(self) -> dict[str, ChannelOpener]: ...
