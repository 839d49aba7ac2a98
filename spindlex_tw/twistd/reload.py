"""SIGHUP: read again every file the options name, and use them only if all are good.

What is read again: the ``--auth file:`` password files, the
``--authorized-keys`` file, the ``--host-key`` files (with
``--host-key-passphrase-file``) or the embedded default's key, the
``--banner`` file and the ``--limits-file``. Everything is read first; if
any file is bad (unreadable, a plain-text password, a key that does not
load, a limit out of range) nothing changes and one line says why.
Otherwise the new values apply at once: to the next login for passwords
and keys, to the next connection for the banner and host keys, and for the
limits as :meth:`.limits.LimitValues.set_on` says (per-source
caps at once, channel and SFTP limits for new connections and sessions).
Connections already open keep going, whatever changed.

Other values given on the command line (listen addresses, the SFTP root,
limits not in the limits file) are the same after a SIGHUP: changing them
needs a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.python import usage

from spindlex_tw.crypto.pkey import PKey
from spindlex_tw.server.manager import ManagedFactory
from spindlex_tw.twistd.authorized_keys import OptionError
from spindlex_tw.twistd.credentials import CredentialsError, FilePasswords
from spindlex_tw.twistd.default_app import ServerConfig
from spindlex_tw.twistd.limits import LimitValues

log = Logger(namespace="spindlex_tw.service")


class Rereader:
    """What the options read from files, read again: ``host_keys()``, ``banner()``, ``limits()``.

    Each raises :class:`usage.UsageError` with one line, as at start-up.
    """

    def __init__(
        self,
        host_keys: Callable[[], list[PKey]],
        banner: Callable[[], str | None],
        limits: Callable[[], LimitValues] | None = None,
    ) -> None:
        self.host_keys = host_keys
        self.banner = banner
        self.limits = limits


def reload(factory: ManagedFactory, config: ServerConfig, files: Rereader | None) -> bool:
    """Read every file again and use the new contents if all are good; True if they were."""
    try:
        commits = _read_all(factory, config, files)
    except (usage.UsageError, CredentialsError, OptionError) as exc:
        log.error(
            "reload refused, keeping the previous configuration: {error}",
            error=" ".join(str(exc).split()),
            event="reload_failed",
        )
        return False
    for commit in commits:
        commit()
    log.info("reloaded the configuration files", event="reloaded")
    return True


def _read_all(
    factory: ManagedFactory, config: ServerConfig, files: Rereader | None
) -> list[Callable[[], None]]:
    """Read everything; the functions returned put each new content to use."""
    commits: list[Callable[[], None]] = []
    for source in config.passwords.sources:
        if isinstance(source, FilePasswords):
            commits.append(_use(source.use, source.load()))
    if config.authorized_keys is not None:
        commits.append(_use(config.authorized_keys.use, config.authorized_keys.load()))
    if files is not None:
        host_keys = files.host_keys()
        banner = files.banner()
        commits.append(lambda: _set_banner(config, banner))
        commits.append(lambda: _set_host_keys(factory, host_keys))
        if files.limits is not None:
            limits = files.limits()
            commits.append(lambda: _set_limits(factory, config, limits))
    return commits


def _use(apply: Callable[[Any], None], loaded: Any) -> Callable[[], None]:
    return lambda: apply(loaded)


def _set_banner(config: ServerConfig, banner: str | None) -> None:
    config.banner = banner


def _set_limits(factory: ManagedFactory, config: ServerConfig, limits: LimitValues) -> None:
    # The settings object is the factory's own: its admission reads it at each connection.
    config.sftp_limits = limits.set_on(factory.settings)


def _set_host_keys(factory: ManagedFactory, keys: list[PKey]) -> None:
    """New connections use ``keys``; those open keep the key they were made with."""
    old = {key.get_fingerprint() for key in factory.host_keys}
    new = {key.get_fingerprint() for key in keys}
    # In place: the list is the factory's, read by each new connection.
    factory.host_keys[:] = keys
    for key in keys:
        if key.get_fingerprint() not in old:
            log.info(
                "host key added: {algorithm} {fingerprint}",
                algorithm=key.get_name(),
                fingerprint=key.get_fingerprint(),
                event="host_key_added",
            )
    for fingerprint in sorted(old - new):
        log.info(
            "host key removed: {fingerprint}", fingerprint=fingerprint, event="host_key_removed"
        )
