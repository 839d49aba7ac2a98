"""Acknowledging a peer's small messages at once, so a client's Nagle timer never waits on us.

OpenSSH's client leaves Nagle's algorithm on until it has logged in (it sets
TCP_NODELAY only for the session). During key exchange it sends NEWKEYS and
then, at once, its SERVICE_REQUEST: Nagle holds the second message until the
first is acknowledged, and a Linux receiver that has nothing to send back
delays that acknowledgement by up to 40 ms. That was 40 ms of every login's
~55 ms against every server tried (ours, AsyncSSH, sshd). With TCP_QUICKACK
set after a read, the kernel acknowledges the next data at once.

The kernel drops back to delayed acknowledgements by itself, so the option is
set again after each read that nothing answered at once; a read whose answer
went out while it was handled (an SFTP request served on the spot) had its
acknowledgement carried by that answer, and setting the option would only add
a system call and a packet of its own. A bulk read (a full buffer) is a
stream, where acknowledgements flow anyway, and is left alone.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from twisted.internet import tcp

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def quickack_socket(transport: Any) -> socket.socket | None:
    """The TCP socket of ``transport`` if quick acknowledgements apply to it, else None."""
    if _QUICKACK is None or not isinstance(transport, tcp.Connection):
        return None
    sock = transport.getHandle()
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None  # a UNIX socket has no acknowledgements
    return sock


def acknowledge_now(sock: socket.socket) -> None:
    """Acknowledge the next data from the peer without delay."""
    # A failure means the connection is going away: nothing left to acknowledge.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)  # type: ignore[arg-type]
