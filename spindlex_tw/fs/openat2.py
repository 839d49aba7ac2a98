"""openat2(2) (Linux 5.6): a whole relative path resolved by the kernel, under rules.

With ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` the kernel walks a path of
several components in one call and refuses (rather than follows) any link
and any step out of the starting directory, even one raced by a rename; the
jail (fs/jail.py) uses it for the common path that has neither. With
``RESOLVE_CACHED`` (Linux 5.12) it also refuses, with EAGAIN, a lookup that
would have to read the disk, which lets an open be tried on the event-loop
thread.

Where the system has no openat2 (an older kernel, another system, a seccomp
filter refusing it) the answer is remembered for the process and callers use
their own walk.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_CACHED = 0x20

#: Below the starting directory, links refused: the walk's rules, for paths without links.
BENEATH = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
#: The same, and only from the dentry cache (EAGAIN where a lookup would read the disk).
BENEATH_CACHED = BENEATH | RESOLVE_CACHED

# No such system call, a seccomp filter refusing it, a kernel that wants another struct.
_UNAVAILABLE = (errno.ENOSYS, errno.EPERM, errno.E2BIG)


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


# 437 on the architectures that share the kernel's common numbering (all new
# system calls since 5.1); MIPS and Alpha number theirs apart, so elsewhere the
# call is not made at all and the walk does the work.
_SYS_OPENAT2 = ctypes.c_long(437)
_COMMON_NUMBERING = frozenset(
    {
        "x86_64",
        "i386",
        "i686",
        "aarch64",
        "armv6l",
        "armv7l",
        "armv8l",
        "riscv64",
        "ppc64",
        "ppc64le",
        "s390x",
        "loongarch64",
    }
)
_HOW_SIZE = ctypes.c_size_t(ctypes.sizeof(_OpenHow))
# The few (flags, resolve) pairs in use, each as a ready pointer: the kernel only reads them.
_hows: dict[tuple[int, int], object] = {}


class _State:
    """What this process learned about the system: whether openat2 (and RESOLVE_CACHED) work."""

    def __init__(self) -> None:
        self.call = self._bind()
        self.usable = self.call is not None
        self.cached_usable = self.usable

    @staticmethod
    def _bind() -> Callable[..., int] | None:
        if not sys.platform.startswith("linux") or os.uname().machine not in _COMMON_NUMBERING:
            return None
        try:
            call = ctypes.CDLL(None, use_errno=True).syscall
        except (OSError, AttributeError):
            return None
        # No argtypes: converting each argument costs more than the system call.
        # The arguments are passed as ready C values instead (see openat2()).
        call.restype = ctypes.c_long
        return call


_state = _State()


def usable() -> bool:
    """Whether openat2 may work here (False once the system said it has none)."""
    return _state.usable


def cached_usable() -> bool:
    """Whether ``RESOLVE_CACHED`` may work here (Linux 5.12)."""
    return _state.cached_usable


def openat2(dir_fd: int, path: bytes, flags: int, resolve: int) -> int:
    """A descriptor of ``path`` below ``dir_fd``; OSError with the kernel's errno otherwise.

    ENOSYS is raised, without a system call, once the system has said it has
    no openat2.
    """
    call = _state.call
    if call is None or not _state.usable:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    how = _hows.get((flags, resolve))
    if how is None:
        how = _hows[flags, resolve] = ctypes.pointer(_OpenHow(flags, 0, resolve))
    fd = call(_SYS_OPENAT2, dir_fd, path, how, _HOW_SIZE)
    if fd >= 0:
        return int(fd)
    number = ctypes.get_errno()
    if number in _UNAVAILABLE:
        _state.usable = _state.cached_usable = False
    elif number == errno.EINVAL and resolve & RESOLVE_CACHED:
        # A kernel from before RESOLVE_CACHED: the flag itself is the invalid part.
        _state.cached_usable = False
    raise OSError(number, os.strerror(number), os.fsdecode(path))
