"""gssapi-with-mic in the sans-IO user-auth service (RFC 4462 3): the messages, their order,
and what each wrong step costs. The GSS-API calls are the adapter's: tests/interop/test_kerberos.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from spindlex_tw.core import events as ev
from spindlex_tw.core import gssapi_auth, wire
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.userauth import AuthLimits, UserAuthService
from spindlex_tw.protocol import constants as c

KRB5_DER = bytes.fromhex("06092a864886f712010202")
SPNEGO_DER = bytes.fromhex("06062b0601050502")
SESSION_ID = b"s" * 32


class Transport:
    def __init__(self) -> None:
        self.session_id: bytes | None = SESSION_ID
        self.service: Any = None
        self.closed = False
        self.sent: list[bytes] = []
        self.disconnected: tuple[int, str] | None = None

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)

    def disconnect(self, reason: int, description: str) -> None:
        self.disconnected = (reason, description)
        self.closed = True

    def fail(self, exc: ProtocolError) -> ev.ConnectionFailed:
        self.closed = True
        return ev.ConnectionFailed(exc.reason, str(exc))

    def start_delayed_compression(self) -> None:
        pass

    def take(self) -> list[int]:
        sent, self.sent = self.sent, []
        return [payload[0] for payload in sent]


def request(*oids: bytes, user: str = "alice", count: int | None = None) -> bytes:
    return (
        wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
        + wire.string(user)
        + wire.string("ssh-connection")
        + wire.string("gssapi-with-mic")
        + wire.uint32(len(oids) if count is None else count)
        + b"".join(wire.string(oid) for oid in oids)
    )


def message(msg: int, *fields: bytes) -> tuple[int, bytes]:
    return msg, wire.byte(msg) + b"".join(wire.string(f) for f in fields)


def new_service(limits: AuthLimits | None = None) -> tuple[UserAuthService, Transport]:
    transport = Transport()
    service = UserAuthService(
        transport,  # type: ignore[arg-type]
        limits or AuthLimits(),
        lambda blob, data, sig, alg: False,
        lambda: None,  # type: ignore[arg-type,return-value]
    )
    return service, transport


def started(limits: AuthLimits | None = None) -> tuple[UserAuthService, Transport]:
    service, transport = new_service(limits)
    [needed] = service.handle(c.SSH_MSG_USERAUTH_REQUEST, request(SPNEGO_DER, KRB5_DER))
    assert isinstance(needed, ev.AuthMethodsNeeded)
    assert service.allow_methods(["gssapi-with-mic"]) == []
    # SSH_MSG_USERAUTH_GSSAPI_RESPONSE names Kerberos, DER-encoded.
    assert transport.sent == [wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_RESPONSE) + wire.string(KRB5_DER)]
    transport.sent = []
    return service, transport


def test_oids_are_der_both_ways() -> None:
    assert gssapi_auth.encode_oid(gssapi_auth.KRB5_MECHANISM) == KRB5_DER
    assert gssapi_auth.decode_oid(KRB5_DER) == gssapi_auth.KRB5_MECHANISM
    assert gssapi_auth.decode_oid(SPNEGO_DER) == "1.3.6.1.5.5.2"
    for bad in (b"", b"\x06", KRB5_DER[:-1], KRB5_DER + b"\x00", b"\x04\x01a", b"\xff" * 5):
        assert gssapi_auth.decode_oid(bad) is None


def test_a_full_exchange_emits_token_then_mic_over_the_session_id() -> None:
    service, transport = started()
    [token] = service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"ap-req"))
    assert token == ev.AuthGssapiToken("alice", b"ap-req", first=True)
    # The client's MIC, sent before our reply token, waits for the adapter's answer.
    assert service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_MIC, b"mic")) == []
    [mic] = service.gssapi_proceed(b"ap-rep", complete=True)
    assert transport.sent == [wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN) + wire.string(b"ap-rep")]
    assert mic == ev.AuthGssapiMic(
        "alice",
        b"mic",
        wire.string(SESSION_ID)
        + wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
        + wire.string("alice")
        + wire.string("ssh-connection")
        + wire.string("gssapi-with-mic"),
    )
    [succeeded] = service.accept()
    assert succeeded == ev.AuthenticationSucceeded("alice", "gssapi-with-mic")


def test_several_tokens_before_the_context_completes() -> None:
    service, transport = started()
    [first] = service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"one"))
    assert service.gssapi_proceed(b"more", complete=False) == []
    [second] = service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"two"))
    assert (first.first, second.first) == (True, False)  # type: ignore[attr-defined]
    assert service.gssapi_proceed(b"", complete=True) == []
    assert transport.take() == [c.SSH_MSG_USERAUTH_GSSAPI_TOKEN]  # an empty token is not sent


@pytest.mark.parametrize(
    "oids",
    [(SPNEGO_DER,), (), (b"\x06\x03junk",), (KRB5_DER + b"\x00",)],
    ids=["unknown-mechanism", "none", "malformed", "trailing-bytes"],
)
def test_requests_without_kerberos_are_refused_and_counted(oids: tuple[bytes, ...]) -> None:
    service, transport = new_service()
    service.handle(c.SSH_MSG_USERAUTH_REQUEST, request(*oids))
    service.allow_methods(["gssapi-with-mic"])
    assert transport.take() == [c.SSH_MSG_USERAUTH_FAILURE]
    assert service.failures == 1


def test_an_oversized_oid_list_is_refused() -> None:
    service, transport = new_service()
    service.handle(c.SSH_MSG_USERAUTH_REQUEST, request(KRB5_DER, count=1 << 30))
    service.allow_methods(["gssapi-with-mic"])
    assert transport.take() == [c.SSH_MSG_USERAUTH_FAILURE]


@pytest.mark.parametrize(
    "wrong",
    [
        message(c.SSH_MSG_USERAUTH_GSSAPI_MIC, b"too early"),
        (
            c.SSH_MSG_USERAUTH_GSSAPI_EXCHANGE_COMPLETE,
            wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_EXCHANGE_COMPLETE),
        ),
    ],
    ids=["mic-before-context", "exchange-complete-skips-the-mic"],
)
def test_out_of_order_messages_are_refused_and_counted(wrong: tuple[int, bytes]) -> None:
    service, transport = started()
    assert service.handle(*wrong) == []
    assert transport.take() == [c.SSH_MSG_USERAUTH_FAILURE]
    assert service.failures == 1
    # The attempt is over: its messages are no longer understood.
    with pytest.raises(ProtocolError):
        service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"late"))


def test_a_token_after_the_context_completed_is_refused() -> None:
    service, transport = started()
    service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"one"))
    service.gssapi_proceed(b"", complete=True)
    service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"again"))
    assert transport.take() == [c.SSH_MSG_USERAUTH_FAILURE]
    assert service.failures == 1


def test_a_failed_context_sends_errtok_and_error_then_the_refusal_counts() -> None:
    service, transport = started()
    service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"bad"))
    service.gssapi_fail(b"krb-error", "Ticket expired", major=0xD0000, minor=7)
    assert transport.take() == [c.SSH_MSG_USERAUTH_GSSAPI_ERRTOK, c.SSH_MSG_USERAUTH_GSSAPI_ERROR]
    # Whatever the client sends before the FAILURE changes nothing.
    assert service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_MIC, b"x")) == []
    service.reject(partial=False, methods=None)
    assert transport.take() == [c.SSH_MSG_USERAUTH_FAILURE]
    assert service.failures == 1


def test_the_clients_errtok_abandons_the_attempt_counted_without_a_reply() -> None:
    service, transport = started(AuthLimits(max_failures=2))
    service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"one"))
    service.gssapi_proceed(b"reply", complete=False)
    transport.take()
    assert service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_ERRTOK, b"err")) == []
    assert (transport.take(), service.failures) == ([], 1)
    # The client's next request goes on; a second abandoned attempt reaches the limit.
    service.handle(c.SSH_MSG_USERAUTH_REQUEST, request(KRB5_DER))
    service.allow_methods(["gssapi-with-mic"])
    [too_many] = service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_ERRTOK, b"err"))
    assert isinstance(too_many, ev.TooManyAuthFailures)
    assert transport.disconnected is not None


def test_the_clients_error_message_is_informational() -> None:
    service, _ = started()
    error = wire.uint32(1) + wire.uint32(2) + wire.string("oops") + wire.string("")
    assert service.handle(c.SSH_MSG_USERAUTH_GSSAPI_ERROR, b"\x40" + error) == []
    [token] = service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"t"))
    assert isinstance(token, ev.AuthGssapiToken)


def test_a_client_that_floods_messages_while_a_token_is_accepted_is_disconnected() -> None:
    service, _ = started()
    service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"t"))
    for _ in range(gssapi_auth.MAX_HELD):
        service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"t"))
    with pytest.raises(ProtocolError):
        service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN, b"t"))


def test_gssapi_messages_outside_an_attempt_are_protocol_errors() -> None:
    service, _ = new_service()
    with pytest.raises(ProtocolError):
        service.handle(*message(c.SSH_MSG_USERAUTH_GSSAPI_MIC, b"mic"))


def test_the_method_is_refused_when_not_offered() -> None:
    service, transport = new_service()
    service.handle(c.SSH_MSG_USERAUTH_REQUEST, request(KRB5_DER))
    service.allow_methods(["password"])
    assert transport.take() == [c.SSH_MSG_USERAUTH_FAILURE]
