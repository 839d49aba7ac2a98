"""Packet MACs: HMAC-SHA2 of RFC 6668 and OpenSSH's encrypt-then-MAC variants.

A plain MAC (RFC 4253 section 6.4) covers ``uint32 seq || cleartext packet``;
an ``-etm@openssh.com`` MAC covers ``uint32 seq || length || ciphertext``, so
the receiver authenticates before it decrypts anything.  Which bytes go in is
the cipher module's business; this module only keys the HMAC and computes or
checks tags.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class MacSpec:
    """What negotiation and key derivation need to know about a MAC."""

    name: str
    key_size: int
    digest_size: int
    etm: bool


_ETM_256 = MacSpec("hmac-sha2-256-etm@openssh.com", 32, 32, True)
_ETM_512 = MacSpec("hmac-sha2-512-etm@openssh.com", 64, 64, True)
_PLAIN_256 = MacSpec("hmac-sha2-256", 32, 32, False)
_PLAIN_512 = MacSpec("hmac-sha2-512", 64, 64, False)

# Server preference order: EtM first, because it never decrypts unauthenticated data.
MACS: dict[str, MacSpec] = {
    spec.name: spec for spec in (_ETM_256, _ETM_512, _PLAIN_256, _PLAIN_512)
}

_DIGESTS: dict[str, Callable[..., Any]] = {
    _ETM_256.name: hashlib.sha256,
    _ETM_512.name: hashlib.sha512,
    _PLAIN_256.name: hashlib.sha256,
    _PLAIN_512.name: hashlib.sha512,
}

Bytes = bytes | bytearray | memoryview


class PacketMac:
    """An HMAC keyed once per key; every packet starts from a copy of that state.

    Copying the keyed state skips re-hashing the two key pads per packet,
    which matters on the bulk-transfer path.
    """

    __slots__ = ("_keyed", "digest_size")

    def __init__(self, name: str, key: bytes) -> None:
        spec = MACS.get(name)
        if spec is None:
            raise ValueError(f"unknown MAC algorithm {name!r}")
        if len(key) != spec.key_size:
            raise ValueError(f"{name} needs a {spec.key_size}-byte key, got {len(key)}")
        self._keyed = hmac.new(key, digestmod=_DIGESTS[name])
        self.digest_size = spec.digest_size

    def compute(self, seq: int, *parts: Bytes) -> bytes:
        """The tag of ``uint32 seq`` followed by ``parts``, hashed without joining them."""
        state = self._keyed.copy()
        state.update(_U32.pack(seq & 0xFFFFFFFF))
        for part in parts:
            state.update(part)
        return state.digest()

    def verify(self, seq: int, tag: Bytes, *parts: Bytes) -> bool:
        """Constant-time comparison of ``tag`` with the tag of ``parts``."""
        return hmac.compare_digest(self.compute(seq, *parts), tag)
