"""AES in counter mode (RFC 4344) with an HMAC, plain or encrypt-then-MAC.

The counter runs on from packet to packet for the life of a key, so each
direction keeps one ``cryptography`` context for that key and feeds every
packet through it in order.  With a plain MAC the receiver must decrypt the
first block to learn the packet length; that block and the rest of the packet
go through the same context, one after the other, so the keystream stays in
step.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from spindlex_tw.core.algorithms.inplace import InPlaceSealer
from spindlex_tw.core.algorithms.macs import PacketMac
from spindlex_tw.core.errors import MacError, ProtocolError

_U32 = struct.Struct(">I")
_BLOCK = 16


def _ctr(key: bytes, iv: bytes) -> Cipher[modes.CTR]:
    return Cipher(algorithms.AES(key), modes.CTR(iv))


def _wrong_size() -> ProtocolError:
    return ProtocolError("packet data does not match its length field")


class CtrHmacSealer(InPlaceSealer):
    """Encrypts a packet with the running counter and MACs its cleartext."""

    block_size = _BLOCK
    length_excluded = False

    def __init__(self, key: bytes, iv: bytes, mac: str, mac_key: bytes) -> None:
        self._encryptor = _ctr(key, iv).encryptor()
        self._mac = PacketMac(mac, mac_key)
        self.tag_size = self._mac.digest_size

    def seal_into(self, seq: int, buffer: bytearray, length: int) -> None:
        view = memoryview(buffer)
        tag = self._mac.compute(seq, view[:length])
        # update_into wants a block's worth of room past the data: the tag space is that.
        self._encryptor.update_into(view[:length], view)
        buffer[length : length + self.tag_size] = tag


class CtrHmacOpener:
    """Decrypts the first block in :meth:`length`, the rest in :meth:`open`, then checks the MAC."""

    block_size = _BLOCK
    first_size = _BLOCK

    def __init__(self, key: bytes, iv: bytes, mac: str, mac_key: bytes) -> None:
        self._decryptor = _ctr(key, iv).decryptor()
        self._mac = PacketMac(mac, mac_key)
        self.tag_size = self._mac.digest_size
        self._first = b""
        self._length = 0

    def length(self, seq: int, first: memoryview) -> int:
        self._first = self._decryptor.update(first[:_BLOCK])
        self._length = int(_U32.unpack_from(self._first)[0])
        return self._length

    def open(self, seq: int, wire: memoryview) -> bytes:
        end = 4 + self._length
        # Fewer than one block would mean length() already decrypted past the packet.
        if end < _BLOCK or len(wire) != end + self.tag_size:
            raise _wrong_size()
        rest = self._decryptor.update(wire[_BLOCK:end])
        if not self._mac.verify(seq, wire[end:], self._first, rest):
            raise MacError()
        return self._first[4:] + rest


class CtrEtmSealer(InPlaceSealer):
    """Encrypts all but the length field, then MACs length and ciphertext."""

    block_size = _BLOCK
    length_excluded = True

    def __init__(self, key: bytes, iv: bytes, mac: str, mac_key: bytes) -> None:
        self._encryptor = _ctr(key, iv).encryptor()
        self._mac = PacketMac(mac, mac_key)
        self.tag_size = self._mac.digest_size

    def seal_into(self, seq: int, buffer: bytearray, length: int) -> None:
        view = memoryview(buffer)
        # update_into wants a block's worth of room past the data: the tag space is that.
        self._encryptor.update_into(view[4:length], view[4:])
        buffer[length : length + self.tag_size] = self._mac.compute(seq, view[:length])


class CtrEtmOpener:
    """Reads the length in clear, checks the MAC, and only then decrypts."""

    block_size = _BLOCK
    first_size = 4

    def __init__(self, key: bytes, iv: bytes, mac: str, mac_key: bytes) -> None:
        self._decryptor = _ctr(key, iv).decryptor()
        self._mac = PacketMac(mac, mac_key)
        self.tag_size = self._mac.digest_size
        self._length = 0

    def length(self, seq: int, first: memoryview) -> int:
        self._length = int(_U32.unpack_from(first)[0])
        return self._length

    def open(self, seq: int, wire: memoryview) -> bytes:
        end = 4 + self._length
        if len(wire) != end + self.tag_size:
            raise _wrong_size()
        if not self._mac.verify(seq, wire[end:], wire[:end]):
            raise MacError()
        return self._decryptor.update(wire[4:end])
