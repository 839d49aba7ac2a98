"""SSH key classes: Ed25519, RSA and ECDSA (NIST P-256/384/521), security keys, certificates.

The public face of the key modules: :class:`PKey` (with loading, saving,
fingerprints, SSH signatures), the three key types, the key errors, and the
SpindleX module-level helpers.  Private keys load from OpenSSH's own format,
PEM "traditional" and PKCS#8, encrypted or not, and save to any of them.
Malformed input raises :class:`KeyFormatError`; a missing or wrong
passphrase its subclass :class:`KeyPassphraseError`; anything about a key
*file* :class:`KeyFileError`, whose message is one line.
"""

from __future__ import annotations

import os

from spindlex_tw.crypto.certificate import SSHCertificate
from spindlex_tw.crypto.ecdsa_key import ECDSAKey
from spindlex_tw.crypto.ed25519_key import Ed25519Key
from spindlex_tw.crypto.key_base import KeyFileFormat, Password, PKey
from spindlex_tw.crypto.key_errors import KeyFileError, KeyFormatError, KeyPassphraseError
from spindlex_tw.crypto.rsa_key import RSAKey
from spindlex_tw.crypto.sk_key import SecurityKey, SKECDSAKey, SKEd25519Key

__all__ = [
    "ECDSAKey",
    "Ed25519Key",
    "KeyFileError",
    "KeyFileFormat",
    "KeyFormatError",
    "KeyPassphraseError",
    "PKey",
    "Password",
    "RSAKey",
    "SKECDSAKey",
    "SKEd25519Key",
    "SSHCertificate",
    "SecurityKey",
    "load_key_from_file",
    "load_public_key_from_string",
]


def load_key_from_file(filename: str | os.PathLike[str], password: Password = None) -> PKey:
    """SpindleX name for :meth:`PKey.from_private_key_file`."""
    return PKey.from_private_key_file(filename, password)


def load_public_key_from_string(key_string: str) -> PKey:
    """SpindleX name for :meth:`PKey.from_public_line`."""
    return PKey.from_public_line(key_string)
