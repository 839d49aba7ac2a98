"""CredServer applications for the twisted.cred bridge tests, configured by environment.

CRED_HOMES: the base of the homes; CRED_DB: a FilePasswordDB file (user:password
lines); CRED_KEYS: an authorized public key line for alice; CRED_LOGOUTS: the file
RightsServer's realm appends a user's name to on each logout.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.conch.checkers import InMemorySSHKeyDB, SSHPublicKeyChecker
from twisted.conch.ssh import keys
from twisted.cred import credentials, error
from twisted.cred.checkers import FilePasswordDB, ICredentialsChecker
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from zope.interface import implementer

from spindlex_tw.fs.quota import Quota
from spindlex_tw.server.cred import CredServer, HomesRealm, IUserAccount, UserAccount


def _portal(checkers: list[Any]) -> Portal:
    # Any: zope's interfaces are beyond what mypy checks without its plugin.
    realm: Any = _realm()
    return Portal(realm, checkers)


def _realm() -> HomesRealm:
    return HomesRealm(
        os.path.join(os.environ["CRED_HOMES"], "{user}"),
        mode=0o750,
        quota_bytes=64 * 1024,
        read_only=frozenset({"reader"}),
    )


class TwistedCheckersServer(CredServer):
    """Twisted's own checkers: FilePasswordDB and SSHPublicKeyChecker."""

    def __init__(self) -> None:
        key = keys.Key.fromString(os.environ["CRED_KEYS"].encode())  # type: ignore[no-untyped-call]
        database: Any = InMemorySSHKeyDB({b"alice": [key]})
        passwords = FilePasswordDB(os.environ["CRED_DB"])  # type: ignore[no-untyped-call]
        super().__init__(_portal([passwords, SSHPublicKeyChecker(database)]))


@implementer(ICredentialsChecker)
class _Later:
    """A checker that answers on a later turn of the reactor, as a network lookup would."""

    credentialInterfaces = (credentials.IUsernamePassword,)

    def requestAvatarId(self, creds: Any) -> defer.Deferred[bytes]:
        d: defer.Deferred[bytes] = defer.Deferred()

        def answer() -> None:
            if creds.username == b"carol" and creds.password == b"carol-pw":
                d.callback(b"carol")
            else:
                d.errback(error.UnauthorizedLogin("no"))

        from twisted.internet import reactor

        clock: Any = reactor
        clock.callLater(0, answer)
        return d


class AsyncCheckerServer(CredServer):
    def __init__(self) -> None:
        super().__init__(_portal([_Later()]))


class LimitedServer(CredServer):
    """FilePasswordDB users whose avatars carry a 512K/s download limit."""

    def __init__(self) -> None:
        passwords: Any = FilePasswordDB(os.environ["CRED_DB"])  # type: ignore[no-untyped-call]
        realm: Any = HomesRealm(
            os.path.join(os.environ["CRED_HOMES"], "{user}"), download_rate=512 * 1024
        )
        super().__init__(Portal(realm, [passwords]))


def file_checker() -> Any:
    """For ``twistd spindlex --auth cred:tests.support.cred_apps:file_checker``."""
    return FilePasswordDB(os.environ["CRED_DB"])  # type: ignore[no-untyped-call]


#: For ``--auth cred:tests.support.cred_apps:LATER``: answers on a later reactor turn.
LATER = _Later()


@implementer(IRealm)
class _LoggingOutRealm:
    """HomesRealm's avatars whose logout appends the user's name to CRED_LOGOUTS."""

    def __init__(self, realm: HomesRealm) -> None:
        self.realm = realm

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> Any:
        iface, avatar, _ = self.realm.requestAvatar(avatarId, mind, *interfaces)

        def logout() -> None:
            with open(os.environ["CRED_LOGOUTS"], "a") as record:
                record.write(avatarId.decode() + "\n")

        return iface, avatar, logout


class RightsServer(CredServer):
    """alice may run commands and forward TCP, bob may do neither; exec echoes its command."""

    def __init__(self) -> None:
        passwords: Any = FilePasswordDB(os.environ["CRED_DB"])  # type: ignore[no-untyped-call]
        realm = HomesRealm(
            os.path.join(os.environ["CRED_HOMES"], "{user}"),
            exec_users=frozenset({"alice"}),
            forwarding_users=frozenset({"alice"}),
        )
        recording: Any = _LoggingOutRealm(realm)
        super().__init__(Portal(recording, [passwords]))

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        from twisted.internet import reactor

        clock: Any = reactor
        clock.callLater(0, self._echo, channel, command)
        return True

    def check_streamlocal_forward_request(self, path: str) -> bool:
        return True  # for whoever the avatar lets forward

    @staticmethod
    def _echo(channel: Any, command: bytes) -> None:
        channel.send(command + b"\n")
        channel.send_exit_status(0)
        channel.close()


@implementer(IRealm)
class _FixedRealm:
    """Avatars as listed: alice's home, quota and limits; reader may not write."""

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> Any:
        if IUserAccount not in interfaces:
            raise NotImplementedError("only IUserAccount avatars")
        homes = os.environ["CRED_HOMES"]
        user = avatarId.decode()
        home = os.path.join(homes, f"avatar-{user}")
        os.makedirs(home, exist_ok=True)
        quota = _QUOTAS.setdefault(user, Quota(32 * 1024, 3))
        account = UserAccount(home, read_only=user == "reader", quota=quota)
        return IUserAccount, account, lambda: None


_QUOTAS: dict[str, Quota] = {}


def realm_portal() -> Any:
    """For ``twistd spindlex --auth cred:tests.support.cred_apps:realm_portal``."""
    passwords: Any = FilePasswordDB(os.environ["CRED_DB"])  # type: ignore[no-untyped-call]
    realm: Any = _FixedRealm()
    return Portal(realm, [passwords])
