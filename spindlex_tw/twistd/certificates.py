"""OpenSSH certificates, security keys and revoked keys for ``twistd spindlex``.

``--trusted-user-ca-keys FILE`` (sshd's TrustedUserCAKeys): a user
certificate signed by one of the CA keys in FILE logs in when the login name
is among its principals. An ``authorized_keys`` line with ``cert-authority``
does the same for its key, with ``principals="a,b"`` naming the principals it
accepts instead of the login name, and its other options applying too.
Either way the certificate must be valid now, of the user type, with only
critical options this server enforces (``force-command``, which becomes the
command, ``source-address``, checked against the client, ``verify-required``),
and it grants only the ``permit-*`` extensions it lists.

``--revoked-keys FILE`` (sshd's RevokedKeys): an OpenSSH KRL or a list of
public keys; a key listed there, a certificate revoked there, or one whose
key or CA is listed, never logs in. The file is read again when it changes;
one that cannot be read refuses every key until fixed, as sshd does.

``--host-certificate FILE`` (sshd's HostCertificate, repeatable): a host
certificate for one of the ``--host-key`` keys, offered in the key exchange
beside that key, so clients with the CA in ``@cert-authority`` known_hosts
lines connect without a prompt.

Security keys: a login needs the key to have been touched unless its line
says ``no-touch-required`` (and, for a certificate, the certificate also has
the ``no-touch-required`` extension); ``verify-required`` on the line or in
the certificate also needs user verification (a PIN).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, replace
from typing import Any

from twisted.logger import Logger
from twisted.python import usage

from spindlex_tw.crypto.cert_checks import (
    CertificateRefused,
    CertificateRestrictions,
    check_host_certificate,
    check_user_certificate,
)
from spindlex_tw.crypto.certificate import SSHCertificate
from spindlex_tw.crypto.key_errors import describe_os_error
from spindlex_tw.crypto.krl import RevokedKeys, parse_revoked_keys
from spindlex_tw.crypto.pkey import KeyFormatError, PKey, SecurityKey
from spindlex_tw.twistd.authorized_keys import AuthorizedKeysFile, KeyOptions

log = Logger(namespace="spindlex_tw.certificates")

_MAX_FILE_SIZE = 16 << 20

OPTIONS = [
    [
        "trusted-user-ca-keys",
        None,
        None,
        "File of CA public keys, as sshd's TrustedUserCAKeys: a user certificate signed "
        "by one logs in as the server's user when it lists that name as a principal.",
    ],
    [
        "revoked-keys",
        None,
        None,
        "Keys and certificates refused at login, as sshd's RevokedKeys: an OpenSSH KRL "
        "(ssh-keygen -k) or public keys one a line; read again when it changes.",
    ],
]


def opt_host_certificate(options: Any, path: str) -> None:
    """OpenSSH host certificate (ssh-keygen -s CA -h) of one of the --host-key keys,
    offered with it; repeatable."""
    options.setdefault("host-certificate", []).append(path)


class RevokedKeysFile:
    """A RevokedKeys file, read again whenever its size or time changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._version: tuple[int, int, int] | None = None
        self._revoked: RevokedKeys | None = None

    def load(self) -> RevokedKeys:
        """Read the file now; :class:`ValueError`, one line, if it cannot be used."""
        try:
            st = os.stat(self.path)
            with open(self.path, "rb") as handle:
                data = handle.read(_MAX_FILE_SIZE + 1)
        except OSError as exc:
            raise ValueError(f"cannot read {self.path}: {describe_os_error(exc)}") from exc
        if len(data) > _MAX_FILE_SIZE:
            raise ValueError(f"{self.path} is too large")
        try:
            revoked = parse_revoked_keys(data)
        except KeyFormatError as exc:
            raise ValueError(f"{self.path}: {exc}") from exc
        self._version = (st.st_ino, st.st_size, st.st_mtime_ns)
        self._revoked = revoked
        return revoked

    def is_revoked(self, key: PKey) -> bool:
        try:
            st = os.stat(self.path)
            current = (st.st_ino, st.st_size, st.st_mtime_ns)
            revoked = self._revoked if current == self._version else self.load()
        except (OSError, ValueError) as exc:
            log.error("revoked keys: {error}; refusing every key", error=str(exc))
            return True
        assert revoked is not None
        return revoked.is_revoked(key)


@dataclass
class CertificatePolicy:
    """What the options say about certificates and revoked keys; the default trusts no CA."""

    trusted_cas: tuple[PKey, ...] = ()
    revoked: RevokedKeysFile | None = None

    def authorize(
        self,
        authorized: AuthorizedKeysFile | None,
        key: PKey,
        username: str,
        address: str,
        principals: tuple[str, ...] | None = None,
    ) -> KeyOptions | None:
        """The options ``key`` logs ``username`` in with from ``address``; None refuses.

        ``principals``: those a trusted CA's certificate must name one of
        (sshd's AuthorizedPrincipalsFile); by default the login name.
        """
        if self.revoked is not None and self.revoked.is_revoked(key):
            log.info("key {fingerprint} is revoked", fingerprint=key.get_fingerprint())
            return None
        if isinstance(key, SSHCertificate):
            accepted = principals if principals is not None else (username,)
            options = self._certificate(authorized, key, username, address, accepted)
        else:
            options = authorized.find(key, address) if authorized is not None else None
        if options is not None:
            _security_key_requirements(key, options)
        return options

    def _certificate(
        self,
        authorized: AuthorizedKeysFile | None,
        cert: SSHCertificate,
        username: str,
        address: str,
        trusted_principals: tuple[str, ...],
    ) -> KeyOptions | None:
        if cert.signature_key in self.trusted_cas:
            granted = _checked(cert, trusted_principals, address, "trusted user CA")
            if granted is not None:
                return _merged(KeyOptions(), granted, cert)
        for entry in authorized.entries() if authorized is not None else ():
            options = entry.options
            if not options.cert_authority or entry.key != cert.signature_key:
                continue
            where = f"{authorized.path if authorized else ''} line {entry.line}"
            if not options.allows_source(address) or options.expired(_now()):
                log.info("{where}: CA refused by from= or expiry-time=", where=where)
                continue
            accepted = options.principals if options.principals is not None else (username,)
            granted = _checked(cert, accepted, address, where)
            if granted is None:
                continue
            try:
                return _merged(options, granted, cert)
            except CertificateRefused as exc:
                log.info("{where}: certificate refused: {reason}", where=where, reason=str(exc))
        return None


def _checked(
    cert: SSHCertificate, accepted: tuple[str, ...], address: str, where: str
) -> CertificateRestrictions | None:
    try:
        return check_user_certificate(cert, accepted, address)
    except CertificateRefused as exc:
        log.info(
            "certificate {key_id!r} serial {serial} ({where}) refused: {reason}",
            key_id=cert.key_id,
            serial=cert.serial,
            where=where,
            reason=str(exc),
        )
        return None


def _merged(
    options: KeyOptions, granted: CertificateRestrictions, cert: SSHCertificate
) -> KeyOptions:
    """A line's options narrowed by what its certificate grants (sshd's sshauthopt_merge)."""
    command = options.command
    if granted.force_command is not None:
        if command is not None and command != granted.force_command:
            raise CertificateRefused("its force-command differs from the line's command=")
        command = granted.force_command
    return replace(
        options,
        command=command,
        pty=options.pty and granted.pty,
        port_forwarding=options.port_forwarding and granted.port_forwarding,
        agent_forwarding=options.agent_forwarding and granted.agent_forwarding,
        x11_forwarding=options.x11_forwarding and granted.x11_forwarding,
        no_touch_required=granted.no_touch_required
        and (options.no_touch_required or not options.cert_authority),
        verify_required=options.verify_required or granted.verify_required,
    )


def _security_key_requirements(key: PKey, options: KeyOptions) -> None:
    """What the login demands of a security key's signature, from its options."""
    sk = key.security_key if isinstance(key, SSHCertificate) else key
    if isinstance(sk, SecurityKey):
        sk.touch_required = not options.no_touch_required
        sk.verify_required = options.verify_required


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# --- reading the options -------------------------------------------------------------------


def _read_public_keys(path: str, what: str) -> list[PKey]:
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            text = handle.read(_MAX_FILE_SIZE).decode("utf-8", "replace")
    except OSError as exc:
        raise usage.UsageError(f"{what}: cannot read {path}: {describe_os_error(exc)}") from exc
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            keys.append(PKey.from_public_line(line))
        except KeyFormatError as exc:
            raise usage.UsageError(f"{what}: {path} line {number}: {exc}") from exc
    return keys


def resolve(options: Any) -> CertificatePolicy:
    """The policy the options ask for; :class:`usage.UsageError` for a file that cannot serve."""
    policy = CertificatePolicy()
    if options["trusted-user-ca-keys"]:
        cas = _read_public_keys(options["trusted-user-ca-keys"], "--trusted-user-ca-keys")
        if any(isinstance(ca, SSHCertificate) for ca in cas):
            raise usage.UsageError("--trusted-user-ca-keys: a CA key cannot be a certificate")
        policy.trusted_cas = tuple(cas)
    if options["revoked-keys"]:
        policy.revoked = RevokedKeysFile(os.path.expanduser(options["revoked-keys"]))
        try:
            policy.revoked.load()
        except ValueError as exc:
            raise usage.UsageError(f"--revoked-keys: {exc}") from exc
    return policy


def with_host_certificates(options: Any, keys: list[PKey]) -> list[PKey]:
    """``keys`` and each --host-certificate, holding the private half of its key."""
    result = list(keys)
    for path in options.get("host-certificate", []):
        found = _read_public_keys(path, "--host-certificate")
        cert = found[0] if len(found) == 1 else None
        if not isinstance(cert, SSHCertificate):
            raise usage.UsageError(f"--host-certificate: {path} must hold one certificate")
        try:
            check_host_certificate(cert)
        except CertificateRefused as exc:
            raise usage.UsageError(f"--host-certificate: {path}: {exc}") from exc
        key = next((k for k in keys if k == cert.key), None)
        if key is None:
            raise usage.UsageError(f"--host-certificate: {path} certifies none of the host keys")
        result.append(cert.with_private_key(key))
    return result
