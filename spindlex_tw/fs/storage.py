"""What kind of storage holds a directory: memory, where no file call waits on a device.

The SFTP server runs its file calls on worker threads so that a slow disk
stalls only the request waiting on it. On a filesystem kept in memory
(tmpfs, ramfs) no call waits on a device, and the hand-off to a thread and
back costs more than the call itself; there the calls can run inline.
"""

from __future__ import annotations

import os

MOUNTINFO = "/proc/self/mountinfo"
RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


def filesystem_type(path: str, mountinfo: str = MOUNTINFO) -> str | None:
    """The type of the filesystem ``path`` lies on ("ext4", "tmpfs"...), or None if unknown.

    Matched by device number, so bind mounts and mounts stacked on one
    directory are told apart; a filesystem whose files report a device of
    their own (btrfs subvolumes) is unknown.
    """
    try:
        device = os.stat(path).st_dev
        with open(mountinfo, encoding="utf-8", errors="replace") as lines:
            table = lines.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(device)}:{os.minor(device)}"
    for line in table:
        # "id parent major:minor root mountpoint options [optional...] - type source superoptions"
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) >= 3 and parts[2] == wanted and rest:
            return rest.split()[0]
    return None


def in_memory(path: str, mountinfo: str = MOUNTINFO) -> bool:
    """Is ``path`` on a filesystem held in memory, where file calls never wait on a disk?"""
    return filesystem_type(path, mountinfo) in RAM_FILESYSTEMS
