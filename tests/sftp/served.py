"""The stdio server's storage, local or in memory, as the client tests set it up and check it.

The server runs in another process (``sftp -D``, a socket pair for Paramiko),
so a memory tree cannot simply be shared: it is handed over pickled. Before
the server starts, :meth:`Served.hand_over` writes the tree to a state file;
``stdio_server.py --memory-state FILE`` serves it and writes it back when
its session ends; :meth:`Served.take_back` loads it again. Tests set up and
check files only through :attr:`Served.tree` (tests/sftp/trees.py), which
goes through the FileSystem interface, so each test runs on both storages.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import stat
import threading
from pathlib import Path
from typing import Any

from spindlex_tw.fs.memory import MemoryFileSystem
from tests.sftp.trees import MemoryTree, Tree, make_tree

_RLOCK = type(threading.RLock())


class _Pickler(pickle.Pickler):
    """Pickles a MemoryFileSystem: its lock is made anew, its inode counter kept."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _RLOCK):
            return threading.RLock, ()
        if isinstance(obj, itertools.count):
            # repr is "count(N)": the next inode number to hand out.
            return itertools.count, (int(repr(obj)[6:-1]),)
        return NotImplemented


def save_memory(memory: MemoryFileSystem, path: str) -> None:
    with open(path, "wb") as out:
        _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(memory)


def load_memory(path: str) -> MemoryFileSystem:
    with open(path, "rb") as state:
        memory: MemoryFileSystem = pickle.load(state)
    return memory


class Served:
    """What one test's server serves: ``tree`` to set up and check, ``server_args`` to pass."""

    def __init__(self, kind: str, root: Path, state: Path) -> None:
        self.kind = kind
        self.tree: Tree = make_tree(kind, root)
        if isinstance(self.tree, MemoryTree):
            # Room for the largest test's files (a 64 MiB file and a tree beside it).
            self.tree.memory = MemoryFileSystem(capacity=256 << 20)
        self.root = root
        self._state = state

    def server_args(self) -> list[str]:
        return [] if self.kind == "local" else ["--memory-state", str(self._state)]

    def hand_over(self) -> None:
        """Before a server starts: it serves the tree as it is now."""
        if isinstance(self.tree, MemoryTree):
            save_memory(self.tree.memory, str(self._state))

    def take_back(self) -> None:
        """After the server exited: the tree as its session left it."""
        if isinstance(self.tree, MemoryTree):
            self.tree.memory = load_memory(str(self._state))

    def listdir(self, name: str = "") -> list[str]:
        """The names in directory ``name`` (relative to the root), sorted, no ``.``/``..``."""
        fs = self.tree.fs()
        loc = fs.locate(os.fsencode(name), b"/", True)
        stream = fs.opendir(loc)
        names: list[str] = []
        try:
            while entries := fs.read_dir(stream, 100):
                names += [os.fsdecode(e.name) for e in entries if e.name not in (b".", b"..")]
        finally:
            stream.close()
            loc.close()
            fs.close()
        return sorted(names)

    def digest(self, top: str) -> dict[str, str]:
        """Each file below ``top`` by its SHA-256, each directory as "dir", keyed by path."""
        found: dict[str, str] = {}
        for name in self.listdir(top):
            path = f"{top}/{name}"
            if stat.S_ISDIR(self.tree.lstat(path).st_mode):
                found[name] = "dir"
                found.update({f"{name}/{k}": v for k, v in self.digest(path).items()})
            else:
                found[name] = hashlib.sha256(self.tree.read(path)).hexdigest()
        return found
