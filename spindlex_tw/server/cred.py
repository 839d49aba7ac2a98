"""A twisted.cred bridge: logins decided by a Portal, users described by its realm.

:class:`CredServer` is an :class:`~spindlex_tw.server.ssh_server.SSHServer`
whose password, keyboard-interactive and public-key logins go to a
``twisted.cred.portal.Portal``; any ``ICredentialsChecker`` plugs in
unchanged (``FilePasswordDB``, ``SSHPublicKeyChecker``, a checker of your
own returning a Deferred). The realm returns an :class:`IUserAccount`
avatar saying where the user's SFTP is jailed, whether they may write and
their quota; :class:`HomesRealm` is one that gives each user a home made on
first login. The avatar also says whether the user may run commands
(``exec_allowed``: exec and shell requests) and forward TCP
(``forwarding_allowed``: ``direct-tcpip`` channels and ``tcpip-forward``,
and the Unix-socket forwarding a subclass may grant); both default to
refusing. A request needs the avatar's yes and the server's: CredServer
grants TCP forwarding itself when the avatar allows it (the adapter does the
connecting), while exec needs a subclass's hook to run something; a
subclass's own hooks for these requests are only reached when the avatar
allows them (see :meth:`CredServer.__init_subclass__`).

The realm's logout callable is called exactly once per avatar, when the
connection it was given to ends, however it ends (the client leaving, the
TCP connection dropping, the server stopping).

Public keys: the SSH layer verifies the client's signature itself, so the
checker is asked with ``signature=None``. A checker that accepts the key
answers as Twisted's ``SSHPublicKeyChecker`` does, by failing with
``ValidPublicKey`` ("this key may log in, show me a signature"); once the
signature checked out the realm is asked for the avatar directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from weakref import WeakKeyDictionary

# Only the exception class: the checkers Twisted ships for SSH keys signal with it.
from twisted.conch.error import ValidPublicKey
from twisted.cred import credentials, error
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from spindlex_tw.crypto.pkey import PKey
from spindlex_tw.fs.homes import home_of, make_home, safe_user
from spindlex_tw.fs.quota import Quota
from spindlex_tw.protocol.constants import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    CHANNEL_DIRECT_TCPIP,
    SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
    SSH_OPEN_CONNECT_SUCCESS,
)
from spindlex_tw.server.hooks import SSHServer
from spindlex_tw.server.sftp_server import SFTPServer
from spindlex_tw.sftp.bandwidth import Bandwidth, TokenBucket
from spindlex_tw.tx import protocol

log = Logger(namespace="spindlex_tw.cred")


class IUserAccount(Interface):  # type: ignore[misc]
    """What a realm tells the server about a user who logged in."""

    home = Attribute("The directory the user's SFTP sessions are jailed in.")
    read_only = Attribute("True: SFTP refuses every change.")
    quota = Attribute("A spindlex_tw.fs.quota.Quota shared by the user's sessions, or None.")
    bandwidth = Attribute(
        "A spindlex_tw.sftp.bandwidth.Bandwidth shared by the user's sessions, or None "
        "(optional: an avatar without it is not limited)."
    )
    exec_allowed = Attribute(
        "True: exec and shell requests reach the server's hooks (optional: refused without it)."
    )
    forwarding_allowed = Attribute(
        "True: direct-tcpip channels and tcpip-forward requests are granted "
        "(optional: refused without it)."
    )


@implementer(IUserAccount)
@dataclass
class UserAccount:
    home: str
    read_only: bool = False
    quota: Quota | None = None
    bandwidth: Bandwidth | None = None
    exec_allowed: bool = False
    forwarding_allowed: bool = False


@implementer(IRealm)
class HomesRealm:
    """Each user jailed in ``template`` with ``{user}`` replaced, made on first login.

    ``quota_bytes``/``quota_files`` give every user one :class:`Quota` of their
    own, shared by all their sessions; ``read_only`` names users who may not write;
    ``upload_rate``/``download_rate`` (bytes per second) give every user one
    :class:`Bandwidth` of their own, shared by all their sessions too;
    ``exec_users`` and ``forwarding_users`` name the users who may run commands
    and forward TCP.
    """

    def __init__(
        self,
        template: str,
        mode: int = 0o700,
        quota_bytes: int | None = None,
        quota_files: int | None = None,
        read_only: frozenset[str] = frozenset(),
        upload_rate: int | None = None,
        download_rate: int | None = None,
        exec_users: frozenset[str] = frozenset(),
        forwarding_users: frozenset[str] = frozenset(),
    ) -> None:
        self.template = template
        self.exec_users = exec_users
        self.forwarding_users = forwarding_users
        self.mode = mode
        self.quota_bytes = quota_bytes
        self.quota_files = quota_files
        self.read_only = read_only
        self._quotas: dict[str, Quota] = {}
        self.upload_rate = upload_rate
        self.download_rate = download_rate
        self._bandwidths: dict[str, Bandwidth] = {}

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> Any:
        if IUserAccount not in interfaces:
            raise NotImplementedError("HomesRealm only gives IUserAccount avatars")
        user = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else str(avatarId)
        if not safe_user(user):
            raise error.UnauthorizedLogin("that name cannot name a home")
        home = home_of(self.template, user)
        make_home(home, self.mode)
        quota = None
        if self.quota_bytes is not None or self.quota_files is not None:
            quota = self._quotas.setdefault(user, Quota(self.quota_bytes, self.quota_files))
        bandwidth = None
        if self.upload_rate or self.download_rate:
            bandwidth = self._bandwidths.setdefault(
                user,
                Bandwidth(
                    TokenBucket(self.upload_rate) if self.upload_rate else None,
                    TokenBucket(self.download_rate) if self.download_rate else None,
                ),
            )
        account = UserAccount(
            home,
            user in self.read_only,
            quota,
            bandwidth,
            exec_allowed=user in self.exec_users,
            forwarding_allowed=user in self.forwarding_users,
        )
        return IUserAccount, account, lambda: None


def _methods(portal: Portal) -> list[str]:
    offered = portal.listCredentialsInterfaces()
    methods = []
    if credentials.ISSHPrivateKey in offered:
        methods.append("publickey")
    if credentials.IUsernamePassword in offered:
        methods += ["password", "keyboard-interactive"]
    return methods


@dataclass(frozen=True)
class _Gate:
    """A hook the avatar must allow before it is asked: which right, and the refusal."""

    right: str
    refusal: Any
    # For check_channel_request, only the kinds of channel the right is about.
    kinds: frozenset[str] | None = None


# Unix-socket forwarding (OpenSSH's streamlocal) is forwarding too: a subclass
# granting it is held to the same right.
_DIRECT_STREAMLOCAL = "direct-streamlocal@openssh.com"

_GATES = {
    "check_channel_exec_request": _Gate("exec_allowed", False),
    "check_channel_shell_request": _Gate("exec_allowed", False),
    "check_channel_request": _Gate(
        "forwarding_allowed",
        SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
        frozenset({CHANNEL_DIRECT_TCPIP, _DIRECT_STREAMLOCAL}),
    ),
    "check_channel_direct_tcpip_request": _Gate(
        "forwarding_allowed", SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
    ),
    "check_port_forward_request": _Gate("forwarding_allowed", False),
    "check_channel_direct_streamlocal_request": _Gate(
        "forwarding_allowed", SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
    ),
    "check_streamlocal_forward_request": _Gate("forwarding_allowed", False),
}


def _gated(hook: Callable[..., Any], gate: _Gate) -> Callable[..., Any]:
    @wraps(hook)
    def gated(self: CredServer, *args: Any) -> Any:
        if (gate.kinds is None or args[0] in gate.kinds) and not self.allows(gate.right):
            return gate.refusal
        return hook(self, *args)

    return gated


def _guarded_logout(logout: Callable[[], Any], user: str) -> Callable[[], None]:
    # Called from the connection's teardown, which must go on whatever logout does.
    def run() -> None:
        try:
            logout()
        except Exception:
            log.failure("logout of {user!r} failed in the realm", user=user)

    return run


class CredServer(SSHServer):
    """An SSHServer whose logins and users come from a twisted.cred ``portal``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's exec, shell and forwarding hooks run only if the avatar allows.

        Wrapped here rather than left to the subclass calling ``super()``, so
        that no override can grant what the realm refused.
        """
        super().__init_subclass__(**kwargs)
        for name, gate in _GATES.items():
            hook = cls.__dict__.get(name)
            if hook is not None:
                setattr(cls, name, _gated(hook, gate))

    def __init__(self, portal: Portal) -> None:
        super().__init__()
        # Any: zope interfaces (ICredentials...) are beyond what mypy checks here.
        self.portal: Any = portal
        # Each connection's avatar, gone with the connection.
        self._accounts: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()

    def account(self) -> Any:
        """The avatar of the connection running the current hook (None before login)."""
        conn = protocol.current_connection()
        return None if conn is None else self._accounts.get(conn)

    def allows(self, right: str) -> bool:
        """Whether the current connection's avatar has ``right`` (``exec_allowed``...)."""
        return bool(getattr(self.account(), right, False))

    def get_allowed_auths(self, username: str) -> list[str]:
        return _methods(self.portal)

    def _logged_in(self, conn: Any, result: tuple[Any, Any, Any], username: str) -> int:
        _, avatar, logout = result
        ended = _guarded_logout(logout, username)
        if conn is None:
            # No connection to hold the avatar (a hook called outside one): done with it.
            ended()
            return AUTH_SUCCESSFUL
        self._accounts[conn] = avatar
        # At once if the connection went while the checker was deciding.
        conn.on_connection_lost(ended)
        return AUTH_SUCCESSFUL

    @staticmethod
    def _refused(failure: Failure, username: str) -> int:
        if not failure.check(error.UnauthorizedLogin, error.UnhandledCredentials):
            log.failure("login of {user!r} failed in the portal", failure, user=username)
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> Any:
        conn = protocol.current_connection()
        creds = credentials.UsernamePassword(
            username.encode("utf-8", "surrogateescape"), password.encode("utf-8", "surrogateescape")
        )
        d = self.portal.login(creds, None, IUserAccount)
        d.addCallback(lambda result: self._logged_in(conn, result, username))
        return d.addErrback(self._refused, username)

    def check_auth_publickey(self, username: str, key: PKey) -> Any:
        conn = protocol.current_connection()
        name = username.encode("utf-8", "surrogateescape")
        creds = credentials.SSHPrivateKey(
            name, key.get_name().encode(), key.get_public_key_bytes(), None, None
        )

        def accepted(failure: Failure) -> Any:
            failure.trap(ValidPublicKey)
            # The key may log in, and the SSH layer checks its signature: the avatar.
            realm = self.portal.realm
            got = defer.maybeDeferred(lambda: realm.requestAvatar(name, None, IUserAccount))
            return got.addCallback(lambda result: self._logged_in(conn, result, username))

        d = self.portal.login(creds, None, IUserAccount)
        d.addCallback(lambda result: self._logged_in(conn, result, username))
        d.addErrback(accepted)
        return d.addErrback(self._refused, username)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == CHANNEL_DIRECT_TCPIP:
            if self.allows("forwarding_allowed"):
                return SSH_OPEN_CONNECT_SUCCESS
            return SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
        return super().check_channel_request(kind, chanid)

    def check_port_forward_request(self, address: str, port: int) -> bool:
        return self.allows("forwarding_allowed")

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        account = self.account()
        if name != "sftp" or account is None:
            return False

        class AccountSFTP(SFTPServer):
            read_only = bool(account.read_only)
            quota = account.quota
            bandwidth = getattr(account, "bandwidth", None)

        AccountSFTP(channel, account.home)
        return True
