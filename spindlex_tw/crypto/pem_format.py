"""Finding the armored block in key data, and the PEM / PKCS#8 formats.

PEM "traditional" (``BEGIN RSA PRIVATE KEY``, ``BEGIN EC PRIVATE KEY``, with
OpenSSL's ``Proc-Type``/``DEK-Info`` encryption) and PKCS#8 (``BEGIN PRIVATE
KEY``, ``BEGIN ENCRYPTED PRIVATE KEY``) are parsed and written by
``cryptography``; this module only picks the block, decides whether it is
encrypted, and turns cryptography's errors into ours.
"""

from __future__ import annotations

import re
from typing import Literal

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from spindlex_tw.crypto.key_errors import KeyFormatError, KeyPassphraseError

PemFormat = Literal["pem", "pkcs8"]

_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----")
_PKCS8_ENCRYPTED = "ENCRYPTED PRIVATE KEY"
_TRADITIONAL_ENCRYPTED = re.compile(rb"^Proc-Type:\s*4,\s*ENCRYPTED", re.MULTILINE)

_WRITE_FORMATS: dict[str, serialization.PrivateFormat] = {
    "pem": serialization.PrivateFormat.TraditionalOpenSSL,
    "pkcs8": serialization.PrivateFormat.PKCS8,
}


def find_block(data: bytes) -> tuple[str, bytes]:
    """Return the label and the text of the first armored block in ``data``.

    Text before the block (as some tools write) is skipped; a block without
    its END line is a :class:`KeyFormatError`.
    """
    begin = _BEGIN.search(data)
    if begin is None:
        raise KeyFormatError("not a private key")
    label = begin.group(1).decode("ascii")
    end_line = b"-----END " + begin.group(1) + b"-----"
    end = data.find(end_line, begin.end())
    if end < 0:
        raise KeyFormatError(f"truncated {label} block (no END line)")
    return label, data[begin.start() : end + len(end_line)] + b"\n"


def is_private_label(label: str) -> bool:
    return label.endswith("PRIVATE KEY")


def _is_encrypted(label: str, block: bytes) -> bool:
    return label == _PKCS8_ENCRYPTED or _TRADITIONAL_ENCRYPTED.search(block) is not None


def load(label: str, block: bytes, password: bytes | None) -> PrivateKeyTypes:
    """Parse a PEM or PKCS#8 private key block with ``cryptography``.

    A passphrase given for an unencrypted block is ignored (as ssh-keygen
    does); an encrypted block with a missing or wrong one raises
    :class:`KeyPassphraseError`.
    """
    encrypted = _is_encrypted(label, block)
    if encrypted and not password:
        raise KeyPassphraseError("passphrase required")
    try:
        return serialization.load_pem_private_key(block, password if encrypted else None)
    except UnsupportedAlgorithm as exc:
        raise KeyFormatError(f"unsupported key type or cipher in {label} block") from exc
    except (ValueError, TypeError, InternalError) as exc:
        # InternalError: OpenSSL rejects some well-formed but impossible keys
        # (e.g. an Ed448 OID with a 32-byte key) without a specific error.
        # Once decrypted, a wrong passphrase and a damaged file look alike
        # (bad padding or garbage ASN.1); OpenSSL and ssh-keygen report the
        # passphrase too.
        if encrypted:
            raise KeyPassphraseError("wrong passphrase") from exc
        raise KeyFormatError(f"malformed {label} block") from exc


def dump(key: PrivateKeyTypes, fmt: PemFormat, password: bytes | None) -> bytes:
    """Serialise ``key`` as PEM traditional ("pem") or PKCS#8 ("pkcs8").

    With a passphrase, cryptography's best available encryption is used
    (AES-256-CBC); OpenSSL, and therefore ssh-keygen, reads both forms.
    """
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, _WRITE_FORMATS[fmt], encryption)
