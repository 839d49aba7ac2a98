"""CPU time and memory of a server's whole process tree, read from /proc.

A forking server (sshd) spends most of its CPU in per-connection children
that come and go during a measurement, so every figure covers the tree: each
live process's own time plus the time of the children it has already reaped
(``cutime``/``cstime``), which is where an exited connection's CPU ends up.
"""

from __future__ import annotations

import os
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and all its living descendants."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def cpu_seconds(root: int) -> float:
    """User + system CPU of the tree, reaped children included, in seconds."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # Fields 14-17 of proc(5), counted from the state field (index 0 = field 3).
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / _CLOCK_TICKS


def pss_bytes(root: int) -> int:
    """Proportional set size of the tree: shared pages split between their users."""
    total = 0
    for pid in process_tree(root):
        try:
            text = (_PROC / str(pid) / "smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
                break
    return total


def child_count(root: int) -> int:
    return len(process_tree(root)) - 1
