"""ssh-rsa keys, signing with rsa-sha2-512 / rsa-sha2-256 (RFC 4253, RFC 8332)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from spindlex_tw.core.wire import Reader, mpint, string
from spindlex_tw.crypto.key_base import PKey, require_private
from spindlex_tw.crypto.key_errors import KeyFormatError

_NAME = "ssh-rsa"
# OpenSSH's limits: smaller moduli are refused, larger ones are a CPU sink.
RSA_MIN_BITS = 1024
RSA_MAX_BITS = 16384
RSA_DEFAULT_BITS = 2048  # SpindleX's default, so its programs get the keys they got

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "rsa-sha2-512": hashes.SHA512,
    "rsa-sha2-256": hashes.SHA256,
    "ssh-rsa": hashes.SHA1,  # legacy; used only when asked for
}


def _check_bits(bits: int) -> None:
    if not RSA_MIN_BITS <= bits <= RSA_MAX_BITS:
        raise KeyFormatError(f"RSA keys must have {RSA_MIN_BITS} to {RSA_MAX_BITS} bits")


class RSAKey(PKey):
    """An ssh-rsa key, from a cryptography RSA private or public key.

    Signs with rsa-sha2-512 or rsa-sha2-256; SHA-1 "ssh-rsa" signatures only
    when ``allow_sha1`` is set or the algorithm is listed explicitly.
    """

    _BLOB_NAMES = (_NAME,)
    _GENERATE_NAME = "rsa"
    _PRIVATE_CLASS = rsa.RSAPrivateKey
    _LEGACY_ALGORITHMS: ClassVar[tuple[str, ...]] = ("ssh-rsa",)

    def __init__(self, key: rsa.RSAPrivateKey | rsa.RSAPublicKey, comment: str = "") -> None:
        if isinstance(key, rsa.RSAPrivateKey):
            self._private: rsa.RSAPrivateKey | None = key
            self._public = key.public_key()
        else:
            self._private = None
            self._public = key
        _check_bits(self._public.key_size)
        self._numbers = self._public.public_numbers()
        self._modulus_length = (self._public.key_size + 7) // 8
        super().__init__(comment)

    def get_name(self) -> str:
        return _NAME

    def get_ssh_type(self) -> str:
        # SpindleX names an RSA key by the signature algorithm it signs with.
        return "rsa-sha2-256"

    def get_bits(self) -> int:
        return self._public.key_size

    def can_sign(self) -> bool:
        return self._private is not None

    def host_key_algorithms(self) -> list[str]:
        return ["rsa-sha2-512", "rsa-sha2-256"]

    def _encode_public_blob(self) -> bytes:
        return string(_NAME) + mpint(self._numbers.e) + mpint(self._numbers.n)

    def _sign_raw(self, data: bytes, algorithm: str) -> bytes:
        private = require_private(self._private)
        return private.sign(data, padding.PKCS1v15(), _HASHES[algorithm]())

    def _verify_raw(self, data: bytes, signature: bytes, algorithm: str) -> None:
        # Some signers drop leading zero octets; OpenSSH pads them back.
        if len(signature) > self._modulus_length:
            raise ValueError("RSA signature longer than the modulus")
        signature = signature.rjust(self._modulus_length, b"\x00")
        self._public.verify(signature, data, padding.PKCS1v15(), _HASHES[algorithm]())

    def _private_object(self) -> PrivateKeyTypes:
        return require_private(self._private)

    def _openssh_private_fields(self) -> bytes:
        private = require_private(self._private).private_numbers()
        # OpenSSH's order; its "iqmp" is q^-1 mod p, as cryptography's.
        values = (self._numbers.n, self._numbers.e, private.d, private.iqmp, private.p, private.q)
        return string(_NAME) + b"".join(mpint(value) for value in values)

    @classmethod
    def _from_public_fields(cls, name: str, reader: Reader) -> PKey:
        e = reader.mpint()
        n = reader.mpint()
        if e <= 0 or n <= 0:
            raise KeyFormatError("RSA key with a negative number")
        _check_bits(n.bit_length())
        return cls(rsa.RSAPublicNumbers(e, n).public_key())

    @classmethod
    def _from_openssh_fields(cls, name: str, reader: Reader) -> PKey:
        n, e, d, iqmp, p, q = (reader.mpint() for _ in range(6))
        if min(n, e, d, iqmp) <= 0 or p < 3 or q < 3:
            raise KeyFormatError("RSA private key with an impossible number")
        _check_bits(n.bit_length())
        # cryptography checks that the numbers form one consistent key.
        numbers = rsa.RSAPrivateNumbers(
            p, q, d, d % (p - 1), d % (q - 1), iqmp, rsa.RSAPublicNumbers(e, n)
        )
        return cls(numbers.private_key())

    @classmethod
    def _from_private_object(cls, private: Any) -> PKey:
        return cls(private)

    @classmethod
    def _generate(cls, bits: int | None, curve: str | None) -> PKey:
        size = RSA_DEFAULT_BITS if bits is None else bits
        if curve is not None or not RSA_MIN_BITS <= size <= RSA_MAX_BITS:
            raise ValueError(f"RSA keys take {RSA_MIN_BITS} to {RSA_MAX_BITS} bits and no curve")
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=size))
