"""The one exception type a peer's bad input raises inside the core.

Every decoder and state machine raises :class:`ProtocolError` carrying the
RFC 4253 disconnect reason; only the adapter decides whether that costs the
peer the connection (it always does at the transport level) and what is logged.
"""

from spindlex_tw.protocol.constants import (
    SSH_DISCONNECT_MAC_ERROR,
    SSH_DISCONNECT_PROTOCOL_ERROR,
)


class ProtocolError(Exception):
    """The peer broke the protocol; ``reason`` is the DISCONNECT reason code."""

    def __init__(self, description: str, reason: int = SSH_DISCONNECT_PROTOCOL_ERROR) -> None:
        super().__init__(description)
        self.description = description
        self.reason = reason


class DecodeError(ProtocolError):
    """A message was truncated, over-long or had a malformed field."""


class MacError(ProtocolError):
    """A packet failed its MAC or AEAD tag check."""

    def __init__(self, description: str = "Corrupted MAC on input") -> None:
        super().__init__(description, SSH_DISCONNECT_MAC_ERROR)
