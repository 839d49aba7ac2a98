"""Which access hooks each SFTP request asks, about which path, in which mode.

Every handler states what it does to each path it names with one of the
rules below, and :meth:`Context.require` asks the hooks the rule lists. The
rules follow from two principles (docs/sftp.md has the table per request):

- Whatever lets the client change existing data, directly (a write, a
  truncate, an attribute) or by giving it a name the policy may let it write
  (a hard link, a rename), is a write of that data: ``check_file_access(path, "w")``
  of the name the data has now.
- Whatever adds or removes a name changes the directory holding it:
  ``check_directory_access(parent, "w")``, on top of the check of the name itself.

Hooks judge resolved paths (links followed inside the jail), so a symbolic
link needs no check of its target: every later request through it is judged
at the file it leads to. Requests on handles are judged when the handle is
opened; a handle then only does what its open was granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from spindlex_tw.sftp.codes import SSH_FXF_APPEND, SSH_FXF_CREAT, SSH_FXF_TRUNC, SSH_FXF_WRITE
from spindlex_tw.sftp.handles import reads

WRITE: Final = "w"
READ: Final = "r"

_CHANGING = SSH_FXF_WRITE | SSH_FXF_APPEND | SSH_FXF_CREAT | SSH_FXF_TRUNC


@dataclass(frozen=True, slots=True)
class Check:
    """One hook call: ``hook`` about the named ``entry`` itself or its ``parent`` directory."""

    hook: Literal["file", "directory"]
    of: Literal["entry", "parent"]
    mode: str


Rule = tuple[Check, ...]

#: The data is read (OPEN for reading, STAT, LSTAT, READLINK).
READ_DATA: Final[Rule] = (Check("file", "entry", READ),)
#: The data, or its attributes, may change (OPEN for writing, SETSTAT, FSETSTAT,
#: lsetstat), or it gets another name (the source of hardlink).
WRITE_DATA: Final[Rule] = (Check("file", "entry", WRITE),)
#: Both, for an OPEN whose handle both reads and writes.
READ_WRITE_DATA: Final[Rule] = (*READ_DATA, *WRITE_DATA)
#: A directory is listed (OPENDIR).
LIST: Final[Rule] = (Check("directory", "entry", READ),)
#: A non-directory name is added, removed or moved: the data it names (or will
#: name) is written, and so is its directory (REMOVE, both names of RENAME and
#: posix-rename, the new name of hardlink and SYMLINK).
NAME: Final[Rule] = (Check("file", "entry", WRITE), Check("directory", "parent", WRITE))
#: A directory is added or removed (MKDIR, RMDIR).
DIRECTORY_NAME: Final[Rule] = (
    Check("directory", "entry", WRITE),
    Check("directory", "parent", WRITE),
)
#: OPEN with CREAT, on top of writing the file: may a name be added? If not,
#: only a file that already exists is opened.
CREATE: Final[Rule] = (Check("directory", "parent", WRITE),)


def open_rule(pflags: int) -> Rule:
    """The rule of an OPEN with SSH_FXF_* ``pflags``.

    Reading is asked whenever the handle will read, writing whenever the open
    may change the file (TRUNC and CREAT do, even on a handle that only reads).
    """
    changes = bool(pflags & _CHANGING)
    if reads(pflags):
        return READ_WRITE_DATA if changes else READ_DATA
    return WRITE_DATA


def parent_of(path: bytes) -> bytes:
    """The directory holding resolved ``path``; the root is its own parent, as ``/..``."""
    return path.rsplit(b"/", 1)[0] or b"/"
