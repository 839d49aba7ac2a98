"""Audit events: one structured twisted.logger event per thing an operator audits.

Every event is logged on the ``spindlex_tw.audit`` namespace with the field
``audit_event`` naming it and stable field names (docs/audit.md lists them
all). They are ordinary log events, so any twisted.logger observer sees them:
twistd's ``--audit-log`` writes them as JSON lines, twistd's ``--metrics``
counts them, and an embedding program can add its own observer to
``twisted.logger.globalLogPublisher``.

Events are logged at level ``info``; the text of each is for people, the
fields are for programs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from twisted.logger import Logger, LogLevel

from spindlex_tw.core.requests import (
    CancelStreamlocalForward,
    CancelTcpipForward,
    DirectStreamlocal,
    DirectTcpip,
    StreamlocalForward,
    TcpipForward,
)
from spindlex_tw.core.wire import Reader

if TYPE_CHECKING:
    from spindlex_tw.core import events as ev
    from spindlex_tw.core.kexinit import Negotiated
    from spindlex_tw.sftp.audit import Operation
    from spindlex_tw.tx.channel import Channel

NAMESPACE = "spindlex_tw.audit"

_log = Logger(namespace=NAMESPACE)

# The human-readable text of each event; the fields carry everything.
_TEXT = {
    "connect": "connection {session_id} from {peer}",
    "connection_refused": "refused connection from {peer}: {reason}",
    "key_exchange": "key exchange with {peer} in {seconds:.3f}s",
    "session_start": "session {session_id}: {user} logged in from {peer} by {method}",
    "auth_failed": "session {session_id}: {method} login of {user} refused: {reason}",
    "session_end": (
        "session {session_id} ended after {duration:.3f}s: {bytes_in} bytes in, "
        "{bytes_out} bytes out ({reason})"
    ),
    "channel_refused": "session {session_id}: {kind} channel refused: {reason}",
    "exec": "session {session_id}: {user} started {request} {command!r}",
    "exit": "session {session_id}: {request} {command!r} exited with {exit_status}",
    "request_refused": "session {session_id}: {request} request refused: {reason}",
    "forward": "session {session_id}: {kind} {host}:{port} {result}",
    # A Unix-socket forward: a path where a TCP forward has host and port.
    "forward_socket": "session {session_id}: {kind} {path} {result}",
    "sftp": "session {session_id}: sftp {operation} {path!r} {status}",
}


def emit(audit_event: str, text: str | None = None, **fields: Any) -> None:
    """Log audit event ``audit_event`` with ``fields`` (each a JSON-friendly value),
    its text the one named ``text`` (default: the event's own)."""
    # The event Logger.info would build, handed to the same observer. Not through
    # Logger.emit: its check that the level is a LogLevel lists and sorts every
    # level on each call, a third of the cost of an SFTP OPEN's or CLOSE's event.
    fields.update(
        audit_event=audit_event,
        log_logger=_log,
        log_level=LogLevel.info,
        log_namespace=NAMESPACE,
        log_source=None,
        log_format=_TEXT[text or audit_event],
        log_time=time.time(),
    )
    _log.observer(fields)  # type: ignore[call-arg]  # zope interface method, typed as taking self


def sftp_operation(
    session_id: str | None, user: str | None, operation: Operation, duration: float | None
) -> None:
    """One finished SFTP operation, as the session's driver heard of it."""
    fields: dict[str, Any] = {
        "session_id": session_id,
        "user": user,
        "operation": operation.name,
        "path": operation.path,
        "status": operation.status,
    }
    if operation.target is not None:
        fields["target"] = operation.target
    if operation.name == "open":
        fields["flags"] = list(operation.flags)
    if operation.handle is not None:
        fields["handle"] = operation.handle
    if operation.name == "close":
        fields["bytes_read"] = operation.bytes_read
        fields["bytes_written"] = operation.bytes_written
        fields["duration"] = duration
    if operation.length is not None:
        fields["length"] = operation.length
    emit("sftp", **fields)


class Party(Protocol):
    """Whose session an event is about: any of tx's views of a connection."""

    @property
    def connection_id(self) -> str: ...
    @property
    def username(self) -> str | None: ...


class Audited(Party, Protocol):
    """What the connection's own events are built from (``SSHServerProtocol`` has it)."""

    @property
    def peer(self) -> str: ...
    @property
    def reactor(self) -> Any: ...

    connected_at: float
    bytes_in: int
    bytes_out: int
    method: str | None
    key_fingerprint: str | None
    end_reason: str


def _since_connect(conn: Audited) -> float:
    return float(conn.reactor.seconds() - conn.connected_at)


def connected(conn: Audited, local: Any) -> None:
    emit(
        "connect",
        session_id=conn.connection_id,
        peer=conn.peer,
        local=f"{getattr(local, 'host', '?')}:{getattr(local, 'port', '?')}",
    )


def key_exchanged(conn: Audited, negotiated: Negotiated) -> None:
    emit(
        "key_exchange",
        session_id=conn.connection_id,
        peer=conn.peer,
        seconds=_since_connect(conn),
        kex=negotiated.kex,
        host_key=negotiated.host_key,
        cipher=negotiated.cipher_c2s,
    )


def logged_in(conn: Audited) -> None:
    emit(
        "session_start",
        session_id=conn.connection_id,
        user=conn.username,
        peer=conn.peer,
        method=conn.method,
        fingerprint=conn.key_fingerprint,
        login_seconds=_since_connect(conn),
    )


def auth_failed(
    session_id: str, peer: str, user: str | None, method: str | None, reason: str
) -> None:
    emit(
        "auth_failed",
        session_id=session_id,
        peer=peer,
        user=user,
        method=method,
        reason=reason,
    )


def ended(conn: Audited) -> None:
    emit(
        "session_end",
        session_id=conn.connection_id,
        user=conn.username,
        peer=conn.peer,
        method=conn.method,
        fingerprint=conn.key_fingerprint,
        duration=_since_connect(conn),
        bytes_in=conn.bytes_in,
        bytes_out=conn.bytes_out,
        reason=conn.end_reason,
    )


def channel_refused(conn: Party, event: ev.ChannelOpenRequested, reason: str) -> None:
    emit(
        "channel_refused",
        session_id=conn.connection_id,
        user=conn.username,
        kind=event.kind,
        reason=reason,
    )
    channel_forward(conn, event, reason)


def channel_forward(conn: Party, event: ev.ChannelOpenRequested, result: str) -> None:
    """A direct-tcpip (ssh -L, -D) or direct-streamlocal (ssh -L to a socket path)
    channel opened ("ok") or refused (the reason)."""
    request = event.request
    if isinstance(request, DirectTcpip):
        emit(
            "forward",
            session_id=conn.connection_id,
            user=conn.username,
            kind=event.kind,
            host=request.host,
            port=request.port,
            originator=f"{request.originator}:{request.originator_port}",
            result=result,
        )
    elif isinstance(request, DirectStreamlocal):
        _socket_forward(conn, event.kind, request.path, result)


def global_forward(
    conn: Party, event: ev.GlobalRequestReceived, success: bool, data: bytes
) -> None:
    """A tcpip-forward or streamlocal-forward (ssh -R) or its cancel, as answered;
    other requests are not audited."""
    request = event.request
    result = "ok" if success else "refused"
    if isinstance(request, TcpipForward | CancelTcpipForward):
        # Port 0 asked the server to choose: the reply carries the one it chose.
        port = int.from_bytes(data[:4], "big") if success and len(data) >= 4 else request.port
        emit(
            "forward",
            session_id=conn.connection_id,
            user=conn.username,
            kind=event.name,
            host=request.address,
            port=port,
            result=result,
        )
    elif isinstance(request, StreamlocalForward | CancelStreamlocalForward):
        _socket_forward(conn, event.name, request.path, result)


def _socket_forward(conn: Party, kind: str, path: str, result: str) -> None:
    emit(
        "forward",
        "forward_socket",
        session_id=conn.connection_id,
        user=conn.username,
        kind=kind,
        path=path,
        result=result,
    )


def started(conn: Party, request: str, command: bytes | None) -> None:
    """An exec or shell request was granted."""
    emit(
        "exec",
        session_id=conn.connection_id,
        user=conn.username,
        request=request,
        command=_command(command),
    )


def request_refused(conn: Party, request: str, reason: str) -> None:
    emit(
        "request_refused",
        session_id=conn.connection_id,
        user=conn.username,
        request=request,
        reason=reason,
    )


def exited(conn: Party, channel: Channel, name: str, data: bytes) -> None:
    """An exec or shell channel sends exit-status or exit-signal."""
    if channel.subsystem is not None:
        return  # a subsystem (SFTP) is audited by what it does, not by its end
    fields: dict[str, Any] = {"exit_status": None}
    if name == "exit-status":
        fields["exit_status"] = int.from_bytes(data[:4], "big")
    else:
        fields["exit_signal"] = Reader(data).text()
    emit(
        "exit",
        session_id=conn.connection_id,
        user=conn.username,
        request="shell" if channel.command is None else "exec",
        command=_command(channel.command),
        **fields,
    )


def _command(command: bytes | None) -> str | None:
    return None if command is None else command.decode("utf-8", "backslashreplace")
