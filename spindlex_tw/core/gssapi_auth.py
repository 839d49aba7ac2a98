"""The gssapi-with-mic user-authentication method (RFC 4462 section 3), server side, sans-IO.

The messages and their order live here; the GSS-API calls do not. The
exchange runs inside :class:`~spindlex_tw.core.userauth.UserAuthService`:

1. The client's USERAUTH_REQUEST lists mechanism OIDs, each DER-encoded
   (:func:`read_mechanisms`). Only Kerberos V5 is offered; we answer
   SSH_MSG_USERAUTH_GSSAPI_RESPONSE naming it.
2. Each SSH_MSG_USERAUTH_GSSAPI_TOKEN becomes an :class:`AuthGssapiToken`
   event. The adapter feeds it to GSS_Accept_sec_context and answers with
   :meth:`GssapiExchange.proceed` (a token back, perhaps the last) or
   :meth:`GssapiExchange.fail` (ERRTOK and ERROR, then the usual FAILURE).
   What the client sends meanwhile waits here, in order.
3. Once the context is complete, the client's SSH_MSG_USERAUTH_GSSAPI_MIC
   becomes an :class:`AuthGssapiMic` event carrying the exact bytes the MIC
   must cover (RFC 4462 3.5); the adapter verifies it before anything grants.

Anything out of order (a MIC before the context is complete, a token after
it), a malformed OID list and an unknown mechanism refuse the attempt,
counted as a failure like a wrong password. SSH_MSG_USERAUTH_GSSAPI_EXCHANGE_COMPLETE
is refused too: it would skip the MIC, and Kerberos always provides one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ

from spindlex_tw.core import wire
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.events import AuthGssapiMic, AuthGssapiToken, Event
from spindlex_tw.protocol import constants as c

METHOD = "gssapi-with-mic"
#: Kerberos V5 (RFC 1964), the one mechanism offered.
KRB5_MECHANISM = "1.2.840.113554.1.2.2"
#: More OIDs than any client lists (OpenSSH sends the few its library supports).
MAX_MECHANISMS = 32
#: Client messages held while the adapter is still deciding on a token.
MAX_HELD = 4

CLIENT_MESSAGES = frozenset(
    {
        c.SSH_MSG_USERAUTH_GSSAPI_TOKEN,
        c.SSH_MSG_USERAUTH_GSSAPI_EXCHANGE_COMPLETE,
        c.SSH_MSG_USERAUTH_GSSAPI_ERROR,
        c.SSH_MSG_USERAUTH_GSSAPI_ERRTOK,
        c.SSH_MSG_USERAUTH_GSSAPI_MIC,
    }
)


class Verdict(enum.Enum):
    """How an attempt ends without the adapter: what the user-auth service does next."""

    REFUSE = "refuse"  # USERAUTH_FAILURE, counted
    ABANDON = "abandon"  # the client sent ERRTOK and moved on: counted, nothing to answer


Step = list[Event] | Verdict


def encode_oid(dotted: str) -> bytes:
    """``1.2.840.113554.1.2.2`` -> its DER encoding (``06 09 2a 86 48 ...``)."""
    return bytes(der_encoder.encode(univ.ObjectIdentifier(dotted)))


def decode_oid(der: bytes) -> str | None:
    """The dotted form of one DER-encoded OID, or None for anything else (trailing bytes too)."""
    try:
        value, rest = der_decoder.decode(der, asn1Spec=univ.ObjectIdentifier())
    except (PyAsn1Error, ValueError, TypeError):
        return None
    if rest:
        return None
    return ".".join(str(arc) for arc in value.asTuple())


def read_mechanisms(reader: wire.Reader) -> list[str | None] | None:
    """The request's OID list (None per undecodable OID), or None when the list is unreadable."""
    count = reader.uint32()
    if count > MAX_MECHANISMS:
        reader.rest()
        return None
    return [decode_oid(reader.string()) for _ in range(count)]


def mic_data(session_id: bytes, username: str, service: str) -> bytes:
    """What the client's MIC covers (RFC 4462 3.5)."""
    return b"".join(
        (
            wire.string(session_id),
            wire.byte(c.SSH_MSG_USERAUTH_REQUEST),
            wire.string(username),
            wire.string(service),
            wire.string(METHOD),
        )
    )


class _State(enum.Enum):
    TOKENS = "tokens"  # waiting for the client's next context token
    ACCEPTING = "accepting"  # the adapter has a token; client messages are held
    MIC = "mic"  # the context is complete; the client's MIC is due
    DECIDING = "deciding"  # the MIC (or a failure) is with the adapter; nothing more is read


@dataclass
class GssapiExchange:
    """One gssapi-with-mic attempt, from our GSSAPI_RESPONSE to the MIC."""

    username: str
    service: str
    session_id: bytes
    send: Callable[[bytes], None]

    def __post_init__(self) -> None:
        self._state = _State.TOKENS
        self._tokens = 0
        self._held: list[tuple[int, bytes]] = []

    def start(self) -> list[Event]:
        self.send(
            wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_RESPONSE) + wire.string(encode_oid(KRB5_MECHANISM))
        )
        return []

    def receive(self, msg: int, payload: bytes) -> Step:
        if self._state is _State.ACCEPTING:
            if len(self._held) >= MAX_HELD:
                raise ProtocolError("too many GSS-API messages before our answer")
            self._held.append((msg, payload))
            return []
        if self._state is _State.DECIDING:
            return []  # the attempt is being refused or decided: late messages change nothing
        return _HANDLERS[msg](self, wire.Reader(payload, 1))

    # --- client messages ----------------------------------------------------------------

    def _token(self, reader: wire.Reader) -> Step:
        token = reader.string()
        reader.done()
        if self._state is not _State.TOKENS:
            return Verdict.REFUSE  # a token after the context completed
        self._state = _State.ACCEPTING
        self._tokens += 1
        return [AuthGssapiToken(self.username, token, self._tokens == 1)]

    def _mic(self, reader: wire.Reader) -> Step:
        mic = reader.string()
        reader.done()
        if self._state is not _State.MIC:
            return Verdict.REFUSE  # a MIC before the context is established proves nothing
        self._state = _State.DECIDING
        signed = mic_data(self.session_id, self.username, self.service)
        return [AuthGssapiMic(self.username, mic, signed)]

    def _exchange_complete(self, reader: wire.Reader) -> Step:
        reader.done()
        return Verdict.REFUSE

    def _errtok(self, reader: wire.Reader) -> Step:
        reader.string()
        reader.done()
        # As sshd: the client has given up on this method and already moved on.
        return Verdict.ABANDON

    def _error(self, reader: wire.Reader) -> Step:
        # Informational only (major, minor, message, language); the client decides what next.
        reader.rest()
        return []

    # --- the adapter's answers -------------------------------------------------------------

    def proceed(self, token: bytes, complete: bool) -> Step:
        """Accept_sec_context went on: send ``token`` (if any); then what the client sent since."""
        if self._state is not _State.ACCEPTING:
            raise ValueError("no token is being accepted")
        if token:
            self.send(wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN) + wire.string(token))
        self._state = _State.MIC if complete else _State.TOKENS
        held, self._held = self._held, []
        events: list[Event] = []
        for msg, payload in held:
            step = self.receive(msg, payload)
            if isinstance(step, Verdict):
                return step
            events += step
        return events

    def fail(self, error_token: bytes, message: str, major: int = 0, minor: int = 0) -> None:
        """Accepting failed: ERRTOK and ERROR (with the GSS status) go out; FAILURE follows."""
        self._state = _State.DECIDING
        self._held = []
        if error_token:
            self.send(wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_ERRTOK) + wire.string(error_token))
        if message:
            self.send(
                wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_ERROR)
                + wire.uint32(major & 0xFFFFFFFF)
                + wire.uint32(minor & 0xFFFFFFFF)
                + wire.string(message)
                + wire.string(b"")
            )


_HANDLERS: dict[int, Callable[[GssapiExchange, wire.Reader], Step]] = {
    c.SSH_MSG_USERAUTH_GSSAPI_TOKEN: GssapiExchange._token,
    c.SSH_MSG_USERAUTH_GSSAPI_MIC: GssapiExchange._mic,
    c.SSH_MSG_USERAUTH_GSSAPI_EXCHANGE_COMPLETE: GssapiExchange._exchange_complete,
    c.SSH_MSG_USERAUTH_GSSAPI_ERRTOK: GssapiExchange._errtok,
    c.SSH_MSG_USERAUTH_GSSAPI_ERROR: GssapiExchange._error,
}
