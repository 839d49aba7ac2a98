"""Requests on open files and directories: OPEN, CLOSE, READ, WRITE, FSTAT,
FSETSTAT, OPENDIR, READDIR."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from spindlex_tw.core.wire import Reader
from spindlex_tw.fs.interface import CachedReadUnsupported, DirStream, FileSystem, SetStat
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.fs.staged import StagedFile
from spindlex_tw.protocol.constants import (
    SSH_FX_EOF,
    SSH_FX_FAILURE,
    SSH_FX_NO_SUCH_FILE,
    SSH_FX_OK,
    SSH_FX_PERMISSION_DENIED,
)
from spindlex_tw.sftp import access, replies
from spindlex_tw.sftp.attrs import Attrs, encode_stat
from spindlex_tw.sftp.budget import account_name
from spindlex_tw.sftp.codes import (
    SSH_FXF_APPEND,
    SSH_FXF_CREAT,
    SSH_FXF_EXCL,
    SSH_FXF_READ,
    SSH_FXF_TRUNC,
    SSH_FXF_WRITE,
    SSH_FXP_CLOSE,
    SSH_FXP_FSETSTAT,
    SSH_FXP_FSTAT,
    SSH_FXP_OPEN,
    SSH_FXP_OPENDIR,
    SSH_FXP_READ,
    SSH_FXP_READDIR,
    SSH_FXP_WRITE,
)
from spindlex_tw.sftp.context import Context, Handler
from spindlex_tw.sftp.effects import Wait
from spindlex_tw.sftp.handles import DirHandle, FileHandle
from spindlex_tw.sftp.longname import longname
from spindlex_tw.sftp.replies import Reply
from spindlex_tw.sftp.status import SFTPError

MAX_OFFSET = (1 << 63) - 1  # off_t
# An OPEN with any of these may change the files; only others may open without a worker.
_CHANGES = SSH_FXF_CREAT | SSH_FXF_TRUNC | SSH_FXF_WRITE | SSH_FXF_APPEND


def checked_offset(value: int) -> int:
    """A client offset the kernel can take; beyond off_t it is a bad message (EINVAL)."""
    if value > MAX_OFFSET:
        raise OSError(errno.EINVAL, "offset out of range")
    return value


def setstat_change(attrs: Attrs) -> SetStat:
    return SetStat(
        size=None if attrs.size is None else checked_offset(attrs.size),
        permissions=attrs.permissions,
        times=(attrs.atime, attrs.mtime)
        if attrs.atime is not None and attrs.mtime is not None
        else None,
        owner=(attrs.uid, attrs.gid) if attrs.uid is not None and attrs.gid is not None else None,
    )


def open_flags(pflags: int) -> int:
    """O_* flags for SSH_FXF_* ones, as OpenSSH's flags_from_portable().

    Unlike OpenSSH, APPEND alone opens for writing: appending is writing, and
    the handle would otherwise refuse every write.
    """
    writing = pflags & (SSH_FXF_WRITE | SSH_FXF_APPEND)
    if pflags & SSH_FXF_READ and writing:
        flags = os.O_RDWR
    elif writing:
        flags = os.O_WRONLY
    else:
        flags = os.O_RDONLY
    if pflags & SSH_FXF_APPEND:
        flags |= os.O_APPEND
    if pflags & SSH_FXF_TRUNC:
        flags |= os.O_TRUNC
    if pflags & SSH_FXF_EXCL:
        flags |= os.O_EXCL
    return flags


async def open_file(ctx: Context, rid: int, r: Reader) -> Reply:
    path = r.string()
    pflags = r.uint32()
    attrs = Attrs.decode(r)
    if not ctx.handles.reserve():
        return replies.status(rid, SSH_FX_FAILURE)
    creating = bool(pflags & SSH_FXF_CREAT)
    exclusive = creating and bool(pflags & SSH_FXF_EXCL)
    flags = open_flags(pflags)
    # O_CREAT|O_EXCL never follows a final link: it must fail if the name exists.
    follow = not exclusive
    # Staging renames within a directory of the local disk (fs/staged.py).
    staging = (
        ctx.limits.atomic_uploads and stages(pflags) and isinstance(ctx.fs, LocalFileSystem)
    )
    staged: StagedFile | None = None
    try:
        known, mode = ctx.open_without_asking(creating, attrs.permissions)
        if known and not staging:
            # No hook to consult between resolving and opening: one worker call.
            fd, virtual = await ctx.io(
                partial(ctx.fs.open_path, path, ctx.limits.home, follow, flags, mode),
                # A file to read whose names are all cached opens without a thread
                # hand-off (get -r of small files: one fewer per file).
                attempt=_open_cached(ctx, pflags, path, follow, flags),
            )
        else:
            async with ctx.located(path, follow) as loc:
                await ctx.require(access.open_rule(pflags), loc.path)
                # Refused a new name, CREAT can still open the file that is there.
                if creating and not await ctx.granted(access.CREATE, loc.path):
                    if exclusive:
                        raise SFTPError(None, SSH_FX_PERMISSION_DENIED)
                    creating = False
                mode = None
                if creating:
                    mode = await ctx.creation_mode(
                        ctx.policy.get_file_permissions, loc.path, attrs.permissions
                    )
                try:
                    if staging and mode is not None:
                        staged = await ctx.io(partial(StagedFile.create, loc, flags, mode))
                        fd = staged.fd
                    else:
                        fd = await ctx.io(partial(ctx.fs.open_file, loc, flags, mode))
                except FileNotFoundError as exc:
                    if pflags & SSH_FXF_CREAT and not creating:
                        raise SFTPError(None, SSH_FX_PERMISSION_DENIED) from exc
                    raise
                virtual = loc.path
    except BaseException:
        ctx.handles.release()
        raise
    handle = FileHandle(virtual, ctx.host_path(virtual), fd, pflags, staged)
    return replies.handle(rid, await ctx.install(handle))


def _open_cached(
    ctx: Context, pflags: int, path: bytes, follow: bool, flags: int
) -> Callable[[], tuple[Any, bytes] | None] | None:
    """The storage's ``open_cached`` for an OPEN that only reads, or None if it has none."""
    quick = None if pflags & _CHANGES else getattr(ctx.fs, "open_cached", None)
    return partial(quick, path, ctx.limits.home, follow, flags) if quick else None


def stages(pflags: int) -> bool:
    """Whether an OPEN with ``pflags`` can be an atomic upload (``Limits.atomic_uploads``).

    Only a fresh write can: CREAT with TRUNC and without APPEND, so the file
    starts empty anyway. Appending or writing into an existing file (a resumed
    upload, ``reput``) needs the old content under the real name and is
    written in place; so is CREAT|EXCL, whose name must appear at OPEN.
    """
    wanted = SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC
    return pflags & wanted == wanted and not pflags & (SSH_FXF_APPEND | SSH_FXF_EXCL)


async def close(ctx: Context, rid: int, r: Reader) -> Reply:
    handle = ctx.handles.pop(r.string())
    if handle is None:
        return replies.status(rid, SSH_FX_NO_SUCH_FILE)
    await ctx.release(handle, complete=True)
    return replies.status(rid, SSH_FX_OK)


async def read(ctx: Context, rid: int, r: Reader) -> Reply:
    handle = ctx.file_handle(r.string())
    offset = checked_offset(r.uint64())
    length = min(r.uint32(), ctx.limits.max_read_length)
    if not handle.readable:
        return replies.status(rid, SSH_FX_PERMISSION_DENIED)
    if not length:
        return replies.data(rid, b"")  # odd but allowed; OpenSSH answers the same
    read: Callable[[], bytes | bytearray] = partial(ctx.fs.read, handle.fd, length, offset)
    with handle.use():
        chunk = await ctx.io(
            read,
            # Data in the page cache is copied at once, without a thread hand-off.
            attempt=partial(_read_cached, ctx.fs, handle, length, offset),
        )
    if not chunk:
        return replies.status(rid, SSH_FX_EOF)
    handle.bytes_read += len(chunk)
    return replies.data(rid, chunk)


def _read_cached(
    fs: FileSystem, handle: FileHandle, length: int, offset: int
) -> bytes | bytearray | None:
    """A READ from the page cache, or None if it would wait (or cannot be tried here).

    The data may be the bytearray it was read into: SFTPProtocol sends it as it is.
    """
    if not handle.cached_reads:
        return None
    try:
        return fs.read_cached(handle.fd, length, offset)
    except CachedReadUnsupported:
        handle.cached_reads = False
        return None


async def write(ctx: Context, rid: int, r: Reader) -> Reply:
    handle = ctx.file_handle(r.string())
    offset = checked_offset(r.uint64())
    payload = r.string_view()
    if not handle.writable:
        return replies.status(rid, SSH_FX_PERMISSION_DENIED)
    if not ctx.fs.capabilities.random_writes:
        # Such a storage takes a file as one stream: each write where the last ended.
        if not handle.appending and offset != handle.written_end:
            ctx.supports(False, "writing at an offset other than the end of what was written")
        handle.written_end += len(payload)
    with handle.use():
        if not handle.appending:
            await ctx.io(partial(ctx.fs.write, handle.fd, payload, offset))
            handle.bytes_written += len(payload)
            return replies.status(rid, SSH_FX_OK)
        while handle.writing:  # woken in the order the writes arrived
            await Wait(handle.write_done)
        handle.writing = True
        try:
            await ctx.io(partial(ctx.fs.write, handle.fd, payload, offset))
            handle.bytes_written += len(payload)
        finally:
            handle.writing = False
            handle.write_done.fire()
    return replies.status(rid, SSH_FX_OK)


async def fstat(ctx: Context, rid: int, r: Reader) -> Reply:
    handle = ctx.file_handle(r.string())
    with handle.use():
        st = await ctx.io(partial(ctx.fs.fstat, handle.fd))
    return replies.attrs(rid, Attrs.from_stat(st))


async def fsetstat(ctx: Context, rid: int, r: Reader) -> Reply:
    handle = ctx.file_handle(r.string())
    change = setstat_change(Attrs.decode(r))
    if change.size is not None:
        ctx.supports(ctx.fs.capabilities.random_writes, "changing the size of a file")
    with handle.use():
        # Asked again whatever the handle was opened for: fchmod, fchown and
        # futimens work on a read-only descriptor.
        await ctx.require(access.WRITE_DATA, handle.path)
        await ctx.io(partial(ctx.fs.fsetstat, handle.fd, change))
    return replies.status(rid, SSH_FX_OK)


async def opendir(ctx: Context, rid: int, r: Reader) -> Reply:
    path = r.string()
    if not ctx.handles.reserve():
        return replies.status(rid, SSH_FX_FAILURE)
    try:
        async with ctx.located(path, follow=True) as loc:
            await ctx.require(access.LIST, loc.path)
            stream = await ctx.io(partial(ctx.fs.opendir, loc))
    except BaseException:
        ctx.handles.release()
        raise
    handle = DirHandle(loc.path, ctx.host_path(loc.path), stream)
    return replies.handle(rid, await ctx.install(handle))


def _list(fs: FileSystem, stream: DirStream, count: int) -> list[tuple[bytes, bytes, bytes]]:
    """One READDIR batch as NAME triples; runs in a worker (stats, user lookups)."""
    now = time.time()
    batch = []
    for entry in fs.read_dir(stream, count):
        st = entry.stat
        # Names too long for the room the session reserved show as numbers.
        user = account_name(fs.user_name(st.st_uid)) or str(st.st_uid)
        group = account_name(fs.group_name(st.st_gid)) or str(st.st_gid)
        long = longname(entry.name, st, user, group, now)
        batch.append((entry.name, long, encode_stat(st)))
    return batch


async def readdir(ctx: Context, rid: int, r: Reader) -> Reply:
    handle = ctx.dir_handle(r.string())
    # One listing step at a time per directory: the stream has a single position.
    await ctx.wait_idle(handle)
    if ctx.handles.directory(handle.handle_id) is not handle:
        raise SFTPError(None, SSH_FX_FAILURE)  # closed while this request waited
    with handle.use():
        batch = await ctx.lookup(partial(_list, ctx.fs, handle.stream, ctx.limits.readdir_batch))
    if not batch:
        return replies.status(rid, SSH_FX_EOF)
    return replies.names(rid, batch)


HANDLERS: dict[int, Handler] = {
    SSH_FXP_OPEN: open_file,
    SSH_FXP_CLOSE: close,
    SSH_FXP_READ: read,
    SSH_FXP_WRITE: write,
    SSH_FXP_FSTAT: fstat,
    SSH_FXP_FSETSTAT: fsetstat,
    SSH_FXP_OPENDIR: opendir,
    SSH_FXP_READDIR: readdir,
}
