"""spindlex_tw.testing from plain synchronous pytest, and its fixtures, each in its own pytest.

The threaded server needs the reactor to itself (pytest-twisted runs it in
this process), so the tests run pytest in a child interpreter, as a user's
suite would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.docs.support import python_env
from tests.support.harness import ROOT

pytestmark = pytest.mark.interop

THREADED = textwrap.dedent(
    """
    import pytest

    from spindlex_tw.testing import Credentials, start_threaded
    from tests.testing.apps import KnownUserServer

    pytest_plugins = ["spindlex_tw.testing.pytest_plugin"]


    def paramiko_exec(client):
        _, stdout, _ = client.exec_command("paramiko")
        return stdout.read()


    async def asyncssh_exec(connection):
        return (await connection.run("asyncssh", check=True)).stdout


    def test_every_client_by_key_and_password(tmp_path):
        credentials = Credentials.generate(tmp_path / "keys")
        server = start_threaded(KnownUserServer(credentials, str(tmp_path)), tmp_path, credentials)
        try:
            client = server.openssh()
            assert client.ssh("key").check().stdout == b"ran key\\n"
            assert client.ssh("pw", password=True).check().stdout == b"ran pw\\n"
            assert server.with_paramiko(paramiko_exec) == b"ran paramiko\\n"
            assert server.with_paramiko(paramiko_exec, password=True) == b"ran paramiko\\n"
            assert server.with_asyncssh(asyncssh_exec) == "ran asyncssh\\n"
            assert server.with_asyncssh(asyncssh_exec, password=True) == "ran asyncssh\\n"
        finally:
            server.stop()
        assert client.ssh("gone").returncode == 255


    def test_options_server_from_the_fixture(spindlex_server_threaded, tmp_path):
        root = tmp_path / "root"
        root.mkdir()
        (root / "served.txt").write_text("twistd options\\n")
        server = spindlex_server_threaded.options(["--sftp-root", str(root)])
        client = server.openssh(tmp_path / "client")
        client.sftp("get served.txt\\n").check()
        assert (tmp_path / "client" / "served.txt").read_text() == "twistd options\\n"
    """
)

IN_REACTOR = textwrap.dedent(
    """
    import pytest
    import pytest_twisted
    from twisted.internet import threads

    from spindlex_tw.testing import Credentials, start_server
    from tests.testing.apps import KnownUserServer

    pytest_plugins = ["spindlex_tw.testing.pytest_plugin"]


    @pytest_twisted.ensureDeferred
    async def test_two_servers_from_the_fixture(spindlex_server, tmp_path):
        credentials = Credentials.generate(tmp_path / "keys")
        app = await spindlex_server(KnownUserServer(credentials, str(tmp_path)), credentials)
        root = tmp_path / "root"
        root.mkdir()
        (root / "served.txt").write_text("twistd options\\n")
        product = await spindlex_server.options(["--sftp-root", str(root)])
        assert app.port != product.port
        result = await app.openssh().ssh("fixture")
        assert result.check().stdout == b"ran fixture\\n"
        client = product.openssh(tmp_path / "client")
        (await client.sftp("get served.txt\\n")).check()
        assert (tmp_path / "client" / "served.txt").read_text() == "twistd options\\n"


    @pytest_twisted.ensureDeferred
    async def test_start_server_off_the_reactor_thread_says_what_to_use(tmp_path):
        credentials = Credentials.generate(tmp_path / "keys")
        app = KnownUserServer(credentials, str(tmp_path))
        with pytest.raises(RuntimeError, match="use start_threaded"):
            await threads.deferToThread(start_server, app, tmp_path, credentials)
    """
)


def _pytest(tmp_path: Path, module: str, *options: str) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "test_user_suite.py").write_text(module)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options],
        cwd=tmp_path,
        env={**python_env(tmp_path), "PYTHONPATH": f"{ROOT}:{tmp_path}"},
        capture_output=True,
        timeout=300,
    )


def test_threaded_servers_in_plain_pytest(tmp_path: Path) -> None:
    result = _pytest(tmp_path, THREADED, "-p", "no:twisted", "test_user_suite.py")
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"2 passed" in result.stdout


def test_reactor_fixture_in_pytest_twisted(tmp_path: Path) -> None:
    result = _pytest(tmp_path, IN_REACTOR, "test_user_suite.py")
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"2 passed" in result.stdout
