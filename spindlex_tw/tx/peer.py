"""A connection's name in logs: ``host:port``, or for a UNIX socket the path and who is there."""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_name(transport: Any) -> str:
    """``203.0.113.9:50122`` for TCP (the client behind a PROXY header, if any).

    A UNIX-socket client has no address of its own (``?:?`` said nothing), so
    it is named by the socket it came in on and, where the kernel tells
    (SO_PEERCRED), the process and user at the other end:
    ``unix:/run/ssh.sock[pid=4242,uid=1000]``.
    """
    peer = transport.getPeer()
    if hasattr(peer, "host"):
        return f"{peer.host}:{getattr(peer, 'port', '?')}"
    path = getattr(transport.getHost(), "name", None)
    name = "unix:" + (os.fsdecode(path) if path else "?")
    credentials = _credentials(transport)
    return f"{name}[{credentials}]" if credentials else name


def _credentials(transport: Any) -> str | None:
    get_handle = getattr(transport, "getHandle", None)
    peercred = getattr(socket, "SO_PEERCRED", None)
    if get_handle is None or peercred is None:
        return None
    try:
        raw = get_handle().getsockopt(socket.SOL_SOCKET, peercred, _PEERCRED.size)
    except (OSError, AttributeError):
        return None
    pid, uid, _gid = _PEERCRED.unpack(raw)
    return f"pid={pid},uid={uid}"
