"""OpenSSH certificates (PROTOCOL.certkeys): the format, and the CA's signature over it.

A certificate is a public key with what a CA says about it::

    string    "ssh-ed25519-cert-v01@openssh.com" (or the rsa, ecdsa, sk forms)
    string    nonce
    ...       the key's own public fields (as in its plain blob, without the type)
    uint64    serial
    uint32    type                 1 user, 2 host
    string    key id
    string    valid principals     a sequence of strings
    uint64    valid after          seconds since the epoch
    uint64    valid before
    string    critical options     (string name, string data) pairs
    string    extensions           (string name, string data) pairs
    string    reserved
    string    signature key        the CA's public key, never itself a certificate
    string    signature            by the CA over everything before it

As OpenSSH, parsing verifies the CA's signature, with an algorithm of
:data:`CA_SIGNATURE_ALGORITHMS` (OpenSSH 9.2's CASignatureAlgorithms: no SHA-1
"ssh-rsa"): a :class:`SSHCertificate` object is always signed by its
:attr:`~SSHCertificate.signature_key`. Whether that CA is trusted, and whether
the certificate is valid now, for this user, from this address, is for
:mod:`spindlex_tw.crypto.cert_checks`.

A certificate is a :class:`PKey`: it signs and verifies with its key (a
``-cert-v01`` algorithm name maps to the key's own signature algorithm), and
two certificates are equal when their blobs are.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from spindlex_tw.core.wire import Reader, string, uint32, uint64
from spindlex_tw.crypto.key_base import PKey, format_errors, key_class_for
from spindlex_tw.crypto.key_errors import KeyFormatError
from spindlex_tw.crypto.sk_key import SK_ECDSA, SK_ED25519, SecurityKey, SecurityKeySignature

CERT_SUFFIX = "-cert-v01@openssh.com"
USER_CERT = 1
HOST_CERT = 2

CA_SIGNATURE_ALGORITHMS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    SK_ED25519,
    SK_ECDSA,
    "rsa-sha2-512",
    "rsa-sha2-256",
)

_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    SK_ED25519,
    SK_ECDSA,
)


def cert_name(plain: str) -> str:
    """``ssh-ed25519`` -> ``ssh-ed25519-cert-v01@openssh.com`` (keys and signature algorithms)."""
    return plain.removesuffix("@openssh.com") + CERT_SUFFIX


def plain_name(name: str) -> str:
    """The inverse of :func:`cert_name`; a name that is not a certificate's is returned as is."""
    if not name.endswith(CERT_SUFFIX):
        return name
    base = name.removesuffix(CERT_SUFFIX)
    return base + "@openssh.com" if base.startswith("sk-") else base


def is_certificate_name(name: str) -> bool:
    return name.endswith(CERT_SUFFIX)


def _pairs(data: bytes, what: str) -> dict[str, bytes]:
    """Critical options or extensions: names must be unique (ssh-keygen also sorts them)."""
    reader = Reader(data)
    result: dict[str, bytes] = {}
    while reader.remaining():
        name = reader.text()
        if name in result:
            raise KeyFormatError(f"certificate {what} {name[:64]!r} appears twice")
        result[name] = reader.string()
    return result


def _encode_pairs(pairs: dict[str, bytes]) -> bytes:
    return b"".join(string(name) + string(value) for name, value in pairs.items())


class SSHCertificate(PKey):
    """An OpenSSH certificate whose CA signature verified.

    Attributes: :attr:`key` (the certified key, a plain :class:`PKey`),
    ``serial``, ``cert_type`` (:data:`USER_CERT` or :data:`HOST_CERT`),
    ``key_id``, ``principals`` (a tuple; empty means any), ``valid_after`` and
    ``valid_before`` (seconds since the epoch), ``critical_options`` and
    ``extensions`` (dicts of name to raw data), ``signature_key`` (the CA) and
    ``nonce``.
    """

    _BLOB_NAMES = tuple(cert_name(name) for name in _KEY_TYPES)

    def __init__(
        self,
        name: str,
        key: PKey,
        fields: dict[str, Any],
        signature: bytes,
        comment: str = "",
    ) -> None:
        self._cert_name = name
        self.key = key
        self.nonce: bytes = fields["nonce"]
        self.serial: int = fields["serial"]
        self.cert_type: int = fields["cert_type"]
        self.key_id: str = fields["key_id"]
        self.principals: tuple[str, ...] = fields["principals"]
        self.valid_after: int = fields["valid_after"]
        self.valid_before: int = fields["valid_before"]
        self.critical_options: dict[str, bytes] = fields["critical_options"]
        self.extensions: dict[str, bytes] = fields["extensions"]
        self.reserved: bytes = fields["reserved"]
        self.signature_key: PKey = fields["signature_key"]
        self._signature = signature
        super().__init__(comment)

    # -- what a certificate says --------------------------------------------------------

    @property
    def is_user_certificate(self) -> bool:
        return self.cert_type == USER_CERT

    @property
    def is_host_certificate(self) -> bool:
        return self.cert_type == HOST_CERT

    @property
    def force_command(self) -> str | None:
        """The ``force-command`` critical option's command, if any."""
        data = self.critical_options.get("force-command")
        return None if data is None else _single_string(data, "force-command")

    @property
    def source_addresses(self) -> tuple[str, ...] | None:
        """The ``source-address`` critical option's CIDR list, if any."""
        data = self.critical_options.get("source-address")
        if data is None:
            return None
        return tuple(p.strip() for p in _single_string(data, "source-address").split(","))

    @property
    def security_key(self) -> SecurityKey | None:
        """The certified key when it is a security key (sk-...-cert-v01)."""
        return self.key if isinstance(self.key, SecurityKey) else None

    def signed_part(self) -> bytes:
        """The bytes the CA signed: the blob up to and including the signature key."""
        key_fields = Reader(self.key.get_public_key_bytes())
        key_fields.string()  # the plain key's type name: a certificate names its own
        return b"".join(
            (
                string(self._cert_name),
                string(self.nonce),
                key_fields.rest(),
                uint64(self.serial),
                uint32(self.cert_type),
                string(self.key_id),
                string(b"".join(string(p) for p in self.principals)),
                uint64(self.valid_after),
                uint64(self.valid_before),
                string(_encode_pairs(self.critical_options)),
                string(_encode_pairs(self.extensions)),
                string(self.reserved),
                string(self.signature_key.get_public_key_bytes()),
            )
        )

    def with_private_key(self, key: PKey) -> SSHCertificate:
        """This certificate holding ``key``'s private half, to sign with (a host certificate)."""
        if key != self.key:
            raise ValueError("the certificate is not for this key")
        fields = {name: getattr(self, name) for name in _FIELD_NAMES}
        return SSHCertificate(self._cert_name, key, fields, self._signature, self.comment)

    # -- PKey ---------------------------------------------------------------------------

    def get_name(self) -> str:
        return self._cert_name

    def get_bits(self) -> int:
        return self.key.get_bits()

    def can_sign(self) -> bool:
        return self.key.can_sign()

    def host_key_algorithms(self) -> list[str]:
        return [cert_name(name) for name in self.key.host_key_algorithms()]

    def sign_ssh(self, data: bytes, algorithm: str | None = None) -> bytes:
        # The signature names the key's own algorithm (rsa-sha2-256, not its -cert form).
        return self.key.sign_ssh(data, None if algorithm is None else plain_name(algorithm))

    def verify_ssh(self, data: bytes, signature_blob: bytes, algorithms: Any = None) -> bool:
        if isinstance(algorithms, str):
            algorithms = (algorithms,)
        plain = None if algorithms is None else [plain_name(name) for name in algorithms]
        return self.key.verify_ssh(data, signature_blob, plain)

    def _encode_public_blob(self) -> bytes:
        return self.signed_part() + string(self._signature)

    def _sign_raw(self, data: bytes, algorithm: str) -> bytes:
        return self.key._sign_raw(data, plain_name(algorithm))

    def _verify_raw(self, data: bytes, signature: bytes, algorithm: str) -> None:
        self.key._verify_raw(data, signature, plain_name(algorithm))

    def _private_object(self) -> PrivateKeyTypes:
        return self.key._private_object()

    def _openssh_private_fields(self) -> bytes:
        raise ValueError("a certificate is saved beside its key, as a -cert.pub line")

    @classmethod
    def _from_public_fields(cls, name: str, reader: Reader) -> PKey:
        base = plain_name(name)
        key_class = key_class_for(base)
        if key_class is None:
            raise KeyFormatError(f"unsupported certificate key type {base!r}")
        nonce = reader.string()
        key = key_class._from_public_fields(base, reader)
        fields: dict[str, Any] = {"nonce": nonce}
        fields["serial"] = reader.uint64()
        fields["cert_type"] = reader.uint32()
        fields["key_id"] = reader.text()
        principals = Reader(reader.string())
        names = []
        while principals.remaining():
            names.append(principals.text())
        fields["principals"] = tuple(names)
        fields["valid_after"] = reader.uint64()
        fields["valid_before"] = reader.uint64()
        fields["critical_options"] = _pairs(reader.string(), "critical option")
        fields["extensions"] = _pairs(reader.string(), "extension")
        fields["reserved"] = reader.string()
        fields["signature_key"] = _ca_key(reader.string())
        signature = reader.string()
        if fields["cert_type"] not in (USER_CERT, HOST_CERT):
            raise KeyFormatError(f"unknown certificate type {fields['cert_type']}")
        cert = cls(name, key, fields, signature)
        if not cert.signature_key.verify_ssh(
            cert.signed_part(), signature, CA_SIGNATURE_ALGORITHMS
        ):
            raise KeyFormatError("the certificate's CA signature does not verify")
        return cert

    @classmethod
    def _from_openssh_fields(cls, name: str, reader: Reader) -> PKey:
        raise KeyFormatError("load the key, then the certificate from its -cert.pub file")

    @classmethod
    def _from_private_object(cls, private: Any) -> PKey:
        raise KeyFormatError("a private key alone is not a certificate")

    @classmethod
    def _generate(cls, bits: int | None, curve: str | None) -> PKey:
        raise ValueError("certificates are issued by a CA (ssh-keygen -s)")


_FIELD_NAMES = (
    "nonce",
    "serial",
    "cert_type",
    "key_id",
    "principals",
    "valid_after",
    "valid_before",
    "critical_options",
    "extensions",
    "reserved",
    "signature_key",
)


def _single_string(data: bytes, what: str) -> str:
    with format_errors(f"certificate option {what}"):
        reader = Reader(data)
        value = reader.text()
        reader.done()
    return value


def _ca_key(blob: bytes) -> PKey:
    with format_errors("certificate signature key"):
        name = Reader(blob).ascii()
    # OpenSSH: a CA key is a plain key; a chain of certificates is never followed.
    if is_certificate_name(name):
        raise KeyFormatError("the certificate is signed by a certificate")
    return PKey.from_public_blob(blob)


def verify_user_signature(
    key: PKey, data: bytes, signature: bytes, algorithm: str
) -> tuple[bool, SecurityKeySignature | None]:
    """Does ``signature`` (with ``algorithm``) sign ``data`` for a user's ``key``?

    For a security key (or a certificate of one) also what its device
    reported, which the login policy then judges (:meth:`SecurityKey.refusal`).
    """
    if algorithm not in key.host_key_algorithms():
        return False, None  # e.g. a certificate offered under its key's plain algorithm
    sk = key.security_key if isinstance(key, SSHCertificate) else key
    if isinstance(sk, SecurityKey):
        details = sk.verify_details(data, signature, (plain_name(algorithm),))
        return details is not None, details
    return key.verify_ssh(data, signature, [algorithm]), None
