"""A download from object storage: ranged GETs, a few blocks read ahead and kept.

SFTP clients read a file in small pieces (OpenSSH 32 KiB, up to 64 at a
time), and one HTTP request per piece would cost more than the bytes. A
READ that misses fetches the whole aligned block around it (``block_size``,
one ranged GET) and the next reads are served from it; at most
``blocks_kept`` blocks stay, the oldest dropped first, so a download of any
size holds at most ``block_size * blocks_kept`` bytes. Reading backwards or
at random still works, at one GET per block touched.

The object's size is what it was when the file was opened; an object
replaced meanwhile is read as it now is, as S3 itself gives no snapshot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from spindlex_tw.fs.s3.bucket import Bucket, ObjectInfo

DEFAULT_BLOCK_SIZE = 2 << 20
DEFAULT_BLOCKS_KEPT = 3


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
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        # Reads of one file arrive on several threads; one fetch of a block serves them all.
        self._lock = threading.Lock()

    def read(self, length: int, offset: int) -> bytes:
        out = bytearray()
        with self._lock:
            while len(out) < length and offset < self.info.size:
                start = offset - offset % self.block_size
                block = self._block(start)
                piece = block[offset - start : offset - start + length - len(out)]
                if not piece:
                    break  # the object is shorter now than when it was opened
                out += piece
                offset += len(piece)
        return bytes(out)

    def _block(self, start: int) -> bytes:
        block = self._blocks.get(start)
        if block is not None:
            self._blocks.move_to_end(start)
            return block
        block = self.bucket.get_range(self.info.key, start, self.block_size)
        self._blocks[start] = block
        while len(self._blocks) > self.blocks_kept:
            self._blocks.popitem(last=False)
        return block

    def close(self) -> None:
        with self._lock:
            self._blocks.clear()
