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


# The most buffers Linux takes in one sendmsg (IOV_MAX); a longer list is joined first.
_MAX_BUFFERS = 1024


def write_sequence(transport: Any, parts: list[bytes | bytearray]) -> None:
    """``transport.writeSequence(parts)``, sending what the socket takes now if nothing is queued.

    One ``sendmsg`` gathers the pieces (SSH packets, each sealed in a buffer of
    its own) as they are, where joining them for ``send`` would copy every
    byte once more. Only what the kernel does not take is joined and queued.
    """
    if can_send_now(transport) and len(parts) <= _MAX_BUFFERS:
        try:
            sent = transport.socket.sendmsg(parts)
        except OSError:
            # EAGAIN: nothing taken. Anything else is a broken connection: queue the
            # data so that Twisted's own write path meets the error and closes the transport.
            sent = 0
        parts = _unsent(parts, sent)
        if not parts:
            return
    transport.write(b"".join(parts))


def _unsent(parts: list[bytes | bytearray], sent: int) -> list[Any]:
    """What is left of ``parts`` once their first ``sent`` bytes are gone."""
    for index, part in enumerate(parts):
        if sent < len(part):
            if not sent:
                return parts[index:]
            return [memoryview(part)[sent:], *parts[index + 1 :]]
        sent -= len(part)
    return []
