"""ecdsa-sha2-nistp256/384/521 keys (RFC 5656)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from spindlex_tw.core.wire import Reader, mpint, string
from spindlex_tw.crypto.key_base import PKey, require_private
from spindlex_tw.crypto.key_errors import KeyFormatError

# SSH curve name -> (cryptography curve, signature hash), RFC 5656 section 6.2.1.
_CURVES: dict[str, tuple[Callable[[], ec.EllipticCurve], Callable[[], hashes.HashAlgorithm]]] = {
    "nistp256": (ec.SECP256R1, hashes.SHA256),
    "nistp384": (ec.SECP384R1, hashes.SHA384),
    "nistp521": (ec.SECP521R1, hashes.SHA512),
}
_CURVE_BY_OPENSSL_NAME = {factory().name: name for name, (factory, _) in _CURVES.items()}
_CURVE_BY_BITS = {factory().key_size: name for name, (factory, _) in _CURVES.items()}
_PREFIX = "ecdsa-sha2-"
_UNCOMPRESSED = b"\x04"


def _read_curve(name: str, reader: Reader) -> ec.EllipticCurve:
    # The curve appears twice, in the key type and as a field; they must agree.
    curve = reader.ascii()
    if name != _PREFIX + curve:
        raise KeyFormatError(f"{name} key names curve {curve[:64]!r}")
    return _CURVES[curve][0]()


def read_point(reader: Reader) -> bytes:
    """A public key's curve point; OpenSSH accepts only uncompressed points, and so do
    we, which also keeps every accepted blob canonical."""
    point = reader.string()
    if point[:1] != _UNCOMPRESSED:
        raise KeyFormatError("ECDSA point is not in uncompressed form")
    return point


def der_signature(signature: bytes) -> bytes:
    """An SSH ECDSA signature blob (``mpint r, mpint s``, RFC 5656 3.1.2) as the DER
    cryptography verifies."""
    reader = Reader(signature)
    r = reader.mpint()
    s = reader.mpint()
    reader.done()
    if r <= 0 or s <= 0:
        raise ValueError("ECDSA signature with a non-positive number")
    return encode_dss_signature(r, s)


class ECDSAKey(PKey):
    """An ECDSA key on NIST P-256, P-384 or P-521, from a cryptography EC key."""

    _BLOB_NAMES = tuple(_PREFIX + curve for curve in _CURVES)
    _GENERATE_NAME = "ecdsa"
    _PRIVATE_CLASS = ec.EllipticCurvePrivateKey

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey,
        comment: str = "",
    ) -> None:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            self._private: ec.EllipticCurvePrivateKey | None = key
            self._public = key.public_key()
        else:
            self._private = None
            self._public = key
        curve = _CURVE_BY_OPENSSL_NAME.get(self._public.curve.name)
        if curve is None:
            raise KeyFormatError(f"unsupported elliptic curve {self._public.curve.name}")
        self.curve_name = curve
        self._hash = _CURVES[curve][1]
        self._point = self._public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        super().__init__(comment)

    def get_name(self) -> str:
        return _PREFIX + self.curve_name

    def get_bits(self) -> int:
        return self._public.curve.key_size

    def can_sign(self) -> bool:
        return self._private is not None

    def host_key_algorithms(self) -> list[str]:
        return [self.get_name()]

    def _encode_public_blob(self) -> bytes:
        return string(self.get_name()) + string(self.curve_name) + string(self._point)

    def _sign_raw(self, data: bytes, algorithm: str) -> bytes:
        der = require_private(self._private).sign(data, ec.ECDSA(self._hash()))
        r, s = decode_dss_signature(der)
        return mpint(r) + mpint(s)

    def _verify_raw(self, data: bytes, signature: bytes, algorithm: str) -> None:
        self._public.verify(der_signature(signature), data, ec.ECDSA(self._hash()))

    def _private_object(self) -> PrivateKeyTypes:
        return require_private(self._private)

    def _openssh_private_fields(self) -> bytes:
        secret = require_private(self._private).private_numbers().private_value
        return (
            string(self.get_name()) + string(self.curve_name) + string(self._point) + mpint(secret)
        )

    @classmethod
    def _from_public_fields(cls, name: str, reader: Reader) -> PKey:
        curve = _read_curve(name, reader)
        point = read_point(reader)
        return cls(ec.EllipticCurvePublicKey.from_encoded_point(curve, point))

    @classmethod
    def _from_openssh_fields(cls, name: str, reader: Reader) -> PKey:
        curve = _read_curve(name, reader)
        point = read_point(reader)
        secret = reader.mpint()
        key = cls(ec.derive_private_key(secret, curve))
        if key._point != point:
            raise KeyFormatError("ECDSA private key does not match its public key")
        return key

    @classmethod
    def _from_private_object(cls, private: Any) -> PKey:
        return cls(private)

    @classmethod
    def _generate(cls, bits: int | None, curve: str | None) -> PKey:
        if curve is None:
            chosen = _CURVE_BY_BITS.get(256 if bits is None else bits)
        else:
            chosen = curve.removeprefix(_PREFIX)
            if bits is not None and _CURVE_BY_BITS.get(bits) != chosen:
                chosen = None
        if chosen is None or chosen not in _CURVES:
            raise ValueError("ECDSA keys use nistp256, nistp384 or nistp521 (256/384/521 bits)")
        return cls(ec.generate_private_key(_CURVES[chosen][0]()))
