"""Drives user authentication: userauth events -> SSHServer hooks -> answers.

Every answer is checked as an exact code: only ``AUTH_SUCCESSFUL`` (an int,
not ``False``) grants; ``AUTH_PARTIAL`` asks for another method; anything
else, including exceptions and timeouts, refuses.

``check_auth_publickey`` answers two questions with one signature: may this
key be used (a query, which proves nothing), and does this verified
signature log in. The driver tells applications which one is asked
(:attr:`AuthDriver.signature_verified`) and keeps the methods that really
passed as a first factor (:attr:`AuthDriver.passed_methods`); both are
reached through ``current_connection().auth``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import defer
from twisted.logger import Logger

from spindlex_tw.core import events as ev
from spindlex_tw.crypto.certificate import SSHCertificate, verify_user_signature
from spindlex_tw.crypto.pkey import KeyFormatError, PKey, SecurityKey
from spindlex_tw.crypto.sk_key import SecurityKeySignature
from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_PARTIAL, AUTH_SUCCESSFUL
from spindlex_tw.tx import audit, kerberos
from spindlex_tw.tx.application import writes_hook
from spindlex_tw.tx.hooks import call_hook, is_code

if TYPE_CHECKING:
    from spindlex_tw.core.userauth import UserAuthService
    from spindlex_tw.tx.interfaces import Connection

log = Logger(namespace="spindlex_tw.auth")

KNOWN_METHODS = ("publickey", "password", "keyboard-interactive")


class AuthDriver:
    """The hook side of ssh-userauth for one connection."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._server = connection.server
        self._banner_checked = False
        self._kbd_mode: str | None = None  # "prompts" or "password" once we asked
        self._verified = False
        self._passed: list[str] = []
        self._fingerprint: str | None = None  # of the key whose signature is being decided
        gssapi = connection.factory.settings.gssapi
        #: Kerberos logins of this connection (principal, delegated credentials), if enabled.
        self.kerberos = kerberos.KerberosLogin(connection, gssapi) if gssapi else None
        # What a security key's device reported with the signature just verified, by key blob.
        self._sk_signatures: dict[bytes, SecurityKeySignature] = {}

    @property
    def signature_verified(self) -> bool:
        """True while the request being decided is a publickey one whose signature verified.

        False while ``check_auth_publickey`` answers a query (the client only
        asks whether it may sign with the key): then nothing is proven yet.
        """
        return self._verified

    @property
    def passed_methods(self) -> tuple[str, ...]:
        """The methods answered with ``AUTH_PARTIAL`` on this connection, in order.

        Recorded only once the partial success was sent to the client, so a
        publickey method appears here only after its signature verified.
        """
        return tuple(self._passed)

    @property
    def key_fingerprint(self) -> str | None:
        """The fingerprint of the last key whose signature was decided (for the audit trail)."""
        return self._fingerprint

    # --- used by the core service ---------------------------------------------------------

    def allowed_methods(self, username: str) -> defer.Deferred[list[str]]:
        """``get_allowed_auths(username)`` (a value, Deferred or coroutine), known methods only.

        Anything but a list or tuple, an exception or a timeout offers nothing.
        """

        def known(offered: object) -> list[str]:
            if not isinstance(offered, list | tuple):
                return []
            enabled = (*KNOWN_METHODS, kerberos.METHOD) if self.kerberos else KNOWN_METHODS
            return [m for m in offered if m in enabled]

        offered: defer.Deferred[object] = self._hook(
            self._server.get_allowed_auths, username, denied=[]
        )
        return offered.addCallback(known)

    def verify_signature(self, blob: bytes, data: bytes, signature: bytes, algorithm: str) -> bool:
        try:
            key = PKey.from_public_blob(blob)
        except KeyFormatError:
            return False
        valid, details = verify_user_signature(key, data, signature, algorithm)
        self._sk_signatures.clear()
        if valid and details is not None:
            self._sk_signatures[blob] = details
        return valid

    # --- events -------------------------------------------------------------------------------

    def handle(self, event: ev.Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is None:
            return
        # Requests are decided one at a time: this holds until the next one comes.
        self._verified = isinstance(event, ev.AuthPublicKeyRequested)
        if self._banner_checked:
            handler(self, event)
            return
        self._banner_checked = True
        d = self._hook(self._server.get_banner, denied=None)

        def send_banner(text: object) -> None:
            service = self._service()
            if service is not None and isinstance(text, str) and text:
                service.send_banner(text)
            handler(self, event)

        d.addCallback(lambda text: self._conn.in_context(send_banner, text))

    def _methods_needed(self, event: ev.AuthMethodsNeeded) -> None:
        def allow(methods: list[str]) -> None:
            service = self._service()
            if service is not None:
                self._conn.process(service.allow_methods(methods))
                self._conn.flush()

        self.allowed_methods(event.username).addCallback(
            lambda methods: self._conn.in_context(allow, methods)
        )

    def _none(self, event: ev.AuthNoneRequested) -> None:
        self._answer(defer.succeed(AUTH_FAILED), "none", event.username)

    def _password(self, event: ev.AuthPasswordRequested) -> None:
        self._answer(
            self._hook(self._server.check_auth_password, event.username, event.password),
            "password",
            event.username,
        )

    def _key_query(self, event: ev.AuthPublicKeyQueried) -> None:
        try:
            key = PKey.from_public_blob(event.key_blob)
        except KeyFormatError:
            d = defer.succeed(AUTH_FAILED)
        else:
            if event.algorithm in key.host_key_algorithms():
                d = self._hook(self._server.check_auth_publickey, event.username, key)
            else:  # e.g. an RSA key offered as ssh-ed25519: it could never sign
                d = defer.succeed(AUTH_FAILED)

        def decided(code: object) -> None:
            service = self._service()
            if service is None:
                return
            if is_code(code, AUTH_SUCCESSFUL, AUTH_PARTIAL):
                self._conn.process(service.accept_key_query(event.algorithm, event.key_blob))
            else:
                # Each refused key is an attempt, as for sshd: a client cannot try
                # more keys than max_auth_tries, signed or not.
                self._refused("publickey", event.username)
                self._conn.process(service.reject(partial=False, methods=None))
            self._conn.flush()

        d.addCallback(lambda code: self._conn.in_context(decided, code))

    def _key_signed(self, event: ev.AuthPublicKeyRequested) -> None:
        key = PKey.from_public_blob(event.key_blob)
        self._fingerprint = key.get_fingerprint()
        sk = key.security_key if isinstance(key, SSHCertificate) else key
        if isinstance(sk, SecurityKey):
            sk.signature = self._sk_signatures.pop(event.key_blob, None)
        d = self._hook(self._server.check_auth_publickey, event.username, key)
        if isinstance(sk, SecurityKey):
            d.addCallback(self._security_key_policy, sk, event.username)
        self._answer(d, "publickey", event.username)

    def _security_key_policy(self, code: object, key: SecurityKey, username: str) -> object:
        """A granted security-key login also needs the flags the hook left required
        (a touch unless it waived it, as OpenSSH without ``no-touch-required``)."""
        if not is_code(code, AUTH_SUCCESSFUL, AUTH_PARTIAL):
            return code
        reason = key.refusal()
        if reason is None:
            return code
        log.info(
            "refused security key for {user} from {peer}: {reason}",
            user=username,
            peer=self._conn.peer,
            reason=reason,
            event="denied",
        )
        return AUTH_FAILED

    def _kbd_start(self, event: ev.AuthKeyboardInteractiveRequested) -> None:
        server = self._server
        d = self._hook(
            server.get_keyboard_interactive_prompts, event.username, event.submethods, denied=None
        )

        def asked(prompts: object) -> None:
            service = self._service()
            if service is None:
                return
            if _valid_prompts(prompts):
                name, instruction, items = cast(tuple[str, str, list[tuple[str, bool]]], prompts)
                self._kbd_mode = "prompts"
                self._conn.process(service.ask(name, instruction, items))
                self._conn.flush()
            elif writes_hook(server, "check_auth_keyboard_interactive"):
                self._answer(
                    self._hook(
                        server.check_auth_keyboard_interactive, event.username, event.submethods
                    ),
                    "keyboard-interactive",
                    event.username,
                )
            elif writes_hook(server, "check_auth_password"):
                # The application only checks passwords: ask for one the plain way.
                self._kbd_mode = "password"
                self._conn.process(service.ask("", "", [("Password: ", False)]))
                self._conn.flush()
            else:
                self._answer(defer.succeed(AUTH_FAILED), "keyboard-interactive", event.username)

        d.addCallback(lambda prompts: self._conn.in_context(asked, prompts))

    def _kbd_response(self, event: ev.AuthKeyboardInteractiveResponse) -> None:
        mode, self._kbd_mode = self._kbd_mode, None
        if mode == "password" and len(event.responses) == 1:
            d = self._hook(self._server.check_auth_password, event.username, event.responses[0])
        elif mode == "prompts":
            d = self._hook(
                self._server.check_auth_keyboard_interactive_response,
                event.username,
                list(event.responses),
            )
        else:
            d = defer.succeed(AUTH_FAILED)
        self._answer(d, "keyboard-interactive", event.username)

    def _gssapi_token(self, event: ev.AuthGssapiToken) -> None:
        assert self.kerberos is not None  # the method is offered only with Kerberos enabled

        def stepped(step: kerberos.Step) -> None:
            service = self._service()
            if service is None:
                return
            if step.error is None:
                self._conn.process(service.gssapi_proceed(step.token, step.complete))
                self._conn.flush()
                return
            log.info(
                "gssapi-with-mic for {user} from {peer}: {reason}",
                user=event.username, peer=self._conn.peer, reason=step.error, event="denied",
            )  # fmt: skip
            service.gssapi_fail(step.token, step.error, step.major, step.minor)
            self._answer(defer.succeed(AUTH_FAILED), kerberos.METHOD, event.username)

        d = self.kerberos.accept(event.token, event.first)
        d.addCallback(lambda step: self._conn.in_context(stepped, step))

    def _gssapi_mic(self, event: ev.AuthGssapiMic) -> None:
        assert self.kerberos is not None

        def hook(username: str, gss_authenticated: int, cc_file: str | None) -> Any:
            return self._conn.in_context(
                self._hook, self._server.check_auth_gssapi_with_mic, username,
                gss_authenticated, cc_file,
            )  # fmt: skip

        decided = self.kerberos.decide(event.username, event.mic, event.signed_data, hook)
        self._answer(decided, kerberos.METHOD, event.username)

    def _too_many(self, event: ev.TooManyAuthFailures) -> None:
        log.info(
            "too many authentication failures for {user} from {peer}",
            user=event.username,
            peer=self._conn.peer,
            event="denied",
        )
        audit.auth_failed(
            self._conn.connection_id,
            self._conn.peer,
            event.username,
            None,
            "too many authentication failures",
        )

    # --- helpers ---------------------------------------------------------------------------------

    def _hook(self, func: Callable[..., Any], *args: Any, denied: Any = AUTH_FAILED) -> Any:
        return call_hook(
            self._conn.reactor,
            func,
            *args,
            denied=denied,
            timeout=self._conn.factory.settings.hook_timeout,
        )

    def _service(self) -> UserAuthService | None:
        core = self._conn.core
        if core is None or core.closed:
            return None
        service = core.service
        from spindlex_tw.core.userauth import UserAuthService

        return service if isinstance(service, UserAuthService) and not service.done else None

    def _answer(self, d: Any, method: str, username: str) -> None:
        clock = self._conn.reactor
        started = clock.seconds()

        def decided(code: object) -> None:
            if is_code(code, AUTH_SUCCESSFUL, AUTH_PARTIAL) or method == "none":
                self._conclude(code, method, username)
                return
            # Refusals leave no sooner than a fixed time after the request, so the
            # answer's timing tells nothing about which check failed or how.
            wait = started + self._conn.factory.settings.auth_failure_delay - clock.seconds()
            clock.callLater(
                max(wait, 0.0), self._conn.in_context, self._conclude, code, method, username
            )

        # Continuations run as part of this connection, for current_connection().
        d.addCallback(lambda code: self._conn.in_context(decided, code))

    def _conclude(self, code: object, method: str, username: str) -> None:
        service = self._service()
        if service is None:
            return
        if is_code(code, AUTH_SUCCESSFUL):
            events = service.accept()
            self._conn.authenticated(username, method)
            self._hook(self._server.on_authentication_successful, username, method, denied=None)
            self._conn.process(events)
            self._conn.flush()
            return
        partial = is_code(code, AUTH_PARTIAL)
        if partial:
            # Before get_allowed_auths is asked what comes next: it may look here.
            self._passed.append(method)
        elif method != "none":
            self._refused(method, username)

        # The FAILURE lists what the application offers now, after this attempt.
        def refuse(methods: list[str]) -> None:
            service = self._service()
            if service is not None:
                self._conn.process(service.reject(partial=partial, methods=methods))
                self._conn.flush()

        self.allowed_methods(username).addCallback(
            lambda methods: self._conn.in_context(refuse, methods)
        )

    def _refused(self, method: str, username: str) -> None:
        log.info(
            "denied {method} for {user} from {peer}",
            method=method,
            user=username,
            peer=self._conn.peer,
            event="denied",
        )
        audit.auth_failed(
            self._conn.connection_id, self._conn.peer, username, method, "credentials refused"
        )
        self._hook(self._server.on_authentication_failed, username, method, denied=None)


def _valid_prompts(value: object) -> bool:
    if not (isinstance(value, tuple | list) and len(value) == 3):
        return False
    name, instruction, items = value
    return (
        isinstance(name, str)
        and isinstance(instruction, str)
        and isinstance(items, list | tuple)
        and all(
            isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)
            for item in items
        )
    )


_HANDLERS: dict[type, Callable[[AuthDriver, Any], None]] = {
    ev.AuthMethodsNeeded: AuthDriver._methods_needed,
    ev.AuthNoneRequested: AuthDriver._none,
    ev.AuthPasswordRequested: AuthDriver._password,
    ev.AuthPublicKeyQueried: AuthDriver._key_query,
    ev.AuthPublicKeyRequested: AuthDriver._key_signed,
    ev.AuthKeyboardInteractiveRequested: AuthDriver._kbd_start,
    ev.AuthKeyboardInteractiveResponse: AuthDriver._kbd_response,
    ev.AuthGssapiToken: AuthDriver._gssapi_token,
    ev.AuthGssapiMic: AuthDriver._gssapi_mic,
    ev.TooManyAuthFailures: AuthDriver._too_many,
}
