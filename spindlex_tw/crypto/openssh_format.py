"""OpenSSH's own private key container, "openssh-key-v1" (OpenSSH's PROTOCOL.key).

Layout of the base64 body between the armor lines::

    "openssh-key-v1\\0"
    string ciphername       "none", "aes256-ctr", "aes256-gcm@openssh.com", ...
    string kdfname          "none" or "bcrypt"
    string kdfoptions       bcrypt: string salt, uint32 rounds
    uint32 number of keys   (only 1 is supported, as by ssh-keygen)
    string public key blob
    string private section  (encrypted unless ciphername is "none")
    [AEAD tag]              gcm ciphers only, outside the string

The private section holds two equal random "check" integers, the key type
and its private fields, the comment, and padding bytes 1, 2, 3, ... up to
the cipher block size.  This module handles everything but the key fields,
which belong to the key classes.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.wire import Reader, string, uint32
from spindlex_tw.crypto.key_errors import KeyFormatError, KeyPassphraseError

LABEL = "OPENSSH PRIVATE KEY"
MAGIC = b"openssh-key-v1\x00"
# What ssh-keygen writes when given a passphrase.
WRITE_CIPHER = "aes256-ctr"
WRITE_KDF_ROUNDS = 16
SALT_LENGTH = 16
# Each bcrypt round costs about 8 ms here, so this is half a minute: far
# beyond what ssh-keygen users pick (-a 16 to a few hundred), yet a damaged
# or hostile rounds field cannot stall the process for hours.
MAX_KDF_ROUNDS = 4096
_LINE_LENGTH = 70  # ssh-keygen's armor line width
_PADDING = bytes(range(1, 256))
_UNENCRYPTED_BLOCK_SIZE = 8

# (key, iv, ciphertext, tag) -> plaintext
_Decrypt = Callable[[bytes, bytes, bytes, bytes], bytes]


def _no_cipher(key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    return data


def _aes_ctr(key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _aes_cbc(key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    # No PKCS#7 unpadding: the section carries its own padding bytes.
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _aes_gcm(key: bytes, iv: bytes, data: bytes, tag: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(iv, data + tag, None)
    except InvalidTag as exc:
        raise KeyPassphraseError("wrong passphrase") from exc


@dataclass(frozen=True)
class _CipherSpec:
    key_length: int
    iv_length: int
    block_size: int
    tag_length: int
    decrypt: _Decrypt


_CIPHERS: dict[str, _CipherSpec] = {
    "none": _CipherSpec(0, 0, _UNENCRYPTED_BLOCK_SIZE, 0, _no_cipher),
    "aes128-ctr": _CipherSpec(16, 16, 16, 0, _aes_ctr),
    "aes192-ctr": _CipherSpec(24, 16, 16, 0, _aes_ctr),
    "aes256-ctr": _CipherSpec(32, 16, 16, 0, _aes_ctr),
    "aes128-cbc": _CipherSpec(16, 16, 16, 0, _aes_cbc),
    "aes192-cbc": _CipherSpec(24, 16, 16, 0, _aes_cbc),
    "aes256-cbc": _CipherSpec(32, 16, 16, 0, _aes_cbc),
    "aes128-gcm@openssh.com": _CipherSpec(16, 12, 16, 16, _aes_gcm),
    "aes256-gcm@openssh.com": _CipherSpec(32, 12, 16, 16, _aes_gcm),
}

_ARMOR = re.compile(
    rb"-----BEGIN OPENSSH PRIVATE KEY-----\s*(?P<body>[A-Za-z0-9+/=\s]*?)"
    rb"\s*-----END OPENSSH PRIVATE KEY-----"
)


@dataclass(frozen=True)
class PrivateSection:
    """A decoded container: the public blob and the decrypted key fields.

    ``fields`` starts at the key type string, just after the check integers;
    the key class reads its fields from it and then calls
    :func:`read_trailer` for the comment and padding.
    """

    public_blob: bytes
    fields: Reader


def _unarmor(block: bytes) -> bytes:
    match = _ARMOR.search(block)
    if match is None:
        raise KeyFormatError("malformed OpenSSH private key armor")
    body = re.sub(rb"\s+", b"", match.group("body"))
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise KeyFormatError("malformed base64 in OpenSSH private key") from exc


def _derive(
    spec: _CipherSpec, kdf_name: str, kdf_options: bytes, password: bytes | None
) -> tuple[bytes, bytes]:
    if kdf_name != "bcrypt":
        raise KeyFormatError(f"unsupported key derivation {kdf_name!r}")
    if not password:
        raise KeyPassphraseError("passphrase required")
    options = Reader(kdf_options)
    salt = options.string()
    rounds = options.uint32()
    options.done()
    if not salt or rounds < 1:
        raise KeyFormatError("invalid bcrypt parameters")
    if rounds > MAX_KDF_ROUNDS:
        raise KeyFormatError(f"bcrypt rounds {rounds} exceed the limit of {MAX_KDF_ROUNDS}")
    length = spec.key_length + spec.iv_length
    derived = bcrypt.kdf(password, salt, length, rounds, ignore_few_rounds=True)
    return derived[: spec.key_length], derived[spec.key_length :]


def decode(block: bytes, password: bytes | None) -> PrivateSection:
    """Decode (and decrypt) an armored OpenSSH private key.

    A passphrase given for an unencrypted key is ignored, as ssh-keygen does.
    """
    raw = _unarmor(block)
    if not raw.startswith(MAGIC):
        raise KeyFormatError("not an openssh-key-v1 private key")
    try:
        reader = Reader(raw, len(MAGIC))
        cipher_name = reader.ascii()
        kdf_name = reader.ascii()
        kdf_options = reader.string()
        if reader.uint32() != 1:
            raise KeyFormatError("only files holding exactly one key are supported")
        public_blob = reader.string()
        encrypted = reader.string()
        tag = reader.rest()
        spec = _CIPHERS.get(cipher_name)
        if spec is None:
            raise KeyFormatError(f"unsupported cipher {cipher_name!r}")
        if len(tag) != spec.tag_length:
            raise KeyFormatError("unexpected trailing data")
        if len(encrypted) % spec.block_size:
            raise KeyFormatError("private section is not a whole number of blocks")
        if cipher_name == "none":
            if kdf_name != "none" or kdf_options:
                raise KeyFormatError("unencrypted key names a key derivation")
            key, iv = b"", b""
        else:
            key, iv = _derive(spec, kdf_name, kdf_options, password)
        plain = Reader(spec.decrypt(key, iv, encrypted, tag))
        if plain.uint32() != plain.uint32():
            if cipher_name == "none":
                raise KeyFormatError("corrupt private key (check bytes differ)")
            raise KeyPassphraseError("wrong passphrase")
    except DecodeError as exc:
        raise KeyFormatError("truncated OpenSSH private key") from exc
    return PrivateSection(public_blob, plain)


def read_trailer(fields: Reader) -> str:
    """Read the comment and check the padding that end a private section."""
    comment = fields.string().decode("utf-8", "replace")
    padding = fields.rest()
    if padding != _PADDING[: len(padding)]:
        raise KeyFormatError("bad padding in private section")
    return comment


def encode(
    public_blob: bytes, private_fields: bytes, comment: str, password: bytes | None
) -> bytes:
    """Build an armored OpenSSH private key as ``ssh-keygen`` writes it.

    ``private_fields`` starts with the key type string.  With a passphrase
    the section is encrypted with aes256-ctr under a bcrypt-derived key
    (16 rounds, 16-byte salt); without one it is stored in the clear.
    """
    cipher_name = WRITE_CIPHER if password else "none"
    spec = _CIPHERS[cipher_name]
    check = os.urandom(4)
    section = check + check + private_fields + string(comment.encode("utf-8"))
    section += _PADDING[: -len(section) % spec.block_size]
    if password:
        salt = os.urandom(SALT_LENGTH)
        kdf_name = "bcrypt"
        kdf_options = string(salt) + uint32(WRITE_KDF_ROUNDS)
        derived = bcrypt.kdf(
            password,
            salt,
            spec.key_length + spec.iv_length,
            WRITE_KDF_ROUNDS,
            ignore_few_rounds=True,
        )
        key, iv = derived[: spec.key_length], derived[spec.key_length :]
        encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
        section = encryptor.update(section) + encryptor.finalize()
    else:
        kdf_name = "none"
        kdf_options = b""
    raw = (
        MAGIC
        + string(cipher_name)
        + string(kdf_name)
        + string(kdf_options)
        + uint32(1)
        + string(public_blob)
        + string(section)
    )
    text = base64.b64encode(raw).decode("ascii")
    lines = [text[i : i + _LINE_LENGTH] for i in range(0, len(text), _LINE_LENGTH)]
    return (
        "\n".join([f"-----BEGIN {LABEL}-----", *lines, f"-----END {LABEL}-----"]) + "\n"
    ).encode("ascii")
