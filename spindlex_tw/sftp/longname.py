"""The ``ls -l`` line of a READDIR entry, laid out as OpenSSH's ls_file() does.

Clients such as OpenSSH's ``sftp`` print this text as it is for ``ls -l``, so
the columns match what users know: mode, links, owner, group, size, date, name.
"""

from __future__ import annotations

import functools
import os
import stat
import time

_HALF_YEAR = 365 * 24 * 60 * 60 // 2


@functools.lru_cache(maxsize=256)
def _date(mtime: int, now: float) -> str:
    # Cached: the entries of one listing share its ``now``, and often their second.
    try:
        local = time.localtime(mtime)
    except (OverflowError, OSError, ValueError):
        return ""
    # Recent files show the time of day, older or future ones the year, as ls(1) does.
    if now - _HALF_YEAR < mtime <= now:
        return time.strftime("%b %e %H:%M", local)
    return time.strftime("%b %e  %Y", local)


def longname(name: bytes, st: os.stat_result, user: str, group: str, now: float) -> bytes:
    """``name`` as ``ls -l`` would list it; ``user``/``group`` are names or numbers."""
    mode = stat.filemode(st.st_mode)
    if mode[0] == "-" and not stat.S_ISREG(st.st_mode):
        mode = "?" + mode[1:]  # filemode() says "-" for types it does not know
    date = _date(int(st.st_mtime), now)
    line = f"{mode}  {st.st_nlink:>3} {user:<8} {group:<8} {st.st_size:>8} {date} "
    return line.encode("utf-8", "surrogateescape") + name
