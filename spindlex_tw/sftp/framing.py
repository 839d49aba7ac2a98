"""Cutting the client's byte stream into SFTP packets (uint32 length, then payload).

Bytes arrive in whatever chunks the channel delivers. A packet that lies whole
inside one chunk is handed out as a view of that chunk, without a copy; only a
packet spread over several chunks is joined. A length field the server cannot
accept is a framing error: the stream cannot be resynchronised, so the session ends.
"""

from __future__ import annotations

from collections import deque

from spindlex_tw.core.errors import ProtocolError

# Type byte plus request id: nothing shorter can be answered.
MIN_PACKET_LENGTH = 5


class FramingError(ProtocolError):
    """The stream is no longer made of valid SFTP packets."""


class PacketBuffer:
    """Bytes in, whole packet payloads (type byte onwards) out."""

    __slots__ = ("_chunks", "_max_length", "_offset", "_size")

    def __init__(self, max_length: int) -> None:
        self._max_length = max_length
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # bytes of _chunks[0] already consumed
        self._size = 0  # unconsumed bytes in total

    def __len__(self) -> int:
        return self._size

    def feed(self, data: bytes) -> None:
        if data:
            # Views handed out must never change under the reader: keep immutable bytes.
            self._chunks.append(data if type(data) is bytes else bytes(data))
            self._size += len(data)

    def _peek_length(self) -> int:
        head = self._chunks[0]
        if len(head) - self._offset >= 4:
            return int.from_bytes(head[self._offset : self._offset + 4], "big")
        return int.from_bytes(self._gather(4, consume=False), "big")

    def _gather(self, count: int, consume: bool) -> bytes:
        parts = []
        need = count
        offset = self._offset
        for chunk in self._chunks:
            piece = chunk[offset : offset + need]
            parts.append(piece)
            need -= len(piece)
            offset = 0
            if not need:
                break
        if consume:
            self._consume(count)
        return b"".join(parts)

    def _consume(self, count: int) -> None:
        self._size -= count
        while count:
            head = self._chunks[0]
            left = len(head) - self._offset
            if count < left:
                self._offset += count
                return
            count -= left
            self._chunks.popleft()
            self._offset = 0

    def has_packet(self) -> bool:
        """Whether a whole packet (or a bad length) is waiting to be taken."""
        return self._size >= 4 and (
            not MIN_PACKET_LENGTH <= (length := self._peek_length()) <= self._max_length
            or self._size >= 4 + length
        )

    def next_packet(self) -> memoryview | bytes | None:
        """The next complete payload, or None until more bytes arrive."""
        if self._size < 4:
            return None
        length = self._peek_length()
        if length < MIN_PACKET_LENGTH or length > self._max_length:
            raise FramingError(f"SFTP packet length {length} out of range")
        if self._size < 4 + length:
            return None
        head = self._chunks[0]
        start = self._offset + 4
        if len(head) >= start + length:
            packet: memoryview | bytes = memoryview(head)[start : start + length]
            self._consume(4 + length)
            return packet
        self._consume(4)
        return self._gather(length, consume=True)
