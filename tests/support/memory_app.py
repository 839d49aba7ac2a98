"""The application and server the in-memory adapter tests drive (tests/tx/test_memory_*.py).

``MemoryApp`` is an ``SSHServer`` that records every hook call it gets:
- password: alice/secret logs in; user "silent" gets a Deferred that never fires.
- channel opens: the SSHServer default (sessions only); "x-silent@test" never answered.
- exec: "cat" echoes stdin back and exits 0 at EOF (an attached protocol);
  "echo WORDS" and "write N" (N bytes of a counting pattern) send, exit 0 and
  close from inside the hook; "sink" is granted and reads nothing, so the
  client's data fills the server's window; "later" sends "early" from the
  hook and answers with a Deferred kept in ``waiting``; "silent" never
  answers; anything else is refused.
- pty-req is refused.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, protocol, task
from twisted.internet.interfaces import IHalfCloseableProtocol
from zope.interface import implementer

from spindlex_tw.crypto.pkey import Ed25519Key, PKey
from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
from spindlex_tw.server.ssh_server import SSHServer
from spindlex_tw.tx.factory import SSHServerFactory
from spindlex_tw.tx.settings import ServerSettings
from tests.support.memory_client import MemoryClient


def pattern(size: int) -> bytes:
    """``size`` bytes that reveal a lost, repeated or reordered piece."""
    return bytes(i % 251 for i in range(size))


@implementer(IHalfCloseableProtocol)
class Echo(protocol.Protocol):
    """Writes back what it reads; at EOF sends exit-status 0 and closes."""

    transport: Any

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)

    def readConnectionLost(self) -> None:
        self.transport.send_exit_status(0)
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()


class MemoryApp(SSHServer):
    def __init__(self) -> None:
        super().__init__()
        self.logins: list[tuple[str, str]] = []
        self.failures: list[tuple[str, str]] = []
        self.commands: list[bytes] = []
        self.ptys: list[str] = []
        self.opened: list[Any] = []
        self.closed: list[Any] = []
        self.waiting: list[defer.Deferred[bool]] = []

    def get_allowed_auths(self, username: str) -> list[str]:
        return ["password"]

    def check_auth_password(self, username: str, password: str) -> Any:
        if username == "silent":
            return defer.Deferred()
        return AUTH_SUCCESSFUL if (username, password) == ("alice", "secret") else AUTH_FAILED

    def on_authentication_successful(self, username: str, method: str) -> None:
        self.logins.append((username, method))

    def on_authentication_failed(self, username: str, method: str) -> None:
        self.failures.append((username, method))

    def check_channel_request(self, kind: str, chanid: int) -> Any:
        if kind == "x-silent@test":
            return defer.Deferred()
        return super().check_channel_request(kind, chanid)

    def check_channel_exec_request(self, channel: Any, command: bytes) -> Any:
        self.commands.append(command)
        verb, _, argument = command.partition(b" ")
        if verb == b"cat":
            channel.attach_protocol(Echo())
            return True
        if verb in (b"echo", b"write"):
            channel.send(argument if verb == b"echo" else pattern(int(argument)))
            channel.send_exit_status(0)
            channel.close()
            return True
        if verb == b"sink":
            return True
        if verb == b"later":
            channel.send(b"early")
            self.waiting.append(defer.Deferred())
            return self.waiting[-1]
        if verb == b"silent":
            return defer.Deferred()
        return False

    def check_channel_pty_request(self, channel: Any, term: str, *size_and_modes: Any) -> bool:
        self.ptys.append(term)
        return False

    def on_channel_opened(self, channel: Any) -> None:
        self.opened.append(channel)

    def on_channel_closed(self, channel: Any) -> None:
        self.closed.append(channel)


class MemoryServer:
    """A ``MemoryApp`` behind an ``SSHServerFactory`` whose reactor is a ``task.Clock``."""

    host_key: PKey | None = None

    def __init__(self, settings: ServerSettings | None = None) -> None:
        if MemoryServer.host_key is None:
            MemoryServer.host_key = Ed25519Key.generate()
        self.app = MemoryApp()
        self.clock = task.Clock()
        self.settings = settings or ServerSettings(
            login_grace=20.0, hook_timeout=5.0, rekey_seconds=600.0
        )
        self.factory = SSHServerFactory(
            self.app, [MemoryServer.host_key], self.settings, reactor=self.clock
        )
        self.clients: list[MemoryClient] = []

    def connect(self) -> MemoryClient:
        client = MemoryClient(self.factory, port=50000 + len(self.clients))
        self.clients.append(client)
        return client

    def login(self, user: str = "alice", password: str = "secret") -> MemoryClient:
        client = self.connect()
        client.login(user, password)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
