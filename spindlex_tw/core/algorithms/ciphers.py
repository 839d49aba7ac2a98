"""The cipher registry and the packet protection built from a negotiated cipher and MAC.

A *sealer* turns a whole cleartext packet (``uint32 packet_length || byte
padding_length || payload || padding``) into wire bytes; an *opener* does the
reverse in two steps, because the receiver needs the packet length before it
knows how many bytes to wait for.  The packet layer pads to ``block_size``
(counting the length field only when ``length_excluded`` is false) and checks
lengths; this module only protects bytes.

Algorithm families live in their own modules (:mod:`.aes_ctr`, :mod:`.aes_gcm`,
:mod:`.chacha_poly`); this module maps names to them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from spindlex_tw.core.algorithms import aes_ctr, aes_gcm, chacha_poly
from spindlex_tw.core.algorithms.inplace import InPlaceSealer
from spindlex_tw.core.algorithms.macs import MACS
from spindlex_tw.core.errors import ProtocolError

_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class CipherSpec:
    """What negotiation and key derivation need to know about a cipher.

    ``aead`` ciphers carry their own integrity; the negotiated MAC is then ignored
    (and derives no key).
    """

    name: str
    key_size: int
    iv_size: int
    block_size: int
    aead: bool


class Sealer(Protocol):
    """Outgoing protection: ``seal_into`` encrypts a packet in place and writes its
    MAC or tag after it (see :mod:`.inplace`); ``seal`` is the copying form."""

    block_size: int
    length_excluded: bool
    tag_size: int

    def seal_into(self, seq: int, buffer: bytearray, length: int) -> None: ...

    def seal(self, seq: int, packet: bytes | bytearray | memoryview) -> bytes: ...


class Opener(Protocol):
    """Incoming protection, per packet: ``length`` on the first ``first_size`` bytes,
    then ``open`` on exactly ``4 + length + tag_size`` bytes with the same ``seq``.
    ``open`` verifies before it returns anything and raises :class:`MacError` on a
    bad MAC or tag."""

    block_size: int
    first_size: int
    tag_size: int

    def length(self, seq: int, first: memoryview) -> int: ...

    def open(self, seq: int, wire: memoryview) -> bytes: ...


_CHACHA = CipherSpec("chacha20-poly1305@openssh.com", chacha_poly.KEY_SIZE, 0, 8, True)
_GCM128 = CipherSpec("aes128-gcm@openssh.com", 16, 12, 16, True)
_GCM256 = CipherSpec("aes256-gcm@openssh.com", 32, 12, 16, True)
_CTR128 = CipherSpec("aes128-ctr", 16, 16, 16, False)
_CTR192 = CipherSpec("aes192-ctr", 24, 16, 16, False)
_CTR256 = CipherSpec("aes256-ctr", 32, 16, 16, False)

# Server preference order.  "none" is deliberately absent: it is only the
# state before the first NEWKEYS and must never be negotiated.
CIPHERS: dict[str, CipherSpec] = {
    spec.name: spec for spec in (_CHACHA, _GCM128, _GCM256, _CTR128, _CTR192, _CTR256)
}

NONE = "none"
_NONE_BLOCK_SIZE = 8


class _Cleartext(InPlaceSealer):
    """The identity protection in force before the first NEWKEYS."""

    block_size = _NONE_BLOCK_SIZE
    length_excluded = False
    first_size = 4
    tag_size = 0

    def seal_into(self, seq: int, buffer: bytearray, length: int) -> None:
        pass  # the packet goes out as it is

    def length(self, seq: int, first: memoryview) -> int:
        return int(_U32.unpack_from(first)[0])

    def open(self, seq: int, wire: memoryview) -> bytes:
        if len(wire) < 4 or len(wire) != 4 + _U32.unpack_from(wire)[0]:
            raise ProtocolError("packet data does not match its length field")
        return bytes(wire[4:])


def _required_mac(mac: str | None) -> str:
    if mac is None or mac not in MACS:
        raise ValueError(f"AES-CTR needs a MAC algorithm, got {mac!r}")
    return mac


def _ctr_sealer(key: bytes, iv: bytes, mac: str | None, mac_key: bytes) -> Sealer:
    name = _required_mac(mac)
    if MACS[name].etm:
        return aes_ctr.CtrEtmSealer(key, iv, name, mac_key)
    return aes_ctr.CtrHmacSealer(key, iv, name, mac_key)


def _ctr_opener(key: bytes, iv: bytes, mac: str | None, mac_key: bytes) -> Opener:
    name = _required_mac(mac)
    if MACS[name].etm:
        return aes_ctr.CtrEtmOpener(key, iv, name, mac_key)
    return aes_ctr.CtrHmacOpener(key, iv, name, mac_key)


def _gcm_sealer(key: bytes, iv: bytes, mac: str | None, mac_key: bytes) -> Sealer:
    return aes_gcm.GcmSealer(key, iv)


def _gcm_opener(key: bytes, iv: bytes, mac: str | None, mac_key: bytes) -> Opener:
    return aes_gcm.GcmOpener(key, iv)


def _chacha_sealer(key: bytes, iv: bytes, mac: str | None, mac_key: bytes) -> Sealer:
    return chacha_poly.ChachaSealer(key)


def _chacha_opener(key: bytes, iv: bytes, mac: str | None, mac_key: bytes) -> Opener:
    return chacha_poly.ChachaOpener(key)


# Each factory gets (key, iv, mac name, MAC key); AEAD families ignore the MAC.
_FAMILIES: dict[
    str,
    tuple[
        Callable[[bytes, bytes, str | None, bytes], Sealer],
        Callable[[bytes, bytes, str | None, bytes], Opener],
    ],
] = {
    _CHACHA.name: (_chacha_sealer, _chacha_opener),
    _GCM128.name: (_gcm_sealer, _gcm_opener),
    _GCM256.name: (_gcm_sealer, _gcm_opener),
    _CTR128.name: (_ctr_sealer, _ctr_opener),
    _CTR192.name: (_ctr_sealer, _ctr_opener),
    _CTR256.name: (_ctr_sealer, _ctr_opener),
}


def _check_sizes(cipher: str, key: bytes, iv: bytes) -> None:
    """Catch a caller's mix-up of names or key sizes before it turns into garbage on the wire."""
    spec = CIPHERS.get(cipher)
    if spec is None:
        raise ValueError(f"unknown cipher {cipher!r}")
    if len(key) != spec.key_size or len(iv) != spec.iv_size:
        raise ValueError(
            f"{cipher} needs a {spec.key_size}-byte key and a {spec.iv_size}-byte IV,"
            f" got {len(key)} and {len(iv)}"
        )


def make_sealer(cipher: str, mac: str | None, key: bytes, iv: bytes, mac_key: bytes) -> Sealer:
    """The outgoing protection for ``cipher`` (+ ``mac`` unless the cipher is an AEAD)."""
    if cipher == NONE:
        return _Cleartext()
    _check_sizes(cipher, key, iv)
    return _FAMILIES[cipher][0](key, iv, mac, mac_key)


def make_opener(cipher: str, mac: str | None, key: bytes, iv: bytes, mac_key: bytes) -> Opener:
    """The incoming protection for ``cipher`` (+ ``mac`` unless the cipher is an AEAD)."""
    if cipher == NONE:
        return _Cleartext()
    _check_sizes(cipher, key, iv)
    return _FAMILIES[cipher][1](key, iv, mac, mac_key)
