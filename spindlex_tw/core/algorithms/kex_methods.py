"""Key exchange methods, server side: the client's public value in, K and ours out.

Every method here is a single round trip: the client's message 30
(KEXDH_INIT, KEX_ECDH_INIT or KEX_HYBRID_INIT) carries one field, the server
answers with one field, and both derive the shared secret K.  The transport
signs the exchange hash and drives the messages; a method only turns the
client's field into a :class:`KexResult` whose values are already encoded as
they enter the exchange hash (RFC 4253 section 8, RFC 5656 section 4,
RFC 8731, draft-ietf-sshm-mlkem-hybrid-kex).

Randomness is injected: private keys come from ``rng`` wherever
``cryptography`` accepts given key material.  ML-KEM encapsulation is the
exception; ``cryptography`` draws that randomness itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from spindlex_tw.core import wire
from spindlex_tw.core.algorithms.dh_groups import GROUP14, GROUP16, GROUP18, DhGroup
from spindlex_tw.core.errors import DecodeError, ProtocolError
from spindlex_tw.protocol.constants import SSH_DISCONNECT_KEY_EXCHANGE_FAILED

Rng = Callable[[int], bytes]


@dataclass(frozen=True)
class KexResult:
    """The three values a key exchange contributes to the exchange hash.

    ``client_field`` is the client's value as it enters the hash (``mpint(e)``
    or ``string(Q_C)``), ``reply_field`` the server's value as it is sent in the
    reply and hashed (``mpint(f)`` or ``string(Q_S)``), and ``shared_secret``
    K as it enters the hash and key derivation (``mpint(K)``, or ``string(K)``
    for the ML-KEM hybrid).
    """

    client_field: bytes
    reply_field: bytes
    shared_secret: bytes


class KexSpec(Protocol):
    name: str
    hash_name: str

    def hash(self, data: bytes) -> bytes: ...

    def server_exchange(self, init_body: bytes, rng: Rng) -> KexResult: ...


_HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

_X25519_SIZE = 32
_MLKEM768_PUBLIC_SIZE = 1184
_MLKEM768_CIPHERTEXT_SIZE = 1088


def _failed(description: str) -> ProtocolError:
    return ProtocolError(description, SSH_DISCONNECT_KEY_EXCHANGE_FAILED)


def _client_value(init_body: bytes) -> bytes:
    """The one string field of the client's init message, nothing before or after it."""
    reader = wire.Reader(init_body)
    try:
        value = reader.string()
        reader.done()
    except DecodeError as exc:
        raise _failed(f"malformed key exchange init: {exc.description}") from None
    return value


class _Method:
    """What every method shares: its name and the hash that names its exchange hash."""

    def __init__(self, name: str, hash_name: str) -> None:
        self.name = name
        self.hash_name = hash_name
        self._hash = _HASHES[hash_name]

    def hash(self, data: bytes) -> bytes:
        digest: bytes = self._hash(data).digest()
        return digest

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _x25519_private(rng: Rng) -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.from_private_bytes(rng(_X25519_SIZE))


def _x25519_shared(private: x25519.X25519PrivateKey, peer: bytes) -> bytes:
    """X25519 with the checks of RFC 8731 section 3: exact size, no all-zero result."""
    if len(peer) != _X25519_SIZE:
        raise _failed("X25519 public key must be 32 bytes")
    try:
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        # OpenSSL refuses the all-zero result of a small-order point itself.
        raise _failed("X25519 shared secret is zero") from None
    if hmac.compare_digest(shared, bytes(_X25519_SIZE)):
        raise _failed("X25519 shared secret is zero")
    return shared


class Curve25519(_Method):
    """curve25519-sha256 (RFC 8731); K is the X25519 output read as a big-endian mpint."""

    def server_exchange(self, init_body: bytes, rng: Rng) -> KexResult:
        q_c = _client_value(init_body)
        private = _x25519_private(rng)
        shared = _x25519_shared(private, q_c)
        q_s = private.public_key().public_bytes_raw()
        return KexResult(
            wire.string(q_c), wire.string(q_s), wire.mpint(int.from_bytes(shared, "big"))
        )


class Ecdh(_Method):
    """ecdh-sha2-nistp* (RFC 5656); points are uncompressed SEC1, K is the x coordinate."""

    def __init__(self, name: str, hash_name: str, curve: ec.EllipticCurve) -> None:
        super().__init__(name, hash_name)
        self._curve = curve
        coordinate = (curve.key_size + 7) // 8
        self._point_size = 1 + 2 * coordinate
        # Drawing 8 bytes more than the order needs makes the reduction's bias negligible.
        self._scalar_bytes = (curve.group_order.bit_length() + 7) // 8 + 8

    def server_exchange(self, init_body: bytes, rng: Rng) -> KexResult:
        q_c = _client_value(init_body)
        # OpenSSH accepts only uncompressed points; compressed ones would also
        # change the bytes both sides hash.
        if len(q_c) != self._point_size or q_c[0] != 0x04:
            raise _failed(f"{self.name} public key is not an uncompressed point")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self._curve, q_c)
        except ValueError:
            raise _failed(f"{self.name} public key is not on the curve") from None
        order = self._curve.group_order
        scalar = int.from_bytes(rng(self._scalar_bytes), "big") % (order - 1) + 1
        private = ec.derive_private_key(scalar, self._curve)
        q_s = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        shared = private.exchange(ec.ECDH(), peer)
        return KexResult(
            wire.string(q_c), wire.string(q_s), wire.mpint(int.from_bytes(shared, "big"))
        )


class FiniteFieldDh(_Method):
    """diffie-hellman-group*-sha* over an RFC 3526 group (RFC 4253 section 8, RFC 8268)."""

    def __init__(self, name: str, hash_name: str, group: DhGroup) -> None:
        super().__init__(name, hash_name)
        self._group = group

    def server_exchange(self, init_body: bytes, rng: Rng) -> KexResult:
        raw = _client_value(init_body)
        e = int.from_bytes(raw, "big", signed=True)
        p = self._group.p
        # e = 1 or p - 1 would pin K to 1 or +-1: no secret at all.
        if not 1 < e < p - 1:
            raise _failed("Diffie-Hellman public value e is out of range")
        client_field = wire.mpint(e)
        if client_field[4:] != raw:
            raise _failed("Diffie-Hellman public value e is not a minimal mpint")
        bits = self._group.exponent_bits
        # The top bit set keeps every exponent the same full size.
        x = int.from_bytes(rng(bits // 8), "big") | (1 << (bits - 1))
        f = pow(self._group.g, x, p)
        k = pow(e, x, p)
        return KexResult(client_field, wire.mpint(f), wire.mpint(k))


class MlkemX25519(_Method):
    """mlkem768x25519-sha256: ML-KEM-768 and X25519 side by side.

    C_INIT is the ML-KEM-768 encapsulation key followed by the client's X25519
    key; S_REPLY is the ML-KEM ciphertext followed by the server's X25519 key;
    K = SHA-256(ML-KEM secret || X25519 secret), hashed and derived as a
    *string*, not an mpint.
    """

    def server_exchange(self, init_body: bytes, rng: Rng) -> KexResult:
        c_init = _client_value(init_body)
        if len(c_init) != _MLKEM768_PUBLIC_SIZE + _X25519_SIZE:
            raise _failed(
                f"{self.name} client value must be"
                f" {_MLKEM768_PUBLIC_SIZE + _X25519_SIZE} bytes, got {len(c_init)}"
            )
        try:
            encapsulation_key = mlkem.MLKEM768PublicKey.from_public_bytes(
                c_init[:_MLKEM768_PUBLIC_SIZE]
            )
        except ValueError:
            raise _failed("ML-KEM-768 encapsulation key is invalid") from None
        private = _x25519_private(rng)
        ecdh_secret = _x25519_shared(private, c_init[_MLKEM768_PUBLIC_SIZE:])
        kem_secret, ciphertext = encapsulation_key.encapsulate()
        s_reply = ciphertext + private.public_key().public_bytes_raw()
        shared = self.hash(kem_secret + ecdh_secret)
        return KexResult(wire.string(c_init), wire.string(s_reply), wire.string(shared))


# Server preference order: post-quantum hybrid first, then the fast curves,
# then finite-field groups for clients that offer nothing else.
KEX_METHODS: dict[str, KexSpec] = {
    method.name: method
    for method in (
        MlkemX25519("mlkem768x25519-sha256", "sha256"),
        Curve25519("curve25519-sha256", "sha256"),
        Curve25519("curve25519-sha256@libssh.org", "sha256"),
        Ecdh("ecdh-sha2-nistp256", "sha256", ec.SECP256R1()),
        Ecdh("ecdh-sha2-nistp384", "sha384", ec.SECP384R1()),
        Ecdh("ecdh-sha2-nistp521", "sha512", ec.SECP521R1()),
        FiniteFieldDh("diffie-hellman-group16-sha512", "sha512", GROUP16),
        FiniteFieldDh("diffie-hellman-group18-sha512", "sha512", GROUP18),
        FiniteFieldDh("diffie-hellman-group14-sha256", "sha256", GROUP14),
    )
}


def derive_key(
    spec: KexSpec,
    shared_secret: bytes,
    exchange_hash: bytes,
    letter: bytes,
    session_id: bytes,
    size: int,
) -> bytes:
    """RFC 4253 section 7.2: HASH(K || H || letter || session_id), extended until ``size`` bytes.

    ``shared_secret`` is K already encoded (mpint or string) as the method returned it.
    """
    prefix = shared_secret + exchange_hash
    key = spec.hash(prefix + letter + session_id)
    while len(key) < size:
        key += spec.hash(prefix + key)
    return key[:size]
