"""The AsyncSSH client against our server: algorithm sweep, logins, exec, signals, pty."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.interop.test_openssh_algorithms import CIPHERS, HOST_KEYS, KEX, MACS
from tests.support.clients import asyncssh_connect, run_async
from tests.support.harness import ServerProcess

ALL_KEX = ["mlkem768x25519-sha256", *KEX]


run = run_async
connect = asyncssh_connect


@pytest.fixture(scope="module")
def multi_key_server(
    tmp_path_factory: pytest.TempPathFactory, host_keys: dict[str, Path]
) -> ServerProcess:
    server = ServerProcess(tmp_path_factory.mktemp("asyncssh"), host_keys=list(host_keys.values()))
    yield server
    server.stop()


async def _echo(port: int, **algs: Any) -> tuple[str, Any]:
    async with connect(port, **algs) as conn:
        result = await conn.run("echo pinned", check=True)
        return str(result.stdout), conn


SWEEP = (
    [("kex_algs", k) for k in ALL_KEX]
    + [("server_host_key_algs", k) for k in HOST_KEYS]
    + [("encryption_algs", k) for k in CIPHERS]
    + [("mac_algs", k) for k in MACS]
    + [("compression_algs", "zlib@openssh.com")]
)


@pytest.mark.parametrize(("category", "name"), SWEEP)
def test_algorithm(multi_key_server: ServerProcess, category: str, name: str) -> None:
    extra: dict[str, Any] = {category: [name]}
    if category == "mac_algs":
        extra["encryption_algs"] = ["aes128-ctr"]

    async def check() -> None:
        async with connect(multi_key_server.port, **extra) as conn:
            result = await conn.run("echo pinned", check=True)
            assert result.stdout == "pinned\n"
            chosen = {
                "kex_algs": conn.get_extra_info("kex_alg"),
                "encryption_algs": conn.get_extra_info("send_cipher"),
                "mac_algs": conn.get_extra_info("send_mac"),
                "compression_algs": conn.get_extra_info("send_compression"),
            }.get(category)
            if chosen is not None:
                assert chosen == name.encode() or chosen == name

    run(check())


def test_publickey_and_keyboard_interactive(
    server: ServerProcess, client_keys: dict[str, Path]
) -> None:
    async def check() -> None:
        for key in ("ed25519", "rsa", "ecdsa"):
            async with connect(
                server.port, password=None, client_keys=[str(client_keys[key])]
            ) as conn:
                assert (await conn.run("echo key", check=True)).stdout == "key\n"

        class Answers(asyncssh.SSHClient):
            def kbdint_auth_requested(self) -> str:
                return ""

            def kbdint_challenge_received(
                self, name: str, instructions: str, lang: str, prompts: list[tuple[str, bool]]
            ) -> list[str]:
                return ["one", "two"][: len(prompts)]

        async with connect(
            server.port, username="kbd", password=None, client_factory=Answers
        ) as conn:
            assert (await conn.run("echo kbd", check=True)).stdout == "kbd\n"

    run(check())


def test_exec_streams_status_and_signal(server: ServerProcess) -> None:
    async def check() -> None:
        async with connect(server.port) as conn:
            err = await conn.run("stderr oops")
            assert (err.stdout, err.stderr, err.exit_status) == ("", "oops\n", 0)
            assert (await conn.run("exit 7")).exit_status == 7
            sig = await conn.run("signal KILL")
            assert sig.exit_signal[0] == "KILL"
            # A signal request reaches the hook code.
            process = await conn.create_process("wait-signal")
            assert await process.stdout.readline() == "waiting\n"
            process.send_signal("USR1")
            assert await process.stdout.readline() == "got USR1\n"
            await process.wait()

    run(check())
    assert {"hook": "signal", "name": "USR1"} in server.hooks()


def test_window_change_reaches_hook(server: ServerProcess) -> None:
    async def check() -> None:
        async with connect(server.port) as conn:
            process = await conn.create_process(term_type="xterm", term_size=(80, 24))
            await process.stdout.readuntil("spindlex$ ")
            process.change_terminal_size(132, 43)
            process.stdin.write("exit\r")
            await process.wait()

    run(check())
    assert {"hook": "window-change", "width": 132, "height": 43} in server.hooks()


def test_cat_round_trip_large(server: ServerProcess) -> None:
    payload = bytes(range(256)) * 40000  # ~10 MiB

    async def check() -> None:
        async with connect(server.port) as conn:
            result = await conn.run("cat", input=payload, encoding=None, check=True)
            assert result.stdout == payload

    run(check())


def test_rekey_by_client_loses_nothing(server: ServerProcess) -> None:
    payload = bytes(range(256)) * 16384  # 4 MiB through several re-exchanges

    async def check() -> None:
        async with connect(server.port, rekey_bytes=256 * 1024) as conn:
            result = await conn.run("cat", input=payload, encoding=None, check=True)
            assert result.stdout == payload

    run(check())
    assert _key_exchanges(server) >= 2


def _key_exchanges(server: ServerProcess) -> int:
    """Key exchanges the server completed, by its own log (one connection per test)."""
    return server.log().count("key exchange with 127.0.0.1:")


def test_rekey_by_server_loses_nothing(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(settings={"transport": {"rekey_bytes": 200_000}})
    payload = bytes(range(256)) * 16384

    async def check() -> None:
        # Uncompressed, so the 4 MiB each way are 4 MiB on the wire too.
        async with connect(server.port, compression_algs=None) as conn:
            result = await conn.run("cat", input=payload, encoding=None, check=True)
            assert result.stdout == payload

    run(check())
    # The server re-keyed at least once past its 200 kB (data already in
    # flight when it asks still counts against the old keys); AsyncSSH itself
    # re-keys only after 1 GB, so no exchange after the first was the client's.
    assert _key_exchanges(server) >= 2
    assert "Traceback" not in server.log()
