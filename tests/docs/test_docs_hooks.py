"""docs/hooks.md: each example served in its own process and driven by a real client."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest

from spindlex_tw.core import wire
from spindlex_tw.crypto.pkey import PKey
from spindlex_tw.protocol import constants as c
from tests.docs.support import covers, served, write_module
from tests.support.harness import OpenSSH
from tests.support.rawssh import RawClient

pytestmark = pytest.mark.interop

Start = Callable[..., Any]


def _client(start_server: Start, tmp: Path, block: str, cls: str, **env: str) -> OpenSSH:
    write_module(tmp, block)
    server = served(start_server, tmp, cls, **env)
    return OpenSSH(tmp, server.port)


def _asyncio(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


@covers("hooks-password")
def test_password(tmp_path: Path, start_server: Start) -> None:
    client = _client(start_server, tmp_path, "hooks-password", "PasswordServer")
    ok = client.ssh("alice", "anything", password="wonderland")
    assert (ok.returncode, ok.stdout) == (0, b"hello alice\n"), ok.stderr
    assert client.ssh("alice", "anything", password="wrong").returncode != 0
    # keyboard-interactive is answered with a Password: prompt checked by the same hook.
    kbd = client.ssh(
        "bob",
        "anything",
        password="builder",
        extra=["PreferredAuthentications=keyboard-interactive"],
    )
    assert kbd.stdout == b"hello bob\n"


@covers("hooks-publickey")
def test_publickey(tmp_path: Path, start_server: Start, client_keys: dict[str, Path]) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "alice.pub").write_text(client_keys["ed25519"].with_suffix(".pub").read_text())
    client = _client(start_server, tmp_path, "hooks-publickey", "KeyServer", KEY_DIR=str(keys))
    ok = client.ssh("alice", "x", identity=client_keys["ed25519"])
    assert (ok.returncode, ok.stdout) == (0, b"key accepted\n"), ok.stderr
    assert client.ssh("alice", "x", identity=client_keys["rsa"]).returncode == 255
    assert client.ssh("bob", "x", identity=client_keys["ed25519"]).returncode == 255


class _Answers(asyncssh.SSHClient):
    """Answers keyboard-interactive prompts from a list, recording what was asked."""

    answers: list[str] = []
    asked: list[Any] = []

    def kbdint_auth_requested(self) -> str:
        return ""

    def kbdint_challenge_received(
        self, name: str, instructions: str, lang: str, prompts: Any
    ) -> list[str]:
        type(self).asked.append((name, instructions, list(prompts)))
        return list(type(self).answers)


async def _login(port: int, username: str, answers: list[str], password: str | None) -> bool:
    _Answers.answers, _Answers.asked = answers, []
    try:
        async with asyncssh.connect(
            "127.0.0.1",
            port,
            username=username,
            password=password,
            client_factory=_Answers,
            known_hosts=None,
            client_keys=None,
            agent_path=None,
        ):
            return True
    except asyncssh.PermissionDenied:
        return False


@covers("hooks-kbdint")
def test_keyboard_interactive(tmp_path: Path, start_server: Start) -> None:
    client = _client(start_server, tmp_path, "hooks-kbdint", "QuizServer")
    assert _asyncio(_login(client.port, "quiz", ["Paris ", "swordfish"], None))
    assert _Answers.asked[0] == (
        "Quiz",
        "Two questions before you come in.",
        [("Capital of France? ", True), ("Secret word: ", False)],
    )
    assert not _asyncio(_login(client.port, "quiz", ["Lyon", "swordfish"], None))


def _key_then_password(client: OpenSSH, key: Path, password: str) -> Any:
    """OpenSSH offering ``key`` and then, when asked, ``password`` (through sshpass)."""
    options = client.options(batch=False, extra=["NumberOfPasswordPrompts=1"])
    cmd = ["sshpass", "-p", password, "ssh", *options, "-p", str(client.port)]
    cmd += ["-i", str(key), "-o", "IdentitiesOnly=yes", "alice@127.0.0.1", "x"]
    return subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def _query_then_password(port: int, key: Path, password: str) -> tuple[int, bytes]:
    """A raw client that only asks about ``key`` (no signature), then sends ``password``.

    No real client sends a password after a key query it never signed; an
    attacker probing for a publickey-then-password server would.
    """
    blob = PKey.from_public_line(key.with_suffix(".pub").read_text()).get_public_key_bytes()
    client = RawClient(port)
    try:
        client.handshake()
        client.request_service()
        client.send(
            wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
            + wire.string("alice")
            + wire.string("ssh-connection")
            + wire.string("publickey")
            + wire.boolean(False)
            + wire.string("ssh-ed25519")
            + wire.string(blob)
        )
        query_answer = client.recv_skipping(c.SSH_MSG_EXT_INFO, c.SSH_MSG_USERAUTH_BANNER)[0]
        return query_answer, client.password("alice", password)
    finally:
        client.close()


@covers("hooks-partial")
def test_key_then_password(
    tmp_path: Path, start_server: Start, client_keys: dict[str, Path]
) -> None:
    keys_file = tmp_path / "authorized_keys"
    keys_file.write_text(client_keys["ed25519"].with_suffix(".pub").read_text())
    write_module(tmp_path, "hooks-partial")
    server = served(start_server, tmp_path, "KeyThenPasswordServer", KEYS_FILE=str(keys_file))
    client = OpenSSH(tmp_path, server.port)
    ok = _key_then_password(client, client_keys["ed25519"], "second factor")
    assert (ok.returncode, ok.stdout) == (0, b"in after publickey,password\n"), ok.stderr
    assert server.log().count("alice proved key") == 1  # the query logged nothing
    assert _key_then_password(client, client_keys["ed25519"], "wrong").returncode != 0
    assert _key_then_password(client, client_keys["rsa"], "second factor").returncode != 0
    assert client.ssh("alice", "x", password="second factor").returncode != 0

    # The key accepted for a query (PK_OK) is no first factor: the password is refused.
    answer, reply = _query_then_password(server.port, client_keys["ed25519"], "second factor")
    assert answer == c.SSH_MSG_USERAUTH_PK_OK
    assert reply[0] == c.SSH_MSG_USERAUTH_FAILURE
    reader = wire.Reader(reply, 1)
    assert (reader.name_list(), reader.boolean()) == (["publickey"], False)
    # Still two (the first login and the wrong-password one): the query logged nothing.
    assert server.log().count("alice proved key") == 2
    # Healthy afterwards: the two factors still log in.
    assert _key_then_password(client, client_keys["ed25519"], "second factor").returncode == 0


@covers("hooks-banner")
def test_banner_and_login_events(tmp_path: Path, start_server: Start) -> None:
    client = _client(start_server, tmp_path, "hooks-banner", "AuditedServer")
    refused = client.ssh("erin", "x", password="guess", extra=["LogLevel=INFO"])
    assert refused.returncode != 0
    assert b"Authorized users only" in refused.stdout + refused.stderr
    ok = client.ssh("erin", "x", password="letmein")
    assert ok.returncode == 0
    failed = int(ok.stdout.decode().rsplit(":", 1)[1])
    assert failed >= 1


@covers("hooks-exec")
def test_exec(tmp_path: Path, start_server: Start) -> None:
    client = _client(start_server, tmp_path, "hooks-exec", "CommandServer")
    assert client.ssh("alice", "whoami", password="x").stdout == b"alice\n"
    assert client.ssh("alice", "channels", password="x").stdout == b"1 open\n"
    refused = client.ssh("alice", "rm", password="x", extra=["LogLevel=INFO"])
    assert refused.returncode == 255
    assert b"exec request failed" in refused.stdout + refused.stderr


@covers("hooks-shell")
def test_shell(tmp_path: Path, start_server: Start) -> None:
    client = _client(start_server, tmp_path, "hooks-shell", "ShellServer")
    result = client.ssh("alice", password="x", args=["-tt"], input=b"2+3+4\rsize\rexit\r")
    assert result.returncode == 0, result.stderr
    assert b"calc> " in result.stdout
    assert b"\r\n9\r\n" in result.stdout
    assert b"bye" in result.stdout


@covers("hooks-subsystem")
def test_subsystem(tmp_path: Path, start_server: Start) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_text("served by SFTPServer\n")
    client = _client(start_server, tmp_path, "hooks-subsystem", "FileServer", SFTP_ROOT=str(root))
    result = client.sftp("alice", "x", f"get notes.txt {tmp_path}/got.txt\n")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "got.txt").read_text() == "served by SFTPServer\n"


async def _env_and_signal(port: int) -> tuple[str, str, int | None]:
    async with asyncssh.connect(
        "127.0.0.1", port, username="u", password="x", known_hosts=None, client_keys=None
    ) as conn:
        locale = await conn.run("locale", env={"LANG": "fr_FR.UTF-8", "EDITOR": "vi"})
        async with conn.create_process("wait") as proc:
            assert await proc.stdout.readline() == "waiting\n"
            proc.send_signal("INT")
            rest = await proc.stdout.read()
            result = await proc.wait(check=False)
    return str(locale.stdout), rest, result.exit_status


@covers("hooks-env-signal")
def test_env_and_signal(tmp_path: Path, start_server: Start) -> None:
    client = _client(start_server, tmp_path, "hooks-env-signal", "EnvServer")
    locale, rest, status = _asyncio(_env_and_signal(client.port))
    assert locale == "fr_FR.UTF-8\n"
    assert (rest, status) == ("interrupted\n", 130)


@covers("hooks-global")
def test_global_requests(tmp_path: Path, start_server: Start) -> None:
    client = _client(start_server, tmp_path, "hooks-global", "GlobalServer")
    transport = paramiko.Transport(("127.0.0.1", client.port))
    try:
        transport.connect(username="u", password="x")
        assert transport.global_request("example@acme.com", wait=True) is None
        channel = transport.open_session(timeout=30)
        channel.exec_command("list")
        output = channel.makefile("rb").read()
    finally:
        transport.close()
    assert b"example@acme.com" in output


@covers("hooks-async")
def test_async_hook(tmp_path: Path, start_server: Start) -> None:
    client = _client(start_server, tmp_path, "hooks-async", "AsyncServer")
    assert client.ssh("carol", "x", password="correct horse").stdout == b"in\n"
    assert client.ssh("carol", "x", password="battery staple").returncode != 0
    assert client.ssh("dave", "x", password="correct horse").returncode != 0


@covers("hooks-channels")
def test_across_connections(tmp_path: Path, start_server: Start) -> None:
    client = _client(start_server, tmp_path, "hooks-channels", "AdminServer")
    stay = subprocess.Popen(
        client.password_argv("ssh", "alice", "x", "stay"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert stay.stdout is not None
        assert stay.stdout.readline() == b"staying\n"
        assert client.ssh("bob", "count", password="x").stdout == b"2 channels open\n"
        assert client.ssh("bob", "kick", password="x").stdout == b"closed the others\n"
        stay.wait(30)
    finally:
        if stay.poll() is None:
            stay.kill()
            stay.wait(10)
