"""``ssh -R`` under GatewayPorts rules: what OpenSSH's client asks for and what gets bound.

The address actually listening is read from the kernel's socket table
(``/proc/net/tcp``, ``tcp6``), and by connecting to 127.0.0.2: a forward
bound to 127.0.0.1 must refuse there, one bound to every interface answers.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.interop.test_forwarding_openssh import SSHForward
from tests.support.forward_apps import EchoServer, echo_roundtrip, hooks_named, poll
from tests.support.harness import ROOT, OpenSSH, ServerProcess
from tests.support.twistd import TWISTD, Twistd, isolated_home

pytestmark = pytest.mark.interop

FORWARDING_APP = "tests.support.forward_apps:ForwardingServer"
ALLOCATED = r"Allocated port (\d+) for remote forward"
LOOPBACK = {"127.0.0.1", "::1"}


def listening_hosts(port: int) -> set[str]:
    """The local addresses listening on TCP ``port``, as the kernel lists them."""
    hosts: set[str] = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, _, port_hex = fields[1].partition(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            if sys.byteorder == "little":  # each 32-bit word is printed in host order
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            hosts.add(socket.inet_ntop(family, raw))
    return hosts


# Another address of the loopback range: a listener bound to 127.0.0.1 alone
# does not answer there, one bound to every interface does. (Tests reach only
# the loopback, never the machine's other addresses.)
OTHER_LOOPBACK = "127.0.0.2"


def reaches(host: str, port: int) -> bool:
    """Does ``host:port`` accept a TCP connection? (Only ever one of this machine's addresses.)"""
    try:
        with socket.create_connection((host, port), timeout=10):
            return True
    except OSError:
        return False


def allocated_port(forward: SSHForward) -> int:
    return int(forward.wait_for_output(ALLOCATED).group(1))


def refused_by_ssh(forward: SSHForward) -> str:
    assert forward.proc.wait(30) != 0
    return forward.stderr()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def forwards(tmp_path: Path) -> Iterator[Callable[[int, str], SSHForward]]:
    started: list[SSHForward] = []

    def start(port: int, spec: str) -> SSHForward:
        forward = SSHForward(tmp_path, port, ["-R", spec])
        started.append(forward)
        return forward

    yield start
    for forward in started:
        forward.stop()


@pytest.fixture
def twistd_exec(tmp_path: Path) -> Iterator[Callable[..., tuple[Twistd, int]]]:
    """``twistd spindlex --exec`` (whose default policy grants every forward) with extra options."""
    started: list[Twistd] = []

    def start(*options: str) -> tuple[Twistd, int]:
        served = tmp_path / "served"
        served.mkdir(exist_ok=True)
        args = ["spindlex", "--listen", "tcp:0:interface=127.0.0.1", "--exec"]
        args += ["--auth", "memory:alice:secret", *options]
        server = Twistd(args, cwd=served, env=isolated_home(tmp_path))
        started.append(server)
        [port] = server.ports()
        return server, port

    yield start
    for server in started:
        server.kill()


def logs_in(tmp: Path, port: int) -> bool:
    """Health: a fresh client logs in and runs a command."""
    client = OpenSSH(tmp, port)
    result = client.ssh("alice", "echo", "still-serving", password="secret")
    return result.returncode == 0 and b"still-serving" in result.stdout


def test_exec_default_binds_loopback_whatever_the_client_names(
    tmp_path: Path,
    twistd_exec: Callable[..., tuple[Twistd, int]],
    forwards: Callable[[int, str], SSHForward],
    echo: EchoServer,
) -> None:
    server, port = twistd_exec()
    forward = forwards(port, f"0.0.0.0:0:127.0.0.1:{echo.port}")
    bound = allocated_port(forward)
    server.wait_for(re.compile(rf"forwarding 0\.0\.0\.0:{bound} .*listening on 127\.0\.0\.1"))
    assert listening_hosts(bound) <= LOOPBACK
    assert "127.0.0.1" in listening_hosts(bound)
    with socket.create_connection(("127.0.0.1", bound), timeout=30) as sock:
        assert echo_roundtrip(sock, b"through the loopback") == b"through the loopback"
    assert not reaches(OTHER_LOOPBACK, bound)
    assert logs_in(tmp_path, port)


@pytest.mark.parametrize("spec", [":81", "81", "0.0.0.0:81", "localhost:1023"])
def test_exec_privileged_port_refused(
    tmp_path: Path,
    twistd_exec: Callable[..., tuple[Twistd, int]],
    forwards: Callable[[int, str], SSHForward],
    echo: EchoServer,
    spec: str,
) -> None:
    server, port = twistd_exec()
    stderr = refused_by_ssh(forwards(port, f"{spec}:127.0.0.1:{echo.port}"))
    assert "remote port forwarding failed" in stderr
    requested = spec.rpartition(":")[2]
    server.wait_for(re.compile(rf"tcpip-forward \S*:{requested} refused .*: privileged port"))
    assert logs_in(tmp_path, port)


def test_exec_gateway_ports_clientspecified_binds_what_the_client_names(
    tmp_path: Path,
    twistd_exec: Callable[..., tuple[Twistd, int]],
    forwards: Callable[[int, str], SSHForward],
    echo: EchoServer,
) -> None:
    _server, port = twistd_exec("--gateway-ports", "clientspecified")
    forward = forwards(port, f"0.0.0.0:0:127.0.0.1:{echo.port}")
    bound = allocated_port(forward)
    assert listening_hosts(bound) == {"0.0.0.0"}
    with socket.create_connection((OTHER_LOOPBACK, bound), timeout=30) as sock:
        assert echo_roundtrip(sock, b"from another address") == b"from another address"
    assert logs_in(tmp_path, port)


@pytest.mark.parametrize(
    ("gateway_ports", "address", "expected"),
    [
        ("no", "localhost", LOOPBACK),
        ("no", "127.0.0.1", {"127.0.0.1"}),  # a client may still pick one loopback family
        ("clientspecified", "127.0.0.1", {"127.0.0.1"}),
        ("clientspecified", "localhost", LOOPBACK),
        ("yes", "127.0.0.1", None),  # every interface, whatever was asked
        ("typo", "127.0.0.1", {"127.0.0.1"}),  # unknown values are "no"
    ],
)
def test_settings_decide_the_bound_address(
    tmp_path: Path,
    start_server: Callable[..., ServerProcess],
    forwards: Callable[[int, str], SSHForward],
    echo: EchoServer,
    gateway_ports: str,
    address: str,
    expected: set[str] | None,
) -> None:
    # ForwardingServer grants "localhost" and "127.0.0.1" only: the hook still decides.
    server = start_server(app=FORWARDING_APP, settings={"gateway_ports": gateway_ports})
    bound = allocated_port(forwards(server.port, f"{address}:0:127.0.0.1:{echo.port}"))
    hosts = listening_hosts(bound)
    if expected is None:
        assert hosts and hosts <= {"0.0.0.0", "::"}
    else:
        assert "127.0.0.1" in hosts
        assert hosts <= expected
    with socket.create_connection(("127.0.0.1", bound), timeout=30) as sock:
        assert echo_roundtrip(sock, b"ok") == b"ok"
    (hook,) = hooks_named(server.hooks(), "tcpip-forward")
    assert hook == {"hook": "tcpip-forward", "address": address, "port": 0}
    assert logs_in(tmp_path, server.port)


def test_privileged_ports_reach_the_hook_only_when_allowed(
    tmp_path: Path,
    start_server: Callable[..., ServerProcess],
    forwards: Callable[[int, str], SSHForward],
    echo: EchoServer,
) -> None:
    refusing = start_server(app=FORWARDING_APP)
    assert "remote port forwarding failed" in refused_by_ssh(
        forwards(refusing.port, f"127.0.0.1:81:127.0.0.1:{echo.port}")
    )
    assert hooks_named(refusing.hooks(), "tcpip-forward") == []
    assert logs_in(tmp_path, refusing.port)
    refusing.stop()

    allowing = start_server(app=FORWARDING_APP, settings={"allow_privileged_ports": True})
    # The hook refuses "0.0.0.0"; what matters is that it was asked at all.
    refused_by_ssh(forwards(allowing.port, f"0.0.0.0:81:127.0.0.1:{echo.port}"))
    hook = poll(lambda: hooks_named(allowing.hooks(), "tcpip-forward") or None, what="the hook")
    assert hook == [{"hook": "tcpip-forward", "address": "0.0.0.0", "port": 81}]
    assert logs_in(tmp_path, allowing.port)


def _twistd_options(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "spindlex", *args],
        cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(ROOT), **isolated_home(tmp)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_twistd_refuses_an_unknown_gateway_ports_value(tmp_path: Path) -> None:
    result = _twistd_options(tmp_path, "--gateway-ports", "sometimes")
    assert result.returncode == 2
    assert result.stderr.startswith("twistd spindlex: error: --gateway-ports expects one of ")


def test_help_lists_the_forwarding_options(tmp_path: Path) -> None:
    result = _twistd_options(tmp_path, "--help")
    assert "--gateway-ports" in result.stdout
    assert "--allow-privileged-ports" in result.stdout
