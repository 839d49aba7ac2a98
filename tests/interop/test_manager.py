"""SSHServerManager and SSHServer.start_server(sock) from plain synchronous scripts.

Each script runs in its own interpreter with no reactor code at all, as in
SpindleX's documentation; OpenSSH's clients and raw sockets drive it.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import ROOT, OpenSSH
from tests.support.waiting import poll

pytestmark = pytest.mark.interop

MANAGER_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    from spindlex_tw.crypto.pkey import Ed25519Key
    from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
    from spindlex_tw.server.sftp_server import SFTPServer
    from spindlex_tw.server.ssh_server import SSHServer, SSHServerManager


    class MyServer(SSHServer):
        def check_auth_password(self, username, password):
            ok = (username, password) == ("alice", "secret")
            return AUTH_SUCCESSFUL if ok else AUTH_FAILED

        def check_channel_exec_request(self, channel, command):
            if command == b"hold":
                channel.send(b"holding\\n")
            else:
                channel.send(b"ran " + command + b"\\n")
                channel.send_exit_status(0)
                channel.close()
            return True

        def check_channel_subsystem_request(self, channel, name):
            SFTPServer(channel, sys.argv[1])
            return True


    manager = SSHServerManager(MyServer(), Ed25519Key.generate(), "127.0.0.1", 0)
    manager.start_server()
    print("PORT", manager.get_port(), flush=True)
    commands = {
        "count": lambda: manager.get_connection_count(),
        "stats": lambda: manager.get_connection_stats(),
        "ids": lambda: manager.get_active_connections(),
        "close": lambda cid: manager.close_connection(cid),
        "max": lambda n: manager.set_max_connections(int(n)),
        "auth_timeout": lambda s: manager.set_auth_timeout(float(s)),
        "conn_timeout": lambda s: manager.set_connection_timeout(float(s)),
        "stop": lambda: (manager.stop_server(), manager.is_running(), manager.get_port()),
    }
    for line in sys.stdin:
        name, *args = line.split()
        if name == "exit":
            break
        print(json.dumps(commands[name](*args)), flush=True)
    """
)

ADOPT_SCRIPT = textwrap.dedent(
    """
    import socket
    import sys

    from spindlex_tw.crypto.pkey import Ed25519Key
    from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
    from spindlex_tw.server.ssh_server import SSHServer


    class MyServer(SSHServer):
        def check_auth_password(self, username, password):
            return AUTH_SUCCESSFUL if password == "secret" else AUTH_FAILED

        def check_channel_exec_request(self, channel, command):
            channel.send(b"adopted " + command + b"\\n")
            channel.send_exit_status(0)
            channel.close()
            return True


    server = MyServer()
    server.set_server_key(Ed25519Key.generate())
    listener = socket.create_server(("127.0.0.1", 0))
    print("PORT", listener.getsockname()[1], flush=True)
    for _ in range(2):
        client, _ = listener.accept()
        connection = server.start_server(client, timeout=20)
        print("ADOPTED", connection.peer, flush=True)
    sys.stdin.read()  # serve until told to stop
    """
)


class Script:
    """A Python script in a child process, talked to line by line."""

    def __init__(self, tmp: Path, text: str, *args: str) -> None:
        path = tmp / "script.py"
        path.write_text(text)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, str(path), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp,
        )
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        first = self.line()
        assert first.startswith("PORT "), first + self.stderr()
        self.port = int(first.split()[1])

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw)
        self._lines.put(b"")

    def line(self, timeout: float = 30) -> str:
        try:
            return self._lines.get(timeout=timeout).decode().strip()
        except queue.Empty:
            return ""

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        reply = self.line()
        assert reply, f"no answer to {command!r}: {self.stderr()}"
        return json.loads(reply)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def manager_script(tmp_path: Path) -> Any:
    served = tmp_path / "served"
    served.mkdir()
    (served / "hello.txt").write_text("hello from the manager\n")
    script = Script(tmp_path, MANAGER_SCRIPT, str(served))
    yield script
    script.close()


def _hold(client: OpenSSH) -> subprocess.Popen[bytes]:
    """An ssh session kept open by the server's "hold" command, once it is under way."""
    proc = subprocess.Popen(
        client.password_argv("ssh", "alice", "secret", "hold"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"holding\n"
    return proc


def test_synchronous_manager_serves_and_stops(manager_script: Script, tmp_path: Path) -> None:
    client = OpenSSH(tmp_path, manager_script.port)
    result = client.ssh("alice", "echo", "hi", password="secret")
    assert (result.returncode, result.stdout) == (0, b"ran echo hi\n"), result.stderr

    fetched = tmp_path / "fetched.txt"
    sftp = client.sftp("alice", "secret", f"get hello.txt {fetched}\n")
    assert sftp.returncode == 0, sftp.stderr
    assert fetched.read_text() == "hello from the manager\n"

    held = _hold(client)
    assert manager_script.ask("count") == 1
    [connection_id] = manager_script.ask("ids")
    assert connection_id.startswith("127.0.0.1:")
    assert manager_script.ask(f"close {connection_id}") is True
    assert held.wait(20) == 255
    assert b"Closed by the server" in held.stderr.read()  # type: ignore[union-attr]
    assert manager_script.ask("close no-such-id") is False

    held = _hold(client)
    assert manager_script.ask("stop") == [None, False, None]
    assert held.wait(20) == 255
    assert b"Server shutting down" in held.stderr.read()  # type: ignore[union-attr]
    assert manager_script.ask("count") == 0
    stats = manager_script.ask("stats")
    assert stats["total_connections"] == 4 and stats["active_connections"] == 0
    assert stats["max_connections"] == 100
    refused = client.ssh("alice", "echo", "late", password="secret", timeout=30)
    assert refused.returncode == 255

    # The script ends on its own: the background reactor and the SFTP threads stop with it.
    assert manager_script.proc.stdin is not None
    manager_script.proc.stdin.write(b"exit\n")
    manager_script.proc.stdin.flush()
    assert manager_script.proc.wait(30) == 0, manager_script.stderr()


def _raw_exchange(port: int, send: bytes) -> bytes:
    """What the server sends to a client that says only ``send``, until it hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(send)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_limits_take_effect(manager_script: Script, tmp_path: Path) -> None:
    client = OpenSSH(tmp_path, manager_script.port)
    manager_script.ask("max 1")
    held = _hold(client)
    refused = client.ssh("alice", "echo", "two", password="secret")
    assert refused.returncode == 255
    assert b"Too many connections" in _raw_exchange(manager_script.port, b"")
    held.kill()
    held.wait(10)
    poll(lambda: True if manager_script.ask("count") == 0 else None, what="the count to drop")
    manager_script.ask("max 10")

    # Login grace: a client that never logs in is shown the door.
    manager_script.ask("auth_timeout 1")
    assert b"Login grace time exceeded" in _raw_exchange(manager_script.port, b"")
    # Connection timeout: the key exchange has to finish sooner than the login.
    manager_script.ask("auth_timeout 60")
    manager_script.ask("conn_timeout 1")
    reply = _raw_exchange(manager_script.port, b"SSH-2.0-silent_after_version\r\n")
    assert b"Key exchange timed out" in reply
    assert manager_script.ask("stats")["failed_connections"] >= 3
    # It bounds the handshake only.  A session set up under a generous limit
    # (so OpenSSH's key exchange need not fit in a second) outlives a second
    # silent client's one-second limit: the server's timer, not ours, is the clock.
    manager_script.ask("conn_timeout 60")
    held = _hold(client)
    manager_script.ask("conn_timeout 1")
    reply = _raw_exchange(manager_script.port, b"SSH-2.0-silent_after_version\r\n")
    assert b"Key exchange timed out" in reply
    assert held.poll() is None and manager_script.ask("count") == 1
    held.kill()
    held.wait(10)


def test_start_server_adopts_accepted_sockets(tmp_path: Path) -> None:
    script = Script(tmp_path, ADOPT_SCRIPT)
    try:
        client = OpenSSH(tmp_path, script.port)
        for word in ("one", "two"):
            result = client.ssh("bob", "say", word, password="secret")
            assert (result.returncode, result.stdout) == (0, f"adopted say {word}\n".encode())
            assert script.line().startswith("ADOPTED 127.0.0.1:")
        assert script.proc.stdin is not None
        script.proc.stdin.close()
        assert script.proc.wait(30) == 0, script.stderr()
    finally:
        script.close()
