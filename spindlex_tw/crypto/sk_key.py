"""Security-key (FIDO/U2F) user keys: sk-ssh-ed25519 and sk-ecdsa-sha2-nistp256 (@openssh.com).

OpenSSH's PROTOCOL.u2f. The private half never leaves the device, so these
keys only verify. Their public blob adds the FIDO *application* (usually
``ssh:``) to the plain key's fields, and a signature is made by the device
over::

    byte[32]  SHA256(application)
    byte      flags      (0x01: the user touched the key, 0x04: the user verified, e.g. a PIN)
    uint32    counter
    byte[32]  SHA256(message)

then sent as ``string name, string signature, byte flags, uint32 counter``.
A valid signature proves possession; whether the flags are enough is policy
(OpenSSH requires a touch unless ``no-touch-required``, and a verified user
with ``verify-required``), so a verified key carries its
:class:`SecurityKeySignature` and the two requirements the policy may change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.wire import Reader, byte, string, uint32
from spindlex_tw.crypto.ecdsa_key import der_signature, read_point
from spindlex_tw.crypto.key_base import PKey
from spindlex_tw.crypto.key_errors import KeyFormatError

SK_ED25519 = "sk-ssh-ed25519@openssh.com"
SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
USER_PRESENT = 0x01
USER_VERIFIED = 0x04
_CURVE = "nistp256"
_ED25519_LENGTH = 32
_NO_PRIVATE = "a security key's private half stays on the device"


@dataclass(frozen=True)
class SecurityKeySignature:
    """What the device reported with one signature."""

    flags: int
    counter: int

    @property
    def user_present(self) -> bool:
        return bool(self.flags & USER_PRESENT)

    @property
    def user_verified(self) -> bool:
        return bool(self.flags & USER_VERIFIED)


def signed_data(application: str, flags: int, counter: int, message: bytes) -> bytes:
    """The bytes the device signs for ``message`` (PROTOCOL.u2f, "SSH U2F signatures")."""
    return (
        hashlib.sha256(application.encode("utf-8")).digest()
        + byte(flags)
        + uint32(counter)
        + hashlib.sha256(message).digest()
    )


class SecurityKey(PKey):
    """A security-key public key; verifies signatures, never makes them.

    ``signature`` is set on the key object a server's ``check_auth_publickey``
    receives for a signed request; ``touch_required`` (default True) and
    ``verify_required`` (default False) are what the login demands of it, and
    a hook may change them for the key it is deciding (as the authorized_keys
    options ``no-touch-required`` and ``verify-required`` do).
    """

    _NAME: ClassVar[str] = ""

    def __init__(self, application: str, comment: str = "") -> None:
        self.application = application
        self.signature: SecurityKeySignature | None = None
        self.touch_required = True
        self.verify_required = False
        super().__init__(comment)

    def get_name(self) -> str:
        return self._NAME

    def can_sign(self) -> bool:
        return False

    def host_key_algorithms(self) -> list[str]:
        return [self._NAME]

    def refusal(self) -> str | None:
        """Why :attr:`signature` does not meet the requirements, or None when it does."""
        if self.signature is None:
            return "no security-key signature"
        if self.touch_required and not self.signature.user_present:
            return "the security key was not touched (user presence flag unset)"
        if self.verify_required and not self.signature.user_verified:
            return "the security key did not verify the user (user verification flag unset)"
        return None

    def verify_details(
        self, data: bytes, signature_blob: bytes, algorithms: Any = None
    ) -> SecurityKeySignature | None:
        """The device's flags and counter if ``signature_blob`` signs ``data``; else None."""
        try:
            reader = Reader(signature_blob)
            algorithm = reader.ascii()
            signature = reader.string()
            flags = reader.byte()
            counter = reader.uint32()
            reader.done()
        except DecodeError:
            return None
        if algorithm != self._NAME or (algorithms is not None and algorithm not in algorithms):
            return None
        message = signed_data(self.application, flags, counter, bytes(data))
        try:
            self._verify_raw(message, signature, algorithm)
        except (InvalidSignature, DecodeError, ValueError, OverflowError):
            return None
        return SecurityKeySignature(flags, counter)

    def verify_ssh(self, data: bytes, signature_blob: bytes, algorithms: Any = None) -> bool:
        """True if the signature is valid, whatever its flags say (see :meth:`refusal`)."""
        if isinstance(algorithms, str):
            algorithms = (algorithms,)
        return self.verify_details(data, signature_blob, algorithms) is not None

    def sign_ssh(self, data: bytes, algorithm: str | None = None) -> bytes:
        raise ValueError(_NO_PRIVATE)

    def _sign_raw(self, data: bytes, algorithm: str) -> bytes:
        raise ValueError(_NO_PRIVATE)

    def _private_object(self) -> PrivateKeyTypes:
        raise ValueError(_NO_PRIVATE)

    def _openssh_private_fields(self) -> bytes:
        raise ValueError(_NO_PRIVATE)

    @classmethod
    def _from_openssh_fields(cls, name: str, reader: Reader) -> PKey:
        raise KeyFormatError("security-key private key files (key handles) are not supported")

    @classmethod
    def _from_private_object(cls, private: Any) -> PKey:
        raise KeyFormatError(_NO_PRIVATE)

    @classmethod
    def _generate(cls, bits: int | None, curve: str | None) -> PKey:
        raise ValueError("security keys are made on the device (ssh-keygen -t ed25519-sk)")


class SKEd25519Key(SecurityKey):
    """sk-ssh-ed25519@openssh.com: an Ed25519 public key and its FIDO application."""

    _NAME = SK_ED25519
    _BLOB_NAMES = (SK_ED25519,)

    def __init__(
        self, public: ed25519.Ed25519PublicKey, application: str, comment: str = ""
    ) -> None:
        self._public = public
        self._raw_public = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        super().__init__(application, comment)

    def get_bits(self) -> int:
        return 256

    def _encode_public_blob(self) -> bytes:
        return string(SK_ED25519) + string(self._raw_public) + string(self.application)

    def _verify_raw(self, data: bytes, signature: bytes, algorithm: str) -> None:
        if len(signature) != 64:
            raise ValueError("an Ed25519 signature is 64 bytes")
        self._public.verify(signature, data)

    @classmethod
    def _from_public_fields(cls, name: str, reader: Reader) -> PKey:
        raw = reader.string()
        if len(raw) != _ED25519_LENGTH:
            raise KeyFormatError("an Ed25519 public key is 32 bytes")
        return cls(ed25519.Ed25519PublicKey.from_public_bytes(raw), reader.text())


class SKECDSAKey(SecurityKey):
    """sk-ecdsa-sha2-nistp256@openssh.com: a P-256 public key and its FIDO application."""

    _NAME = SK_ECDSA
    _BLOB_NAMES = (SK_ECDSA,)

    def __init__(
        self, public: ec.EllipticCurvePublicKey, application: str, comment: str = ""
    ) -> None:
        if not isinstance(public.curve, ec.SECP256R1):
            raise KeyFormatError("sk-ecdsa keys are on NIST P-256")
        self._public = public
        self._point = public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        super().__init__(application, comment)

    def get_bits(self) -> int:
        return 256

    def _encode_public_blob(self) -> bytes:
        return string(SK_ECDSA) + string(_CURVE) + string(self._point) + string(self.application)

    def _verify_raw(self, data: bytes, signature: bytes, algorithm: str) -> None:
        self._public.verify(der_signature(signature), data, ec.ECDSA(hashes.SHA256()))

    @classmethod
    def _from_public_fields(cls, name: str, reader: Reader) -> PKey:
        if reader.ascii() != _CURVE:
            raise KeyFormatError("sk-ecdsa keys are on NIST P-256")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), read_point(reader))
        return cls(public, reader.text())
