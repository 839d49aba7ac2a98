"""Kerberos logins (gssapi-with-mic) through the optional ``gssapi`` package, on MIT krb5.

The message flow is sans-IO (:mod:`spindlex_tw.core.gssapi_auth`); this is
the GSS-API side. Each call that may block (reading the keytab, the replay
cache, writing a credentials cache) runs on the reactor's thread pool, never
on the reactor thread. ``gssapi`` is imported only when a connection tries
the method, so ``spindlex_tw`` never needs it unless Kerberos is enabled:
``pip install 'spindlex-tw[kerberos]'``.

A login succeeds in four steps, each of which can refuse:

1. the client's tokens establish a Kerberos context against a key of the
   keytab (any host principal in it, as OpenSSH's
   ``GSSAPIStrictAcceptorCheck no``, unless :attr:`GssapiSettings.host` pins
   ``host/<host>``);
2. its MIC over the session identifier verifies (RFC 4462 3.5);
3. its principal maps to the login name the client asked for
   (:attr:`GssapiSettings.map_principal`; by default ``user@DEFAULT_REALM``
   is user ``user``, as krb5's aname_to_localname does);
4. the application's ``check_auth_gssapi_with_mic(username,
   gss_authenticated, cc_file)`` grants: ``gss_authenticated`` is
   ``AUTH_SUCCESSFUL`` when step 3 held, ``AUTH_FAILED`` when the principal
   maps elsewhere (an application may still grant from its own mapping:
   the principal is ``current_connection().auth.kerberos.principal``).

Delegated credentials (``ssh -o GSSAPIDelegateCredentials=yes``) are written
to a credentials cache in a private directory (mode 0700, the file 0600)
that is removed when the connection ends; its path is ``cc_file``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet import defer, threads
from twisted.logger import Logger

from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_PARTIAL, AUTH_SUCCESSFUL
from spindlex_tw.tx.hooks import is_code

log = Logger(namespace="spindlex_tw.kerberos")

METHOD = "gssapi-with-mic"
INSTALL_HINT = "pip install 'spindlex-tw[kerberos]' (it builds against libkrb5-dev)"


class Link(Protocol):
    """What a login needs of its connection (an ``SSHServerProtocol``)."""

    @property
    def reactor(self) -> Any: ...
    @property
    def peer(self) -> str: ...
    def on_connection_lost(self, callback: Callable[[], None]) -> None: ...


class KerberosUnavailable(Exception):
    """Kerberos logins cannot work here; the message says why in one line."""


def default_login(principal: str, default_realm: str) -> str | None:
    """``alice@DEFAULT_REALM`` -> ``alice``; other realms and ``a/b@...`` map to nobody."""
    name, at, realm = principal.rpartition("@")
    if not at or realm != default_realm or not name or "/" in name:
        return None
    return name


class PrincipalMap:
    """``--gssapi-principal-map``: rules tried in order, then :func:`default_login`.

    Each rule is ``PRINCIPAL=USER`` (that exact principal logs in as USER) or
    ``*@REALM`` (a one-part principal of REALM logs in as its own name).
    """

    def __init__(self, rules: Sequence[str]) -> None:
        self._exact: dict[str, str] = {}
        self._realms: set[str] = set()
        for rule in rules:
            principal, equals, user = (part.strip() for part in rule.partition("="))
            if equals and "@" in principal and user and not principal.startswith("*@"):
                self._exact[principal] = user
            elif not equals and principal.startswith("*@") and len(principal) > 2:
                self._realms.add(principal[2:])
            else:
                raise ValueError(f"expects PRINCIPAL=USER or *@REALM, got {rule!r}")

    def __call__(self, principal: str, default_realm: str) -> str | None:
        if principal in self._exact:
            return self._exact[principal]
        name, _, realm = principal.rpartition("@")
        if realm in self._realms and name and "/" not in name:
            return name
        return default_login(principal, default_realm)


@dataclass(frozen=True)
class GssapiSettings:
    """``ServerSettings(gssapi=GssapiSettings(keytab=...))`` offers gssapi-with-mic.

    The application's ``get_allowed_auths`` must also list the method.
    """

    keytab: str
    #: Accept tickets for ``host/<host>`` only; None: for any principal in the keytab.
    host: str | None = None
    #: ``(principal, default_realm) -> login name or None``.
    map_principal: Callable[[str, str], str | None] = default_login
    #: Where each connection's private directory of delegated credentials is made.
    ccache_dir: str | None = None

    def check(self) -> None:
        """Raise :class:`KerberosUnavailable` unless the package and the keytab work (blocks)."""
        _acceptor_credentials(self)


def _gssapi() -> Any:
    try:
        import gssapi
    except ImportError as exc:
        raise KerberosUnavailable(f"the gssapi package is not installed: {INSTALL_HINT}") from exc
    return gssapi


def _acceptor_credentials(settings: GssapiSettings) -> Any:
    gssapi = _gssapi()
    if not os.access(settings.keytab, os.R_OK):
        raise KerberosUnavailable(f"keytab {settings.keytab}: cannot be read")
    name = None
    if settings.host is not None:
        name = gssapi.Name(f"host@{settings.host}", gssapi.NameType.hostbased_service)
    try:
        return gssapi.Credentials(
            name=name, usage="accept", store={"keytab": os.path.abspath(settings.keytab)}
        )
    except gssapi.exceptions.GSSError as exc:
        raise KerberosUnavailable(f"keytab {settings.keytab}: {_minor_text(exc)}") from exc


def _minor_text(exc: Exception) -> str:
    """The mechanism's own words (``Ticket expired``...), without GSS-API's framing."""
    text = str(exc)
    minor = text.rpartition("Minor (")[2].partition("): ")[2]
    return minor or text


@dataclass(frozen=True)
class Step:
    """What accepting one token gave: a token for the client, or a failure."""

    token: bytes = b""
    complete: bool = False
    error: str | None = None
    major: int = 0
    minor: int = 0


class KerberosLogin:
    """One connection's gssapi-with-mic attempts (an attribute of its ``AuthDriver``)."""

    def __init__(self, conn: Link, settings: GssapiSettings) -> None:
        self._conn = conn
        self._settings = settings
        self._context: Any = None
        #: The client principal of the last established context, e.g. ``alice@EXAMPLE.COM``.
        self.principal: str | None = None
        #: The delegated credentials cache of this connection's login, if any.
        self.ccache: str | None = None
        self._gone = False
        conn.on_connection_lost(self._connection_lost)

    def _in_thread(self, func: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        reactor = self._conn.reactor
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), func, *args)

    # --- token exchange ----------------------------------------------------------------------

    def accept(self, token: bytes, first: bool) -> defer.Deferred[Step]:
        """GSS_Accept_sec_context on ``token``, off the reactor thread; never fails."""
        d = self._in_thread(self._accept, token, first)
        return d.addErrback(self._unexpected, Step(error="internal error"))

    def _accept(self, token: bytes, first: bool) -> Step:
        gssapi = _gssapi()
        if first or self._context is None:
            self.principal = None
            self._context = gssapi.SecurityContext(
                creds=_acceptor_credentials(self._settings), usage="accept"
            )
        context = self._context
        try:
            out = context.step(token) or b""
        except gssapi.exceptions.GSSError as exc:
            self._context = None
            return Step(
                token=getattr(exc, "token", None) or b"",
                error=_minor_text(exc),
                major=exc.maj_code or 0,
                minor=exc.min_code or 0,
            )
        if not context.complete:
            return Step(token=out)
        if context.mech != gssapi.MechType.kerberos:
            self._context = None
            return Step(error="only the Kerberos V5 mechanism is accepted")
        self.principal = str(context.initiator_name)
        return Step(token=out, complete=True)

    # --- the MIC and the decision ------------------------------------------------------------

    def decide(
        self, username: str, mic: bytes, signed: bytes, hook: Callable[[str, int, Any], Any]
    ) -> defer.Deferred[object]:
        """Verify the MIC, map the principal, store delegated credentials, then ask ``hook``.

        Fires with the hook's answer, or ``AUTH_FAILED`` if the MIC does not verify.
        """
        d = self._in_thread(self._verify, username, mic, signed)

        def verified(result: tuple[int, str | None] | None) -> Any:
            if result is None:
                return AUTH_FAILED
            gss_authenticated, self.ccache = result
            if self._gone:  # the client left while its credentials were being written
                self.discard()
                return AUTH_FAILED
            return hook(username, gss_authenticated, self.ccache)

        def answered(code: object) -> object:
            if not is_code(code, AUTH_SUCCESSFUL, AUTH_PARTIAL):
                self.discard()  # refused: the delegated credentials go at once
            return code

        d.addCallback(verified)
        d.addErrback(self._unexpected, AUTH_FAILED)
        return d.addCallback(answered)

    def _verify(self, username: str, mic: bytes, signed: bytes) -> tuple[int, str | None] | None:
        gssapi = _gssapi()
        context, self._context = self._context, None
        if context is None or self.principal is None:
            return None
        try:
            context.verify_signature(signed, mic)
        except gssapi.exceptions.GSSError as exc:
            log.info(
                "gssapi-with-mic for {user} from {peer}: the MIC does not verify ({reason})",
                user=username, peer=self._conn.peer, reason=_minor_text(exc), event="denied",
            )  # fmt: skip
            return None
        realm = _default_realm(gssapi)
        login = self._settings.map_principal(self.principal, realm)
        if login != username:
            log.info(
                "gssapi-with-mic: principal {principal} may not log in as {user} from {peer}",
                principal=self.principal, user=username, peer=self._conn.peer, event="denied",
            )  # fmt: skip
            return AUTH_FAILED, None
        return AUTH_SUCCESSFUL, self._store_delegated(context)

    def _store_delegated(self, context: Any) -> str | None:
        delegated = context.delegated_creds
        if delegated is None:
            return None
        directory = tempfile.mkdtemp(prefix="spindlex-krb5-", dir=self._settings.ccache_dir)
        path = os.path.join(directory, "ccache")
        try:
            delegated.store(store={"ccache": f"FILE:{path}"}, overwrite=True, set_default=False)
            os.chmod(path, 0o600)
        except Exception:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return path

    # --- clean-up -----------------------------------------------------------------------------

    def _connection_lost(self) -> None:
        self._gone = True
        self.discard()

    def discard(self) -> None:
        """Forget the context and remove the delegated credentials (at disconnect, or refused)."""
        self._context = None
        ccache, self.ccache = self.ccache, None
        if ccache is not None:
            shutil.rmtree(os.path.dirname(ccache), ignore_errors=True)

    def _unexpected(self, failure: Any, result: Any) -> Any:
        log.failure(
            "gssapi-with-mic from {peer} failed unexpectedly", failure, peer=self._conn.peer
        )
        return result


def _default_realm(gssapi: Any) -> str:
    # krb5 completes a bare name with the default realm: "x" -> "x@EXAMPLE.COM".
    name = gssapi.Name("x", gssapi.NameType.kerberos_principal)
    return str(name.canonicalize(gssapi.MechType.kerberos)).rpartition("@")[2]


def environment(conn: Any) -> dict[str, str]:
    """``KRB5CCNAME`` of the connection's delegated credentials, for the programs it runs."""
    auth = getattr(conn, "auth", None)
    login = getattr(auth, "kerberos", None)
    ccache = getattr(login, "ccache", None)
    return {"KRB5CCNAME": f"FILE:{ccache}"} if ccache else {}
