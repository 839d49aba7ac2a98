"""Per-user SFTP for ``twistd spindlex``: homes, read-only users, quotas, the storage.

``--home /srv/sftp/{user}`` jails each user in their own directory, made on
their first login with ``--home-mode``; ``--quota`` and ``--quota-files``
give each user an allowance, shared by all their sessions and counted from
what their home holds; ``--storage memory`` serves trees kept in memory
instead of the disk. A password file line may override any of these for
its user (see :func:`spindlex_tw.twistd.credentials.parse_user_options`).
docs/users.md has the whole story.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from twisted.python import usage

from spindlex_tw.fs.homes import home_of, make_home, safe_user
from spindlex_tw.fs.interface import FileSystem
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.fs.memory import MemoryFileSystem
from spindlex_tw.fs.quota import Quota
from spindlex_tw.server.sftp_server import SFTPServer
from spindlex_tw.sftp.bandwidth import Bandwidth, TokenBucket
from spindlex_tw.twistd import storage_s3

STORAGES = ("local", "memory")
_Server = TypeVar("_Server", bound=SFTPServer)
_SIZE = re.compile(r"(\d+)([kmgt]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

#: twistd's optParameters rows: name, short, default, help.
OPTIONS: list[list[str | None]] = [
    [
        "home",
        None,
        None,
        "DIR_TEMPLATE: jail each user in their own directory, {user} standing for the "
        "login name (e.g. /srv/sftp/{user}); made on first login. Without it every user "
        "is served --sftp-root.",
    ],
    ["home-mode", None, "0o700", "Mode of a home directory made on first login (octal)."],
    ["quota", None, None, "SIZE (K, M, G, T suffixes): bytes each user may store."],
    ["quota-files", None, None, "N: files (and links) each user may store."],
    [
        "upload-rate",
        None,
        None,
        "RATE (bytes per second, K, M, G suffixes): SFTP upload limit of each user, "
        "shared by all their sessions.",
    ],
    [
        "download-rate",
        None,
        None,
        "RATE (bytes per second, K, M, G suffixes): SFTP download limit of each user, "
        "shared by all their sessions.",
    ],
    [
        "storage",
        None,
        "local",
        "What SFTP serves: local (the directories on disk), memory (a tree in memory "
        "per home, gone when the server stops) or s3://BUCKET[/PREFIX] (object storage, "
        "see --s3-endpoint; --home is then a prefix template such as {user}).",
    ],
]


def parse_size(text: str, what: str) -> int:
    """``10M`` -> 10485760; a :class:`ValueError` naming ``what`` for anything else."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{what} expects a size such as 500K, 10M or 2G, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _rate(options: usage.Options, name: str) -> int | None:
    if options[name] is None:
        return None
    rate = parse_size(options[name], f"--{name}")
    if rate == 0:
        raise ValueError(f"--{name} must be more than 0 bytes per second")
    return rate


def parse_count(text: str, what: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{what} expects a whole number, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Account:
    """What one user's SFTP sessions get."""

    root: str
    read_only: bool
    quota: Quota | None
    storage: Callable[[], FileSystem]
    bandwidth: Bandwidth | None = None


@dataclass(frozen=True)
class UserPolicy:
    """The options, applied to every user unless their password-file line overrides them."""

    home_template: str | None = None
    home_mode: int = 0o700
    quota_bytes: int | None = None
    quota_files: int | None = None
    storage: str = "local"
    upload_rate: int | None = None
    download_rate: int | None = None
    s3: storage_s3.S3Storage | None = None

    @classmethod
    def from_options(cls, options: usage.Options) -> UserPolicy:
        try:
            mode = int(options["home-mode"], 8)
            policy = cls(
                home_template=options["home"],
                home_mode=mode,
                quota_bytes=None
                if options["quota"] is None
                else parse_size(options["quota"], "--quota"),
                quota_files=None
                if options["quota-files"] is None
                else parse_count(options["quota-files"], "--quota-files"),
                storage=options["storage"],
                upload_rate=_rate(options, "upload-rate"),
                download_rate=_rate(options, "download-rate"),
            )
        except ValueError as exc:
            message = str(exc)
            if "--" not in message:
                message = f"--home-mode expects an octal mode, got {options['home-mode']!r}"
            raise usage.UsageError(message) from exc
        if policy.storage not in STORAGES and not policy.storage.startswith(storage_s3.SCHEME):
            raise usage.UsageError(
                f"--storage expects local, memory or s3://BUCKET[/PREFIX], got {policy.storage!r}"
            )
        if policy.home_template is not None and "{user}" not in policy.home_template:
            raise usage.UsageError("--home needs {user} in the template, e.g. /srv/sftp/{user}")
        if not 0 <= policy.home_mode <= 0o7777:
            raise usage.UsageError(f"--home-mode {options['home-mode']} is not a mode")
        return replace(policy, s3=storage_s3.connect(options))


class UserHomes:
    """Each user's account, by the policy and their overrides; quotas kept per user.

    ``overrides(user)`` gives the ``key=value`` settings of the user's password
    file line (home, quota, quota-files, read-only, read-write). ``avatar(user)``
    gives the user's twisted.cred avatar (a
    :class:`~spindlex_tw.server.cred.IUserAccount`) or None: an avatar's home,
    read-only, quota and bandwidth win over the options and the password file.
    """

    def __init__(
        self,
        policy: UserPolicy,
        sftp_root: str,
        read_only: bool,
        overrides: Callable[[str], dict[str, str]],
        avatar: Callable[[str], Any] | None = None,
    ) -> None:
        self.policy = policy
        self.sftp_root = sftp_root
        self.read_only = read_only
        self._overrides = overrides
        self._avatar = avatar
        # One allowance per user however many sessions they open.
        self._quotas: dict[tuple[str, str, int | None, int | None], Quota] = {}
        self._trees: dict[str, MemoryFileSystem] = {}
        self._bandwidths: dict[tuple[str, int | None, int | None], Bandwidth] = {}

    def account(self, username: str) -> Account | None:
        """The user's account, their home made if missing; None if they cannot have one."""
        avatar = None if self._avatar is None else self._avatar(username)
        if avatar is not None:
            return self._avatar_account(avatar)
        settings = self._overrides(username)
        home = settings.get("home") or self.policy.home_template
        s3 = self.policy.s3
        if home is None:
            root = self.sftp_root if s3 is None else ""
        else:
            if not safe_user(username):
                return None
            root = home_of(home, username) if s3 is None else s3.home(home, username)
            if self.policy.storage == "local":
                make_home(root, self.policy.home_mode)
        read_only = self.read_only
        if "read-only" in settings:
            read_only = True
        elif "read-write" in settings:
            read_only = False
        quota_bytes = self.policy.quota_bytes
        if "quota" in settings:
            quota_bytes = parse_size(settings["quota"], "quota")
        quota_files = self.policy.quota_files
        if "quota-files" in settings:
            quota_files = parse_count(settings["quota-files"], "quota-files")
        quota = None
        if quota_bytes is not None or quota_files is not None:
            key = (username, root, quota_bytes, quota_files)
            quota = self._quotas.setdefault(key, Quota(quota_bytes, quota_files))
            if s3 is not None:
                with quota.lock:
                    quota.loaded = False  # counted again: other instances write the bucket too
        return Account(root, read_only, quota, self._storage(root), self._bandwidth(username))

    def _avatar_account(self, avatar: Any) -> Account:
        """What the realm said, all of it: the avatar's quota and limits are its own objects,
        shared as the realm shares them (HomesRealm: one per user)."""
        root = os.path.abspath(str(avatar.home))
        if self.policy.storage == "local":
            make_home(root, self.policy.home_mode)
        return Account(
            root,
            bool(avatar.read_only),
            getattr(avatar, "quota", None),
            self._storage(root),
            getattr(avatar, "bandwidth", None),
        )

    def _bandwidth(self, username: str) -> Bandwidth | None:
        """The user's limits, one bucket per direction however many sessions they open."""
        settings = self._overrides(username)
        upload = self.policy.upload_rate
        if "upload-rate" in settings:
            upload = parse_size(settings["upload-rate"], "upload-rate") or None
        download = self.policy.download_rate
        if "download-rate" in settings:
            download = parse_size(settings["download-rate"], "download-rate") or None
        if upload is None and download is None:
            return None
        key = (username, upload, download)
        if key not in self._bandwidths:
            self._bandwidths[key] = Bandwidth(
                TokenBucket(upload) if upload else None,
                TokenBucket(download) if download else None,
            )
        return self._bandwidths[key]

    def _storage(self, root: str) -> Callable[[], FileSystem]:
        s3 = self.policy.s3
        if s3 is not None:
            return lambda: s3.file_system(root)
        if self.policy.storage == "memory":
            tree = self._trees.setdefault(root, MemoryFileSystem())
            return lambda: tree
        return lambda: LocalFileSystem(root)


def server_class_for(base: type[_Server], account: Account) -> type[_Server]:
    """``base`` serving ``account``: its storage, read-only or not, its quota.

    A subclass rather than settings on an instance: ``read_only`` is read
    when the session is built, inside the base class's constructor.
    """

    class UserSFTPServer(base):  # type: ignore[valid-type,misc]
        read_only = account.read_only or base.read_only
        quota = account.quota
        bandwidth = account.bandwidth

        def open_storage(self) -> FileSystem:
            return account.storage()

    return UserSFTPServer
