"""ssh-ed25519 keys (RFC 8709)."""

from __future__ import annotations

from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from spindlex_tw.core.wire import Reader, string
from spindlex_tw.crypto import pem_format
from spindlex_tw.crypto.key_base import PKey, require_private
from spindlex_tw.crypto.key_errors import KeyFormatError

_NAME = "ssh-ed25519"
_PUBLIC_LENGTH = 32
_SIGNATURE_LENGTH = 64


class Ed25519Key(PKey):
    """An ssh-ed25519 key, from a cryptography Ed25519 private or public key."""

    _BLOB_NAMES = (_NAME,)
    _GENERATE_NAME = "ed25519"
    _PRIVATE_CLASS = ed25519.Ed25519PrivateKey
    # Ed25519 has no "traditional" PEM form; OpenSSL writes PKCS#8 for it too.
    _PEM_FORMATS: ClassVar[dict[str, pem_format.PemFormat]] = {"pem": "pkcs8", "pkcs8": "pkcs8"}

    def __init__(
        self, key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey, comment: str = ""
    ) -> None:
        if isinstance(key, ed25519.Ed25519PrivateKey):
            self._private: ed25519.Ed25519PrivateKey | None = key
            self._public = key.public_key()
        else:
            self._private = None
            self._public = key
        self._raw_public = self._public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        super().__init__(comment)

    def get_name(self) -> str:
        return _NAME

    def get_bits(self) -> int:
        return 256

    def can_sign(self) -> bool:
        return self._private is not None

    def host_key_algorithms(self) -> list[str]:
        return [_NAME]

    def _encode_public_blob(self) -> bytes:
        return string(_NAME) + string(self._raw_public)

    def _sign_raw(self, data: bytes, algorithm: str) -> bytes:
        return require_private(self._private).sign(data)

    def _verify_raw(self, data: bytes, signature: bytes, algorithm: str) -> None:
        if len(signature) != _SIGNATURE_LENGTH:
            raise ValueError("an Ed25519 signature is 64 bytes")
        self._public.verify(signature, data)

    def _private_object(self) -> PrivateKeyTypes:
        return require_private(self._private)

    def _openssh_private_fields(self) -> bytes:
        seed = require_private(self._private).private_bytes_raw()
        return string(_NAME) + string(self._raw_public) + string(seed + self._raw_public)

    @classmethod
    def _from_public_fields(cls, name: str, reader: Reader) -> PKey:
        raw = reader.string()
        if len(raw) != _PUBLIC_LENGTH:
            raise KeyFormatError("an Ed25519 public key is 32 bytes")
        return cls(ed25519.Ed25519PublicKey.from_public_bytes(raw))

    @classmethod
    def _from_openssh_fields(cls, name: str, reader: Reader) -> PKey:
        public = reader.string()
        secret = reader.string()
        # OpenSSH stores the 32-byte seed followed by the public key again.
        if (
            len(public) != _PUBLIC_LENGTH
            or len(secret) != 2 * _PUBLIC_LENGTH
            or secret[_PUBLIC_LENGTH:] != public
        ):
            raise KeyFormatError("inconsistent Ed25519 private key")
        key = cls(ed25519.Ed25519PrivateKey.from_private_bytes(secret[:_PUBLIC_LENGTH]))
        if key._raw_public != public:
            raise KeyFormatError("Ed25519 private key does not match its public key")
        return key

    @classmethod
    def _from_private_object(cls, private: Any) -> PKey:
        return cls(private)

    @classmethod
    def _generate(cls, bits: int | None, curve: str | None) -> PKey:
        if bits not in (None, 256) or curve is not None:
            raise ValueError("Ed25519 keys have a fixed size and curve")
        return cls(ed25519.Ed25519PrivateKey.generate())
