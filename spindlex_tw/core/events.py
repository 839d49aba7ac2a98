"""What the sans-IO core reports to its adapter.

The core never calls out: ``receive_data`` returns these events and the
adapter (``tx.protocol``) decides what each costs or which hook it reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spindlex_tw.core.kexinit import Negotiated
from spindlex_tw.core.requests import ChannelOpen, ChannelRequest, GlobalRequest, Malformed


@dataclass(frozen=True)
class Event:
    """Base of every event."""


@dataclass(frozen=True)
class VersionReceived(Event):
    version: str


@dataclass(frozen=True)
class KeyExchangeCompleted(Event):
    negotiated: Negotiated
    initial: bool


@dataclass(frozen=True)
class PeerDisconnected(Event):
    reason: int
    description: str


@dataclass(frozen=True)
class ConnectionFailed(Event):
    """We sent DISCONNECT because of the peer's bad input; close once flushed."""

    reason: int
    description: str


@dataclass(frozen=True)
class ServiceStarted(Event):
    name: str


# --- user authentication ---------------------------------------------------------


@dataclass(frozen=True)
class AuthNoneRequested(Event):
    username: str


@dataclass(frozen=True)
class AuthMethodsNeeded(Event):
    """A request from ``username`` waits: answer with ``UserAuthService.allow_methods``."""

    username: str


@dataclass(frozen=True)
class AuthPasswordRequested(Event):
    username: str
    password: str


@dataclass(frozen=True)
class AuthPublicKeyQueried(Event):
    """A publickey request without a signature: may this key be used? (PK_OK)"""

    username: str
    algorithm: str
    key_blob: bytes


@dataclass(frozen=True)
class AuthPublicKeyRequested(Event):
    """A publickey request whose signature the core has already verified."""

    username: str
    algorithm: str
    key_blob: bytes


@dataclass(frozen=True)
class AuthKeyboardInteractiveRequested(Event):
    username: str
    submethods: str


@dataclass(frozen=True)
class AuthKeyboardInteractiveResponse(Event):
    username: str
    responses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AuthGssapiToken(Event):
    """A gssapi-with-mic context token (RFC 4462 3.4): the adapter accepts it, then
    answers with ``UserAuthService.gssapi_proceed`` or ``gssapi_fail``."""

    username: str
    token: bytes
    first: bool  # the attempt's first token: a new security context starts


@dataclass(frozen=True)
class AuthGssapiMic(Event):
    """The client's MIC over ``signed_data`` (RFC 4462 3.5), for the adapter to verify."""

    username: str
    mic: bytes
    signed_data: bytes


@dataclass(frozen=True)
class AuthenticationSucceeded(Event):
    username: str
    method: str


@dataclass(frozen=True)
class TooManyAuthFailures(Event):
    username: str


# --- connection protocol ------------------------------------------------------------


@dataclass(frozen=True)
class GlobalRequestReceived(Event):
    """Answer with ``ConnectionService.global_reply`` when ``want_reply`` (in order).

    ``request`` is the decoded body (``core.requests``): a value, ``Malformed``
    (refuse it) or ``None`` for a type the core does not read, whose raw body
    ``data`` is (the application's ``check_global_request`` receives it).
    """

    name: str
    want_reply: bool
    data: bytes
    request_id: int
    request: GlobalRequest | Malformed | None = None


@dataclass(frozen=True)
class ChannelOpenRequested(Event):
    """Answer with ``accept_open`` or ``reject_open`` (``peer_id`` names it).

    ``request`` is the decoded type-specific data, as for ``GlobalRequestReceived``.
    """

    kind: str
    peer_id: int
    data: bytes
    request: ChannelOpen | Malformed | None = None


@dataclass(frozen=True)
class ChannelOpened(Event):
    """A channel we opened was confirmed by the peer."""

    channel_id: int


@dataclass(frozen=True)
class ChannelOpenFailed(Event):
    channel_id: int
    reason: int
    description: str


@dataclass(frozen=True)
class ChannelRequestReceived(Event):
    """Answer with ``channel_reply`` when ``want_reply`` (in order per channel).

    ``request`` is the decoded body, as for ``GlobalRequestReceived``; a request
    the core does not read is refused by the adapter.
    """

    channel_id: int
    name: str
    want_reply: bool
    data: bytes
    request: ChannelRequest | Malformed | None = None


@dataclass(frozen=True)
class ChannelDataReceived(Event):
    channel_id: int
    data: bytes
    stream: int = 0  # 0 for data, else the extended data type (1 = stderr)


@dataclass(frozen=True)
class ChannelEOFReceived(Event):
    channel_id: int


@dataclass(frozen=True)
class ChannelClosed(Event):
    """Both sides closed the channel, or the peer misbehaved and lost it."""

    channel_id: int
    error: str | None = None


@dataclass(frozen=True)
class ChannelWritable(Event):
    """The peer opened its window: buffered output went out."""

    channel_id: int
