"""Give the memory freed by ended sessions back to the system.

A session whose client read nothing may have held megabytes of replies. Python
frees them when the session ends, but glibc keeps freed heap memory for reuse
unless it lies at the very top of the heap, so the server's RSS would stay at
its peak. ``malloc_trim`` returns what is free; it runs once per reactor turn
however many sessions ended in it, and does nothing where libc has no such call.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_trim = _malloc_trim()
_scheduled = False


def release_freed_memory(reactor: Any) -> None:
    """Trim the heap on the next reactor turn, once the ending session's memory is freed."""
    global _scheduled
    if _trim is None or _scheduled:
        return
    _scheduled = True
    reactor.callLater(0, _run)


def _run() -> None:
    global _scheduled
    _scheduled = False
    if _trim is not None:
        _trim(0)
