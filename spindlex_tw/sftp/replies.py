"""Encoders of the server's packets, each returned ready to write, length prefix included.

A reply is a list of byte strings so that DATA can go out as a small header
followed by the file bytes themselves, never copied into one buffer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from spindlex_tw.core.wire import string, uint32
from spindlex_tw.sftp.attrs import EMPTY_ATTRS, Attrs
from spindlex_tw.sftp.codes import (
    SFTP_VERSION,
    SSH_FXP_ATTRS,
    SSH_FXP_DATA,
    SSH_FXP_EXTENDED_REPLY,
    SSH_FXP_HANDLE,
    SSH_FXP_NAME,
    SSH_FXP_STATUS,
    SSH_FXP_VERSION,
)
from spindlex_tw.sftp.status import message_for

Reply = list[bytes | bytearray]

_HEADER = struct.Struct(">IBI")  # length, type, request id
_DATA_HEADER = struct.Struct(">IBII")  # length, type, request id, data length


def _packet(kind: int, request_id: int, body: bytes) -> Reply:
    return [_HEADER.pack(len(body) + 5, kind, request_id) + body]


def version(extensions: Iterable[tuple[str, str]]) -> Reply:
    body = uint32(SFTP_VERSION) + b"".join(string(n) + string(v) for n, v in extensions)
    return [uint32(len(body) + 1) + bytes((SSH_FXP_VERSION,)) + body]


def status(request_id: int, code: int, message: str | None = None) -> Reply:
    text = message if message is not None else message_for(code)
    return _packet(SSH_FXP_STATUS, request_id, uint32(code) + string(text) + string(b""))


def handle(request_id: int, handle_id: bytes) -> Reply:
    return _packet(SSH_FXP_HANDLE, request_id, string(handle_id))


def data(request_id: int, payload: bytes | bytearray) -> Reply:
    size = len(payload)
    header = _DATA_HEADER.pack(size + 9, SSH_FXP_DATA, request_id, size)
    return [header, payload] if size else [header]


def attrs(request_id: int, value: Attrs) -> Reply:
    return _packet(SSH_FXP_ATTRS, request_id, value.encode())


def names(request_id: int, entries: Iterable[tuple[bytes, bytes, bytes]]) -> Reply:
    """NAME from (filename, longname, encoded attrs) triples."""
    body = [string(name) + string(long) + encoded for name, long, encoded in entries]
    return _packet(SSH_FXP_NAME, request_id, uint32(len(body)) + b"".join(body))


def single_name(request_id: int, path: bytes) -> Reply:
    """The one-entry NAME of realpath and friends: the path twice, no attributes."""
    return names(request_id, [(path, path, EMPTY_ATTRS)])


def extended_reply(request_id: int, body: bytes) -> Reply:
    return _packet(SSH_FXP_EXTENDED_REPLY, request_id, body)
