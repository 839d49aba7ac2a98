"""OpenSSH ``authorized_keys`` files, options included, for ``twistd spindlex``.

Each line is ``[options] type base64 [comment]``. The options this server
enforces are ``from=``, ``command=``, ``restrict``, ``no-pty`` / ``pty``,
``no-port-forwarding`` / ``port-forwarding``, ``permitopen=``,
``permitlisten=``, ``expiry-time=``, ``no-agent-forwarding`` /
``agent-forwarding``, ``no-X11-forwarding`` / ``X11-forwarding`` and
``environment=`` (set only with ``--permit-user-environment``, as sshd's
``PermitUserEnvironment``: otherwise accepted and not used); ``no-user-rc``
and ``user-rc`` are accepted because this server runs no ``~/.ssh/rc``.
``cert-authority`` (with ``principals=``), ``no-touch-required`` and
``verify-required`` are enforced for certificates and security keys
(:mod:`.certificates`). Any other option (say ``tunnel=``) would go
unenforced, so the key on that line is refused and a warning names the line:
a key is never granted more than its line says.
"""

from __future__ import annotations

import datetime
import fnmatch
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from twisted.logger import Logger

from spindlex_tw.crypto.cert_checks import peer_ip
from spindlex_tw.crypto.key_errors import describe_os_error
from spindlex_tw.crypto.pkey import KeyFormatError, PKey

log = Logger(namespace="spindlex_tw.authorized_keys")

_MAX_FILE_SIZE = 4 << 20


@dataclass(frozen=True)
class KeyOptions:
    """What a key's line allows; the defaults are those of a line without options."""

    from_patterns: tuple[str, ...] | None = None
    command: str | None = None
    pty: bool = True
    port_forwarding: bool = True
    permit_open: tuple[tuple[str, str], ...] = ()
    permit_listen: tuple[tuple[str, str], ...] = ()
    expiry: datetime.datetime | None = None
    agent_forwarding: bool = True
    x11_forwarding: bool = True
    #: environment="NAME=value" options in order, the first of each name only (as sshd);
    #: set for --exec programs only with --permit-user-environment.
    environment: tuple[tuple[str, str], ...] = ()
    #: cert-authority: the line's key is a CA; certificates it signed log in, never the key.
    cert_authority: bool = False
    #: principals="a,b" (with cert-authority): a certificate must name one of these.
    principals: tuple[str, ...] | None = None
    #: Security keys: no-touch-required waives the touch, verify-required demands a PIN.
    no_touch_required: bool = False
    verify_required: bool = False

    def allows_source(self, address: str) -> bool:
        """Does ``from=`` (if any) admit a client at IP ``address``?"""
        if self.from_patterns is None:
            return True
        return match_address_patterns(address, self.from_patterns)

    def expired(self, now: datetime.datetime) -> bool:
        return self.expiry is not None and now >= self.expiry

    def allows_open(self, host: str, port: int) -> bool:
        """May ``ssh -L``/``-D`` connect to ``host:port``?"""
        if not self.port_forwarding:
            return False
        return not self.permit_open or _listed(self.permit_open, host, port)

    def allows_listen(self, host: str, port: int) -> bool:
        """May ``ssh -R`` listen on ``host:port``?"""
        if not self.port_forwarding:
            return False
        return not self.permit_listen or _listed(self.permit_listen, host, port)


def _listed(allowed: tuple[tuple[str, str], ...], host: str, port: int) -> bool:
    return any(
        (h == "*" or h.lower() == host.lower()) and (p == "*" or p == str(port)) for h, p in allowed
    )


@dataclass(frozen=True)
class AuthorizedKey:
    key: PKey
    options: KeyOptions
    line: int


class OptionError(ValueError):
    """An option this server cannot enforce, a malformed line, or an unreadable file."""


# --- pattern lists (from=) -------------------------------------------------------------------


def _pattern_matches(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str, pattern: str
) -> bool:
    if "/" in pattern:
        try:
            return address in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    return fnmatch.fnmatchcase(text.lower(), pattern.lower().replace("[", "[[]"))


def match_address_patterns(address: str, patterns: tuple[str, ...]) -> bool:
    """OpenSSH pattern-list semantics: a matching ``!pattern`` denies, else any match admits.

    Patterns use ``*`` and ``?`` or are CIDR networks; the address is an IP
    (an IPv4-mapped IPv6 address counts as its IPv4 form).
    """
    ip = peer_ip(address)
    if ip is None:
        return False
    text = str(ip)
    admitted = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        if _pattern_matches(ip, text, pattern):
            if negated:
                return False
            admitted = True
    return admitted


# --- option parsing --------------------------------------------------------------------------

_TOKEN = re.compile(r'([A-Za-z0-9_-]+)(?:="((?:[^"\\]|\\.)*)")?')
_KEY_TYPE = re.compile(r"(ssh-|ecdsa-sha2-|sk-)[A-Za-z0-9@.-]+$")


def _split_options(text: str) -> tuple[list[tuple[str, str | None]], str]:
    """``[(name, value or None), ...]`` from the front of a line, and the rest of it."""
    options: list[tuple[str, str | None]] = []
    pos = 0
    while True:
        match = _TOKEN.match(text, pos)
        if match is None:
            raise OptionError("malformed options")
        value = match.group(2)
        options.append(
            (match.group(1).lower(), None if value is None else value.replace('\\"', '"'))
        )
        pos = match.end()
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] in " \t":
            return options, text[pos:].strip()
        raise OptionError("malformed options")


def _host_port(value: str, what: str, port_optional: bool) -> tuple[str, str]:
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        if not sep:
            raise OptionError(f"bad {what}")
    elif ":" in value:
        host, _, port = value.rpartition(":")
    elif port_optional:
        host, port = "localhost", value
    else:
        raise OptionError(f"bad {what}")
    if not host or not (port == "*" or (port.isdigit() and 0 < int(port) < 65536)):
        raise OptionError(f"bad {what} {value!r}")
    return host, port


def _expiry(value: str) -> datetime.datetime:
    utc = value.endswith(("Z", "z"))
    digits = value[:-1] if utc else value
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if not digits.isdigit() or len(digits) not in formats:
        raise OptionError(f"bad expiry-time {value!r}")
    stamp = datetime.datetime.strptime(digits, formats[len(digits)])
    return stamp.replace(tzinfo=datetime.UTC) if utc else stamp.astimezone()


def _set_from(opts: KeyOptions, value: str) -> KeyOptions:
    if opts.from_patterns is not None:
        raise OptionError('more than one "from" option')
    return replace(opts, from_patterns=tuple(p for p in value.split(",") if p))


def _set_command(opts: KeyOptions, value: str) -> KeyOptions:
    if opts.command is not None:
        raise OptionError('more than one "command" option')
    return replace(opts, command=value)


def _add_open(opts: KeyOptions, value: str) -> KeyOptions:
    return replace(opts, permit_open=(*opts.permit_open, _host_port(value, "permitopen", False)))


def _add_listen(opts: KeyOptions, value: str) -> KeyOptions:
    entry = _host_port(value, "permitlisten", True)
    return replace(opts, permit_listen=(*opts.permit_listen, entry))


def _set_expiry(opts: KeyOptions, value: str) -> KeyOptions:
    return replace(opts, expiry=_expiry(value))


_ENV_NAME = re.compile(r"[A-Za-z0-9_]+")


def _add_environment(opts: KeyOptions, value: str) -> KeyOptions:
    name, sep, text = value.partition("=")
    if not sep or not _ENV_NAME.fullmatch(name):
        raise OptionError("invalid environment string")
    if any(known == name for known, _ in opts.environment):
        return opts  # the first one wins, as in sshd
    return replace(opts, environment=(*opts.environment, (name, text)))


def _set_principals(opts: KeyOptions, value: str) -> KeyOptions:
    if opts.principals is not None:
        raise OptionError('more than one "principals" option')
    return replace(opts, principals=tuple(p.strip() for p in value.split(",") if p.strip()))


def _never_offered(opts: KeyOptions) -> KeyOptions:
    return opts


_FLAGS: dict[str, Callable[[KeyOptions], KeyOptions]] = {
    "restrict": lambda o: replace(
        o, pty=False, port_forwarding=False, agent_forwarding=False, x11_forwarding=False
    ),
    "no-pty": lambda o: replace(o, pty=False),
    "pty": lambda o: replace(o, pty=True),
    "no-port-forwarding": lambda o: replace(o, port_forwarding=False),
    "port-forwarding": lambda o: replace(o, port_forwarding=True),
    "no-agent-forwarding": lambda o: replace(o, agent_forwarding=False),
    "agent-forwarding": lambda o: replace(o, agent_forwarding=True),
    "no-x11-forwarding": lambda o: replace(o, x11_forwarding=False),
    "x11-forwarding": lambda o: replace(o, x11_forwarding=True),
    # ~/.ssh/rc does not exist in this server.
    "no-user-rc": _never_offered,
    "cert-authority": lambda o: replace(o, cert_authority=True),
    "no-touch-required": lambda o: replace(o, no_touch_required=True),
    "verify-required": lambda o: replace(o, verify_required=True),
    "user-rc": _never_offered,
}
_VALUED: dict[str, Callable[[KeyOptions, str], KeyOptions]] = {
    "from": _set_from,
    "command": _set_command,
    "permitopen": _add_open,
    "permitlisten": _add_listen,
    "expiry-time": _set_expiry,
    "principals": _set_principals,
    "environment": _add_environment,
}


def parse_options(options: list[tuple[str, str | None]]) -> KeyOptions:
    """Apply options left to right, as OpenSSH does (``restrict,pty`` allows a pty)."""
    result = KeyOptions()
    for name, value in options:
        if value is None and name in _FLAGS:
            result = _FLAGS[name](result)
        elif value is not None and name in _VALUED:
            result = _VALUED[name](result, value)
        else:
            raise OptionError(f"unsupported option {name!r}")
    return result


def parse_line(line: str) -> AuthorizedKey | None:
    """One line, or None for a blank line or comment; :class:`OptionError` /
    :class:`KeyFormatError` for a line that must not grant anything."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    first = text.split(None, 1)[0]
    if _KEY_TYPE.match(first):
        options = KeyOptions()
        key_text = text
    else:
        parsed, key_text = _split_options(text)
        options = parse_options(parsed)
    return AuthorizedKey(PKey.from_public_line(key_text), options, 0)


def parse_authorized_keys(text: str, source: str) -> list[AuthorizedKey]:
    """Every usable line of a file's text; others are logged and skipped."""
    entries: list[AuthorizedKey] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entry = parse_line(line)
        except (OptionError, KeyFormatError) as exc:
            log.warn(
                "{source} line {line}: {error}; key ignored",
                source=source,
                line=number,
                error=str(exc),
            )
            continue
        if entry is not None:
            entries.append(replace(entry, line=number))
    return entries


@dataclass
class AuthorizedKeysFile:
    """An authorized_keys file, read again whenever it changes (as sshd reads it per login).

    A missing file authorizes nothing (removing it revokes every key, as for
    sshd). A version that cannot be read never replaces a good one: the keys
    read before keep working and the error is logged once per change. SIGHUP
    reads it at once (:meth:`load` then :meth:`use`).
    """

    path: str
    _signature: tuple[int, int, int] | None = field(default=None, repr=False)
    _entries: list[AuthorizedKey] = field(default_factory=list, repr=False)
    # The version last found unreadable; False while none is.
    _refused: tuple[int, int, int] | bool | None = field(default=False, repr=False)

    def check_readable(self) -> None:
        """Raise :class:`OptionError`, one line, if the file exists but cannot be read."""
        try:
            with open(self.path, "rb"):
                pass
        except FileNotFoundError:
            return
        except OSError as exc:
            raise OptionError(f"cannot read {self.path}: {describe_os_error(exc)}") from exc

    def _version(self) -> tuple[int, int, int] | None:
        """The file's identity and change time; None if it is missing."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise OptionError(f"cannot read {self.path}: {describe_os_error(exc)}") from exc
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def load(self) -> tuple[list[AuthorizedKey], tuple[int, int, int] | None]:
        """Read the file: its keys and version; :class:`OptionError` if it cannot be read."""
        version = self._version()
        if version is None:
            return [], None
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(_MAX_FILE_SIZE + 1)
        except OSError as exc:
            self._refused = version  # reported here: the next login need not say it again
            raise OptionError(f"cannot read {self.path}: {describe_os_error(exc)}") from exc
        if len(raw) > _MAX_FILE_SIZE:
            self._refused = version
            raise OptionError(f"{self.path} is too large")
        return parse_authorized_keys(raw.decode("utf-8", "replace"), self.path), version

    def use(self, loaded: tuple[list[AuthorizedKey], tuple[int, int, int] | None]) -> None:
        """Serve what :meth:`load` read."""
        self._entries, self._signature = loaded
        self._refused = False

    def entries(self) -> list[AuthorizedKey]:
        try:
            version = self._version()
        except OptionError as exc:
            return self._keep(None, exc)
        if version != self._signature and version != self._refused:
            try:
                self.use(self.load())
            except OptionError as exc:
                return self._keep(version, exc)
        return self._entries

    def _keep(
        self, version: tuple[int, int, int] | None, error: OptionError
    ) -> list[AuthorizedKey]:
        if version != self._refused:
            self._refused = version
            log.error("{error}; keeping the keys read before", error=str(error))
        return self._entries

    def find(
        self, key: PKey, address: str, now: datetime.datetime | None = None
    ) -> KeyOptions | None:
        """The options of the first line for ``key`` that admits a client at ``address``.

        As sshd does, a line whose ``from=`` or ``expiry-time=`` refuses is
        skipped and later lines for the same key are still considered.
        """
        moment = now or datetime.datetime.now(datetime.UTC)
        for entry in self.entries():
            # A cert-authority line admits certificates its key signed, never that key.
            if entry.key != key or entry.options.cert_authority:
                continue
            if not entry.options.allows_source(address):
                log.info(
                    "{path} line {line}: key refused from {address} by from=",
                    path=self.path,
                    line=entry.line,
                    address=address,
                )
                continue
            if entry.options.expired(moment):
                log.info("{path} line {line}: key expired", path=self.path, line=entry.line)
                continue
            return entry.options
        return None
