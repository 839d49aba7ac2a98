"""spindlex_tw.testing inside pytest-twisted's reactor, driven by OpenSSH, Paramiko and AsyncSSH."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import threads

from spindlex_tw.testing import Credentials, ReactorServer, start_options_server, start_server
from tests.testing.apps import KnownUserServer

pytestmark = pytest.mark.interop


async def _serve(tmp_path: Path) -> ReactorServer:
    credentials = Credentials.generate(tmp_path / "creds")
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello, sftp\n")
    return await start_server(KnownUserServer(credentials, str(root)), tmp_path, credentials)


@pytest_twisted.ensureDeferred
async def test_openssh_ssh_sftp_scp_with_key_and_password(tmp_path: Path) -> None:
    server = await _serve(tmp_path)
    try:
        client = server.openssh(tmp_path / "client")
        by_key = (await client.ssh("echo", "key")).check()
        assert by_key.stdout == b"ran echo key\n"
        by_password = (await client.ssh("echo", "pw", password=True)).check()
        assert by_password.stdout == b"ran echo pw\n"
        (await client.sftp("get hello.txt fetched.txt\n")).check()
        assert (tmp_path / "client" / "fetched.txt").read_bytes() == b"hello, sftp\n"
        (tmp_path / "client" / "up.txt").write_bytes(b"uploaded\n")
        (await client.scp("up.txt", client.remote("up.txt"))).check()
        assert (tmp_path / "root" / "up.txt").read_bytes() == b"uploaded\n"
        listing = (await client.sftp("ls\n", password=True)).check()
        assert b"up.txt" in listing.stdout
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_a_stranger_host_key_is_refused(tmp_path: Path) -> None:
    server = await _serve(tmp_path)
    try:
        # known_hosts names another key: the helpers' clients check the host key.
        stranger = Credentials.generate(tmp_path / "stranger")
        server.known_hosts.write_text(stranger.known_hosts_line(server.port) + "\n")
        refused = await server.openssh().ssh("true")
        assert refused.returncode == 255
        assert b"REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    finally:
        await server.stop()


def _paramiko_exec(client: Any) -> tuple[bytes, int]:
    _, stdout, _ = client.exec_command("paramiko")
    return stdout.read(), stdout.channel.recv_exit_status()


async def _asyncssh_exec_and_read(connection: Any) -> tuple[str, bytes]:
    result = await connection.run("asyncssh", check=True)
    async with connection.start_sftp_client() as sftp, sftp.open("hello.txt", "rb") as handle:
        data = await handle.read()
    return result.stdout, data


@pytest_twisted.ensureDeferred
async def test_paramiko_and_asyncssh_clients(tmp_path: Path) -> None:
    server = await _serve(tmp_path)
    try:
        assert await server.with_paramiko(_paramiko_exec) == (b"ran paramiko\n", 0)
        assert await server.with_paramiko(_paramiko_exec, password=True) == (b"ran paramiko\n", 0)
        output, data = await server.with_asyncssh(_asyncssh_exec_and_read)
        assert (output, data) == ("ran asyncssh\n", b"hello, sftp\n")
        output, _ = await server.with_asyncssh(_asyncssh_exec_and_read, password=True)
        assert output == "ran asyncssh\n"
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_stop_disconnects_clients_and_frees_the_port(tmp_path: Path) -> None:
    server = await _serve(tmp_path)
    client = server.openssh()
    (await client.ssh("first")).check()
    await server.stop()
    gone = await client.ssh("again")
    assert gone.returncode == 255 and b"Connection refused" in gone.stderr


@pytest_twisted.ensureDeferred
async def test_the_twistd_options_server(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "served.txt").write_bytes(b"by twistd's options\n")
    server = await start_options_server(["--sftp-root", str(root)], tmp_path / "options")
    try:
        client = server.openssh(tmp_path / "client")
        (await client.sftp("get served.txt\n")).check()
        assert (tmp_path / "client" / "served.txt").read_bytes() == b"by twistd's options\n"
        (await client.scp(client.remote("served.txt"), "copy.txt")).check()
        assert (tmp_path / "client" / "copy.txt").read_bytes() == b"by twistd's options\n"
        listing = (await client.sftp("ls\n", password=True)).check()
        assert b"served.txt" in listing.stdout
    finally:
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_stop_with_a_client_still_connected(tmp_path: Path) -> None:
    server = await _serve(tmp_path)
    client = await threads.deferToThread(server.paramiko_client)
    transport = client.get_transport()
    try:
        await server.stop()
        # A second stop (the fixture's, after the test's own) does nothing.
        await server.stop()
        # The client's reader thread ends once the server has disconnected it.
        await threads.deferToThread(transport.join, 60)
        assert not transport.is_active()
    finally:
        client.close()
