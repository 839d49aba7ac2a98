"""Payload compression: "none" and OpenSSH's delayed zlib, "zlib@openssh.com".

Each direction is one zlib stream for the life of its keys: every packet's
payload is compressed and flushed so the peer can decompress it on its own,
but the dictionary carries over from packet to packet.  Each NEWKEYS starts a
fresh stream, as OpenSSH, AsyncSSH and Paramiko do.  When compression starts
(after user authentication for zlib@openssh.com) is the transport's decision.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.protocol.constants import SSH_DISCONNECT_COMPRESSION_ERROR

NONE = "none"
ZLIB_OPENSSH = "zlib@openssh.com"

# Server preference order: compression costs CPU on fast links, so only on request.
COMPRESSIONS: tuple[str, ...] = (NONE, ZLIB_OPENSSH)

# OpenSSH's level and flush: a partial flush hands the peer's inflate every
# byte of the payload, and costs 10 bits of empty block against a sync flush's 4 bytes.
_LEVEL = 6


class Compressor:
    """One outgoing deflate stream, flushed at the end of every payload."""

    __slots__ = ("_stream",)

    def __init__(self) -> None:
        self._stream = zlib.compressobj(_LEVEL)

    def compress(self, payload: bytes) -> bytes:
        return self._stream.compress(payload) + self._stream.flush(zlib.Z_PARTIAL_FLUSH)


class Decompressor:
    """One incoming inflate stream that refuses to grow a payload beyond a limit."""

    __slots__ = ("_stream",)

    def __init__(self) -> None:
        self._stream = zlib.decompressobj()

    def decompress(self, data: bytes, max_size: int) -> bytes:
        """Inflate one packet's payload; raise :class:`ProtocolError` if it is corrupt
        or would exceed ``max_size`` bytes.

        Inflating stops one byte past the limit, so a small packet that expands
        to gigabytes (a compression bomb) costs no more than ``max_size`` of memory.
        """
        try:
            payload = self._stream.decompress(data, max_size + 1)
        except zlib.error as exc:
            raise ProtocolError(
                f"corrupt compressed data: {exc}", SSH_DISCONNECT_COMPRESSION_ERROR
            ) from None
        if len(payload) > max_size:
            raise ProtocolError(
                f"decompressed payload exceeds {max_size} bytes", SSH_DISCONNECT_COMPRESSION_ERROR
            )
        # The stream never ends in SSH; an end marker means the peer's deflate is broken.
        if self._stream.eof:
            raise ProtocolError("compressed stream ended", SSH_DISCONNECT_COMPRESSION_ERROR)
        return payload


_COMPRESSORS: dict[str, Callable[[], Compressor | None]] = {
    NONE: lambda: None,
    ZLIB_OPENSSH: Compressor,
}
_DECOMPRESSORS: dict[str, Callable[[], Decompressor | None]] = {
    NONE: lambda: None,
    ZLIB_OPENSSH: Decompressor,
}


def make_compressor(name: str) -> Compressor | None:
    """The compressor for a negotiated name, or ``None`` for "none"."""
    factory = _COMPRESSORS.get(name)
    if factory is None:
        raise ValueError(f"unknown compression {name!r}")
    return factory()


def make_decompressor(name: str) -> Decompressor | None:
    """The decompressor for a negotiated name, or ``None`` for "none"."""
    factory = _DECOMPRESSORS.get(name)
    if factory is None:
        raise ValueError(f"unknown compression {name!r}")
    return factory()
