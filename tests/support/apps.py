"""SSHServer applications the interop tests run (see server_main.py).

``TestServer`` behaviour, all driven by the client:
- password: alice/secret; user "slow" is accepted by a Deferred that fires only
  once another user has logged in (proof that a pending hook blocks nobody);
  user "raiser" makes the hook raise; user "falsy" gets ``False`` back.
- publickey: any key listed in $SPINDLEX_TEST_AUTHORIZED; user "twostep" needs
  that key (AUTH_PARTIAL) and then the password "secret".
- keyboard-interactive: user "kbd" answers two prompts ("one", "two").
- exec: "echo WORDS", "stderr WORDS", "exit N", "cat" (echo stdin back, via an
  attached protocol), "boom" (an attached protocol that raises), "sha256" (a
  worker thread reads stdin with recv() and prints its digest), "signal NAME",
  "env NAME", "wait-signal" (exits when a signal request arrives), "pty"
  (prints the pty term and size).
- shell: a line echo that quits on "exit".
- every login and every env/window-change/signal hook call is appended as a JSON line to
  $SPINDLEX_TEST_RECORD when set.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.interfaces import IHalfCloseableProtocol
from zope.interface import implementer

from spindlex_tw.crypto.pkey import PKey
from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_PARTIAL, AUTH_SUCCESSFUL
from spindlex_tw.server.ssh_server import SSHServer
from spindlex_tw.tx.protocol import current_connection


def passed_methods() -> tuple[str, ...]:
    """The methods that passed as a first factor on the connection being served."""
    conn = current_connection()
    return conn.auth.passed_methods if conn is not None and conn.auth is not None else ()


def record(kind: str, **fields: Any) -> None:
    path = os.environ.get("SPINDLEX_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"hook": kind, **fields}) + "\n")


def authorized_keys() -> set[PKey]:
    path = os.environ.get("SPINDLEX_TEST_AUTHORIZED")
    if not path or not os.path.exists(path):
        return set()
    with open(path, encoding="utf-8") as lines:
        return {PKey.from_public_line(line) for line in lines if line.strip()}


@implementer(IHalfCloseableProtocol)
class Cat(protocol.Protocol):
    """Echoes everything back; on EOF sends exit-status 0 and closes."""

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)

    def readConnectionLost(self) -> None:
        self.transport.send_exit_status(0)
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass


class Boom(protocol.Protocol):
    """Raises on the first data it gets: only its channel may suffer."""

    def dataReceived(self, data: bytes) -> None:
        raise RuntimeError("attached protocol failure")


class LineShell(protocol.Protocol):
    def connectionMade(self) -> None:
        self.transport.write(b"spindlex$ ")
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\r" in self.buffer or b"\n" in self.buffer:
            line, _, self.buffer = (
                self.buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").partition(b"\n")
            )
            if line.strip() == b"exit":
                self.transport.write(b"\r\nbye\r\n")
                self.transport.send_exit_status(0)
                self.transport.loseConnection()
                return
            self.transport.write(b"\r\nyou typed: " + line + b"\r\nspindlex$ ")


class TestServer(SSHServer):
    def __init__(self) -> None:
        super().__init__()
        self.keys = authorized_keys()
        self.slow_waiters: list[defer.Deferred[int]] = []

    def on_authentication_successful(self, username: str, method: str) -> None:
        super().on_authentication_successful(username, method)
        record("authenticated", user=username)
        if username != "slow":
            waiters, self.slow_waiters = self.slow_waiters, []
            for waiting in waiters:
                waiting.callback(AUTH_SUCCESSFUL)

    # --- auth ---------------------------------------------------------------------------
    def get_banner(self) -> str | None:
        return "Welcome to the spindlex_tw test server\n"

    def get_allowed_auths(self, username: str) -> list[str]:
        if username == "twostep":
            return ["password"] if "publickey" in passed_methods() else ["publickey"]
        if username == "kbd":
            return ["keyboard-interactive"]
        return ["publickey", "password", "keyboard-interactive"]

    def check_auth_password(self, username: str, password: str) -> Any:
        if username == "slow":
            waiting: defer.Deferred[int] = defer.Deferred()
            self.slow_waiters.append(waiting)
            record("slow-waiting")
            return waiting
        if username == "raiser":
            raise RuntimeError("hook failure that must not reach the peer")
        if username == "falsy":
            return False
        if username == "twostep":
            ok = "publickey" in passed_methods() and password == "secret"
            return AUTH_SUCCESSFUL if ok else AUTH_FAILED
        return AUTH_SUCCESSFUL if password == "secret" else AUTH_FAILED

    def check_auth_publickey(self, username: str, key: PKey) -> int:
        if key not in self.keys:
            return AUTH_FAILED
        if username == "twostep":
            # The key is the first factor; it counts once the server has seen
            # its signature (passed_methods), never from this hook's own call.
            return AUTH_PARTIAL
        return AUTH_SUCCESSFUL

    def get_keyboard_interactive_prompts(self, username: str, submethods: str) -> Any:
        if username == "kbd":
            return ("spindlex", "Answer both", [("First: ", True), ("Second: ", False)])
        return None

    def check_auth_keyboard_interactive_response(self, username: str, responses: list[str]) -> int:
        return AUTH_SUCCESSFUL if responses == ["one", "two"] else AUTH_FAILED

    # --- sessions -----------------------------------------------------------------------
    def check_channel_pty_request(self, channel: Any, term: str, *size: Any) -> bool:
        record("pty", term=term, width=size[0], height=size[1])
        return True

    def check_channel_env_request(self, channel: Any, name: str, value: str) -> bool:
        record("env", name=name, value=value)
        return name.startswith("SPX_")

    def check_channel_window_change_request(self, channel: Any, *size: int) -> bool:
        record("window-change", width=size[0], height=size[1])
        return True

    def check_channel_x11_request(
        self, channel: Any, single: bool, auth_protocol: str, cookie: bytes, screen: int
    ) -> bool:
        record("x11", single=single, protocol=auth_protocol, cookie=cookie.hex(), screen=screen)
        return True

    def check_channel_signal_request(self, channel: Any, signal_name: str) -> bool:
        record("signal", name=signal_name)
        waiter = getattr(channel, "signal_waiter", None)
        if waiter is not None:
            reactor.callLater(0, waiter, signal_name)
        return True

    def check_channel_shell_request(self, channel: Any) -> bool:
        channel.attach_protocol(LineShell())
        return True

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        if name != "sftp":
            return False
        from spindlex_tw.server.sftp_server import SFTPServer

        class Served(SFTPServer):
            disk_io = os.environ.get("SPINDLEX_TEST_DISK_IO", "auto")

        Served(channel, os.environ.get("SPINDLEX_TEST_SFTP_ROOT", os.getcwd()))
        return True

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        word, _, rest = command.decode().partition(" ")
        handler = getattr(self, "_exec_" + word.replace("-", "_"), None)
        if handler is None:
            return False
        # Run after the reply so output follows the exec's SUCCESS.
        reactor.callLater(0, handler, channel, rest)
        return True

    @staticmethod
    def _finish(channel: Any, status: int) -> None:
        channel.send_exit_status(status)
        channel.close()

    def _exec_echo(self, channel: Any, rest: str) -> None:
        channel.send(rest.encode() + b"\n")
        self._finish(channel, 0)

    def _exec_stderr(self, channel: Any, rest: str) -> None:
        channel.send_stderr(rest.encode() + b"\n")
        self._finish(channel, 0)

    def _exec_exit(self, channel: Any, rest: str) -> None:
        self._finish(channel, int(rest))

    def _exec_cat(self, channel: Any, rest: str) -> None:
        channel.attach_protocol(Cat())

    def _exec_boom(self, channel: Any, rest: str) -> None:
        channel.attach_protocol(Boom())

    def _exec_sha256(self, channel: Any, rest: str) -> None:
        def work() -> None:
            digest = hashlib.sha256()
            total = 0
            while True:
                chunk = channel.recv(65536)
                if not chunk:
                    break
                digest.update(chunk)
                total += len(chunk)
            channel.sendall(f"{digest.hexdigest()} {total}\n".encode())
            channel.send_exit_status(0)
            channel.close()

        threading.Thread(target=work, daemon=True).start()

    def _exec_signal(self, channel: Any, rest: str) -> None:
        channel.send_exit_signal(rest, False, "killed by test")
        channel.close()

    def _exec_env(self, channel: Any, rest: str) -> None:
        channel.send(channel.environment.get(rest, "<unset>").encode() + b"\n")
        self._finish(channel, 0)

    def _exec_pty(self, channel: Any, rest: str) -> None:
        channel.send(f"{channel.term} {channel.term_size[0]}x{channel.term_size[1]}\n".encode())
        self._finish(channel, 0)

    def _exec_wait_signal(self, channel: Any, rest: str) -> None:
        done: defer.Deferred[str] = defer.Deferred()
        channel.signal_waiter = done.callback
        done.addCallback(
            lambda name: (channel.send(f"got {name}\n".encode()), self._finish(channel, 0))
        )
        channel.send(b"waiting\n")
