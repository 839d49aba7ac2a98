"""OpenSSH's ssh -L, -R and -D through our server, and its refusals as ssh reports them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.forward_apps import (
    EchoServer,
    echo_roundtrip,
    free_port,
    hooks_named,
    poll,
    refused,
    sha256,
    socks5_connect,
    try_connect,
)
from tests.support.harness import OpenSSH, ServerProcess

pytestmark = pytest.mark.interop

FORWARDING_APP = "tests.support.forward_apps:ForwardingServer"
REFUSING_APP = "tests.support.forward_apps:RefusingForwardServer"
PAYLOAD = os.urandom(1024 * 1024)


class SSHForward:
    """``ssh -N`` with forwarding options, running in the background; stderr goes to a file."""

    def __init__(self, tmp: Path, port: int, args: Sequence[str]) -> None:
        self.stderr_path = tmp / f"ssh-{len(list(tmp.glob('ssh-*.log')))}.log"
        client = OpenSSH(tmp, port)
        # INFO is where ssh reports "Allocated port N"; failures are errors.
        options = client.options(batch=False, extra=["LogLevel=INFO", "ExitOnForwardFailure=yes"])
        self.cmd = [
            "sshpass",
            "-p",
            "secret",
            "ssh",
            *options,
            "-p",
            str(port),
            "-o",
            "PubkeyAuthentication=no",
            "-N",
            *args,
            "alice@127.0.0.1",
        ]
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_output(self, pattern: str) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            match = re.search(pattern, self.stderr())
            if match is None and self.proc.poll() is not None:
                raise AssertionError(f"ssh exited: {self.stderr()}")
            return match

        return poll(found, what=f"ssh to print {pattern!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def ssh_forward(tmp_path: Path) -> Iterator[Callable[[int, Sequence[str]], SSHForward]]:
    started: list[SSHForward] = []

    def start(port: int, args: Sequence[str]) -> SSHForward:
        forward = SSHForward(tmp_path, port, args)
        started.append(forward)
        return forward

    yield start
    for forward in started:
        forward.stop()


def _connected(port: int, forward: SSHForward) -> socket.socket:
    def attempt() -> socket.socket | None:
        if forward.proc.poll() is not None:
            raise AssertionError(f"ssh exited: {forward.stderr()}")
        return try_connect(port)

    return poll(attempt, what=f"ssh to listen on {port}")


def test_local_forward_moves_data_both_ways(
    start_server: Callable[..., ServerProcess],
    ssh_forward: Callable[..., SSHForward],
    echo: EchoServer,
) -> None:
    server = start_server(app=FORWARDING_APP)
    local = free_port()
    forward = ssh_forward(server.port, ["-L", f"127.0.0.1:{local}:127.0.0.1:{echo.port}"])
    sock = _connected(local, forward)
    with sock:
        assert sha256(echo_roundtrip(sock, PAYLOAD)) == sha256(PAYLOAD)
    (hook,) = hooks_named(server.hooks(), "direct-tcpip")
    assert hook["destination"] == ["127.0.0.1", echo.port]
    assert hook["origin"][0] == "127.0.0.1"


def test_remote_forward_moves_data_both_ways(
    start_server: Callable[..., ServerProcess],
    ssh_forward: Callable[..., SSHForward],
    echo: EchoServer,
) -> None:
    server = start_server(app=FORWARDING_APP)
    remote = free_port()
    forward = ssh_forward(server.port, ["-R", f"{remote}:127.0.0.1:{echo.port}"])
    sock = _connected(remote, forward)
    with sock:
        assert sha256(echo_roundtrip(sock, PAYLOAD)) == sha256(PAYLOAD)
    (hook,) = hooks_named(server.hooks(), "tcpip-forward")
    assert hook == {"hook": "tcpip-forward", "address": "localhost", "port": remote}


def test_remote_forward_port_zero_then_closed_with_the_connection(
    start_server: Callable[..., ServerProcess],
    ssh_forward: Callable[..., SSHForward],
    echo: EchoServer,
) -> None:
    server = start_server(app=FORWARDING_APP)
    forward = ssh_forward(server.port, ["-R", f"0:127.0.0.1:{echo.port}"])
    allocated = int(forward.wait_for_output(r"Allocated port (\d+) for remote forward").group(1))
    sock = _connected(allocated, forward)
    with sock:
        assert echo_roundtrip(sock, b"ping" * 1000) == b"ping" * 1000
    forward.stop()
    assert poll(lambda: refused(allocated), what="the forwarded port to close")
    assert server.alive()


def test_dynamic_forward_through_socks(
    start_server: Callable[..., ServerProcess],
    ssh_forward: Callable[..., SSHForward],
    echo: EchoServer,
) -> None:
    server = start_server(app=FORWARDING_APP)
    socks = free_port()
    forward = ssh_forward(server.port, ["-D", f"127.0.0.1:{socks}"])
    sock = _connected(socks, forward)
    with sock:
        socks5_connect(sock, "127.0.0.1", echo.port)
        assert sha256(echo_roundtrip(sock, PAYLOAD)) == sha256(PAYLOAD)


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (REFUSING_APP, "open failed: administratively prohibited"),
        # The seed's default policy: only sessions are channels.
        ("tests.support.apps:TestServer", "open failed: unknown channel type"),
    ],
)
def test_local_forward_refused_by_policy(
    start_server: Callable[..., ServerProcess],
    ssh_forward: Callable[..., SSHForward],
    echo: EchoServer,
    app: str,
    message: str,
) -> None:
    server = start_server(app=app)
    local = free_port()
    forward = ssh_forward(server.port, ["-L", f"127.0.0.1:{local}:127.0.0.1:{echo.port}"])
    sock = _connected(local, forward)
    with sock:
        assert sock.recv(1) == b""
    forward.wait_for_output(re.escape(message))
    assert "Traceback" not in forward.stderr()
    assert server.alive()


def test_remote_forward_refused_by_policy(
    start_server: Callable[..., ServerProcess], echo: EchoServer, tmp_path: Path
) -> None:
    server = start_server(app=REFUSING_APP)
    forward = SSHForward(tmp_path, server.port, ["-R", f"{free_port()}:127.0.0.1:{echo.port}"])
    try:
        assert forward.proc.wait(30) != 0
    finally:
        forward.stop()
    assert "remote port forwarding failed" in forward.stderr()
    assert server.alive()
