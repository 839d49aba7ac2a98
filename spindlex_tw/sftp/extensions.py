"""SSH_FXP_EXTENDED requests: OpenSSH's extensions, with the wire formats of its PROTOCOL."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from typing import Final

from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.wire import Reader, string, uint64
from spindlex_tw.fs.interface import FileSystem
from spindlex_tw.protocol.constants import (
    SSH_FX_BAD_MESSAGE,
    SSH_FX_EOF,
    SSH_FX_FAILURE,
    SSH_FX_NO_SUCH_FILE,
    SSH_FX_OK,
    SSH_FX_OP_UNSUPPORTED,
    SSH_FX_PERMISSION_DENIED,
)
from spindlex_tw.sftp import access, replies
from spindlex_tw.sftp.attrs import Attrs
from spindlex_tw.sftp.budget import account_name, id_count
from spindlex_tw.sftp.codes import SSH_FXE_STATVFS_ST_NOSUID, SSH_FXE_STATVFS_ST_RDONLY
from spindlex_tw.sftp.context import Context, Handler, SessionClosed
from spindlex_tw.sftp.effects import Blocking
from spindlex_tw.sftp.file_ops import MAX_OFFSET, checked_offset, setstat_change
from spindlex_tw.sftp.path_ops import rename_with, resolve
from spindlex_tw.sftp.replies import Reply


async def posix_rename(ctx: Context, rid: int, r: Reader) -> Reply:
    return await rename_with(ctx, rid, r, replace=True)


def _statvfs_reply(rid: int, st: os.statvfs_result) -> Reply:
    flag = SSH_FXE_STATVFS_ST_RDONLY if st.f_flag & os.ST_RDONLY else 0
    flag |= SSH_FXE_STATVFS_ST_NOSUID if st.f_flag & os.ST_NOSUID else 0
    fields = (
        st.f_bsize,
        st.f_frsize,
        st.f_blocks,
        st.f_bfree,
        st.f_bavail,
        st.f_files,
        st.f_ffree,
        st.f_favail,
        st.f_fsid,
        flag,
        st.f_namemax,
    )
    return replies.extended_reply(rid, b"".join(uint64(v & 0xFFFFFFFFFFFFFFFF) for v in fields))


async def statvfs(ctx: Context, rid: int, r: Reader) -> Reply:
    ctx.supports(ctx.fs.capabilities.statvfs, "statvfs")
    async with ctx.located(r.string(), follow=True) as loc:
        st = await ctx.io(partial(ctx.fs.statvfs, loc))
    return _statvfs_reply(rid, st)


async def fstatvfs(ctx: Context, rid: int, r: Reader) -> Reply:
    ctx.supports(ctx.fs.capabilities.statvfs, "statvfs")
    handle = ctx.file_handle(r.string())
    with handle.use():
        st = await ctx.io(partial(ctx.fs.fstatvfs, handle.fd))
    return _statvfs_reply(rid, st)


async def hardlink(ctx: Context, rid: int, r: Reader) -> Reply:
    old_path = r.string()
    new_path = r.string()
    ctx.supports(ctx.fs.capabilities.hard_links, "hard links")
    async with (
        ctx.located(old_path, follow=False) as old,
        ctx.located(new_path, follow=False) as new,
    ):
        # A second name for the data is a way to write it: writing the source is asked.
        await ctx.require(access.WRITE_DATA, old.path)
        await ctx.require(access.NAME, new.path)
        await ctx.io(partial(ctx.fs.link, old, new))
    return replies.status(rid, SSH_FX_OK)


async def fsync(ctx: Context, rid: int, r: Reader) -> Reply:
    handle = ctx.file_handle(r.string(), missing=SSH_FX_NO_SUCH_FILE)
    if not handle.writable:
        # As OpenSSH's read-only mode: flushing is a write, granted when the handle was opened.
        return replies.status(rid, SSH_FX_PERMISSION_DENIED)
    with handle.use():
        await ctx.io(partial(ctx.fs.fsync, handle.fd))
    return replies.status(rid, SSH_FX_OK)


async def lsetstat(ctx: Context, rid: int, r: Reader) -> Reply:
    path = r.string()
    attrs = Attrs.decode(r)
    if attrs.size is not None:
        return replies.status(rid, SSH_FX_BAD_MESSAGE)  # a link has no size to set
    change = setstat_change(attrs)
    async with ctx.located(path, follow=False) as loc:
        await ctx.require(access.WRITE_DATA, loc.path)
        await ctx.io(partial(ctx.fs.setstat, loc, change))
    return replies.status(rid, SSH_FX_OK)


async def limits(ctx: Context, rid: int, r: Reader) -> Reply:
    lim = ctx.limits
    body = (
        uint64(lim.max_packet_length)
        + uint64(lim.max_read_length)
        + uint64(lim.max_write_length)
        + uint64(lim.max_open_handles)
    )
    return replies.extended_reply(rid, body)


async def expand_path(ctx: Context, rid: int, r: Reader) -> Reply:
    path = r.string()
    home = ctx.limits.home
    if path == b"~" or path.startswith(b"~/"):
        path = home + path[1:]
    elif path.startswith(b"~"):
        user, _, rest = path[1:].partition(b"/")
        if ctx.username is None or user != ctx.username.encode("utf-8", "surrogateescape"):
            # Other accounts' homes are none of this session's business.
            return replies.status(rid, SSH_FX_NO_SUCH_FILE, "no such user")
        path = home + b"/" + rest
    return await resolve(ctx, rid, path)


async def copy_data(ctx: Context, rid: int, r: Reader) -> Reply:
    source = ctx.handles.file(r.string())
    read_offset = checked_offset(r.uint64())
    length = r.uint64()
    target = ctx.handles.file(r.string())
    write_offset = checked_offset(r.uint64())
    if source is None or target is None:
        return replies.status(rid, SSH_FX_NO_SUCH_FILE)  # EBADF, as OpenSSH
    if not source.readable or not target.writable:
        return replies.status(rid, SSH_FX_PERMISSION_DENIED)
    ctx.supports(ctx.fs.capabilities.random_writes, "copy-data")
    # Length 0 copies to the end of the file, as OpenSSH's sftp-server does.
    end = MAX_OFFSET if length == 0 else min(read_offset + length, MAX_OFFSET)
    with source.use(), target.use():
        st_source = await ctx.io(partial(ctx.fs.fstat, source.fd))
        st_target = await ctx.io(partial(ctx.fs.fstat, target.fd))
        if (
            source is target
            or source.path == target.path
            or ((st_source.st_dev, st_source.st_ino) == (st_target.st_dev, st_target.st_ino))
        ):
            return replies.status(rid, SSH_FX_FAILURE)  # copying a file onto itself
        while read_offset < end:
            if ctx.closed:
                raise SessionClosed  # nobody is left to want the rest of the copy
            # One step is what one WRITE may carry (its buffer is in the session's
            # budget), always in a worker, even where file calls run inline: the
            # event loop serves every other request and session between steps.
            moved = await Blocking(
                partial(
                    ctx.fs.copy_step,
                    source.fd,
                    read_offset,
                    end,
                    target.fd,
                    write_offset,
                    ctx.limits.max_write_length,
                )
            )
            if not moved:
                break
            read_offset += moved
            write_offset += moved
    short = length != 0 and read_offset < end
    return replies.status(rid, SSH_FX_EOF if short else SSH_FX_OK)


async def home_directory(ctx: Context, rid: int, r: Reader) -> Reply:
    user = r.string()
    if user and (ctx.username is None or user != ctx.username.encode("utf-8", "surrogateescape")):
        return replies.status(rid, SSH_FX_FAILURE)
    return replies.single_name(rid, ctx.limits.home)


def _ids(blob: bytes) -> list[int]:
    if len(blob) % 4:
        raise DecodeError("id list is not a whole number of uint32")
    return [int.from_bytes(blob[i : i + 4], "big") for i in range(0, len(blob), 4)]


def _names(fs: FileSystem, uids: Iterable[int], gids: Iterable[int]) -> bytes:
    """The reply body; runs in a worker because account lookups may hit the network.

    Every name fits the room the session reserved (see ``budget.users_groups_room``).
    """
    users = b"".join(string(account_name(fs.user_name(uid)) or "") for uid in uids)
    groups = b"".join(string(account_name(fs.group_name(gid)) or "") for gid in gids)
    return string(users) + string(groups)


async def users_groups_by_id(ctx: Context, rid: int, r: Reader) -> Reply:
    uid_blob = r.string_view()
    gid_blob = r.string_view()
    if id_count(len(uid_blob)) + id_count(len(gid_blob)) > ctx.limits.max_ids_per_request:
        # OpenSSH's sftp then lists the numbers instead of the names.
        return replies.status(rid, SSH_FX_FAILURE, "too many ids in one request")
    uids = _ids(bytes(uid_blob))
    gids = _ids(bytes(gid_blob))
    return replies.extended_reply(rid, await ctx.lookup(partial(_names, ctx.fs, uids, gids)))


# name -> (version advertised in VERSION, handler); the VERSION order is this order.
EXTENSIONS: Final[dict[bytes, tuple[str, Handler]]] = {
    b"posix-rename@openssh.com": ("1", posix_rename),
    b"statvfs@openssh.com": ("2", statvfs),
    b"fstatvfs@openssh.com": ("2", fstatvfs),
    b"hardlink@openssh.com": ("1", hardlink),
    b"fsync@openssh.com": ("1", fsync),
    b"lsetstat@openssh.com": ("1", lsetstat),
    b"limits@openssh.com": ("1", limits),
    b"expand-path@openssh.com": ("1", expand_path),
    b"copy-data": ("1", copy_data),
    b"home-directory": ("1", home_directory),
    b"users-groups-by-id@openssh.com": ("1", users_groups_by_id),
}


def advertised() -> list[tuple[str, str]]:
    return [(name.decode("ascii"), version) for name, (version, _) in EXTENSIONS.items()]


async def extended(ctx: Context, rid: int, r: Reader) -> Reply:
    entry = EXTENSIONS.get(r.string())
    if entry is None:
        return replies.status(rid, SSH_FX_OP_UNSUPPORTED)
    return await entry[1](ctx, rid, r)
