"""aes128-gcm@openssh.com and aes256-gcm@openssh.com (RFC 5647 as OpenSSH does it).

The 12-byte IV from key derivation is a fixed 4-byte field followed by a
64-bit invocation counter; the counter goes up by one for every packet (it is
not the sequence number) and wraps modulo 2**64.  The length field travels in
clear as additional authenticated data; everything after it is encrypted and
followed by the 16-byte tag.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from spindlex_tw.core.algorithms.inplace import InPlaceSealer
from spindlex_tw.core.errors import MacError, ProtocolError

_U32 = struct.Struct(">I")
_NONCE = struct.Struct(">4sQ")
_COUNTER_MASK = (1 << 64) - 1
_BLOCK = 16
TAG_SIZE = 16


class _Nonces:
    """The per-packet nonce sequence of one direction."""

    __slots__ = ("_counter", "_fixed")

    def __init__(self, iv: bytes) -> None:
        self._fixed = iv[:4]
        self._counter = int.from_bytes(iv[4:12], "big")

    def next(self) -> bytes:
        nonce = _NONCE.pack(self._fixed, self._counter)
        self._counter = (self._counter + 1) & _COUNTER_MASK
        return nonce


class GcmSealer(InPlaceSealer):
    """Encrypts everything after the length field, which is authenticated in clear."""

    block_size = _BLOCK
    length_excluded = True
    tag_size = TAG_SIZE

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._aead = AESGCM(key)
        self._nonces = _Nonces(iv)

    def seal_into(self, seq: int, buffer: bytearray, length: int) -> None:
        view = memoryview(buffer)
        # In place: OpenSSL's GCM reads each block before it writes it.
        self._aead.encrypt_into(
            self._nonces.next(), view[4:length], view[:4], view[4 : length + TAG_SIZE]
        )


class GcmOpener:
    """Reads the length in clear; decryption and tag check are one step."""

    block_size = _BLOCK
    first_size = 4
    tag_size = TAG_SIZE

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._aead = AESGCM(key)
        self._nonces = _Nonces(iv)
        self._length = 0

    def length(self, seq: int, first: memoryview) -> int:
        self._length = int(_U32.unpack_from(first)[0])
        return self._length

    def open(self, seq: int, wire: memoryview) -> bytes:
        if len(wire) != 4 + self._length + TAG_SIZE:
            raise ProtocolError("packet data does not match its length field")
        try:
            return self._aead.decrypt(self._nonces.next(), wire[4:], wire[:4])
        except InvalidTag:
            raise MacError() from None
