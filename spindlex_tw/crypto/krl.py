"""Revoked keys: OpenSSH's binary KRL (PROTOCOL.krl, as ``ssh-keygen -k`` writes it) or a key list.

:func:`parse_revoked_keys` reads either form, like sshd's RevokedKeys: a file
starting with the KRL magic is a KRL, anything else one public key per line
(blank lines and ``#`` comments skipped). :meth:`RevokedKeys.is_revoked`
answers as ssh_krl_check_key does: a certificate is revoked by its serial or
key id under its CA, and any key is revoked when it, or for a certificate
its key or its CA, is listed (as a key, or by its SHA-1 or SHA-256 hash).

A KRL this module cannot fully understand (a signature section, an unknown
section, a critical extension) is refused as a whole rather than read in
part: a revocation silently skipped would let a revoked key in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from spindlex_tw.core.wire import Reader
from spindlex_tw.crypto.certificate import SSHCertificate
from spindlex_tw.crypto.key_base import PKey, format_errors
from spindlex_tw.crypto.key_errors import KeyFormatError

KRL_MAGIC = b"SSHKRL\n\0"
_FORMAT_VERSION = 1

_CERTIFICATES = 1
_EXPLICIT_KEY = 2
_FINGERPRINT_SHA1 = 3
_SIGNATURE = 4
_FINGERPRINT_SHA256 = 5
_EXTENSION = 255

_SERIAL_LIST = 0x20
_SERIAL_RANGE = 0x21
_SERIAL_BITMAP = 0x22
_KEY_ID = 0x23
_CERT_EXTENSION = 0x39


@dataclass
class _CertificateRevocations:
    """One certificate section: revocations under one CA (or under any, ``ca`` None)."""

    ca: bytes | None
    ranges: list[tuple[int, int]] = field(default_factory=list)
    bitmaps: list[tuple[int, int]] = field(default_factory=list)  # (offset, bits)
    key_ids: set[str] = field(default_factory=set)

    def revokes(self, cert: SSHCertificate) -> bool:
        if self.ca is not None and self.ca != cert.signature_key.get_public_key_bytes():
            return False
        serial = cert.serial
        if any(low <= serial <= high for low, high in self.ranges):
            return True
        for offset, bits in self.bitmaps:
            if serial >= offset and (bits >> (serial - offset)) & 1:
                return True
        return cert.key_id in self.key_ids


@dataclass
class RevokedKeys:
    """A set of revocations; empty revokes nothing."""

    blobs: set[bytes] = field(default_factory=set)
    sha1: set[bytes] = field(default_factory=set)
    sha256: set[bytes] = field(default_factory=set)
    certificates: list[_CertificateRevocations] = field(default_factory=list)

    def _key_listed(self, key: PKey) -> bool:
        blob = key.get_public_key_bytes()
        return (
            blob in self.blobs
            or hashlib.sha256(blob).digest() in self.sha256
            or hashlib.sha1(blob, usedforsecurity=False).digest() in self.sha1
        )

    def is_revoked(self, key: PKey) -> bool:
        if isinstance(key, SSHCertificate):
            return (
                any(section.revokes(key) for section in self.certificates)
                or self._key_listed(key.key)
                or self._key_listed(key.signature_key)
            )
        return self._key_listed(key)


def parse_revoked_keys(data: bytes) -> RevokedKeys:
    """A KRL or a list of public keys; :class:`KeyFormatError` if it cannot be read whole."""
    if data.startswith(KRL_MAGIC):
        with format_errors("KRL"):
            return _parse_krl(data)
    revoked = RevokedKeys()
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            key = PKey.from_public_line(text)
        except KeyFormatError as exc:
            raise KeyFormatError(f"line {number}: {exc}") from exc
        target = key.key if isinstance(key, SSHCertificate) else key
        revoked.blobs.add(target.get_public_key_bytes())
    return revoked


def _parse_krl(data: bytes) -> RevokedKeys:
    reader = Reader(data, len(KRL_MAGIC))
    if reader.uint32() != _FORMAT_VERSION:
        raise KeyFormatError("unsupported KRL format version")
    reader.uint64()  # krl_version
    reader.uint64()  # generated_date
    reader.uint64()  # flags: none defined
    reader.string()  # reserved
    reader.string()  # comment
    revoked = RevokedKeys()
    while reader.remaining():
        kind = reader.byte()
        if kind == _SIGNATURE:
            raise KeyFormatError("signed KRLs are not supported (OpenSSH 9.4 refuses them too)")
        section = Reader(reader.string())
        if kind == _CERTIFICATES:
            revoked.certificates.append(_certificate_section(section))
        elif kind == _EXPLICIT_KEY:
            while section.remaining():
                key = PKey.from_public_blob(section.string())
                revoked.blobs.add(key.get_public_key_bytes())
        elif kind in (_FINGERPRINT_SHA1, _FINGERPRINT_SHA256):
            target = revoked.sha1 if kind == _FINGERPRINT_SHA1 else revoked.sha256
            while section.remaining():
                target.add(section.string())
        elif kind == _EXTENSION:
            _extension(section)
        else:
            raise KeyFormatError(f"unknown KRL section {kind}")
    return revoked


def _certificate_section(reader: Reader) -> _CertificateRevocations:
    ca_blob = reader.string()
    if ca_blob:
        PKey.from_public_blob(ca_blob)  # must be a key we can parse
    reader.string()  # reserved
    section = _CertificateRevocations(ca_blob or None)
    while reader.remaining():
        kind = reader.byte()
        part = Reader(reader.string())
        if kind == _SERIAL_LIST:
            while part.remaining():
                serial = part.uint64()
                section.ranges.append((serial, serial))
        elif kind == _SERIAL_RANGE:
            low, high = part.uint64(), part.uint64()
            part.done()
            if low > high:
                raise KeyFormatError("KRL serial range ends before it starts")
            section.ranges.append((low, high))
        elif kind == _SERIAL_BITMAP:
            offset = part.uint64()
            bits = part.mpint()
            part.done()
            if bits < 0:
                raise KeyFormatError("negative KRL serial bitmap")
            section.bitmaps.append((offset, bits))
        elif kind == _KEY_ID:
            while part.remaining():
                section.key_ids.add(part.text())
        elif kind == _CERT_EXTENSION:
            _extension(part)
        else:
            raise KeyFormatError(f"unknown KRL certificate section {kind}")
    return section


def _extension(reader: Reader) -> None:
    name = reader.text()
    critical = reader.boolean()
    reader.string()
    reader.done()
    if critical:
        raise KeyFormatError(f"unsupported critical KRL extension {name[:64]!r}")
