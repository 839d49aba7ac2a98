"""The ATTRS structure of SFTP v3 (draft-ietf-secsh-filexfer-02 section 5)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.wire import Reader, string, uint32, uint64
from spindlex_tw.sftp.codes import (
    SSH_FILEXFER_ATTR_ACMODTIME,
    SSH_FILEXFER_ATTR_EXTENDED,
    SSH_FILEXFER_ATTR_PERMISSIONS,
    SSH_FILEXFER_ATTR_SIZE,
    SSH_FILEXFER_ATTR_UIDGID,
)

_U32_MASK = 0xFFFFFFFF
# The most extended pairs one ATTRS may carry; each costs the peer 8 bytes at least,
# so a packet limit already bounds it, this only rejects nonsense counts early.
_MAX_EXTENDED = 1024


@dataclass(slots=True)
class Attrs:
    """File attributes; a field left ``None`` is absent on the wire.

    ``uid``/``gid`` and ``atime``/``mtime`` travel in pairs: both or neither.
    """

    size: int | None = None
    uid: int | None = None
    gid: int | None = None
    permissions: int | None = None
    atime: int | None = None
    mtime: int | None = None
    extended: tuple[tuple[bytes, bytes], ...] = ()

    @property
    def has_owner(self) -> bool:
        return self.uid is not None and self.gid is not None

    @property
    def has_times(self) -> bool:
        return self.atime is not None and self.mtime is not None

    @classmethod
    def decode(cls, reader: Reader) -> Attrs:
        flags = reader.uint32()
        attrs = cls()
        if flags & SSH_FILEXFER_ATTR_SIZE:
            attrs.size = reader.uint64()
        if flags & SSH_FILEXFER_ATTR_UIDGID:
            attrs.uid = reader.uint32()
            attrs.gid = reader.uint32()
        if flags & SSH_FILEXFER_ATTR_PERMISSIONS:
            attrs.permissions = reader.uint32()
        if flags & SSH_FILEXFER_ATTR_ACMODTIME:
            attrs.atime = reader.uint32()
            attrs.mtime = reader.uint32()
        if flags & SSH_FILEXFER_ATTR_EXTENDED:
            count = reader.uint32()
            if count > _MAX_EXTENDED:
                raise DecodeError("too many extended attributes")
            attrs.extended = tuple((reader.string(), reader.string()) for _ in range(count))
        return attrs

    def encode(self) -> bytes:
        flags = 0
        body = []
        if self.size is not None:
            flags |= SSH_FILEXFER_ATTR_SIZE
            body.append(uint64(self.size))
        if self.uid is not None and self.gid is not None:
            flags |= SSH_FILEXFER_ATTR_UIDGID
            body.append(uint32(self.uid & _U32_MASK) + uint32(self.gid & _U32_MASK))
        if self.permissions is not None:
            flags |= SSH_FILEXFER_ATTR_PERMISSIONS
            body.append(uint32(self.permissions & _U32_MASK))
        if self.atime is not None and self.mtime is not None:
            flags |= SSH_FILEXFER_ATTR_ACMODTIME
            # Times outside the 32-bit range wrap, as in OpenSSH; v3 has no wider field.
            body.append(uint32(self.atime & _U32_MASK) + uint32(self.mtime & _U32_MASK))
        if self.extended:
            flags |= SSH_FILEXFER_ATTR_EXTENDED
            body.append(uint32(len(self.extended)))
            body.extend(string(key) + string(value) for key, value in self.extended)
        return uint32(flags) + b"".join(body)

    @classmethod
    def from_stat(cls, st: os.stat_result) -> Attrs:
        return cls(
            size=st.st_size,
            uid=st.st_uid,
            gid=st.st_gid,
            permissions=st.st_mode,
            atime=int(st.st_atime),
            mtime=int(st.st_mtime),
        )


EMPTY_ATTRS = Attrs().encode()

_STAT_FLAGS = (
    SSH_FILEXFER_ATTR_SIZE
    | SSH_FILEXFER_ATTR_UIDGID
    | SSH_FILEXFER_ATTR_PERMISSIONS
    | SSH_FILEXFER_ATTR_ACMODTIME
)
_STAT_LAYOUT = struct.Struct(">IQIIIII")


def encode_stat(st: os.stat_result) -> bytes:
    """``Attrs.from_stat(st).encode()`` in one step: each entry of a listing is one."""
    return _STAT_LAYOUT.pack(
        _STAT_FLAGS,
        st.st_size,
        st.st_uid & _U32_MASK,
        st.st_gid & _U32_MASK,
        st.st_mode & _U32_MASK,
        int(st.st_atime) & _U32_MASK,
        int(st.st_mtime) & _U32_MASK,
    )
