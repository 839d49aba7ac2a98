"""The bodies of the requests a server reads (RFC 4254), as typed values.

Channel requests of a session (pty-req, env, exec, shell, subsystem,
window-change, signal, x11-req, auth-agent-req@openssh.com), the direct-tcpip
and direct-streamlocal@openssh.com channel opens and the tcpip-forward /
streamlocal-forward@openssh.com global requests and their cancels. The connection service
decodes each body as the message arrives, so its event carries a value, a
:class:`Malformed` (the body did not decode: the answer is a refusal, never a
disconnect) or ``None`` for a type the core does not read (its raw body stays
on the event). ``encode`` writes the body a client would send; the server
itself sends only :class:`ForwardedTcpip`, :class:`ForwardedStreamlocal` and
:class:`X11Channel` (an ``auth-agent@openssh.com`` channel has no body).

Every decoder reads the whole body and raises :class:`DecodeError`, the core's
error for a peer's bad input, for anything short, long or out of range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self, TypeVar

from spindlex_tw.core import wire
from spindlex_tw.core.errors import DecodeError

MAX_PORT = 65535

_T = TypeVar("_T")


@dataclass(frozen=True)
class Malformed:
    """A body of a known request type that did not decode; refuse the request."""

    description: str


# --- channel requests of a session (RFC 4254 section 6) ---------------------------------


@dataclass(frozen=True)
class PtyRequest:
    NAME: ClassVar[str] = "pty-req"

    term: str
    cols: int
    rows: int
    width: int  # pixels
    height: int
    # Encoded terminal modes, kept as sent: the hook receives these bytes, and
    # twistd.ttymodes reads them leniently (up to the first opcode it does not know).
    modes: bytes

    @classmethod
    def read(cls, r: wire.Reader) -> PtyRequest:
        return cls(r.text(), r.uint32(), r.uint32(), r.uint32(), r.uint32(), r.string())

    def encode(self) -> bytes:
        return (
            wire.string(self.term)
            + wire.uint32(self.cols)
            + wire.uint32(self.rows)
            + wire.uint32(self.width)
            + wire.uint32(self.height)
            + wire.string(self.modes)
        )


@dataclass(frozen=True)
class EnvRequest:
    NAME: ClassVar[str] = "env"

    name: str
    value: str

    @classmethod
    def read(cls, r: wire.Reader) -> EnvRequest:
        return cls(r.text(), r.text())

    def encode(self) -> bytes:
        return wire.string(self.name) + wire.string(self.value)


@dataclass(frozen=True)
class ExecRequest:
    NAME: ClassVar[str] = "exec"

    command: bytes  # not decoded: the hook receives the bytes a client sent

    @classmethod
    def read(cls, r: wire.Reader) -> ExecRequest:
        return cls(r.string())

    def encode(self) -> bytes:
        return wire.string(self.command)


@dataclass(frozen=True)
class _NoBody:
    """A request whose type is all it says."""

    @classmethod
    def read(cls, r: wire.Reader) -> Self:
        return cls()

    def encode(self) -> bytes:
        return b""


@dataclass(frozen=True)
class ShellRequest(_NoBody):
    NAME: ClassVar[str] = "shell"


@dataclass(frozen=True)
class SubsystemRequest:
    NAME: ClassVar[str] = "subsystem"

    name: str

    @classmethod
    def read(cls, r: wire.Reader) -> SubsystemRequest:
        return cls(r.text())

    def encode(self) -> bytes:
        return wire.string(self.name)


@dataclass(frozen=True)
class WindowChange:
    NAME: ClassVar[str] = "window-change"

    cols: int
    rows: int
    width: int
    height: int

    @classmethod
    def read(cls, r: wire.Reader) -> WindowChange:
        return cls(r.uint32(), r.uint32(), r.uint32(), r.uint32())

    def encode(self) -> bytes:
        return (
            wire.uint32(self.cols)
            + wire.uint32(self.rows)
            + wire.uint32(self.width)
            + wire.uint32(self.height)
        )


@dataclass(frozen=True)
class SignalRequest:
    NAME: ClassVar[str] = "signal"

    name: str  # without "SIG", e.g. "TERM"

    @classmethod
    def read(cls, r: wire.Reader) -> SignalRequest:
        return cls(r.ascii())

    def encode(self) -> bytes:
        return wire.string(self.name)


@dataclass(frozen=True)
class X11Request:
    NAME: ClassVar[str] = "x11-req"

    single_connection: bool
    auth_protocol: str
    auth_cookie: bytes
    screen: int

    @classmethod
    def read(cls, r: wire.Reader) -> X11Request:
        return cls(r.boolean(), r.text(), r.string(), r.uint32())

    def encode(self) -> bytes:
        return (
            wire.boolean(self.single_connection)
            + wire.string(self.auth_protocol)
            + wire.string(self.auth_cookie)
            + wire.uint32(self.screen)
        )


@dataclass(frozen=True)
class AgentForwardRequest(_NoBody):
    """``auth-agent-req@openssh.com`` (OpenSSH PROTOCOL.agent): ``ssh -A``; no body."""

    NAME: ClassVar[str] = "auth-agent-req@openssh.com"


ChannelRequest = (
    PtyRequest
    | EnvRequest
    | ExecRequest
    | ShellRequest
    | SubsystemRequest
    | WindowChange
    | SignalRequest
    | X11Request
    | AgentForwardRequest
)
_CHANNEL_REQUESTS: dict[str, Callable[[wire.Reader], ChannelRequest]] = {
    kind.NAME: kind.read
    for kind in (
        PtyRequest,
        EnvRequest,
        ExecRequest,
        ShellRequest,
        SubsystemRequest,
        WindowChange,
        SignalRequest,
        X11Request,
        AgentForwardRequest,
    )
}


# --- TCP/IP forwarding (RFC 4254 section 7) ----------------------------------------------


def _check_port(port: int, *, zero: bool) -> int:
    if port > MAX_PORT or (port == 0 and not zero):
        raise DecodeError("port out of range")
    return port


@dataclass(frozen=True)
class _TcpipChannel:
    """The body both TCP/IP channel opens share: an address and who connected from where."""

    host: str
    port: int
    originator: str
    originator_port: int

    @classmethod
    def read(cls, r: wire.Reader) -> Self:
        host, port = r.text(), _check_port(r.uint32(), zero=False)
        return cls(host, port, r.text(), _check_port(r.uint32(), zero=True))

    def encode(self) -> bytes:
        return (
            wire.string(self.host)
            + wire.uint32(self.port)
            + wire.string(self.originator)
            + wire.uint32(self.originator_port)
        )


@dataclass(frozen=True)
class DirectTcpip(_TcpipChannel):
    """``ssh -L``/``-D``: connect to ``host:port`` for the client."""

    NAME: ClassVar[str] = "direct-tcpip"


@dataclass(frozen=True)
class ForwardedTcpip(_TcpipChannel):
    """What the server opens for a connection accepted on a ``tcpip-forward`` listener;
    ``host`` and ``port`` are the forward's address as the client asked for it."""

    NAME: ClassVar[str] = "forwarded-tcpip"


@dataclass(frozen=True)
class _BindAddress:
    address: str  # as the client sent it: "", "*", "localhost", an address or a name
    port: int  # 0: the server picks one (tcpip-forward only)

    @classmethod
    def read(cls, r: wire.Reader) -> Self:
        return cls(r.text(), _check_port(r.uint32(), zero=True))

    def encode(self) -> bytes:
        return wire.string(self.address) + wire.uint32(self.port)


@dataclass(frozen=True)
class TcpipForward(_BindAddress):
    NAME: ClassVar[str] = "tcpip-forward"


@dataclass(frozen=True)
class CancelTcpipForward(_BindAddress):
    NAME: ClassVar[str] = "cancel-tcpip-forward"


# --- Unix-domain socket forwarding (OpenSSH PROTOCOL section 2.4) ----------------------------


def _socket_path(r: wire.Reader) -> str:
    path = r.text()
    if not path or "\0" in path:
        raise DecodeError("bad socket path")
    return path


@dataclass(frozen=True)
class DirectStreamlocal:
    """``ssh -L ...:/remote.sock``: connect to the Unix socket ``path`` for the client."""

    NAME: ClassVar[str] = "direct-streamlocal@openssh.com"

    path: str

    @classmethod
    def read(cls, r: wire.Reader) -> DirectStreamlocal:
        path = _socket_path(r)
        r.string()  # reserved
        r.uint32()  # reserved
        return cls(path)

    def encode(self) -> bytes:
        return wire.string(self.path) + wire.string(b"") + wire.uint32(0)


@dataclass(frozen=True)
class ForwardedStreamlocal:
    """What the server opens for a connection accepted on a ``streamlocal-forward`` socket."""

    NAME: ClassVar[str] = "forwarded-streamlocal@openssh.com"

    path: str  # the forward's path as the client asked for it

    @classmethod
    def read(cls, r: wire.Reader) -> ForwardedStreamlocal:
        path = _socket_path(r)
        r.string()  # reserved
        return cls(path)

    def encode(self) -> bytes:
        return wire.string(self.path) + wire.string(b"")


@dataclass(frozen=True)
class _SocketPath:
    path: str

    @classmethod
    def read(cls, r: wire.Reader) -> Self:
        return cls(_socket_path(r))

    def encode(self) -> bytes:
        return wire.string(self.path)


@dataclass(frozen=True)
class StreamlocalForward(_SocketPath):
    """``ssh -R /remote.sock:...``: listen on the Unix socket ``path``."""

    NAME: ClassVar[str] = "streamlocal-forward@openssh.com"


@dataclass(frozen=True)
class CancelStreamlocalForward(_SocketPath):
    NAME: ClassVar[str] = "cancel-streamlocal-forward@openssh.com"


# --- channels the server opens towards the client -------------------------------------------


@dataclass(frozen=True)
class X11Channel:
    """An ``x11`` channel (RFC 4254 section 6.3.2): who connected to the forwarded display."""

    NAME: ClassVar[str] = "x11"

    originator: str
    originator_port: int

    @classmethod
    def read(cls, r: wire.Reader) -> X11Channel:
        return cls(r.text(), _check_port(r.uint32(), zero=True))

    def encode(self) -> bytes:
        return wire.string(self.originator) + wire.uint32(self.originator_port)


ChannelOpen = DirectTcpip | DirectStreamlocal
GlobalRequest = TcpipForward | CancelTcpipForward | StreamlocalForward | CancelStreamlocalForward
# A client has no business opening forwarded-tcpip towards a server: that kind
# is left unread, like any other the core does not know.
_CHANNEL_OPENS: dict[str, Callable[[wire.Reader], ChannelOpen]] = {
    DirectTcpip.NAME: DirectTcpip.read,
    DirectStreamlocal.NAME: DirectStreamlocal.read,
}
_GLOBAL_REQUESTS: dict[str, Callable[[wire.Reader], GlobalRequest]] = {
    TcpipForward.NAME: TcpipForward.read,
    CancelTcpipForward.NAME: CancelTcpipForward.read,
    StreamlocalForward.NAME: StreamlocalForward.read,
    CancelStreamlocalForward.NAME: CancelStreamlocalForward.read,
}


# --- decoding --------------------------------------------------------------------------------


def decode(read: Callable[[wire.Reader], _T], data: bytes) -> _T:
    """``read`` applied to the whole of ``data``; trailing bytes are a :class:`DecodeError`."""
    reader = wire.Reader(data)
    value = read(reader)
    reader.done()
    return value


def _parse(
    table: dict[str, Callable[[wire.Reader], _T]], name: str, data: bytes
) -> _T | Malformed | None:
    read = table.get(name)
    if read is None:
        return None
    try:
        return decode(read, data)
    except DecodeError as exc:
        return Malformed(exc.description)


def parse_channel_request(name: str, data: bytes) -> ChannelRequest | Malformed | None:
    """The body of channel request ``name``; ``None`` if the core does not read that type."""
    return _parse(_CHANNEL_REQUESTS, name, data)


def parse_channel_open(kind: str, data: bytes) -> ChannelOpen | Malformed | None:
    """The type-specific data of a CHANNEL_OPEN of ``kind``; ``None`` if not read."""
    return _parse(_CHANNEL_OPENS, kind, data)


def parse_global_request(name: str, data: bytes) -> GlobalRequest | Malformed | None:
    """The body of global request ``name``; ``None`` if the core does not read that type."""
    return _parse(_GLOBAL_REQUESTS, name, data)
