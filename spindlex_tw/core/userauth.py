"""The ssh-userauth service (RFC 4252, RFC 4256, RFC 4462 3), server side, sans-IO.

Requests become events; the adapter asks the application's hooks and answers
through :meth:`UserAuthService.accept`, :meth:`reject`, :meth:`accept_key_query`
or :meth:`ask`. One request is answered at a time: requests that arrive while
a hook is still deciding wait in order.

The core never asks the application anything itself. Each request first
emits :class:`AuthMethodsNeeded`; the request waits until the adapter says
which methods the user may use now (:meth:`UserAuthService.allow_methods`),
however long the application takes to decide.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spindlex_tw.core import gssapi_auth, wire
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.events import (
    AuthenticationSucceeded,
    AuthKeyboardInteractiveRequested,
    AuthKeyboardInteractiveResponse,
    AuthMethodsNeeded,
    AuthNoneRequested,
    AuthPasswordRequested,
    AuthPublicKeyQueried,
    AuthPublicKeyRequested,
    Event,
    TooManyAuthFailures,
)
from spindlex_tw.core.services import Service, TransportLink
from spindlex_tw.core.signatures import USER_KEY_ALGORITHMS
from spindlex_tw.protocol import constants as c

CONNECTION_SERVICE = "ssh-connection"
# Signature algorithms accepted for user authentication (ext-info server-sig-algs).
USER_SIG_ALGS = USER_KEY_ALGORITHMS


@dataclass(frozen=True)
class AuthLimits:
    max_failures: int = 6  # OpenSSH's MaxAuthTries
    max_prompts: int = 20  # keyboard-interactive prompts in one round
    max_queued: int = 8  # requests a client may pipeline behind one being decided
    accepted_signature_algorithms: tuple[str, ...] = USER_SIG_ALGS


class UserAuthService:
    """Server side of ssh-userauth for one connection."""

    def __init__(
        self,
        transport: TransportLink,
        limits: AuthLimits,
        verify_signature: Callable[[bytes, bytes, bytes, str], bool],
        connection_factory: Callable[[], Service],
    ) -> None:
        """``verify_signature(key_blob, data, signature, algorithm)`` checks a
        publickey signature (pure cryptography, no application code)."""
        self._transport = transport
        self._limits = limits
        self._verify = verify_signature
        self._connection_factory = connection_factory
        self._methods: list[str] = []  # what the application offers, as of this request
        # A request parsed up to its method, waiting for allow_methods().
        self._parked: tuple[str, str, str, wire.Reader] | None = None
        self._queue: deque[bytes] = deque()
        self._pending: str | None = None  # method whose answer we wait for
        self._info_pending = False  # sent INFO_REQUEST, waiting for INFO_RESPONSE
        self._username: str | None = None
        self._service: str | None = None
        self.failures = 0
        self._current_request = b""  # the request being parsed: publickey signs a prefix of it
        self._prompt_count = 0  # prompts of the outstanding keyboard-interactive round
        self._gssapi: gssapi_auth.GssapiExchange | None = None  # a gssapi-with-mic attempt
        self.banner_sent = False
        self.done = False

    @property
    def username(self) -> str | None:
        return self._username

    # --- input ------------------------------------------------------------------------

    def handle(self, msg: int, payload: bytes | memoryview) -> list[Event]:
        # Only channel data comes as a view (PacketDecoder), and none of it is ours:
        # bytes() of the bytes our messages come in is the same object, no copy.
        data = bytes(payload)
        if self.done:
            if msg == c.SSH_MSG_USERAUTH_REQUEST:
                return []  # RFC 4252 5.1: requests after success are ignored
            raise ProtocolError(f"unexpected message {msg} after authentication")
        if msg == c.SSH_MSG_USERAUTH_REQUEST:
            if self._pending is not None or self._queue:
                if len(self._queue) >= self._limits.max_queued:
                    raise ProtocolError("too many authentication requests in flight")
                self._queue.append(data)
                return []
            return self._dispatch_request(data)
        if msg == c.SSH_MSG_USERAUTH_INFO_RESPONSE and self._info_pending:
            self._info_pending = False
            return self._info_response(data)
        if self._gssapi is not None and msg in gssapi_auth.CLIENT_MESSAGES:
            return self._gssapi_step(self._gssapi.receive(msg, data))
        raise ProtocolError(f"unexpected message {msg} during user authentication")

    def _request(self, payload: bytes) -> list[Event]:
        reader = wire.Reader(payload, 1)
        username = reader.text()
        service = reader.ascii()
        method = reader.ascii()
        if self._username is None:
            self._username, self._service = username, service
        elif (username, service) != (self._username, self._service):
            # As OpenSSH: a client may not switch user or service half-way.
            raise ProtocolError("change of username or service is not allowed")
        self._info_pending = False
        self._pending = method
        self._parked = (username, service, method, reader)
        return [AuthMethodsNeeded(username)]

    def allow_methods(self, methods: Sequence[str]) -> list[Event]:
        """The methods the application offers the user now: the waiting request goes on."""
        parked, self._parked = self._parked, None
        if parked is None or self._transport.closed:
            return []
        self._methods = list(methods)
        return self._guarded(self._decide, *parked)

    def _decide(self, username: str, service: str, method: str, reader: wire.Reader) -> list[Event]:
        parser = _METHODS.get(method)
        if parser is None or service != CONNECTION_SERVICE:
            return self.reject(partial=False, methods=None, count=method != "none")
        if method != "none" and method not in self._methods:
            reader.rest()
            return self.reject(partial=False, methods=None, count=True)
        return parser(self, username, reader)

    def _none(self, username: str, reader: wire.Reader) -> list[Event]:
        reader.done()
        return [AuthNoneRequested(username)]

    def _password(self, username: str, reader: wire.Reader) -> list[Event]:
        if reader.boolean():
            # A password change: we never ask for one, so refuse it cleanly.
            reader.text()
            reader.text()
            reader.done()
            return self.reject(partial=False, methods=None)
        password = reader.text()
        reader.done()
        return [AuthPasswordRequested(username, password)]

    def _publickey(self, username: str, reader: wire.Reader) -> list[Event]:
        signed = reader.boolean()
        algorithm = reader.ascii()
        blob = reader.string()
        if algorithm not in self._limits.accepted_signature_algorithms:
            # Counted even for a query, as sshd counts every key it refuses.
            reader.rest()
            return self.reject(partial=False, methods=None)
        if not signed:
            reader.done()
            return [AuthPublicKeyQueried(username, algorithm, blob)]
        signed_part_end = reader.position
        signature = reader.string()
        reader.done()
        session_id = self._transport.session_id
        assert session_id is not None
        # RFC 4252 7: the signature covers the session id and the request up to the key.
        data = wire.string(session_id) + self._current_request[:signed_part_end]
        if not self._verify(blob, data, signature, algorithm):
            return self.reject(partial=False, methods=None)
        return [AuthPublicKeyRequested(username, algorithm, blob)]

    def _keyboard_interactive(self, username: str, reader: wire.Reader) -> list[Event]:
        reader.text()  # language tag, deprecated
        submethods = reader.text()
        reader.done()
        return [AuthKeyboardInteractiveRequested(username, submethods)]

    def _gssapi_request(self, username: str, reader: wire.Reader) -> list[Event]:
        mechanisms = gssapi_auth.read_mechanisms(reader)
        reader.done()
        if mechanisms is None or gssapi_auth.KRB5_MECHANISM not in mechanisms:
            return self.reject(partial=False, methods=None)
        session_id = self._transport.session_id
        assert session_id is not None and self._service is not None
        self._gssapi = gssapi_auth.GssapiExchange(
            username, self._service, session_id, self._transport.send
        )
        return self._gssapi.start()

    def _gssapi_step(self, step: gssapi_auth.Step) -> list[Event]:
        if step is gssapi_auth.Verdict.REFUSE:
            return self.reject(partial=False, methods=None)
        if step is gssapi_auth.Verdict.ABANDON:
            return self._abandon()
        assert isinstance(step, list)
        return step

    def _info_response(self, payload: bytes) -> list[Event]:
        reader = wire.Reader(payload, 1)
        count = reader.uint32()
        if count != self._prompt_count:
            raise ProtocolError("keyboard-interactive response count does not match the prompts")
        responses = [reader.text() for _ in range(count)]
        reader.done()
        assert self._username is not None
        return [AuthKeyboardInteractiveResponse(self._username, responses)]

    # --- answers from the adapter --------------------------------------------------------

    def send_banner(self, text: str) -> None:
        """SSH_MSG_USERAUTH_BANNER; only before authentication ends (RFC 4252 5.4)."""
        if not self.done and not self.banner_sent:
            self.banner_sent = True
            self._transport.send(
                wire.byte(c.SSH_MSG_USERAUTH_BANNER) + wire.string(text) + wire.string(b"")
            )

    def accept(self) -> list[Event]:
        method, username = self._finish()
        self.done = True
        self._queue.clear()
        self._transport.send(wire.byte(c.SSH_MSG_USERAUTH_SUCCESS))
        self._transport.start_delayed_compression()
        self._transport.service = self._connection_factory()
        return [AuthenticationSucceeded(username, method)]

    def reject(
        self, partial: bool, methods: Sequence[str] | None, count: bool = True
    ) -> list[Event]:
        """USERAUTH_FAILURE listing ``methods``; ``count`` adds to the failure tally."""
        method, username = self._finish()
        if count and method != "none":
            ended = self._count_failure(username)
            if ended is not None:
                return ended
        names = list(methods) if methods is not None else self._methods
        self._transport.send(
            wire.byte(c.SSH_MSG_USERAUTH_FAILURE) + wire.name_list(names) + wire.boolean(partial)
        )
        return self._next()

    def accept_key_query(self, algorithm: str, blob: bytes) -> list[Event]:
        """SSH_MSG_USERAUTH_PK_OK: the key may be used; a signed request follows."""
        self._finish()
        self._transport.send(
            wire.byte(c.SSH_MSG_USERAUTH_PK_OK) + wire.string(algorithm) + wire.string(blob)
        )
        return self._next()

    def gssapi_proceed(self, token: bytes, complete: bool) -> list[Event]:
        """The client's GSS-API token was accepted: ``token`` goes back (RFC 4462 3.4)."""
        exchange = self._gssapi
        if exchange is None or self._transport.closed:
            return []
        return self._guarded(lambda: self._gssapi_step(exchange.proceed(token, complete)))

    def gssapi_fail(self, error_token: bytes, message: str, major: int = 0, minor: int = 0) -> None:
        """The context failed: ERRTOK and ERROR go out; :meth:`reject` follows."""
        if self._gssapi is not None:
            self._gssapi.fail(error_token, message, major, minor)

    def ask(self, name: str, instruction: str, prompts: Sequence[tuple[str, bool]]) -> list[Event]:
        """SSH_MSG_USERAUTH_INFO_REQUEST with ``(prompt, echo)`` pairs (RFC 4256 3.2)."""
        if len(prompts) > self._limits.max_prompts:
            raise ValueError("too many keyboard-interactive prompts")
        self._info_pending = True
        self._prompt_count = len(prompts)
        parts = [
            wire.byte(c.SSH_MSG_USERAUTH_INFO_REQUEST),
            wire.string(name),
            wire.string(instruction),
            wire.string(b""),
            wire.uint32(len(prompts)),
        ]
        for prompt, echo in prompts:
            parts += [wire.string(prompt), wire.boolean(echo)]
        self._transport.send(b"".join(parts))
        return []

    # --- helpers --------------------------------------------------------------------------

    def _finish(self) -> tuple[str, str]:
        method = self._pending or "none"
        self._pending = None
        self._info_pending = False
        self._gssapi = None
        return method, self._username or ""

    def _abandon(self) -> list[Event]:
        """The client gave up a gssapi-with-mic attempt (its ERRTOK): counted, no answer."""
        _, username = self._finish()
        return self._count_failure(username) or self._next()

    def _count_failure(self, username: str) -> list[Event] | None:
        """One more failed attempt; at the limit the connection ends, and this is its event."""
        self.failures += 1
        if self.failures < self._limits.max_failures:
            return None
        self._transport.disconnect(
            c.SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "Too many authentication failures"
        )
        return [TooManyAuthFailures(username)]

    def _next(self) -> list[Event]:
        if self._queue and not self._transport.closed:
            return self._guarded(self._dispatch_request, self._queue.popleft())
        return []

    def _guarded(self, step: Callable[..., list[Event]], *args: object) -> list[Event]:
        """Run a step the adapter set off: a peer's bad request there ends the connection
        as it would have on arrival, since no transport call is around to catch it."""
        try:
            return step(*args)
        except ProtocolError as exc:
            return [self._transport.fail(exc)]

    def _dispatch_request(self, payload: bytes) -> list[Event]:
        self._current_request = payload
        return self._request(payload)


_METHODS: dict[str, Callable[[UserAuthService, str, wire.Reader], list[Event]]] = {
    "none": UserAuthService._none,
    "password": UserAuthService._password,
    "publickey": UserAuthService._publickey,
    "keyboard-interactive": UserAuthService._keyboard_interactive,
    gssapi_auth.METHOD: UserAuthService._gssapi_request,
}
