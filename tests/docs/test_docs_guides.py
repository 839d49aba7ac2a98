"""docs/quickstart.md, channel.md, manager.md, twistd.md, recipes.md: each example, run for real."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.docs.support import (
    covers,
    python_env,
    served,
    source,
    start_script,
    stop,
    wait_for_port,
    with_ports,
    write_module,
)
from tests.support.harness import ROOT, OpenSSH
from tests.support.twistd import Twistd, isolated_home
from tests.support.waiting import free_port

pytestmark = pytest.mark.interop

Start = Callable[..., Any]


def _sftp(
    client: OpenSSH, user: str, password: str, commands: str
) -> subprocess.CompletedProcess[bytes]:
    return client.sftp(user, password, commands)


def _served_client(start_server: Start, tmp: Path, block: str, cls: str, **env: str) -> OpenSSH:
    write_module(tmp, block)
    return OpenSSH(tmp, served(start_server, tmp, cls, **env).port)


def _twistd_env(tmp: Path) -> dict[str, str]:
    return {**isolated_home(tmp), "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT)])}


# --- quickstart.md -------------------------------------------------------------------------


@covers("quickstart-script")
def test_quickstart_script(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "shared.txt").write_text("from the quick start\n")
    proc = start_script(tmp_path, with_ports(source("quickstart-script"), {2222: port}))
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert (
            proc.stdout.readline() == f"Listening on port {port}; press Enter to stop.\n".encode()
        )
        client = OpenSSH(tmp_path, port)
        ran = client.ssh("alice", "uptime", password="secret")
        assert (ran.returncode, ran.stdout) == (0, b"you ran: uptime\n"), ran.stderr
        got = _sftp(client, "alice", "secret", f"get shared.txt {tmp_path}/got.txt\n")
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "got.txt").read_text() == "from the quick start\n"
        out, err = proc.communicate(b"\n", timeout=30)
        assert proc.returncode == 0, err
        assert b"'total_connections': 2" in out
    finally:
        stop(proc)


# --- channel.md ------------------------------------------------------------------------------


@covers("channel-reactor")
def test_channel_from_the_reactor(tmp_path: Path, start_server: Start) -> None:
    client = _served_client(start_server, tmp_path, "channel-reactor", "CountdownServer")
    result = client.ssh("u", "3", password="x")
    assert (result.returncode, result.stdout) == (0, b"3\n2\n1\nliftoff\n")
    assert client.ssh("u", "soon", password="x").returncode == 255


@covers("channel-protocol")
def test_channel_with_a_protocol(tmp_path: Path, start_server: Start) -> None:
    client = _served_client(start_server, tmp_path, "channel-protocol", "ShoutServer")
    result = client.ssh("u", "shout", password="x", input=b"hello\nworld\n")
    assert result.returncode == 0
    assert result.stdout == b"HELLO\nWORLD\n"


@covers("channel-thread")
def test_channel_from_a_thread(tmp_path: Path, start_server: Start) -> None:
    client = _served_client(start_server, tmp_path, "channel-thread", "ChecksumServer")
    payload = os.urandom(3 << 20)
    result = client.ssh("u", "sha256", password="x", input=payload)
    assert result.returncode == 0, result.stderr
    expected = f"{hashlib.sha256(payload).hexdigest()}  {len(payload)} bytes\n"
    assert result.stdout.decode() == expected


# --- manager.md ------------------------------------------------------------------------------


@covers("manager-reactor")
def test_manager_in_a_twisted_program(tmp_path: Path) -> None:
    port = free_port()
    proc = start_script(tmp_path, with_ports(source("manager-reactor"), {2222: port}))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == f"listening on port {port}\n".encode()
        result = OpenSSH(tmp_path, port).ssh("u", "hi", password="hello")
        assert result.stdout == b"hello from the reactor\n"
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        stop(proc)


@covers("manager-service")
def test_manager_as_a_service(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "server.tac").write_text(with_ports(source("manager-service"), {2222: port}))
    server = Twistd(["-y", "server.tac"], tmp_path, _twistd_env(tmp_path), pythonpath=None)
    try:
        assert server.ports() == [port]
        result = OpenSSH(tmp_path, port).ssh("u", "hi", password="service")
        assert result.stdout == b"served by twistd\n"
        # twistd stops cleanly, then ends itself with the signal it got (its own habit).
        assert server.stop() == -signal.SIGTERM
        server.wait_for(re.compile(rf"\(TCP Port {port} Closed\)"))
        server.wait_for(re.compile(r"Server Shut Down"))
    finally:
        server.kill()


@covers("manager-adopt")
def test_adopting_sockets(tmp_path: Path) -> None:
    port = free_port()
    proc = start_script(tmp_path, with_ports(source("manager-adopt"), {2222: port}))
    try:
        wait_for_port(port, proc)
        for _ in range(2):
            result = OpenSSH(tmp_path, port).ssh("u", "hi", password="adopted")
            assert result.stdout == b"served on an adopted socket\n"
    finally:
        stop(proc)
    assert proc.stdout is not None
    # The port probe above was a connection too.
    assert proc.stdout.read().count(b"serving 127.0.0.1:") >= 2


# --- twistd.md -------------------------------------------------------------------------------


@covers("twistd-hash")
def test_password_file_from_python(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", source("twistd-hash")],
        cwd=tmp_path,
        env=python_env(tmp_path),
        check=True,
        timeout=60,
    )
    server = Twistd(
        ["spindlex", "--listen", "tcp:0:interface=127.0.0.1", "--auth", "file:passwords"],
        tmp_path,
        isolated_home(tmp_path),
    )
    try:
        client = OpenSSH(tmp_path, server.ports()[0])
        assert _sftp(client, "alice", "her password", "pwd\n").returncode == 0
        assert _sftp(client, "bob", "his password", "pwd\n").returncode == 0
        assert _sftp(client, "bob", "her password", "pwd\n").returncode != 0
    finally:
        server.kill()


@covers("twistd-app")
def test_twistd_app(tmp_path: Path) -> None:
    (tmp_path / "staff.py").write_text(source("twistd-app"))
    command = re.search(r"# staff.py: PYTHONPATH=\. twistd -n (.*)", source("twistd-app"))
    assert command is not None
    args = [*command[1].split(), "--listen", "tcp:0:interface=127.0.0.1"]
    (tmp_path / "notes.txt").write_text("staff only\n")
    server = Twistd(args, tmp_path, _twistd_env(tmp_path), pythonpath=None)
    try:
        client = OpenSSH(tmp_path, server.ports()[0])
        got = _sftp(client, "dana", "night shift", f"get notes.txt {tmp_path}/got.txt\n")
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "got.txt").read_text() == "staff only\n"
        assert _sftp(client, "dana", "day shift", "pwd\n").returncode != 0
        assert "one-time password" not in server.log()
    finally:
        server.kill()


# --- recipes.md ------------------------------------------------------------------------------


@covers("recipe-credentials")
def test_recipe_credentials(
    tmp_path: Path, start_server: Start, client_keys: dict[str, Path]
) -> None:
    users = tmp_path / "users.json"
    users.write_text(
        json.dumps(
            {
                "alice": {
                    "bcrypt": bcrypt.hashpw(b"alice pw", bcrypt.gensalt(4)).decode(),
                    "keys": [client_keys["ed25519"].with_suffix(".pub").read_text()],
                }
            }
        )
    )
    client = _served_client(
        start_server, tmp_path, "recipe-credentials", "DirectoryServer", USERS_FILE=str(users)
    )
    assert client.ssh("alice", "x", password="alice pw").stdout == b"welcome, alice\n"
    by_key = client.ssh("alice", "x", identity=client_keys["ed25519"])
    assert by_key.stdout == b"welcome, alice\n"
    assert client.ssh("alice", "x", password="wrong").returncode != 0
    assert client.ssh("bob", "x", identity=client_keys["ed25519"]).returncode == 255


@covers("recipe-per-user-root")
def test_recipe_per_user_root(tmp_path: Path, start_server: Start) -> None:
    base = tmp_path / "homes"
    client = _served_client(
        start_server, tmp_path, "recipe-per-user-root", "HomesServer", SFTP_BASE=str(base)
    )
    local = tmp_path / "mine.txt"
    local.write_text("alice's file\n")
    assert _sftp(client, "alice", "alice-pw", f"put {local} mine.txt\n").returncode == 0
    assert (base / "alice" / "mine.txt").read_text() == "alice's file\n"
    listing = _sftp(client, "bob", "bob-pw", "ls -a\n")
    assert listing.returncode == 0
    assert b"mine.txt" not in listing.stdout
    assert sorted(p.name for p in base.iterdir()) == ["alice", "bob"]


@covers("recipe-read-only")
def test_recipe_read_only(tmp_path: Path, start_server: Start) -> None:
    public = tmp_path / "public"
    public.mkdir()
    (public / "readme.txt").write_text("take a copy\n")
    client = _served_client(
        start_server, tmp_path, "recipe-read-only", "MirrorServer", PUBLIC_DIR=str(public)
    )
    got = _sftp(client, "anonymous", "", f"get readme.txt {tmp_path}/copy.txt\n")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "copy.txt").read_text() == "take a copy\n"
    refused = _sftp(client, "anonymous", "", f"put {tmp_path}/copy.txt new.txt\nrm readme.txt\n")
    assert refused.stderr.count(b"Permission denied") == 2
    assert sorted(p.name for p in public.iterdir()) == ["readme.txt"]


@covers("recipe-exec")
def test_recipe_exec(tmp_path: Path, start_server: Start) -> None:
    client = _served_client(start_server, tmp_path, "recipe-exec", "RunnerServer")
    echo = client.ssh("u", "echo 'two words' again", password="x")
    assert (echo.returncode, echo.stdout) == (0, b"two words again\n")
    assert client.ssh("u", "false", password="x").returncode == 1
    assert client.ssh("u", "uname", password="x").stdout == os.uname().sysname.encode() + b"\n"
    assert client.ssh("u", "rm -rf /tmp/nothing", password="x").returncode == 255


def _stdio_forward(client: OpenSSH, target: str) -> subprocess.CompletedProcess[bytes]:
    return client.ssh("u", password="x", args=["-W", target], extra=["LogLevel=INFO"])


@covers("recipe-forwarding")
def test_recipe_forwarding(tmp_path: Path, start_server: Start) -> None:
    client = _served_client(start_server, tmp_path, "recipe-forwarding", "JumpServer")
    allowed = _stdio_forward(client, f"127.0.0.1:{client.port}")
    assert allowed.stdout.startswith(b"SSH-2.0-"), allowed.stderr
    for target in ("127.0.0.1:22", "192.0.2.1:8080"):
        refused = _stdio_forward(client, target)
        assert b"administratively prohibited" in refused.stdout + refused.stderr, target


@covers("recipe-tac")
def test_recipe_tac(tmp_path: Path) -> None:
    web, ssh = free_port(), free_port()
    (tmp_path / "site.tac").write_text(with_ports(source("recipe-tac"), {8080: web, 2222: ssh}))
    server = Twistd(["-y", "site.tac"], tmp_path, _twistd_env(tmp_path), pythonpath=None)
    try:
        assert server.ports() == [ssh]
        wait_for_port(web)
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/", timeout=20) as page:
            assert page.read() == b"web 1, ssh 0\n"
        result = OpenSSH(tmp_path, ssh).ssh("u", "count", password="count")
        assert result.stdout == b"web 1, ssh 1\n"
        assert server.stop() == -signal.SIGTERM  # see test_manager_as_a_service
        for port in (web, ssh):
            server.wait_for(re.compile(rf"\(TCP Port {port} Closed\)"))
    finally:
        server.kill()


@covers("recipe-pytest")
def test_recipe_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_my_server.py").write_text(source("recipe-pytest"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_server.py"],
        cwd=tmp_path,
        env=python_env(tmp_path),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"1 passed" in result.stdout
