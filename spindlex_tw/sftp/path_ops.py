"""Requests on names: STAT, LSTAT, SETSTAT, REMOVE, MKDIR, RMDIR, REALPATH,
RENAME, READLINK, SYMLINK."""

from __future__ import annotations

from functools import partial

from spindlex_tw.core.wire import Reader
from spindlex_tw.protocol.constants import SSH_FX_OK
from spindlex_tw.sftp import access, replies
from spindlex_tw.sftp.attrs import Attrs
from spindlex_tw.sftp.codes import (
    SSH_FXP_LSTAT,
    SSH_FXP_MKDIR,
    SSH_FXP_READLINK,
    SSH_FXP_REALPATH,
    SSH_FXP_REMOVE,
    SSH_FXP_RENAME,
    SSH_FXP_RMDIR,
    SSH_FXP_SETSTAT,
    SSH_FXP_STAT,
    SSH_FXP_SYMLINK,
)
from spindlex_tw.sftp.context import Context, Handler
from spindlex_tw.sftp.file_ops import setstat_change
from spindlex_tw.sftp.replies import Reply

OK = SSH_FX_OK


async def _stat(ctx: Context, rid: int, r: Reader, follow: bool) -> Reply:
    async with ctx.located(r.string(), follow=follow) as loc:
        await ctx.require(access.READ_DATA, loc.path)
        st = await ctx.io(partial(ctx.fs.stat, loc))
    return replies.attrs(rid, Attrs.from_stat(st))


async def stat(ctx: Context, rid: int, r: Reader) -> Reply:
    return await _stat(ctx, rid, r, follow=True)


async def lstat(ctx: Context, rid: int, r: Reader) -> Reply:
    return await _stat(ctx, rid, r, follow=False)


async def setstat(ctx: Context, rid: int, r: Reader) -> Reply:
    path = r.string()
    change = setstat_change(Attrs.decode(r))
    if change.size is not None:
        ctx.supports(ctx.fs.capabilities.random_writes, "changing the size of a file")
    async with ctx.located(path, follow=True) as loc:
        await ctx.require(access.WRITE_DATA, loc.path)
        await ctx.io(partial(ctx.fs.setstat, loc, change))
    return replies.status(rid, OK)


async def remove(ctx: Context, rid: int, r: Reader) -> Reply:
    async with ctx.located(r.string(), follow=False) as loc:
        await ctx.require(access.NAME, loc.path)
        await ctx.io(partial(ctx.fs.remove, loc))
    return replies.status(rid, OK)


async def mkdir(ctx: Context, rid: int, r: Reader) -> Reply:
    path = r.string()
    attrs = Attrs.decode(r)
    async with ctx.located(path, follow=False) as loc:
        await ctx.require(access.DIRECTORY_NAME, loc.path)
        mode = await ctx.creation_mode(
            ctx.policy.get_directory_permissions, loc.path, attrs.permissions
        )
        await ctx.io(partial(ctx.fs.mkdir, loc, mode))
    return replies.status(rid, OK)


async def rmdir(ctx: Context, rid: int, r: Reader) -> Reply:
    async with ctx.located(r.string(), follow=False) as loc:
        await ctx.require(access.DIRECTORY_NAME, loc.path)
        await ctx.io(partial(ctx.fs.rmdir, loc))
    return replies.status(rid, OK)


async def resolve(ctx: Context, rid: int, path: bytes) -> Reply:
    """The canonical form of ``path`` inside the root, as REALPATH answers it.

    Like OpenSSH, a missing final component is fine (``put`` to a new name
    asks), a missing directory on the way is not.
    """
    async with ctx.located(path or b".", follow=True) as loc:
        return replies.single_name(rid, loc.path)


async def realpath(ctx: Context, rid: int, r: Reader) -> Reply:
    return await resolve(ctx, rid, r.string())


async def rename_with(ctx: Context, rid: int, r: Reader, replace: bool) -> Reply:
    old_path = r.string()
    new_path = r.string()
    async with (
        ctx.located(old_path, follow=False) as old,
        ctx.located(new_path, follow=False) as new,
    ):
        # The old name goes, the new one comes (or replaces what it named).
        await ctx.require(access.NAME, old.path)
        await ctx.require(access.NAME, new.path)
        move = ctx.fs.rename if replace else ctx.fs.rename_no_replace
        await ctx.io(partial(move, old, new))
    return replies.status(rid, OK)


async def rename(ctx: Context, rid: int, r: Reader) -> Reply:
    # SSH_FXP_RENAME never replaces an existing target; posix-rename@openssh.com does.
    return await rename_with(ctx, rid, r, replace=False)


async def readlink(ctx: Context, rid: int, r: Reader) -> Reply:
    ctx.supports(ctx.fs.capabilities.symlinks, "symbolic links")
    async with ctx.located(r.string(), follow=False) as loc:
        await ctx.require(access.READ_DATA, loc.path)
        target = await ctx.io(partial(ctx.fs.readlink, loc))
    return replies.single_name(rid, target)


def symlink_target_first(client_version: str) -> bool:
    """Does the client with this identification string send SYMLINK's target first?

    OpenSSH's sftp reverses the draft's order (link path, then target) and
    Paramiko sends the same. AsyncSSH sends the draft's order unless the
    server's banner names OpenSSH (ours does not), so an AsyncSSH client,
    unless it calls itself OpenSSH, is read in the draft's order. Any other
    client gets OpenSSH's order, the one clients made to work with OpenSSH's
    server send.
    """
    return "AsyncSSH" not in client_version or "OpenSSH" in client_version


def read_symlink(ctx: Context, r: Reader) -> tuple[bytes, bytes]:
    """SYMLINK's (target, new link path), in the order this session's client sends them."""
    first, second = r.string(), r.string()
    return (first, second) if ctx.limits.symlink_target_first else (second, first)


async def symlink(ctx: Context, rid: int, r: Reader) -> Reply:
    target, link_path = read_symlink(ctx, r)
    ctx.supports(ctx.fs.capabilities.symlinks, "symbolic links")
    async with ctx.located(link_path, follow=False) as loc:
        # Only the new name is checked: the text is stored as given, and whatever
        # later goes through the link is judged at the file it leads to.
        await ctx.require(access.NAME, loc.path)
        await ctx.io(partial(ctx.fs.symlink, target, loc))
    return replies.status(rid, OK)


HANDLERS: dict[int, Handler] = {
    SSH_FXP_STAT: stat,
    SSH_FXP_LSTAT: lstat,
    SSH_FXP_SETSTAT: setstat,
    SSH_FXP_REMOVE: remove,
    SSH_FXP_MKDIR: mkdir,
    SSH_FXP_RMDIR: rmdir,
    SSH_FXP_REALPATH: realpath,
    SSH_FXP_RENAME: rename,
    SSH_FXP_READLINK: readlink,
    SSH_FXP_SYMLINK: symlink,
}
