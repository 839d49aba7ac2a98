"""An upload to object storage: written front to back, stored whole when it is closed.

An object cannot be written in place, so a file opened for writing becomes
an upload. Its writes gather in a buffer; each time the buffer holds a
part (``part_size``, at least S3's 5 MiB minimum) it is sent as one piece
of a multipart upload, so a file of any size passes through at most a part
and the writes in flight, never whole. Closing completes the
multipart upload, and only then does the object appear under its name:
readers see the old object or the whole new one, never a part. A file
smaller than one part is sent with a single PUT instead. An upload the
client never closed (its session ended first) is aborted, and the service
drops the parts it held.

The engine accepts only writes that continue where the last one ended,
but runs them on several worker threads, so they may reach this object
out of order; a write that arrives ahead of its turn waits here, in
memory, for the ones before it (at most one per worker thread).
"""

from __future__ import annotations

import errno
import os
import threading
import time

from spindlex_tw.fs.s3.bucket import Bucket

#: S3's smallest part but the last; MinIO and Ceph RGW keep the same rule.
MIN_PART_SIZE = 5 << 20
DEFAULT_PART_SIZE = 8 << 20
#: S3's limit on the parts of one upload.
MAX_PARTS = 10_000


def _error(number: int, text: str | None = None) -> OSError:
    return OSError(number, text or os.strerror(number))


class S3Upload:
    """The upload of ``key`` in ``bucket``; ``path`` is the client's name for it."""

    def __init__(
        self, bucket: Bucket, key: str, path: bytes, part_size: int = DEFAULT_PART_SIZE
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"a part is at least {MIN_PART_SIZE} bytes, not {part_size}")
        self.bucket = bucket
        self.key = key
        self.path = path
        self.part_size = part_size
        self.mtime = int(time.time())
        self._buffer: list[bytes] = []  # the writes since the last part, in order
        self._buffered = 0  # their bytes
        self._buffered_from = 0  # the file offset of the buffer's first byte
        self._ahead: dict[int, bytes] = {}  # writes that arrived before their turn
        self._highest = 0  # the end of the furthest write, the file's size so far
        self._upload_id: str | None = None
        self._etags: dict[int, str] = {}  # by part number
        self._parts = 0  # part numbers handed out
        self._failed: OSError | None = None
        self._finished = False
        # Held to change the buffer, from any worker thread.
        self._lock = threading.Lock()
        # Held while a part is on the wire: the next part fills meanwhile, and a writer
        # that fills it before the first is sent waits (holding ``_lock``, so every
        # writer of this file waits): at most two parts in memory.
        self._sending = threading.Lock()

    @property
    def size(self) -> int:
        return self._highest

    @property
    def contiguous_end(self) -> int:
        return self._buffered_from + self._buffered

    def write(self, data: memoryview | bytes, offset: int) -> None:
        with self._lock:
            self._usable()
            end = self.contiguous_end
            if offset < end or offset in self._ahead:
                # The engine hands out each offset once: this is not a sequential stream.
                raise _error(errno.EINVAL, "write overlaps what was already written")
            self._highest = max(self._highest, offset + len(data))
            if offset > end:
                self._ahead[offset] = bytes(data)
                return
            self._append(bytes(data))
            while self.contiguous_end in self._ahead:
                self._append(self._ahead.pop(self.contiguous_end))
            if self._buffered < self.part_size:
                return
            if self._parts >= MAX_PARTS:
                self._fail(_error(errno.EFBIG))
            self._sending.acquire()
            try:
                if self._upload_id is None:
                    self._upload_id = self.bucket.start_upload(self.key)
            except OSError as exc:
                self._sending.release()
                self._fail(exc)
            upload_id, part = self._upload_id, self._take()
            assert upload_id is not None
            self._parts += 1
            number = self._parts
        # The part goes out without ``_lock``: the writes after it keep arriving.
        try:
            # Stored before ``_sending`` is let go: complete() counts on every etag.
            self._etags[number] = self.bucket.upload_part(self.key, upload_id, number, part)
        except OSError as exc:
            self._failed = self._failed or exc
            raise
        finally:
            self._sending.release()

    def _append(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffered += len(data)

    def _usable(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._finished:
            raise _error(errno.EBADF)

    def _fail(self, exc: OSError) -> None:
        """Give up the upload: the parts sent are dropped, every later call fails with ``exc``."""
        self._failed = exc
        self._discard()
        raise exc

    def _take(self) -> bytes:
        """The buffer's bytes in one piece, the buffer emptied."""
        part = b"".join(self._buffer)
        self._buffer = []
        self._buffered = 0
        self._buffered_from += len(part)
        return part

    def _discard(self) -> None:
        """Drop what is buffered and the parts sent; call with ``_lock`` held."""
        self._take()
        self._ahead.clear()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            with self._sending:  # a part still on the wire would outlive the abort
                self.bucket.abort_upload(self.key, upload_id)

    def complete(self) -> None:
        """The client closed the file: store it under its name."""
        with self._lock:
            if self._failed is not None:
                self._finished = True
                self._discard()  # a part that failed: nothing is stored
            self._usable()
            self._finished = True
            if self._ahead:
                # A write past a hole: the engine never lets one through, but if it
                # did, storing the file would store a lie.
                self._discard()
                raise _error(errno.EIO, "upload has a gap: not stored")
            try:
                last = self._take()
                if self._upload_id is None:
                    self.bucket.put(self.key, last)
                    return
                with self._sending:  # the part on the wire, if any, is in
                    if last:  # the last part may be smaller than the minimum
                        self._parts += 1
                        self._etags[self._parts] = self.bucket.upload_part(
                            self.key, self._upload_id, self._parts, last
                        )
                    etags = [self._etags[n] for n in range(1, self._parts + 1)]
                    self.bucket.complete_upload(self.key, self._upload_id, etags)
                self._upload_id = None
            except OSError:
                self._discard()
                raise

    def abort(self) -> None:
        """The client went away without closing: nothing is stored, no part is left."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._discard()
