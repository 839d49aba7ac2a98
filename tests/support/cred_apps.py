"""CredServer applications for the twisted.cred bridge tests, configured by environment.

CRED_HOMES: the base of the homes; CRED_DB: a FilePasswordDB file (user:password
lines); CRED_KEYS: an authorized public key line for alice.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.conch.checkers import InMemorySSHKeyDB, SSHPublicKeyChecker
from twisted.conch.ssh import keys
from twisted.cred import credentials, error
from twisted.cred.checkers import FilePasswordDB, ICredentialsChecker
from twisted.cred.portal import Portal
from twisted.internet import defer
from zope.interface import implementer

from spindlex_tw.server.cred import CredServer, HomesRealm


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
