"""A download from object storage: one streaming GET read ahead in blocks, a bounded few kept.

SFTP clients read a file in many pieces at once (OpenSSH 9: up to 64 reads
of 256 KiB in flight, not always arriving in order), and one HTTP request
per piece would cost more than the bytes. A download is instead one GET of
the object from where the reads are to its end, read block by block
(``block_size``) as the reads need them: a read ahead of the stream reads
through to its block, keeping the blocks it passes for the reads that will
want them. A block is dropped as soon as every byte of it has been read,
and at most ``blocks_kept`` are held (the least recently used dropped
first), so a download of any size holds at most ``block_size *
blocks_kept`` bytes (16 MiB by default) whatever the client does. A read
behind the stream, or further ahead than the blocks kept, starts a new GET
there (a ranged GET): reading backwards or at random works, at one request
per jump.

The object's size is what it was when the file was opened; an object
replaced meanwhile is read as it now is, as S3 itself gives no snapshot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import partial
from typing import Any

from spindlex_tw.fs.s3.bucket import Bucket, ObjectInfo, translated

DEFAULT_BLOCK_SIZE = 1 << 20
#: Enough for OpenSSH's 16 MiB of reads in flight without reading a block twice.
DEFAULT_BLOCKS_KEPT = 16


class _Block:
    __slots__ = ("data", "served")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.served = 0  # bytes handed out: all of them, and the block can go


class S3Download:
    """Reading the object ``info`` of ``bucket``; ``path`` is the client's name for it."""

    def __init__(
        self,
        bucket: Bucket,
        info: ObjectInfo,
        path: bytes,
        block_size: int = DEFAULT_BLOCK_SIZE,
        blocks_kept: int = DEFAULT_BLOCKS_KEPT,
    ) -> None:
        self.bucket = bucket
        self.info = info
        self.path = path
        self.block_size = block_size
        self.blocks_kept = blocks_kept
        self._blocks: OrderedDict[int, _Block] = OrderedDict()
        self._body: Any = None  # the open GET, None before the first read and after a jump
        self._position = 0  # where the open GET is
        # Reads arrive on several threads; one of them reads the stream at a time.
        self._lock = threading.Lock()

    def read(self, length: int, offset: int) -> bytes:
        out = bytearray()
        with self._lock:
            while len(out) < length and offset < self.info.size:
                start = offset - offset % self.block_size
                block = self._block(start)
                piece = block.data[offset - start : offset - start + length - len(out)]
                if not piece:
                    break  # the object is shorter now than when it was opened
                out += piece
                offset += len(piece)
                block.served += len(piece)
                if block.served >= len(block.data):
                    self._blocks.pop(start, None)  # read through: not asked for again
        return bytes(out)

    def _block(self, start: int) -> _Block:
        block = self._blocks.get(start)
        if block is not None:
            self._blocks.move_to_end(start)
            return block
        ahead = start - self._position
        if self._body is None or not 0 <= ahead <= self.block_size * self.blocks_kept:
            self._close_stream()
            self._body = self.bucket.stream(self.info.key, start)
            self._position = start
        while True:
            at = self._position
            block = self._next_block()
            if at == start or not block.data:
                return block

    def _next_block(self) -> _Block:
        """The stream's next block, kept for the reads that will want it."""
        body = self._body
        pieces: list[bytes] = []
        wanted = self.block_size
        try:
            while wanted:
                piece = bytes(translated(partial(body.read, wanted)))
                if not piece:
                    break
                pieces.append(piece)
                wanted -= len(piece)
        except OSError:
            self._close_stream()
            raise
        block = _Block(b"".join(pieces))
        if block.data:
            self._blocks[self._position] = block
            while len(self._blocks) > self.blocks_kept:
                self._blocks.popitem(last=False)
        self._position += len(block.data)
        return block

    def _close_stream(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()

    def close(self) -> None:
        with self._lock:
            self._close_stream()
            self._blocks.clear()
