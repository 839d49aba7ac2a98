"""The served tree as tests see it, on either storage: the local disk or memory.

Sans-IO tests set up files and check results through a tree, so one test
runs against :class:`LocalFileSystem` and :class:`MemoryFileSystem` alike.
The memory tree goes through the file-system interface itself, as the
SFTP engine does.
"""

from __future__ import annotations

import os
from pathlib import Path

from spindlex_tw.fs.interface import FileSystem, SetStat
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.fs.memory import MemoryFileSystem

STORAGES = ("local", "memory")


class LocalTree:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def fs(self) -> FileSystem:
        return LocalFileSystem(str(self.root))

    def write(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def mkdir(self, name: str) -> None:
        (self.root / name).mkdir(parents=True)

    def symlink(self, target: str, name: str) -> None:
        os.symlink(target, self.root / name)

    def readlink(self, name: str) -> str:
        return os.readlink(self.root / name)

    def exists(self, name: str) -> bool:
        return os.path.lexists(self.root / name)

    def stat(self, name: str) -> os.stat_result:
        return (self.root / name).stat()

    def lstat(self, name: str) -> os.stat_result:
        return os.lstat(self.root / name)

    def chmod(self, name: str, mode: int) -> None:
        os.chmod(self.root / name, mode)

    def statvfs(self) -> os.statvfs_result:
        return os.statvfs(self.root)


class MemoryTree:
    kind = "memory"

    def __init__(self, root: Path) -> None:
        self.root = root  # unused by the storage; kept for tests that name it
        self.memory = MemoryFileSystem(capacity=64 << 20)

    def fs(self) -> FileSystem:
        return self.memory

    def _loc(self, name: str, follow: bool = True):  # type: ignore[no-untyped-def]
        return self.memory.locate(os.fsencode(name), b"/", follow)

    def write(self, name: str, data: bytes) -> None:
        file = self.memory.open_file(self._loc(name), os.O_WRONLY | os.O_TRUNC, 0o644)
        self.memory.write(file, data, 0)

    def read(self, name: str) -> bytes:
        file = self.memory.open_file(self._loc(name), os.O_RDONLY, None)
        return self.memory.read(file, 1 << 30, 0)

    def mkdir(self, name: str) -> None:
        path = ""
        for part in name.split("/"):
            path = f"{path}/{part}"
            if not self.exists(path):
                self.memory.mkdir(self._loc(path), 0o755)

    def symlink(self, target: str, name: str) -> None:
        self.memory.symlink(os.fsencode(target), self._loc(name, follow=False))

    def readlink(self, name: str) -> str:
        return os.fsdecode(self.memory.readlink(self._loc(name, follow=False)))

    def exists(self, name: str) -> bool:
        try:
            self.memory.stat(self._loc(name, follow=False))
        except FileNotFoundError:
            return False
        return True

    def stat(self, name: str) -> os.stat_result:
        return self.memory.stat(self._loc(name))

    def lstat(self, name: str) -> os.stat_result:
        return self.memory.stat(self._loc(name, follow=False))

    def chmod(self, name: str, mode: int) -> None:
        self.memory.setstat(self._loc(name), SetStat(permissions=mode))

    def statvfs(self) -> os.statvfs_result:
        return self.memory.statvfs(self._loc("/"))


Tree = LocalTree | MemoryTree


def make_tree(kind: str, root: Path) -> Tree:
    return LocalTree(root) if kind == "local" else MemoryTree(root)
