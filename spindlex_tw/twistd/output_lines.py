"""A worker's standard output, read in pieces, written on as whole lines.

Worker processes print their text log; when the supervisor writes it into a
file of its own (``twistd --logfile FILE spindlex --workers N``), each
worker's pipe has one :class:`OutputLines`, and the file gets only whole
lines: a line a pipe delivers in two reads is held until its end arrives, so
a line of another process (or of the supervisor) never lands inside it.

What is held is capped: a worker printing without end, no newline in sight,
costs :data:`MAX_HELD` bytes, after which the piece is written as a line of
its own. A worker that ends mid-line loses nothing: :meth:`OutputLines.close`
writes what is held.
"""

from __future__ import annotations

from collections.abc import Callable

#: Bytes of an unfinished line held back before they are written anyway.
MAX_HELD = 64 * 1024


class OutputLines:
    """Hands ``write`` each run of whole lines of the stream :meth:`feed` receives."""

    def __init__(self, write: Callable[[bytes], None], max_held: int = MAX_HELD) -> None:
        self._write = write
        self._max_held = max_held
        self._held = bytearray()

    def feed(self, data: bytes) -> None:
        start = len(self._held)
        self._held += data
        # Only the new bytes can hold the last newline.
        end = self._held.rfind(b"\n", start) + 1
        if end:
            self._write(bytes(self._held[:end]))
            del self._held[:end]
        while len(self._held) >= self._max_held:
            # Ended by a newline of its own, so that the next writer starts a line.
            self._write(bytes(self._held[: self._max_held]) + b"\n")
            del self._held[: self._max_held]

    def close(self) -> None:
        """The stream ended: write the unfinished line, if any, ended by a newline."""
        if self._held:
            self._write(bytes(self._held) + b"\n")
            self._held.clear()
