"""What request handlers share: the filesystem, the user's hooks, handles, limits.

Handlers reach the outside world only through this object's awaitables
(worker-thread calls and hook calls); see :mod:`spindlex_tw.sftp.effects`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Protocol, TypeVar

from spindlex_tw.core.wire import Reader
from spindlex_tw.fs.interface import FileSystem, Location
from spindlex_tw.protocol.constants import (
    SSH_FX_FAILURE,
    SSH_FX_OP_UNSUPPORTED,
    SSH_FX_PERMISSION_DENIED,
)
from spindlex_tw.sftp.access import WRITE, Rule, parent_of
from spindlex_tw.sftp.effects import Blocking, CallHook, RunNow, TryFirst, Wait
from spindlex_tw.sftp.handles import DirHandle, FileHandle, Handle, HandleTable
from spindlex_tw.sftp.replies import Reply
from spindlex_tw.sftp.status import SFTPError

T = TypeVar("T")

# Where calls on the served files run (Context.file_calls). The driver decides:
# each hand-off to a thread costs two thread wake-ups, more than a call on
# memory, so storage that never waits is called inline.
THREADS = "threads"  # always in a worker thread
TRY_FIRST = "try_first"  # a call that can promise not to wait is tried inline first
INLINE = "inline"  # on the event loop, for storage that never waits

SIZE_LIMIT = 256 * 1024
HEADER_ROOM = 1024


class AccessPolicy(Protocol):
    """The SFTPServer hooks of the public API, as the session consults them.

    A check grants only when it returns ``True`` (or a Deferred/coroutine
    that yields ``True``); a permissions hook must give an ``int`` mode.
    """

    def check_file_access(self, path: str, mode: str) -> object: ...

    def check_directory_access(self, path: str, mode: str) -> object: ...

    def get_file_permissions(self, path: str) -> object: ...

    def get_directory_permissions(self, path: str) -> object: ...


@dataclass(frozen=True, slots=True)
class Limits:
    """What one session may ask of the server; advertised by ``limits@openssh.com``."""

    max_packet_length: int = SIZE_LIMIT + HEADER_ROOM
    max_read_length: int = SIZE_LIMIT
    max_write_length: int = SIZE_LIMIT
    max_open_handles: int = 100
    # Past either bound the session stops reading requests until replies drain.
    # The driver shares one such budget among the SFTP sessions of a connection.
    max_outstanding_requests: int = 64
    max_outstanding_bytes: int = 8 * 1024 * 1024
    readdir_batch: int = 100
    # users-groups-by-id@openssh.com: more ids in one request are refused, so its
    # reply stays well under what clients accept (OpenSSH's take 256 KiB).
    max_ids_per_request: int = 1024
    home: bytes = b"/"
    # Not a limit but a way of writing: OPEN for a fresh upload writes to a hidden
    # temporary renamed over the real name on CLOSE (see fs/staged.py).
    atomic_uploads: bool = False
    #: SYMLINK's arguments in OpenSSH's order, the link's target first; False
    #: for a client that sends the draft's order (path_ops.symlink_target_first).
    symlink_target_first: bool = True
    #: Every request that would change the files is refused, whatever the hooks say.
    read_only: bool = False


#: What :func:`known_answer` gives for a hook that must be asked.
_ASK = object()


def fixed_answer(answer: object) -> Callable[[T], T]:
    """Mark a hook that always answers ``answer`` (a default nobody overrode).

    The session then knows the answer without calling the hook, and can open
    a file in one worker call instead of two around the hook.
    """

    def mark(hook: T) -> T:
        hook.fixed_answer = answer  # type: ignore[attr-defined]
        return hook

    return mark


def known_answer(hook: Callable[..., object]) -> object:
    """The answer of a :func:`fixed_answer` hook, or ``_ASK`` for any other."""
    return getattr(hook, "fixed_answer", _ASK)


def narrowed_mode(answer: int, requested: int | None) -> int:
    """A permissions hook's mode, narrowed by what the client asked for, as a umask would."""
    mode = answer & 0o7777
    return mode & requested if requested is not None else mode


class SessionClosed(Exception):
    """The client went away; the request unwinds without a reply."""


Handler = Callable[["Context", int, Reader], Coroutine[Any, Any, Reply]]


class _Located:
    """``async with ctx.located(...) as loc``: resolve in a worker, always close."""

    __slots__ = ("_ctx", "_follow", "_loc", "_path")

    def __init__(self, ctx: Context, path: bytes, follow: bool) -> None:
        self._ctx = ctx
        self._path = path
        self._follow = follow
        self._loc: Location | None = None

    async def __aenter__(self) -> Location:
        ctx = self._ctx
        self._loc = await ctx.io(partial(ctx.fs.locate, self._path, ctx.limits.home, self._follow))
        return self._loc

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loc is not None:
            self._loc.close()


class Context:
    """Services for request handlers of one session."""

    def __init__(
        self,
        fs: FileSystem,
        policy: AccessPolicy,
        limits: Limits,
        username: str | None,
        report: Callable[[str, BaseException], None],
    ) -> None:
        self.fs = fs
        self.policy = policy
        self.limits = limits
        self.username = username
        self.report = report
        self.handles = HandleTable(limits.max_open_handles)
        self.closed = False
        #: Where calls on the served files run; the driver sets it (see :meth:`io`).
        self.file_calls = THREADS

    def io(
        self, function: Callable[[], T], attempt: Callable[[], T | None] | None = None
    ) -> Awaitable[T]:
        """Run ``function``, a call on the served files, where :attr:`file_calls` says.

        ``attempt`` is the same call that cannot wait; None from it means "would
        wait". Unless file calls run inline it is tried first, and only a None
        sends ``function`` to a worker thread.
        """
        if self.file_calls == INLINE:
            return RunNow(function)
        if attempt is not None and self.file_calls == TRY_FIRST:
            return TryFirst(attempt, function)
        return Blocking(function)

    def lookup(self, function: Callable[[], T]) -> Awaitable[T]:
        """Run ``function``, which looks up accounts (maybe over the network), in a worker."""
        return Blocking(function)

    def open_without_asking(self, creating: bool, requested: int | None) -> tuple[bool, int | None]:
        """``(True, mode)`` for an OPEN whose hooks' answers are known, else ``(False, None)``.

        Known when the access hooks grant everything and, for a create, the
        permissions hook gives a fixed mode: the defaults of ``SFTPServer``.
        The mode is None when not creating.
        """
        if self.limits.read_only or known_answer(self.policy.check_file_access) is not True:
            return False, None
        if not creating:
            return True, None
        if known_answer(self.policy.check_directory_access) is not True:
            return False, None
        mode = known_answer(self.policy.get_file_permissions)
        if not isinstance(mode, int) or isinstance(mode, bool):
            return False, None
        return True, narrowed_mode(mode, requested)

    def located(self, path: bytes, follow: bool) -> _Located:
        return _Located(self, path, follow)

    def host_path(self, virtual: bytes) -> str:
        return self.fs.host_path(virtual)

    def supports(self, supported: bool, what: str) -> None:
        """Refuse a request the storage cannot carry out, saying what it lacks."""
        if not supported:
            raise SFTPError(f"This storage does not support {what}", SSH_FX_OP_UNSUPPORTED)

    # --- hooks -----------------------------------------------------------------------------

    async def _ask(self, hook: Callable[..., object], *args: object) -> object:
        known = known_answer(hook)
        if known is not _ASK:
            return known
        try:
            return await CallHook(hook, *args)
        except (SFTPError, SessionClosed):
            raise
        except Exception as exc:
            # A hook that fails refuses: access is never granted by accident.
            self.report(f"SFTP hook {getattr(hook, '__name__', hook)!r} failed", exc)
            raise SFTPError(None, SSH_FX_PERMISSION_DENIED) from exc

    async def granted(self, rule: Rule, virtual: bytes) -> bool:
        """Whether each hook ``rule`` lists (see :mod:`.access`) grants it for ``virtual``."""
        policy = self.policy
        for check in rule:
            if check.mode == WRITE and self.limits.read_only:
                return False
            hook = (
                policy.check_file_access if check.hook == "file" else policy.check_directory_access
            )
            answer = known_answer(hook)
            if answer is _ASK:
                path = virtual if check.of == "entry" else parent_of(virtual)
                answer = await self._ask(hook, self.host_path(path), check.mode)
            if answer is not True:
                return False
        return True

    async def require(self, rule: Rule, virtual: bytes) -> None:
        """Refuse the request unless every hook of ``rule`` grants it for ``virtual``."""
        if not await self.granted(rule, virtual):
            raise SFTPError(None, SSH_FX_PERMISSION_DENIED)

    async def creation_mode(
        self, hook: Callable[[str], object], virtual: bytes, requested: int | None
    ) -> int:
        """The mode of a new file or directory: the hook's, narrowed by the client's.

        The hook is the most a new entry may get; a client asking for less
        (an upload of a private 0600 file) keeps its narrower mode, as a umask would.
        """
        answer = await self._ask(hook, self.host_path(virtual))
        if not isinstance(answer, int) or isinstance(answer, bool):
            self.report("SFTP permissions hook returned a non-integer", TypeError(repr(answer)))
            raise SFTPError(None, SSH_FX_FAILURE)
        return narrowed_mode(answer, requested)

    # --- handles ---------------------------------------------------------------------------

    def file_handle(self, handle_id: bytes, missing: int = SSH_FX_FAILURE) -> FileHandle:
        handle = self.handles.file(handle_id)
        if handle is None:
            raise SFTPError(None, missing)
        return handle

    def dir_handle(self, handle_id: bytes) -> DirHandle:
        handle = self.handles.directory(handle_id)
        if handle is None:
            raise SFTPError(None, SSH_FX_FAILURE)
        return handle

    async def wait_idle(self, handle: Handle) -> None:
        while handle.busy:
            await Wait(handle.idle)

    async def release(self, handle: Handle, *, complete: bool) -> None:
        """Close ``handle`` once the requests using it are done.

        ``complete`` says the client closed it: an atomic upload then takes
        its real name; otherwise (the session ended first) it is removed.
        """
        await self.wait_idle(handle)
        if isinstance(handle, FileHandle):
            staged = handle.staged
            if staged is None:
                # A storage that stores a file only when it is closed (an object store's
                # upload) may drop one the client never closed: its ``abandon_file``.
                abandon = None if complete else getattr(self.fs, "abandon_file", None)
                # A read-only file of the local disk closes without a thread hand-off
                # (get -r of small files: one fewer per file).
                quick = None if handle.writable else getattr(self.fs, "close_read_only", None)
                await self.io(
                    partial(abandon or self.fs.close_file, handle.fd),
                    attempt=partial(quick, handle.fd) if quick else None,
                )
            else:
                await self.io(staged.commit if complete else staged.discard)
        elif isinstance(handle, DirHandle):
            await self.io(handle.stream.close)

    async def install(self, handle: Handle) -> bytes:
        """Add an opened handle to the reserved slot; if the client left meanwhile, close it."""
        if self.closed:
            self.handles.release()
            await self.release(handle, complete=False)
            raise SessionClosed
        return self.handles.add(handle)
