"""Password credentials for ``twistd spindlex --auth``: in memory or from hashed files.

``--auth memory:USER:PASSWORD`` keeps one password given on the command line;
``--auth file:PATH`` reads ``user:hash[:settings]`` lines whose hashes are bcrypt
(``$2a$``/``$2b$``/``$2y$``, as made by ``htpasswd -B``) or SHA-crypt
(``$5$``/``$6$``, as made by ``openssl passwd -6`` or ``mkpasswd``), verified
by the ``bcrypt`` library and by libpass (the maintained passlib). A line
with anything else, plain text included, is refused when the file is read:
passwords never sit in a file in the clear. The optional third field
overrides the SFTP options for that user (see :func:`parse_user_options`):
``alice:$2b$12$...:home=/srv/alice,quota=2G,quota-files=10000,read-only``.

Checks are slow on purpose (bcrypt) and must run off the reactor thread.
They take the same time whether or not the user exists, and every comparison
of secrets is constant-time, so timing tells a client nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import os
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import bcrypt
from passlib.hash import sha256_crypt, sha512_crypt
from twisted.cred import credentials as cred_credentials
from twisted.cred import error as cred_error
from twisted.internet import defer, threads
from twisted.logger import Logger

from spindlex_tw.crypto.key_errors import describe_os_error
from spindlex_tw.server.cred import IUserAccount
from spindlex_tw.twistd.users import parse_count, parse_size

log = Logger(namespace="spindlex_tw.credentials")

_MAX_FILE_SIZE = 1 << 20


class CredentialsError(ValueError):
    """A bad ``--auth`` value or password file; the message is one line naming it."""


# --- hash schemes ----------------------------------------------------------------------------


def _bcrypt_ok(stored: str) -> bool:
    return len(stored) == 60 and stored[3:4] == "$" and stored[4:6].isdigit()


def _bcrypt_verify(stored: str, password: bytes) -> bool:
    # bcrypt ignores bytes beyond 72; 5.x refuses them instead, so cut as crypt(3) does.
    return bcrypt.checkpw(password[:72], stored.encode("ascii"))


# SHA-crypt (glibc's $5$ and $6$) by libpass, the maintained fork of passlib.
_SHA_CRYPT = {"$5$": sha256_crypt, "$6$": sha512_crypt}


def _sha_ok(stored: str) -> bool:
    try:
        _SHA_CRYPT[stored[:3]].from_string(stored)
    except ValueError:
        return False
    return True


def _sha_verify(stored: str, password: bytes) -> bool:
    # libpass compares in constant time.
    return bool(_SHA_CRYPT[stored[:3]].verify(password, stored))


@dataclass(frozen=True)
class _Scheme:
    name: str
    well_formed: Callable[[str], bool]
    verify: Callable[[str, bytes], bool]


_SCHEMES = {
    "$2a$": _Scheme("bcrypt", _bcrypt_ok, _bcrypt_verify),
    "$2b$": _Scheme("bcrypt", _bcrypt_ok, _bcrypt_verify),
    "$2y$": _Scheme("bcrypt", _bcrypt_ok, _bcrypt_verify),
    "$5$": _Scheme("sha256-crypt", _sha_ok, _sha_verify),
    "$6$": _Scheme("sha512-crypt", _sha_ok, _sha_verify),
}


def _scheme_of(stored: str) -> _Scheme | None:
    for prefix, scheme in _SCHEMES.items():
        if stored.startswith(prefix):
            return scheme if scheme.well_formed(stored) else None
    return None


def hash_password(password: str) -> str:
    """A bcrypt hash of ``password`` for a password file line ``user:HASH``."""
    return bcrypt.hashpw(password.encode("utf-8")[:72], bcrypt.gensalt()).decode("ascii")


# --- password sources ---------------------------------------------------------------------------


class PasswordSource:
    """Answers "is this the password of this user?"; blocking, call it from a thread."""

    description = "passwords"

    def users(self) -> frozenset[str]:
        raise NotImplementedError

    def check(self, username: str, password: str) -> bool:
        raise NotImplementedError


class MemoryPasswords(PasswordSource):
    """Passwords held in memory: ``--auth memory:USER:PASSWORD`` and the one-time password."""

    description = "memory"

    def __init__(self, entries: dict[str, str] | None = None) -> None:
        # Keep digests, not the passwords: equal-length values for compare_digest.
        self._digests = {
            user: self._digest(user, password) for user, password in (entries or {}).items()
        }
        self._decoy = self._digest("", secrets.token_hex(16))

    @staticmethod
    def _digest(username: str, password: str) -> bytes:
        return hashlib.sha256(
            username.encode("utf-8", "surrogateescape")
            + b"\0"
            + password.encode("utf-8", "surrogateescape")
        ).digest()

    def add(self, username: str, password: str) -> None:
        self._digests[username] = self._digest(username, password)

    def users(self) -> frozenset[str]:
        return frozenset(self._digests)

    def check(self, username: str, password: str) -> bool:
        expected = self._digests.get(username, self._decoy)
        matched = hmac.compare_digest(expected, self._digest(username, password))
        return matched and username in self._digests


class FilePasswords(PasswordSource):
    """``user:hash`` lines from a file, read again whenever the file changes (and on SIGHUP).

    A new version of the file that cannot be read or is invalid never
    replaces a good one: the users read before keep working, and the error
    is logged once per change of the file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"file:{path}"
        self._signature: tuple[int, int, int] | None = None
        # The version last found bad (None: a missing file); False while none is.
        self._refused: tuple[int, int, int] | bool | None = False
        self._entries: dict[str, str] = {}
        self.reload()

    def _stat_signature(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def load(self) -> tuple[dict[str, str], tuple[int, int, int]]:
        """Read the file: its entries and version; :class:`CredentialsError` says what is wrong."""
        signature: tuple[int, int, int] | None = None
        try:
            signature = self._stat_signature()
            with open(self.path, "rb") as handle:
                raw = handle.read(_MAX_FILE_SIZE + 1)
            if len(raw) > _MAX_FILE_SIZE:
                raise CredentialsError(f"password file {self.path} is too large")
            return parse_password_lines(raw, self.path), signature
        except OSError as exc:
            self._refused = signature  # reported here: the next login need not say it again
            raise CredentialsError(
                f"cannot read password file {self.path}: {describe_os_error(exc)}"
            ) from exc
        except CredentialsError:
            self._refused = signature
            raise

    def use(self, loaded: tuple[dict[str, str], tuple[int, int, int]]) -> None:
        """Serve what :meth:`load` read."""
        self._entries, self._signature = loaded
        self._refused = False

    def reload(self) -> None:
        """Read the file now and serve it; :class:`CredentialsError` leaves things as they were."""
        self.use(self.load())

    def _current(self) -> dict[str, str]:
        try:
            version: tuple[int, int, int] | None = self._stat_signature()
        except OSError:
            version = None
        if version != self._signature and version != self._refused:
            try:
                self.reload()
            except CredentialsError as exc:
                self._refused = version
                log.error("{error}; keeping the users read before", error=str(exc))
        return self._entries

    def users(self) -> frozenset[str]:
        return frozenset(self._current())

    def user_options(self, username: str) -> dict[str, str]:
        """The SFTP settings of ``username``'s line; :class:`CredentialsError` if unreadable."""
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(_MAX_FILE_SIZE + 1)
        except OSError as exc:
            raise CredentialsError(
                f"cannot read password file {self.path}: {describe_os_error(exc)}"
            ) from exc
        return parse_user_options(raw, self.path).get(username, {})

    def check(self, username: str, password: str) -> bool:
        entries = self._current()
        secret = password.encode("utf-8", "surrogateescape")
        stored = entries.get(username)
        if stored is None:
            # Spend the same effort on an unknown user as on a known one.
            decoy = next(iter(entries.values()), None)
            if decoy is not None:
                _verify(decoy, secret)
            return False
        return _verify(stored, secret)


def _verify(stored: str, password: bytes) -> bool:
    scheme = _scheme_of(stored)
    if scheme is None:
        return False
    try:
        return scheme.verify(stored, password)
    except ValueError:
        return False


def parse_password_lines(raw: bytes, source: str) -> dict[str, str]:
    """``{user: hash}`` from ``user:hash`` lines; blank lines and ``#`` comments are skipped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CredentialsError(f"password file {source} is not UTF-8 text") from exc
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        user, sep, stored = stripped.partition(":")
        # Lines of /etc/shadow style files carry more fields after the hash.
        stored = stored.split(":", 1)[0]
        if not sep or not user:
            raise CredentialsError(f"password file {source} line {number}: expected user:hash")
        if _scheme_of(stored) is None:
            raise CredentialsError(
                f"password file {source} line {number}: the password of {user!r} is not a "
                "bcrypt or SHA-crypt hash (plain text is refused)"
            )
        if user in entries:
            raise CredentialsError(
                f"password file {source} line {number}: {user!r} is listed twice"
            )
        entries[user] = stored
    return entries


_USER_FLAGS = frozenset({"read-only", "read-write"})
_USER_VALUES: dict[str, Callable[[str, str], object]] = {
    "home": lambda value, what: value if os.path.isabs(value) else _bad_home(value, what),
    "quota": parse_size,
    "quota-files": parse_count,
    "upload-rate": parse_size,
    "download-rate": parse_size,
}


def _bad_home(value: str, what: str) -> None:
    raise ValueError(f"{what} must be an absolute path, got {value!r}")


def parse_user_options(raw: bytes, source: str) -> dict[str, dict[str, str]]:
    """Per-user SFTP settings: the third field of ``user:hash:settings`` lines.

    Settings are comma-separated: ``home=/abs/dir`` (the user's home instead of
    --home's), ``quota=SIZE``, ``quota-files=N``, ``upload-rate=RATE`` and
    ``download-rate=RATE`` (bytes per second, as SIZE), and the flags ``read-only`` and
    ``read-write`` (against --read-only). A third field of digits, as
    /etc/shadow's, is not settings and is ignored as before.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CredentialsError(f"password file {source} is not UTF-8 text") from exc
    found: dict[str, dict[str, str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split(":")
        if len(fields) < 3 or not fields[2] or fields[2].isdigit():
            continue
        settings: dict[str, str] = {}
        for item in fields[2].split(","):
            key, sep, value = item.strip().partition("=")
            where = f"password file {source} line {number}: {key}"
            try:
                if key in _USER_FLAGS and not sep:
                    settings[key] = ""
                elif key in _USER_VALUES and sep:
                    _USER_VALUES[key](value, where)
                    settings[key] = value
                else:
                    raise ValueError(f"password file {source} line {number}: unknown {item!r}")
            except ValueError as exc:
                raise CredentialsError(str(exc)) from exc
        found[fields[0]] = settings
    return found


class CheckerPasswords(PasswordSource):
    """``--auth cred:MODULE:NAME``: passwords decided by a twisted.cred checker.

    NAME is an ``ICredentialsChecker`` for ``IUsernamePassword`` (Twisted's
    ``FilePasswordDB``, one of your own answering with a Deferred), a
    ``Portal`` holding one, or a callable returning either. The checker runs on
    the reactor, as checkers expect; :meth:`check` waits for it from its worker
    thread. A checker alone leaves homes, quotas and read-only to the options;
    a Portal whose realm gives :class:`~spindlex_tw.server.cred.IUserAccount`
    avatars decides them per user instead (see :meth:`avatar`).
    """

    def __init__(self, spec: str) -> None:
        self.description = f"cred:{spec}"
        module_name, _, name = spec.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in name.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError, ValueError) as exc:
            raise CredentialsError(f"--auth cred:{spec}: cannot load it: {exc}") from exc
        if callable(target) and not hasattr(target, "requestAvatarId"):
            target = target()
        checkers = getattr(target, "checkers", None)
        self.realm: Any = None
        if isinstance(checkers, dict):  # a Portal
            self.realm = getattr(target, "realm", None)
            target = checkers.get(cred_credentials.IUsernamePassword)
        if target is None or not hasattr(target, "requestAvatarId"):
            raise CredentialsError(
                f"--auth cred:{spec}: not a checker of usernames and passwords, nor a Portal "
                "holding one"
            )
        self.checker = target
        # The avatar (and its logout) of each user's latest login through the realm.
        # The password check knows no connection, so an avatar lasts until the next
        # one replaces it; a refused password leaves it, or a stranger's wrong guess
        # would hand a logged-in user's next session the options instead.
        self._avatars: dict[str, tuple[Any, Any]] = {}
        self._avatars_lock = threading.Lock()  # checks run on several worker threads

    def users(self) -> frozenset[str]:
        return frozenset()  # a checker does not list whom it knows

    def avatar(self, username: str) -> Any:
        """The realm's avatar of ``username``'s latest accepted password, or None."""
        avatar, _ = self._avatars.get(username, (None, None))
        return avatar

    def check(self, username: str, password: str) -> bool:
        from twisted.internet import reactor

        creds = cred_credentials.UsernamePassword(
            username.encode("utf-8", "surrogateescape"), password.encode("utf-8", "surrogateescape")
        )
        try:
            avatar_id: Any = threads.blockingCallFromThread(
                reactor, defer.maybeDeferred, self.checker.requestAvatarId, creds
            )
            if self.realm is not None:
                self._request_avatar(reactor, username, avatar_id)
        except (cred_error.UnauthorizedLogin, cred_error.UnhandledCredentials):
            return False
        except Exception as exc:
            # A checker that fails refuses: a login is never granted by accident.
            log.error("{source} failed: {error!r}", source=self.description, error=exc)
            return False
        return True

    def _request_avatar(self, reactor: Any, username: str, avatar_id: Any) -> None:
        try:
            result: Any = threads.blockingCallFromThread(
                reactor,
                defer.maybeDeferred,
                self.realm.requestAvatar,
                avatar_id,
                None,
                IUserAccount,
            )
        except NotImplementedError:
            return  # a realm of other avatars: the options decide, as with a checker alone
        _, avatar, logout = result
        with self._avatars_lock:
            _, replaced = self._avatars.get(username, (None, None))
            self._avatars[username] = (avatar, logout)
        if replaced is not None:
            reactor.callFromThread(replaced)


def parse_auth_spec(spec: str) -> PasswordSource:
    """A source from an ``--auth`` value: ``memory:USER:PASSWORD``, ``file:PATH``, ``cred:M:N``."""
    kind, sep, rest = spec.partition(":")
    if kind == "memory" and sep:
        user, sep, password = rest.partition(":")
        if not sep or not user or not password:
            raise CredentialsError(f"--auth {kind}: expects memory:USER:PASSWORD, got {spec!r}")
        return MemoryPasswords({user: password})
    if kind == "file" and rest:
        return FilePasswords(os.path.expanduser(rest))
    if kind == "cred" and ":" in rest:
        return CheckerPasswords(rest)
    raise CredentialsError(
        f"--auth expects memory:USER:PASSWORD, file:PATH or cred:MODULE:NAME, got {spec!r}"
    )


class Passwords:
    """Every password source of a server, consulted in order."""

    def __init__(self, sources: Iterable[PasswordSource] = ()) -> None:
        self.sources = list(sources)

    def __bool__(self) -> bool:
        return bool(self.sources)

    def add(self, source: PasswordSource) -> None:
        self.sources.append(source)

    def check(self, username: str, password: str) -> bool:
        """True if any source accepts; every source is asked, so time does not leak which."""
        results = [source.check(username, password) for source in self.sources]
        return any(results)


def user_settings(passwords: Passwords, username: str) -> dict[str, str]:
    """The per-user SFTP settings of the first password file listing ``username``."""
    for source in passwords.sources:
        if isinstance(source, FilePasswords) and username in source.users():
            return source.user_options(username)
    return {}


def user_avatar(passwords: Passwords, username: str) -> Any:
    """The cred realm's avatar of ``username`` from their password login, or None."""
    for source in passwords.sources:
        if isinstance(source, CheckerPasswords) and source.avatar(username) is not None:
            return source.avatar(username)
    return None


def one_time_password() -> str:
    """A random password to print once at startup (about 96 bits)."""
    return secrets.token_urlsafe(12)
