"""What the transport and the services above it (userauth, connection) know of each other.

The services see the transport through :class:`TransportLink`, a narrow view
of :class:`~spindlex_tw.core.transport.ServerTransport`, so neither module
imports the other's class.
"""

from __future__ import annotations

from typing import Protocol

from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.events import ConnectionFailed, Event


class Service(Protocol):
    """A layer above the transport: user authentication or the connection protocol."""

    def handle(self, msg: int, payload: bytes | memoryview) -> list[Event]: ...


class TransportLink(Protocol):
    """The transport as a service uses it."""

    session_id: bytes | None
    service: Service | None
    closed: bool

    def send(self, payload: bytes) -> None: ...

    def disconnect(self, reason: int, description: str) -> None: ...

    def fail(self, exc: ProtocolError) -> ConnectionFailed: ...

    def start_delayed_compression(self) -> None: ...
