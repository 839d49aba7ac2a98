"""The spindlex_tw server the benchmarks measure, in a process of its own.

    python -m bench.spindlex_server --host-key FILE [--workers N] [--settings JSON]

Prints ``PORT <n>`` once listening on 127.0.0.1. With ``--workers N`` (N > 1)
this process only supervises N worker processes sharing the port
(:mod:`spindlex_tw.twistd.workers`). The application (:class:`BenchServer`) takes
the keys listed in $SPINDLEX_BENCH_AUTHORIZED, the password "secret" for any
user, runs ``true`` as a command and serves SFTP from $SPINDLEX_BENCH_SFTP_ROOT
(with file calls where $SPINDLEX_BENCH_DISK_IO says, by default "auto").

The password is checked as a real server checks a stored hash: PBKDF2-SHA256
with OWASP's 600,000 iterations, on the reactor thread (~0.14 s of CPU). That makes
password logins CPU-bound in the server, which is what worker processes are for.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
from typing import Any

from twisted.internet import reactor as default_reactor
from twisted.logger import globalLogBeginner

from spindlex_tw.crypto.pkey import PKey
from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
from spindlex_tw.server.sftp_server import SFTPServer
from spindlex_tw.server.ssh_server import SSHServer
from spindlex_tw.twistd.workers import (
    WorkerConfig,
    WorkerPool,
    build_factory,
    stderr_observer,
)

reactor: Any = default_reactor
_SALT = b"spindlex-bench-salt"
_ITERATIONS = 600_000


def _password_hash(password: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), _SALT, _ITERATIONS)


class BenchSFTP(SFTPServer):
    """SFTP as configured; $SPINDLEX_BENCH_DISK_IO picks where file calls run."""

    disk_io = os.environ.get("SPINDLEX_BENCH_DISK_IO", SFTPServer.disk_io)


class BenchServer(SSHServer):
    """What every benchmarked server offers: key and password logins, ``true``, SFTP."""

    def __init__(self) -> None:
        super().__init__()
        path = os.environ.get("SPINDLEX_BENCH_AUTHORIZED", "")
        with open(path, encoding="utf-8") as lines:
            self.keys = {PKey.from_public_line(line) for line in lines if line.strip()}
        self.root = os.environ.get("SPINDLEX_BENCH_SFTP_ROOT", os.getcwd())
        self.stored_hash = _password_hash("secret")

    def get_allowed_auths(self, username: str) -> list[str]:
        return ["publickey", "password"]

    def check_auth_publickey(self, username: str, key: PKey) -> int:
        return AUTH_SUCCESSFUL if key in self.keys else AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        ok = hmac.compare_digest(_password_hash(password), self.stored_hash)
        return AUTH_SUCCESSFUL if ok else AUTH_FAILED

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        if command != b"true":
            return False
        reactor.callLater(0, _exit_now, channel)
        return True

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        if name != "sftp":
            return False
        BenchSFTP(channel, self.root)
        return True


def _exit_now(channel: Any) -> None:
    channel.send_exit_status(0)
    channel.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host-key", action="append", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--settings", default="{}")
    args = parser.parse_args()
    # Warnings and errors only, as the other servers are run: sshd at LogLevel
    # ERROR, AsyncSSH with Python's default WARNING.
    config = WorkerConfig(
        app="bench.spindlex_server:BenchServer",
        host_keys=tuple(args.host_key),
        settings=json.loads(args.settings),
        log_level="warn",
    )
    globalLogBeginner.beginLoggingTo([stderr_observer(config.log_level)], redirectStandardIO=False)
    if args.workers > 1:
        pool = WorkerPool(config, args.workers, reactor)
        pool.ready.addCallbacks(_announce, _failed)
        reactor.callWhenRunning(pool.startService)
        reactor.addSystemEventTrigger("before", "shutdown", pool.stopService)
    else:
        factory = build_factory(config, reactor)
        port = reactor.listenTCP(0, factory, config.backlog, config.interface)
        _announce(port.getHost().port)
    reactor.run()


def _announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


def _failed(failure: Any) -> None:
    print(f"ERROR {failure.getErrorMessage()}", flush=True)
    reactor.stop()


if __name__ == "__main__":
    main()
