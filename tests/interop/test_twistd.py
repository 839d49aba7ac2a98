"""twistd spindlex as a process: errors, signals, read-only SFTP, a .tac beside twisted.web."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import textwrap
import urllib.request
from pathlib import Path

import paramiko
import pytest

from tests.support.harness import ROOT, OpenSSH
from tests.support.twistd import (
    TWISTD,
    Twistd,
    declared_options,
    documented_options,
    isolated_home,
)

pytestmark = pytest.mark.interop

LOCAL = ["--listen", "tcp:0:interface=127.0.0.1"]


def _run_twistd(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **isolated_home(tmp)}
    return subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "spindlex", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--no-such-option"], "option --no-such-option not recognized"),
        (["--listen", "tcp:port=abc"], "is not a server endpoint"),
        (["--host-key", "missing_key"], "cannot load key missing_key: no such file"),
        (["--host-key", "garbage_key"], "cannot load key garbage_key"),
        (["--app", "no_such_module:Server"], "cannot import no_such_module"),
        (["--app", "os.path:join"], "join is not an SSHServer subclass"),
        (["--auth", "file:plain_passwd"], "plain text is refused"),
        (["--max-connections", "lots"], "--max-connections expects a number"),
        (["--rekey-limit", "1X"], "--rekey-limit: '1X' is not a size such as 512K"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "garbage_key").write_text("this is not a key\n")
    (tmp_path / "plain_passwd").write_text("alice:secret\n")
    result = _run_twistd(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("twistd spindlex: error: ")
    assert needle in lines[0]


def test_help_lists_every_option(tmp_path: Path) -> None:
    result = _run_twistd(tmp_path, "--help")
    assert result.returncode == 0
    declared = declared_options()
    assert {"workers", "max-connections", "login-grace", "max-auth-tries"} <= declared
    described = documented_options(result.stdout)
    # Each option the plugin declares is in the real help, with a description.
    undocumented = {name for name in declared if len(described.get(name, "")) < 10}
    assert not undocumented, result.stdout


def _sftp(client: OpenSSH, commands: str, password: str) -> subprocess.CompletedProcess[bytes]:
    return client.sftp("alice", password, commands)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_gracefully_with_status_0(tmp_path: Path, sig: int) -> None:
    served = tmp_path / "served"
    served.mkdir()
    server = Twistd(
        ["spindlex", *LOCAL, "--auth", "memory:alice:secret"],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        client = OpenSSH(tmp_path, port)
        # A client in the middle of an SFTP session when the signal comes.
        held = subprocess.Popen(
            client.password_argv("sftp", "alice", "secret"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert held.stdin is not None and held.stdout is not None
        held.stdin.write(b"pwd\n")
        held.stdin.flush()
        assert held.stdout.readline().startswith(b"sftp> pwd")
        assert server.stop(sig) == 0, server.log()
        # sftp notices the closed connection once it has something to send.
        with contextlib.suppress(BrokenPipeError):
            held.stdin.write(b"ls\n")
            held.stdin.close()
        assert held.wait(30) != 0
        server.wait_for(re.compile(rf"received {signal.Signals(sig).name}, shutting down"))
        server.wait_for(re.compile(r"Server Shut Down"))
    finally:
        server.kill()


def test_read_only_sftp_and_banner(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "existing.txt").write_text("read me\n")
    banner = tmp_path / "banner.txt"
    banner.write_text("Private server: read-only\n")
    server = Twistd(
        [
            "spindlex",
            *LOCAL,
            "--auth",
            "memory:alice:secret",
            "--read-only",
            "--banner",
            str(banner),
        ],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        client = OpenSSH(tmp_path, port)
        fetched = tmp_path / "fetched.txt"
        got = _sftp(client, f"get existing.txt {fetched}\n", "secret")
        assert got.returncode == 0, got.stderr
        assert fetched.read_text() == "read me\n"
        for change in (f"put {fetched} new.txt", "rm existing.txt", "mkdir newdir"):
            refused = _sftp(client, f"{change}\n", "secret")
            assert b"Permission denied" in refused.stderr, change
        assert sorted(p.name for p in served.iterdir()) == ["existing.txt"]
        shown = client.ssh("alice", "true", password="wrong", extra=["LogLevel=INFO"])
        assert b"Private server: read-only" in shown.stderr
    finally:
        server.stop()


TAC = textwrap.dedent(
    """
    from twisted.application import service, strports
    from twisted.web import resource, server

    from spindlex_tw.twistd.service import ServiceOptions, makeService

    application = service.Application("web and ssh")
    top = service.MultiService()
    top.setServiceParent(application)

    class Hello(resource.Resource):
        isLeaf = True

        def render_GET(self, request):
            return b"hello from twisted.web"


    web = server.Site(Hello())
    strports.service("tcp:0:interface=127.0.0.1", web).setServiceParent(top)

    options = ServiceOptions()
    options.parseOptions(
        ["--listen", "tcp:0:interface=127.0.0.1", "--auth", "memory:alice:secret"]
    )
    makeService(options).setServiceParent(top)
    """
)


def test_tac_with_twisted_web(tmp_path: Path) -> None:
    (tmp_path / "both.tac").write_text(TAC)
    server = Twistd(["-y", "both.tac"], cwd=tmp_path, env=isolated_home(tmp_path))
    try:
        web_port = int(server.wait_for(re.compile(r"Site starting on (\d+)"))[1])
        [ssh_port] = server.ports()
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=20) as page:
            assert page.read() == b"hello from twisted.web"
        result = OpenSSH(tmp_path, ssh_port).ssh("alice", "true", password="secret")
        # Authenticated (the default app runs no commands without --exec).
        assert b"Permission denied" not in result.stderr
        server.wait_for(re.compile(r"login alice from 127\.0\.0\.1"))
        assert server.stop() == 0, server.log()
        for port in (web_port, ssh_port):
            server.wait_for(re.compile(rf"\(TCP Port {port} Closed\)"))
    finally:
        server.kill()


def test_unix_socket_endpoint(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "over-unix.txt").write_text("hi\n")
    path = tmp_path / "ssh.sock"
    server = Twistd(
        ["spindlex", "--listen", f"unix:{path}", "--auth", "memory:alice:secret"],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        server.wait_for(re.compile(rf"listening on {re.escape(str(path))} "))
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            transport = paramiko.Transport(sock)
            try:
                transport.connect(username="alice", password="secret")
                sftp = paramiko.SFTPClient.from_transport(transport)
                assert sftp is not None
                assert sftp.listdir(".") == ["over-unix.txt"]
            finally:
                transport.close()
        assert server.stop() == 0
    finally:
        server.kill()
