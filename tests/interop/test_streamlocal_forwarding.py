"""Unix-domain socket forwarding (ssh -L/-R with paths) through twistd spindlex --exec.

Bytes go both ways between the test's own Unix socket servers and clients,
through OpenSSH's ssh and AsyncSSH; refusals are what the client reports.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import OpenSSH
from tests.support.keyed import keyed_twistd
from tests.support.twistd import Twistd
from tests.support.unix_echo import EchoServer, exchange

pytestmark = pytest.mark.interop

USER = getpass.getuser()
LINES = {"plain": "", "restricted": "restrict ", "no_forwarding": "no-port-forwarding "}
Setup = tuple[Twistd, OpenSSH, dict[str, Path]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with keyed_twistd(tmp_path_factory.mktemp("streamlocal"), LINES) as setup:
        yield setup


@pytest.fixture
def sockdir() -> Iterator[Path]:
    # Short paths: a Unix socket's path is limited to 107 bytes, pytest's tmp dirs are long.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="spx-sl-") as name:
        yield Path(name)


def closed_unanswered(path: Path) -> bool:
    """Does a connection to ``path`` end without an answer (closed or reset)?"""
    try:
        return exchange(path, b"never\n") == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def start_ssh(setup: Setup, key: str, *args: str) -> subprocess.Popen[bytes]:
    """ssh with forwarding ``args``, running a command that says "ready" and waits for a line."""
    _, client, keys = setup
    argv = [
        "ssh", *client.options(extra=["LogLevel=INFO", "ExitOnForwardFailure=yes"]),
        "-p", str(client.port), "-i", str(keys[key]), "-o", "IdentitiesOnly=yes", *args,
        f"{USER}@127.0.0.1", "echo ready; read line",
    ]  # fmt: skip
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    _, err = proc.communicate(b"\n", timeout=60)
    return proc.returncode, err.decode()


def test_local_forward_to_a_socket_path(server: Setup, sockdir: Path) -> None:
    remote, local = sockdir / "remote.sock", sockdir / "local.sock"
    echo = EchoServer(remote)
    try:
        proc = start_ssh(server, "plain", "-L", f"{local}:{remote}")
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert exchange(local, b"through -L\n" * 1000) == b"THROUGH -L\n" * 1000
        assert finish(proc)[0] == 0
    finally:
        echo.close()


def test_local_forward_refused_by_key_options(server: Setup, sockdir: Path) -> None:
    remote, local = sockdir / "remote.sock", sockdir / "local.sock"
    echo = EchoServer(remote)
    try:
        proc = start_ssh(server, "restricted", "-L", f"{local}:{remote}")
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert closed_unanswered(local)
        _, err = finish(proc)
        assert "open failed: administratively prohibited" in err
    finally:
        echo.close()


def test_local_forward_to_a_missing_socket(server: Setup, sockdir: Path) -> None:
    local = sockdir / "local.sock"
    proc = start_ssh(server, "plain", "-L", f"{local}:{sockdir / 'nobody.sock'}")
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    assert closed_unanswered(local)
    _, err = finish(proc)
    assert "open failed: connect failed: No such file or directory" in err


def test_remote_forward_from_a_socket_path(server: Setup, sockdir: Path) -> None:
    listen, target = sockdir / "listen.sock", sockdir / "target.sock"
    echo = EchoServer(target)
    try:
        proc = start_ssh(server, "plain", "-R", f"{listen}:{target}")
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        server[0].wait_for(re.compile(rf"forwarding socket {re.escape(str(listen))} for"))
        # Only the server's user may connect: the socket is 0600 from the start.
        assert stat.S_IMODE(os.lstat(listen).st_mode) == 0o600
        assert exchange(listen, b"through -R\n" * 1000) == b"THROUGH -R\n" * 1000
        assert finish(proc)[0] == 0
        # The connection ended: the socket is removed.
        server[0].wait_for(re.compile(rf"socket {re.escape(str(listen))} removed"))
        assert not listen.exists()
    finally:
        echo.close()


def test_remote_forward_replaces_a_stale_socket_only(server: Setup, sockdir: Path) -> None:
    target = sockdir / "target.sock"
    stale = sockdir / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left_over:
        left_over.bind(str(stale))  # bound, never listening: what a crashed server leaves
    echo = EchoServer(target)
    try:
        proc = start_ssh(server, "plain", "-R", f"{stale}:{target}")
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        server[0].wait_for(re.compile(rf"forwarding socket {re.escape(str(stale))} for"))
        assert exchange(stale, b"stale\n") == b"STALE\n"
        assert finish(proc)[0] == 0
    finally:
        echo.close()
    regular = sockdir / "file"
    regular.write_text("keep me")
    live = sockdir / "live.sock"
    echo = EchoServer(live)  # a socket someone listens on is not replaced either
    try:
        for path in (regular, live):
            proc = start_ssh(server, "plain", "-R", f"{path}:{sockdir / 'x.sock'}")
            code, err = finish(proc)
            assert code == 255
            assert f"remote port forwarding failed for listen path {path}" in err
    finally:
        echo.close()
    assert regular.read_text() == "keep me"


@pytest.mark.parametrize("key", ["restricted", "no_forwarding"])
def test_remote_forward_refused_by_key_options(server: Setup, sockdir: Path, key: str) -> None:
    listen = sockdir / "listen.sock"
    proc = start_ssh(server, key, "-R", f"{listen}:{sockdir / 'target.sock'}")
    code, err = finish(proc)
    assert code == 255
    assert f"remote port forwarding failed for listen path {listen}" in err
    assert not listen.exists()


def test_asyncssh_forwards_and_cancels(server: Setup, sockdir: Path) -> None:
    asyncssh = pytest.importorskip("asyncssh")
    _, client, keys = server
    listen, target = sockdir / "listen.sock", sockdir / "target.sock"
    remote, local = sockdir / "remote.sock", sockdir / "local.sock"
    echoes = [EchoServer(target), EchoServer(remote)]

    async def run() -> tuple[bytes, bytes]:
        async with asyncssh.connect(
            "127.0.0.1",
            client.port,
            username=USER,
            client_keys=[str(keys["plain"])],
            known_hosts=None,
            agent_path=None,
        ) as conn:
            outbound = await conn.forward_local_path(str(local), str(remote))
            inbound = await conn.forward_remote_path(str(listen), str(target))
            loop = asyncio.get_running_loop()
            answers = (
                await loop.run_in_executor(None, exchange, local, b"local"),
                await loop.run_in_executor(None, exchange, listen, b"remote"),
            )
            # OpenSSH's ssh sends only absolute paths; the server refuses others.
            with pytest.raises(asyncssh.ChannelListenError):
                await conn.forward_remote_path("relative.sock", str(target))
            inbound.close()  # cancel-streamlocal-forward@openssh.com
            await inbound.wait_closed()
            outbound.close()
            return answers

    try:
        assert asyncio.run(run()) == (b"LOCAL", b"REMOTE")
    finally:
        for echo in echoes:
            echo.close()
    server[0].wait_for(re.compile(rf"forwarding socket {re.escape(str(listen))} cancelled"))
    server[0].wait_for(re.compile(rf"socket {re.escape(str(listen))} removed"))
    assert not listen.exists()
