"""The in-place sealing contract shared by every packet protection.

The packet layer builds each outgoing packet once, in a ``bytearray`` with
``tag_size`` spare bytes after it, and the sealer encrypts it there and writes
its MAC or tag into the spare bytes: no copy of the payload beyond the one
that framed it. :meth:`InPlaceSealer.seal` is the copying form, for callers
that hold a packet as ``bytes`` (tests, one-off messages).
"""

from __future__ import annotations


class InPlaceSealer:
    """Base of the sealers: subclasses implement :meth:`seal_into`."""

    block_size: int
    length_excluded: bool
    tag_size: int

    def seal_into(self, seq: int, buffer: bytearray, length: int) -> None:
        """Protect ``buffer[:length]`` (a whole cleartext packet) in place and
        write the tag to ``buffer[length:length + tag_size]``."""
        raise NotImplementedError

    def seal(self, seq: int, packet: bytes | bytearray | memoryview) -> bytes:
        """The wire form of ``packet``: encrypted packet followed by its MAC or tag."""
        length = len(packet)
        buffer = bytearray(length + self.tag_size)
        buffer[:length] = packet
        self.seal_into(seq, buffer, length)
        return bytes(buffer)
