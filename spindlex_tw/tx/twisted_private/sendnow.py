"""Writing to a TCP transport at once when nothing is queued before the data.

Twisted's ``transport.write`` only queues: the reactor registers the socket
for writability (an ``epoll_ctl``), goes round its loop, sends, and
unregisters it (another ``epoll_ctl``). For a request-reply protocol that
answers one small packet at a time (an SFTP upload of many small files, an
interactive shell) that is two system calls and a reactor turn per reply.
When the transport's queue is empty, sending straight away is what the
reactor would do next anyway; whatever the kernel does not take goes through
``transport.write`` as before, so back-pressure and producers work unchanged.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp


def can_send_now(transport: Any) -> bool:
    """Is ``transport`` a connected TCP or UNIX socket with nothing waiting to be sent?"""
    # UNIX stream sockets (twisted.internet.unix.Server) are tcp.Connection too.
    return (
        isinstance(transport, tcp.Connection)
        and bool(transport.connected)
        and not transport.disconnecting
        and not transport._writeDisconnected
        and transport._tempDataLen == 0
        and len(transport.dataBuffer) == transport.offset
    )


def write(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, sending what the socket takes at once if nothing is queued."""
    if data and can_send_now(transport):
        view = memoryview(data)
        total = 0
        while total < len(data):
            # Twisted sends at most SEND_LIMIT (128 KiB) per call: go on while the
            # kernel takes whole calls, so only a true remainder is copied and queued.
            sent = transport.writeSomeData(view[total:])
            # An exception instead of a count is a broken connection: queue the data
            # so that Twisted's own write path meets the error and closes the transport.
            if not isinstance(sent, int) or sent <= 0:
                break
            total += sent
            if sent < transport.SEND_LIMIT:
                break
        if total == len(data):
            return
        if total:
            data = data[total:]
    transport.write(data)
