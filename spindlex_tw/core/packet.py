"""The binary packet protocol of RFC 4253 section 6: framing, padding, sequence numbers.

Packet protection (cipher + MAC, or an AEAD) comes from
:mod:`spindlex_tw.core.algorithms.ciphers` as a sealer/opener pair per direction;
this module frames packets, checks lengths and padding, counts sequence numbers
and bytes (for rekeying), and applies compression.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from spindlex_tw.core.algorithms.ciphers import Opener, Sealer, make_opener, make_sealer
from spindlex_tw.core.algorithms.compression import (
    Compressor,
    Decompressor,
)
from spindlex_tw.core.errors import ProtocolError

Rng = Callable[[int], bytes]

_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">IB")
_MIN_PADDING = 4
# CHANNEL_DATA and CHANNEL_EXTENDED_DATA: most of the bytes a connection receives.
_DATA_MESSAGES = frozenset((94, 95))
# Padding takes 4 to 19 bytes a packet: one rng call serves a few dozen packets, and
# an idle connection holds 256 bytes of it, not the 4 KiB a bigger pool would keep.
_RANDOM_POOL = 256
_SEQ_MASK = 0xFFFFFFFF


class PacketDecoder:
    """Turns received bytes into packet payloads, one direction's state."""

    def __init__(self, max_packet_length: int, max_payload: int) -> None:
        self._max_packet_length = max_packet_length
        self._max_payload = max_payload
        self._opener: Opener = make_opener("none", None, b"", b"", b"")
        self._decompressor: Decompressor | None = None
        # Received bytes: the latest read, read in place from _pos, and the head of a
        # packet that an earlier read ended inside, completed before anything else.
        self._chunk = b""
        self._pos = 0
        self._partial = bytearray()
        self._length: int | None = None  # packet_length of the packet being read
        self.sequence = 0
        self.bytes_since_kex = 0
        self.packets_since_kex = 0

    def set_protection(self, opener: Opener) -> None:
        self._opener = opener
        self.bytes_since_kex = 0
        self.packets_since_kex = 0

    def set_decompressor(self, decompressor: Decompressor | None) -> None:
        self._decompressor = decompressor

    def reset_sequence(self) -> None:
        """Strict KEX: sequence numbers restart at zero after each NEWKEYS."""
        self.sequence = 0

    def feed(self, data: bytes) -> None:
        """Take received bytes. They are read in place: only a packet cut by the end of
        one read is copied, to be completed from the next (see :meth:`next_payload`)."""
        if self._pos < len(self._chunk):
            self._carry()  # bytes fed before the last were read out: keep them in order
        self._chunk = data if type(data) is bytes else bytes(data)
        self._pos = 0

    def buffered(self) -> int:
        return len(self._partial) + len(self._chunk) - self._pos

    def _carry(self) -> None:
        """Keep what is left of the current chunk: the head of a packet not all here yet."""
        self._partial += memoryview(self._chunk)[self._pos :]
        self._chunk = b""
        self._pos = 0

    def _top_up(self, size: int) -> bool:
        """Complete the carried head to ``size`` bytes from the chunk; False if it cannot yet."""
        missing = size - len(self._partial)
        if missing <= 0:
            return True
        if len(self._chunk) - self._pos < missing:
            self._carry()
            return False
        self._partial += memoryview(self._chunk)[self._pos : self._pos + missing]
        self._pos += missing
        return True

    def next_payload(self) -> bytes | memoryview | None:
        """Return the next complete payload, or ``None`` until more bytes arrive.

        Raises :class:`ProtocolError` for lengths, padding or MACs that are wrong.
        """
        opener = self._opener
        if self._partial:
            # A packet begun in an earlier read: completed from this one, opened there.
            if self._length is None:
                if not self._top_up(opener.first_size):
                    return None
                head = memoryview(self._partial)[: opener.first_size]
                self._length = opener.length(self.sequence, head)
                head.release()  # the bytearray grows again below: no view may hold it
                self._check_length(self._length)
            total = 4 + self._length + opener.tag_size
            if not self._top_up(total):
                return None
            body = opener.open(self.sequence, memoryview(self._partial))
            self._partial = bytearray()
        else:
            pos = self._pos
            available = len(self._chunk) - pos
            view = memoryview(self._chunk)  # of bytes: nothing to release, nothing resizes it
            if self._length is None:
                if available < opener.first_size:
                    self._carry()
                    return None
                length = opener.length(self.sequence, view[pos : pos + opener.first_size])
                self._check_length(length)
                self._length = length
            total = 4 + self._length + opener.tag_size
            if available < total:
                self._carry()
                return None
            body = opener.open(self.sequence, view[pos : pos + total])
            self._pos = pos + total
            if self._pos == len(self._chunk):
                self._chunk = b""  # all read: an idle connection keeps no copy of its last read
                self._pos = 0
        self._length = None
        self.sequence = (self.sequence + 1) & _SEQ_MASK
        self.bytes_since_kex += total
        self.packets_since_kex += 1
        padding = body[0]
        if padding < _MIN_PADDING or padding + 1 >= len(body):
            raise ProtocolError("bad packet padding")
        end = len(body) - padding
        payload: bytes | memoryview
        if self._decompressor is not None:
            payload = self._decompressor.decompress(body[1:end], self._max_payload)
        elif body[1] in _DATA_MESSAGES:
            # Read in place, not sliced out: the connection layer copies out the
            # data it keeps, and a copy here would be one more pass over every byte.
            payload = memoryview(body)[1:end]
        else:
            payload = body[1:end]
        if len(payload) > self._max_payload:
            raise ProtocolError("packet payload too long")
        if not payload:
            raise ProtocolError("empty packet payload")
        return payload

    def _check_length(self, length: int) -> None:
        opener = self._opener
        # EtM MACs and AEADs authenticate the length in clear (first_size 4 with a
        # tag); only then is the length field left out of the block alignment.
        length_excluded = opener.first_size == 4 and opener.tag_size > 0
        aligned = length if length_excluded else length + 4
        if length < 5 or length > self._max_packet_length or aligned % opener.block_size:
            raise ProtocolError(f"bad packet length {length}")


class PacketEncoder:
    """Frames, pads, compresses and seals outgoing payloads."""

    def __init__(self, rng: Rng) -> None:
        self._rng = rng
        self._sealer: Sealer = make_sealer("none", None, b"", b"", b"")
        self._tag_room = b""
        self._compressor: Compressor | None = None
        self._random = b""  # padding is cut from this, refilled from rng when used up
        self._random_pos = 0
        self.sequence = 0
        self.bytes_since_kex = 0
        self.packets_since_kex = 0

    def set_protection(self, sealer: Sealer) -> None:
        self._sealer = sealer
        self._tag_room = bytes(sealer.tag_size)
        self.bytes_since_kex = 0
        self.packets_since_kex = 0

    def set_compressor(self, compressor: Compressor | None) -> None:
        self._compressor = compressor

    def reset_sequence(self) -> None:
        self.sequence = 0

    def _padding(self, count: int) -> bytes:
        """``count`` random bytes, cut from a pool refilled by one rng call."""
        pos = self._random_pos
        if pos + count > len(self._random):
            self._random = self._rng(_RANDOM_POOL)
            pos = 0
        self._random_pos = pos + count
        return self._random[pos : pos + count]

    def encode(self, payload: bytes | bytearray | memoryview) -> bytearray:
        """The wire form of one packet carrying ``payload``."""
        return self.encode_parts((payload,))

    def encode_parts(self, parts: Sequence[bytes | bytearray | memoryview]) -> bytearray:
        """The wire form of one packet whose payload is ``parts`` end to end.

        The packet is framed once, in a buffer with room for the tag (joined,
        not zero-filled and then copied into), and sealed there: the payload
        is copied exactly once, from its pieces (a channel message's header
        and the queued data it carries) straight into the packet.
        """
        if self._compressor is not None:
            parts = (self._compressor.compress(b"".join(parts)),)
        sealer = self._sealer
        block = sealer.block_size
        size = sum(map(len, parts))
        # The aligned part is padding_length || payload || padding, plus the
        # length field unless the protection keeps that field outside.
        unpadded = 1 + size + (0 if sealer.length_excluded else 4)
        padding = block - unpadded % block
        if padding < _MIN_PADDING:
            padding += block
        packet_length = 1 + size + padding
        wire = bytearray().join(
            (
                _HEADER.pack(packet_length, padding),
                *parts,
                self._padding(padding),
                self._tag_room,
            )
        )
        sealer.seal_into(self.sequence, wire, 4 + packet_length)
        self.sequence = (self.sequence + 1) & _SEQ_MASK
        self.bytes_since_kex += len(wire)
        self.packets_since_kex += 1
        return wire
