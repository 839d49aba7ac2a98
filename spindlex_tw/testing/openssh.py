"""OpenSSH's ssh, sftp and scp against a server under test, isolated from the user's setup.

Every command line reads no configuration (``-F /dev/null``), trusts only the
test's known_hosts (``StrictHostKeyChecking=yes``) and logs in with the
test's client key in ``BatchMode``, or with its password through ``sshpass``
when asked. :class:`OpenSSH` runs them as children of the reactor and returns
Deferreds; :class:`BlockingOpenSSH` runs them with ``subprocess``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, protocol

from spindlex_tw.server import reactor_thread

if TYPE_CHECKING:
    from spindlex_tw.testing.credentials import Reachable

#: Seconds a client command may take before it is killed (a hang fails the test).
TIMEOUT = 120.0


@dataclass(frozen=True)
class Result:
    """A finished client command."""

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes

    def check(self) -> Result:
        """This result, or an AssertionError with the command and its stderr."""
        if self.returncode != 0:
            error = self.stderr.decode(errors="replace")
            raise AssertionError(f"{self.argv[0]} exited with {self.returncode}: {error}")
        return self


class _Commands:
    """The command lines, shared by both runners."""

    def __init__(self, server: Reachable, directory: str | Path | None = None) -> None:
        self.server = server
        # The clients run here: sftp's downloads, scp's local names. By
        # default a folder beside the test's keys, in the test's own tmp.
        folder = directory if directory is not None else server.credentials.directory / "client"
        self.directory = Path(folder).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)

    def options(self, password: bool = False) -> list[str]:
        server = self.server
        opts = [
            "-F",
            "/dev/null",
            "-o",
            f"UserKnownHostsFile={server.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=30",
            "-o",
            f"User={server.username}",
        ]
        if password:
            # sshpass answers the password prompt, which BatchMode would suppress.
            return [
                *opts,
                "-o",
                "BatchMode=no",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
            ]
        return [
            *opts,
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"IdentityFile={server.credentials.client_key_file}",
            "-o",
            "PreferredAuthentications=publickey",
        ]

    def _wrap(self, argv: list[str], password: bool) -> list[str]:
        if password:
            return ["sshpass", "-p", self.server.password, *argv]
        return argv

    def ssh_argv(self, *command: str, password: bool = False) -> list[str]:
        argv = ["ssh", *self.options(password), "-p", str(self.server.port), self.server.host]
        return self._wrap([*argv, *command], password)

    def sftp_argv(self, password: bool = False) -> list[str]:
        # Commands come on stdin; with a key, "-b -" stops at the first that fails
        # and makes the exit status say so (sftp -b would refuse a password).
        batch = [] if password else ["-b", "-"]
        argv = ["sftp", *self.options(password), *batch, "-P", str(self.server.port)]
        return self._wrap([*argv, self.server.host], password)

    def scp_argv(self, *paths: str, password: bool = False) -> list[str]:
        """``scp`` with ``paths`` as given: name remote ones with :meth:`remote`."""
        argv = ["scp", *self.options(password), "-P", str(self.server.port), *paths]
        return self._wrap(argv, password)

    def remote(self, path: str) -> str:
        """``path`` on the server, as scp names it."""
        return f"{self.server.host}:{path}"


class OpenSSH(_Commands):
    """The clients as child processes of the reactor: each call returns a Deferred."""

    def ssh(
        self, *command: str, password: bool = False, input: bytes = b""
    ) -> defer.Deferred[Result]:
        return self.run(self.ssh_argv(*command, password=password), input)

    def sftp(self, commands: str, password: bool = False) -> defer.Deferred[Result]:
        return self.run(self.sftp_argv(password), commands.encode())

    def scp(self, *paths: str, password: bool = False) -> defer.Deferred[Result]:
        return self.run(self.scp_argv(*paths, password=password))

    def run(self, argv: list[str], input: bytes = b"") -> defer.Deferred[Result]:
        reactor = reactor_thread.get_reactor()
        done = _Collect(argv, input, reactor)
        reactor.spawnProcess(done, argv[0], argv, env=dict(os.environ), path=str(self.directory))
        return done.finished


class BlockingOpenSSH(_Commands):
    """The clients run with ``subprocess``: each call returns when the client has exited."""

    def ssh(self, *command: str, password: bool = False, input: bytes = b"") -> Result:
        return self.run(self.ssh_argv(*command, password=password), input)

    def sftp(self, commands: str, password: bool = False) -> Result:
        return self.run(self.sftp_argv(password), commands.encode())

    def scp(self, *paths: str, password: bool = False) -> Result:
        return self.run(self.scp_argv(*paths, password=password))

    def run(self, argv: list[str], input: bytes = b"") -> Result:
        done = subprocess.run(
            argv, input=input, capture_output=True, timeout=TIMEOUT, cwd=self.directory
        )
        return Result(argv, done.returncode, done.stdout, done.stderr)


class _Collect(protocol.ProcessProtocol):
    """Feeds a child its input, keeps its output and fires with a Result when it has gone."""

    def __init__(self, argv: list[str], input: bytes, reactor: Any) -> None:
        self.argv = argv
        self.input = input
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.finished: defer.Deferred[Result] = defer.Deferred()
        self._reactor = reactor
        self._timer: Any = None

    def connectionMade(self) -> None:
        transport: Any = self.transport
        if self.input:
            transport.write(self.input)
        transport.closeStdin()
        self._timer = self._reactor.callLater(TIMEOUT, self._kill)

    def _kill(self) -> None:
        self.err.append(f"\nkilled after {TIMEOUT:.0f} s".encode())
        transport: Any = self.transport
        transport.signalProcess("KILL")

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.err.append(data)

    def processEnded(self, reason: object) -> None:
        timer = self._timer
        if timer is not None and timer.active():
            timer.cancel()
        code = getattr(getattr(reason, "value", None), "exitCode", None)
        status = code if code is not None else -1
        self.finished.callback(Result(self.argv, status, b"".join(self.out), b"".join(self.err)))
