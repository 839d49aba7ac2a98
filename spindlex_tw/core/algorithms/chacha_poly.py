"""chacha20-poly1305@openssh.com (OpenSSH's PROTOCOL.chacha20poly1305).

This is not the IETF AEAD of RFC 8439.  The 64-byte key is two ChaCha20 keys:
the first 32 bytes (K_2) encrypt the payload, the last 32 (K_1) encrypt only
the 4-byte length field.  Both use the packet sequence number as a 64-bit
nonce.  The Poly1305 key is the first 32 bytes of K_2's keystream block 0, the
payload is encrypted from block 1 on, and the tag covers the encrypted length
followed by the encrypted payload.

``cryptography``'s ChaCha20 takes a 16-byte nonce laid out as an 8-byte
little-endian block counter followed by the 8-byte nonce, which is exactly the
original (DJB) ChaCha20 that OpenSSH uses.  Each key keeps one context for
its lifetime and is re-pointed at every packet's nonce (``reset_nonce``), which
costs far less than building a context per packet; the K_2 context yields the
Poly1305 key (block 0) and then runs straight on into the payload (block 1).
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms
from cryptography.hazmat.primitives.poly1305 import Poly1305

from spindlex_tw.core.algorithms.inplace import InPlaceSealer
from spindlex_tw.core.errors import MacError, ProtocolError

_U32 = struct.Struct(">I")
_SEQ_NONCE = struct.Struct(">8xQ")  # block counter 0, then the sequence number
_KEYSTREAM_BLOCK = bytes(64)  # encrypting zeros yields the raw keystream
TAG_SIZE = 16
KEY_SIZE = 64


class _Keys:
    """One long-lived ChaCha20 context per half of the key, re-pointed per packet."""

    __slots__ = ("_length", "_payload")

    def __init__(self, key: bytes) -> None:
        start = _SEQ_NONCE.pack(0)
        self._payload = Cipher(algorithms.ChaCha20(key[:32], start), None).encryptor()
        self._length = Cipher(algorithms.ChaCha20(key[32:], start), None).encryptor()

    def length_stream(self, seq: int) -> CipherContext:
        """K_1's context at the start of packet ``seq``'s keystream."""
        self._length.reset_nonce(_SEQ_NONCE.pack(seq & 0xFFFFFFFF))
        return self._length

    def payload_stream(self, seq: int) -> tuple[CipherContext, bytes]:
        """K_2's context positioned at block 1, and the Poly1305 key from block 0."""
        stream = self._payload
        stream.reset_nonce(_SEQ_NONCE.pack(seq & 0xFFFFFFFF))
        return stream, stream.update(_KEYSTREAM_BLOCK)[:32]


class ChachaSealer(InPlaceSealer):
    """Encrypts length and payload under their own keys and appends the Poly1305 tag."""

    block_size = 8
    length_excluded = True
    tag_size = TAG_SIZE

    def __init__(self, key: bytes) -> None:
        self._keys = _Keys(key)

    def seal_into(self, seq: int, buffer: bytearray, length: int) -> None:
        view = memoryview(buffer)
        self._keys.length_stream(seq).update_into(view[:4], view[:4])
        stream, poly_key = self._keys.payload_stream(seq)
        stream.update_into(view[4:length], view[4:length])
        buffer[length : length + TAG_SIZE] = Poly1305.generate_tag(poly_key, view[:length])


class ChachaOpener:
    """Decrypts the length with K_1, checks the tag, then decrypts the payload with K_2."""

    block_size = 8
    first_size = 4
    tag_size = TAG_SIZE

    def __init__(self, key: bytes) -> None:
        self._keys = _Keys(key)
        self._length = 0

    def length(self, seq: int, first: memoryview) -> int:
        clear = self._keys.length_stream(seq).update(first[:4])
        self._length = int(_U32.unpack(clear)[0])
        return self._length

    def open(self, seq: int, wire: memoryview) -> bytes:
        end = 4 + self._length
        if len(wire) != end + TAG_SIZE:
            raise ProtocolError("packet data does not match its length field")
        stream, poly_key = self._keys.payload_stream(seq)
        try:
            Poly1305.verify_tag(poly_key, wire[:end], bytes(wire[end:]))
        except InvalidSignature:
            raise MacError() from None
        return stream.update(wire[4:end])
