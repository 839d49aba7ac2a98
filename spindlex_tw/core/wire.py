"""SSH wire encodings of RFC 4251 section 5: encoders and a bounds-checked reader."""

from __future__ import annotations

import struct

from spindlex_tw.core.errors import DecodeError

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def byte(value: int) -> bytes:
    return bytes((value,))


def boolean(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def uint32(value: int) -> bytes:
    return _U32.pack(value)


def uint64(value: int) -> bytes:
    return _U64.pack(value)


def string(value: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return _U32.pack(len(value)) + bytes(value)


def mpint(value: int) -> bytes:
    """Two's-complement, big-endian, minimal length, as RFC 4251 requires."""
    if value == 0:
        return b"\x00\x00\x00\x00"
    length = (value.bit_length() + 8) // 8  # one spare bit keeps positives positive
    raw = value.to_bytes(length, "big", signed=True)
    if (length > 1 and raw[0] == 0 and raw[1] < 0x80) or (
        length > 1 and raw[0] == 0xFF and raw[1] >= 0x80
    ):
        raw = raw[1:]
    return _U32.pack(len(raw)) + raw


def name_list(names: list[str] | tuple[str, ...]) -> bytes:
    return string(",".join(names).encode("ascii"))


class Reader:
    """Reads SSH wire fields from a buffer; any overrun raises :class:`DecodeError`."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0) -> None:
        self._data = memoryview(data)
        self._pos = pos

    @property
    def position(self) -> int:
        return self._pos

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, count: int) -> memoryview:
        end = self._pos + count
        if count < 0 or end > len(self._data):
            raise DecodeError("message truncated")
        view = self._data[self._pos : end]
        self._pos = end
        return view

    def raw(self, count: int) -> bytes:
        """A fixed-size field, such as the KEXINIT cookie."""
        return bytes(self._take(count))

    def byte(self) -> int:
        return int(self._take(1)[0])

    def boolean(self) -> bool:
        return self._take(1)[0] != 0

    def uint32(self) -> int:
        return int(_U32.unpack(self._take(4))[0])

    def uint64(self) -> int:
        return int(_U64.unpack(self._take(8))[0])

    def string(self) -> bytes:
        return bytes(self._take(self.uint32()))

    def string_view(self) -> memoryview:
        """Like :meth:`string` without a copy; for bulk channel and SFTP data."""
        return self._take(self.uint32())

    def text(self) -> str:
        """A string field that must be UTF-8 (user names, commands, messages)."""
        try:
            return self.string().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("string field is not valid UTF-8") from exc

    def ascii(self) -> str:
        try:
            return self.string().decode("ascii")
        except UnicodeDecodeError as exc:
            raise DecodeError("string field is not ASCII") from exc

    def mpint(self) -> int:
        raw = self.string()
        return int.from_bytes(raw, "big", signed=True) if raw else 0

    def name_list(self) -> list[str]:
        text = self.ascii()
        return text.split(",") if text else []

    def rest(self) -> bytes:
        return bytes(self._take(self.remaining()))

    def done(self) -> None:
        """Reject trailing bytes: a message must be exactly as long as its fields."""
        if self._pos != len(self._data):
            raise DecodeError("unexpected trailing data in message")
