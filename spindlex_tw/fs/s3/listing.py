"""Directories of object storage: key prefixes listed a page at a time, and their usage.

A directory ``a/b`` is every key that starts with ``a/b/``; an empty object
named ``a/b/`` (a marker, as the S3 console and other SFTP gateways make)
keeps it when nothing else is in it. Listing it asks for the keys below the
prefix with the delimiter ``/``: the service answers with the objects
directly in it and, once each, the prefixes of its subdirectories. Pages
(up to 1000 names each) are fetched as the client reads the directory, so
a huge one is never held whole.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from spindlex_tw.fs.interface import DirEntry
from spindlex_tw.fs.s3.bucket import Bucket, ObjectInfo

FILE_MODE = stat.S_IFREG | 0o644
DIR_MODE = stat.S_IFDIR | 0o755


def file_stat(size: int, mtime: int) -> os.stat_result:
    return os.stat_result((FILE_MODE, 0, 0, 1, os.getuid(), os.getgid(), size, mtime, mtime, mtime))


def dir_stat(mtime: int = 0) -> os.stat_result:
    return os.stat_result((DIR_MODE, 0, 0, 2, os.getuid(), os.getgid(), 0, mtime, mtime, mtime))


class S3DirStream:
    """The entries of the directory whose keys start with ``prefix`` (ending in ``/``)."""

    def __init__(self, bucket: Bucket, prefix: str) -> None:
        self._pages: Iterator[tuple[list[str], list[ObjectInfo]]] = bucket.pages(
            prefix, delimiter=True
        )
        self._prefix = prefix
        self._pending: list[DirEntry] = [DirEntry(b".", dir_stat()), DirEntry(b"..", dir_stat())]

    def read(self, count: int) -> list[DirEntry]:
        while len(self._pending) < count:
            if not self._fill():
                break
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    def _fill(self) -> bool:
        """One more page of entries; False at the end."""
        page = next(self._pages, None)
        if page is None:
            return False
        prefixes, objects = page
        skip = len(self._prefix)
        for prefix in prefixes:
            self._pending.append(DirEntry(prefix[skip:-1].encode("utf-8"), dir_stat()))
        for info in objects:
            if info.key != self._prefix:  # the directory's own marker
                name = info.key[skip:].encode("utf-8")
                self._pending.append(DirEntry(name, file_stat(info.size, info.mtime)))
        return True

    def close(self) -> None:
        self._pages = iter(())
        self._pending = []


def usage_below(bucket: Bucket, prefix: str) -> tuple[int, int]:
    """Bytes and files of every object below ``prefix``, directory markers not counted."""
    total = files = 0
    for _, objects in bucket.pages(prefix, delimiter=False):
        for info in objects:
            if not info.key.endswith("/"):
                total += info.size
                files += 1
    return total, files
