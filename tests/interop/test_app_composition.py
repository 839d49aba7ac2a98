"""One application class, the same behaviour under SSHServerManager and under twistd --app.

Each case runs the class both ways and drives it with OpenSSH's ssh: an
``async def get_allowed_auths`` (the hook contract allows coroutines) and a
``check_channel_request`` that grants direct-tcpip with no other forwarding hook;
``get_channel_count()`` asked by the application of itself.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.interop.test_forwarding_openssh import SSHForward
from tests.interop.test_manager import Script
from tests.support.forward_apps import EchoServer, echo_roundtrip, free_port, poll, try_connect
from tests.support.harness import OpenSSH
from tests.support.twistd import Twistd, isolated_home

pytestmark = pytest.mark.interop

MANAGER = textwrap.dedent(
    """
    import sys

    from spindlex_tw.crypto.pkey import Ed25519Key
    from spindlex_tw.server.ssh_server import SSHServerManager
    from tests.support import composed_apps

    app = getattr(composed_apps, sys.argv[1])()
    manager = SSHServerManager(app, Ed25519Key.generate(), "127.0.0.1", 0)
    manager.start_server()
    print("PORT", manager.get_port(), flush=True)
    sys.stdin.read()
    """
)


@pytest.fixture(params=["manager", "twistd"])
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """Start ``tests.support.composed_apps:<name>`` one way or the other; gives its port."""
    stops: list[Callable[[], object]] = []

    def start(name: str) -> int:
        if request.param == "manager":
            script = Script(tmp_path, MANAGER, name)
            stops.append(script.close)
            return script.port
        server = Twistd(
            [
                "spindlex",
                "--listen",
                "tcp:0:interface=127.0.0.1",
                "--app",
                f"tests.support.composed_apps:{name}",
            ],
            cwd=tmp_path,
            env=isolated_home(tmp_path),
        )
        stops.append(server.stop)
        return server.ports()[0]

    yield start
    for stop in stops:
        stop()


def test_async_get_allowed_auths_lets_a_password_in(
    serve: Callable[[str], int], tmp_path: Path
) -> None:
    client = OpenSSH(tmp_path, serve("AsyncAuthsApp"))
    result = client.ssh("alice", "hello", password="secret")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"async auths let me in\n"
    wrong = client.ssh("alice", "hello", password="wrong")
    assert wrong.returncode != 0
    assert wrong.stdout == b""
    assert b"Permission denied" in wrong.stderr


def test_direct_tcpip_granted_in_check_channel_request_forwards(
    serve: Callable[[str], int], tmp_path: Path
) -> None:
    echo = EchoServer()
    port = serve("DirectTcpipApp")
    local = free_port()
    forward = SSHForward(tmp_path, port, ["-L", f"127.0.0.1:{local}:127.0.0.1:{echo.port}"])
    try:

        def connected() -> object:
            if forward.proc.poll() is not None:
                raise AssertionError(f"ssh exited: {forward.stderr()}")
            return try_connect(local)

        sock = poll(connected, what=f"ssh to listen on {local}")
        with sock:
            assert echo_roundtrip(sock, b"through the tunnel" * 100) == b"through the tunnel" * 100
    finally:
        forward.stop()
        echo.close()


def test_the_application_sees_its_own_channels(serve: Callable[[str], int], tmp_path: Path) -> None:
    # Under twistd the factory serves a composition of the app: the app must still count.
    client = OpenSSH(tmp_path, serve("ChannelCountApp"))
    result = client.ssh("alice", "count", password="secret")
    assert (result.returncode, result.stdout) == (0, b"1 open\n"), result.stderr
