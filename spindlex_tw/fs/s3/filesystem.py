"""The file-system interface on an S3 bucket: one user's tree is the keys below a prefix.

The client's ``/`` is the prefix ``root`` of the bucket (a user's home);
``/a/b`` is the object ``root + "a/b"`` or, as a directory, every key below
``root + "a/b/"`` (see :mod:`spindlex_tw.fs.s3.listing`). What objects cannot
do is declared in :attr:`S3FileSystem.capabilities` or answered
SSH_FX_OP_UNSUPPORTED with a text saying so, as the established SFTP
gateways to S3 do:

- **Writes are sequential**: a file is uploaded from its start to its end
  (:mod:`spindlex_tw.fs.s3.upload`) and appears when it is closed; a write
  at another offset, a size change, and opening an existing object for
  writing without truncating it (a resumed upload, ``reput``) are refused.
- **Rename is copy then delete**, so it is not atomic. A directory is renamed
  object by object, up to :data:`MAX_RENAMED_OBJECTS`; a larger one is refused.
- **No symbolic or hard links**, no copy-data.
- **Permissions, owners and times are not kept**: SETSTAT of them succeeds
  and changes nothing (SFTPGo's ``setstat_mode`` 2 for cloud storage), so
  clients that set times after an upload do not fail; files show 0644,
  directories 0755, times the service's last-modified.
- **statvfs** reports an unbounded store; with a quota, the quota.

Every method is blocking HTTP, run by the engine on its worker threads.
"""

from __future__ import annotations

import errno
import os
import posixpath

from spindlex_tw.exceptions import SFTPError
from spindlex_tw.fs.interface import (
    CachedReadUnsupported,
    Capabilities,
    DirEntry,
    SetStat,
)
from spindlex_tw.fs.s3.bucket import Bucket, ObjectInfo
from spindlex_tw.fs.s3.download import S3Download
from spindlex_tw.fs.s3.listing import S3DirStream, dir_stat, file_stat, usage_below
from spindlex_tw.fs.s3.upload import DEFAULT_PART_SIZE, S3Upload
from spindlex_tw.protocol.constants import SSH_FX_OP_UNSUPPORTED

#: A directory rename copies each object; past this many it is refused, not half done.
MAX_RENAMED_OBJECTS = 1000
#: S3's limit on a key, in bytes of UTF-8.
MAX_KEY_BYTES = 1024
NAME_MAX = 255
BLOCK = 4096
#: What statvfs reports without a quota: object storage has no size of its own.
REPORTED_CAPACITY = 1 << 50


def _error(number: int) -> OSError:
    return OSError(number, os.strerror(number))


def unsupported(what: str) -> SFTPError:
    return SFTPError(f"This storage does not support {what}", SSH_FX_OP_UNSUPPORTED)


class S3Location:
    """The client path ``path`` and its key below the root (``""`` for the root itself)."""

    __slots__ = ("key", "path")

    def __init__(self, path: bytes, key: str) -> None:
        self.path = path
        self.key = key

    def close(self) -> None:
        """A location holds nothing open."""


S3File = S3Upload | S3Download


class S3FileSystem:
    """The keys of ``bucket`` below ``root`` served as one tree."""

    capabilities = Capabilities(
        random_writes=False, symlinks=False, hard_links=False, statvfs=True, never_waits=False
    )

    def __init__(self, bucket: Bucket, root: str = "", part_size: int = DEFAULT_PART_SIZE) -> None:
        root = root.strip("/")
        self.bucket = bucket
        self.root = root + "/" if root else ""
        self.part_size = part_size

    def close(self) -> None:
        """The bucket's client is shared by every session: nothing is this session's alone."""

    def host_path(self, virtual: bytes) -> str:
        return self.bucket.url(self.root + os.fsdecode(virtual).lstrip("/"))

    # --- names and kinds ---------------------------------------------------------------------

    def locate(self, path: bytes, base: bytes, follow: bool) -> S3Location:
        # No links in an object store: ``follow`` changes nothing.
        if b"\0" in path:
            raise _error(errno.EINVAL)
        if not path.startswith(b"/"):
            path = base.rstrip(b"/") + b"/" + path
        try:
            text = path.decode("utf-8")
        except UnicodeDecodeError:
            raise _error(errno.EINVAL) from None  # a key is UTF-8
        # ".." at the root stays there, as in a chroot.
        key = posixpath.normpath("/" + text).lstrip("/")
        if key == ".":
            key = ""
        if len((self.root + key).encode("utf-8")) + 1 > MAX_KEY_BYTES:
            raise _error(errno.ENAMETOOLONG)
        if any(len(part.encode("utf-8")) > NAME_MAX for part in key.split("/")):
            raise _error(errno.ENAMETOOLONG)
        return S3Location(("/" + key).encode("utf-8"), key)

    def _object(self, key: str) -> ObjectInfo | None:
        return None if not key else self.bucket.head(self.root + key)

    def _is_dir(self, key: str) -> bool:
        # A marker or any object below: one listing request answers both.
        return not key or self.bucket.any_below(self.root + key + "/")

    def _parent_is_dir(self, key: str) -> None:
        parent = posixpath.dirname(key)
        if not self._is_dir(parent):
            raise _error(errno.ENOENT if self._object(parent) is None else errno.ENOTDIR)

    # --- files -------------------------------------------------------------------------------

    def open_path(
        self, path: bytes, base: bytes, follow: bool, flags: int, create_mode: int | None
    ) -> tuple[S3File, bytes]:
        loc = self.locate(path, base, follow)
        return self.open_file(loc, flags, create_mode), loc.path

    def open_file(self, loc: S3Location, flags: int, create_mode: int | None) -> S3File:
        info = self._object(loc.key)
        if info is None and self._is_dir(loc.key):
            raise _error(errno.EISDIR)
        if flags & os.O_ACCMODE == os.O_RDONLY:
            if info is None:
                raise _error(errno.ENOENT)
            return S3Download(self.bucket, info, loc.path)
        if info is not None:
            if create_mode is not None and flags & os.O_EXCL:
                raise _error(errno.EEXIST)
            if not flags & os.O_TRUNC or flags & os.O_APPEND:
                raise unsupported("writing into an existing file: upload it whole instead")
        elif create_mode is None:
            raise _error(errno.ENOENT)
        else:
            self._parent_is_dir(loc.key)
        return S3Upload(self.bucket, self.root + loc.key, loc.path, self.part_size)

    def read(self, file: S3File, length: int, offset: int) -> bytes:
        if isinstance(file, S3Upload):
            raise unsupported("reading a file while it is being uploaded")
        return file.read(length, offset)

    def read_cached(self, file: S3File, length: int, offset: int) -> bytes | None:
        raise CachedReadUnsupported  # every read may wait on the network

    def write(self, file: S3File, data: memoryview | bytes, offset: int) -> None:
        if isinstance(file, S3Download):
            raise _error(errno.EBADF)
        file.write(data, offset)

    def close_file(self, file: S3File) -> None:
        if isinstance(file, S3Upload):
            file.complete()
        else:
            file.close()

    def abandon_file(self, file: S3File) -> None:
        """The client never closed ``file`` (its session ended): an upload is dropped."""
        if isinstance(file, S3Upload):
            file.abort()
        else:
            file.close()

    def fstat(self, file: S3File) -> os.stat_result:
        if isinstance(file, S3Upload):
            return file_stat(file.size, file.mtime)
        return file_stat(file.info.size, file.info.mtime)

    def fsync(self, file: S3File) -> None:
        if isinstance(file, S3Upload):
            raise unsupported("fsync of an upload: it is stored when it is closed")

    def fstatvfs(self, file: S3File) -> os.statvfs_result:
        return self._statvfs()

    def fsetstat(self, file: S3File, change: SetStat) -> None:
        self._ignored(change)

    @staticmethod
    def _ignored(change: SetStat) -> None:
        """Permissions, owners and times are not kept; a size would be, and is refused."""
        if change.size is not None:
            raise unsupported("changing the size of a file")

    def copy_step(
        self,
        src: S3File,
        src_offset: int,
        end: int,
        dst: S3File,
        dst_offset: int,
        step: int,
    ) -> int:
        raise unsupported("copy-data")

    # --- names -------------------------------------------------------------------------------

    def stat(self, loc: S3Location) -> os.stat_result:
        info = self._object(loc.key)
        if info is not None:
            return file_stat(info.size, info.mtime)
        if self._is_dir(loc.key):
            return dir_stat()
        raise _error(errno.ENOENT)

    def setstat(self, loc: S3Location, change: SetStat) -> None:
        self.stat(loc)  # the name must exist, even if nothing of it changes
        self._ignored(change)

    def statvfs(self, loc: S3Location) -> os.statvfs_result:
        self.stat(loc)
        return self._statvfs()

    @staticmethod
    def _statvfs() -> os.statvfs_result:
        blocks = REPORTED_CAPACITY // BLOCK
        files = 1 << 40
        fields = (BLOCK, BLOCK, blocks, blocks, blocks, files, files, files, 0, NAME_MAX)
        return os.statvfs_result(fields, {"f_fsid": 0})

    def opendir(self, loc: S3Location) -> S3DirStream:
        if not self._is_dir(loc.key):
            raise _error(errno.ENOENT if self._object(loc.key) is None else errno.ENOTDIR)
        return S3DirStream(self.bucket, self._dir_prefix(loc.key))

    def _dir_prefix(self, key: str) -> str:
        return self.root + key + "/" if key else self.root

    def read_dir(self, stream: S3DirStream, count: int) -> list[DirEntry]:
        return stream.read(count)

    def remove(self, loc: S3Location) -> None:
        if self._object(loc.key) is None:
            raise _error(errno.EISDIR if self._is_dir(loc.key) else errno.ENOENT)
        self.bucket.delete(self.root + loc.key)

    def mkdir(self, loc: S3Location, mode: int) -> None:
        if not loc.key or self._object(loc.key) is not None or self._is_dir(loc.key):
            raise _error(errno.EEXIST)
        self._parent_is_dir(loc.key)
        self.bucket.put(self._dir_prefix(loc.key), b"")

    def rmdir(self, loc: S3Location) -> None:
        if not loc.key:
            raise _error(errno.EBUSY)
        prefix = self._dir_prefix(loc.key)
        keys = self.bucket.keys_below(prefix, at_most=1)
        if keys == []:
            raise _error(errno.ENOENT if self._object(loc.key) is None else errno.ENOTDIR)
        if keys != [prefix]:  # None: more than one key
            raise _error(errno.ENOTEMPTY)
        self.bucket.delete(prefix)

    def rename(self, old: S3Location, new: S3Location) -> None:
        self._move(old, new, replace=True)

    def rename_no_replace(self, old: S3Location, new: S3Location) -> None:
        self._move(old, new, replace=False)

    def _move(self, old: S3Location, new: S3Location, replace: bool) -> None:
        if not old.key or not new.key:
            raise _error(errno.EBUSY)
        if old.key == new.key:
            self.stat(old)
            return
        if self._object(old.key) is not None:
            self._move_file(old.key, new.key, replace)
        elif self._is_dir(old.key):
            self._move_dir(old.key, new.key, replace)
        else:
            raise _error(errno.ENOENT)

    def _move_file(self, old: str, new: str, replace: bool) -> None:
        if self._object(new) is not None:
            if not replace:
                raise _error(errno.EEXIST)
        elif self._is_dir(new):
            raise _error(errno.EISDIR)
        else:
            self._parent_is_dir(new)
        self.bucket.copy(self.root + old, self.root + new)
        self.bucket.delete(self.root + old)

    def _move_dir(self, old: str, new: str, replace: bool) -> None:
        if (new + "/").startswith(old + "/"):
            raise _error(errno.EINVAL)  # a directory into itself
        if self._object(new) is not None:
            raise _error(errno.EEXIST if not replace else errno.ENOTDIR)
        target = self._dir_prefix(new)
        existing = self.bucket.keys_below(target, at_most=1)
        if existing != []:  # a directory there, empty or not (None: more than one key)
            if not replace:
                raise _error(errno.EEXIST)
            if existing != [target]:
                raise _error(errno.ENOTEMPTY)
        else:
            self._parent_is_dir(new)
        source = self._dir_prefix(old)
        keys = self.bucket.keys_below(source, at_most=MAX_RENAMED_OBJECTS)
        if keys is None:
            raise unsupported(
                f"renaming a directory of more than {MAX_RENAMED_OBJECTS} objects "
                "(each is copied): move its contents in smaller steps"
            )
        # Copied first, deleted after: a failure half way leaves both, never neither.
        for key in keys:
            self.bucket.copy(key, target + key[len(source) :])
        if not existing and source not in keys:
            self.bucket.put(target, b"")  # the new name keeps the directory once emptied
        for key in keys:
            self.bucket.delete(key)

    def readlink(self, loc: S3Location) -> bytes:
        self.stat(loc)
        raise _error(errno.EINVAL)  # whatever exists is not a link

    def symlink(self, target: bytes, loc: S3Location) -> None:
        raise unsupported("symbolic links")

    def link(self, old: S3Location, new: S3Location) -> None:
        raise unsupported("hard links")

    def usage(self, loc: S3Location) -> tuple[int, int]:
        info = self._object(loc.key)
        if info is not None:
            return info.size, 1
        if not self._is_dir(loc.key):
            raise _error(errno.ENOENT)
        return usage_below(self.bucket, self._dir_prefix(loc.key))

    # --- accounts ----------------------------------------------------------------------------

    def user_name(self, uid: int) -> str | None:
        return None  # objects have no owners: files show the server's numbers

    def group_name(self, gid: int) -> str | None:
        return None
