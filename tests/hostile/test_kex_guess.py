"""first_kex_packet_follows on the wire: a wrong guess is dropped, a right one answered.

RFC 4253 7.1: the guess is right only when the client's and the server's lists
start with the same key exchange and the same host key algorithm. Dropbear's
client guesses curve25519-sha256 while we prefer mlkem768x25519-sha256: its
guess must be ignored, because it sends the real packet next.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from spindlex_tw.core import wire
from spindlex_tw.core.kexinit import KexInit
from spindlex_tw.protocol import constants as c
from tests.support.harness import ServerProcess
from tests.support.rawssh import RawClient

CURVE_FIRST = ["curve25519-sha256", "mlkem768x25519-sha256", "ecdh-sha2-nistp256"]


def guessing_kexinit(kex: list[str], host_key: list[str]) -> bytes:
    return KexInit(
        cookie=os.urandom(16),
        kex=[*kex, "kex-strict-c-v00@openssh.com"],
        host_key=host_key,
        cipher_c2s=["aes128-gcm@openssh.com"],
        cipher_s2c=["aes128-gcm@openssh.com"],
        mac_c2s=["hmac-sha2-256"],
        mac_s2c=["hmac-sha2-256"],
        compression_c2s=["none"],
        compression_s2c=["none"],
        first_kex_follows=True,
    ).encode()


def log_in(client: RawClient) -> None:
    assert client.request_service()[0] == c.SSH_MSG_SERVICE_ACCEPT
    assert client.password("alice", "secret")[0] == c.SSH_MSG_USERAUTH_SUCCESS


@pytest.mark.parametrize(
    ("server_kex", "client_host_keys"),
    [
        # Dropbear's case: our first kex is mlkem768x25519, the client's curve25519.
        (None, ["ssh-ed25519"]),
        # Same first kex, but the client's first host key algorithm is not ours.
        (CURVE_FIRST, ["rsa-sha2-256", "ssh-ed25519"]),
    ],
)
def test_wrong_guess_is_ignored(
    start_server: Callable[..., ServerProcess],
    server_kex: list[str] | None,
    client_host_keys: list[str],
) -> None:
    settings = {"transport": {"kex_algorithms": server_kex}} if server_kex else {}
    server = start_server(settings=settings)
    client = RawClient(server.port)
    client.exchange_versions()
    ours = guessing_kexinit(["curve25519-sha256"], client_host_keys)
    client.send(ours)
    # The guessed curve25519 KEX_ECDH_INIT, sent before the server's KEXINIT is
    # read, as a guessing client does; its key is thrown away.
    client.send(wire.byte(c.SSH_MSG_KEX_ECDH_INIT) + wire.string(os.urandom(32)))
    theirs = client.recv()
    assert theirs[0] == c.SSH_MSG_KEXINIT
    if server_kex is None:
        assert KexInit.decode(theirs).kex[0] == "mlkem768x25519-sha256"
    # The real KEX_ECDH_INIT: the reply must sign the exchange with this key.
    client.finish_kex(ours, theirs, strict=True)
    log_in(client)
    client.close()
    assert server.alive()
    assert "unexpected key exchange message" not in server.log()


def test_right_guess_is_answered(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(settings={"transport": {"kex_algorithms": CURVE_FIRST}})
    client = RawClient(server.port)
    client.exchange_versions()
    ours = guessing_kexinit(["curve25519-sha256"], ["ssh-ed25519"])
    client.send(ours)
    theirs = client.recv()
    assert KexInit.decode(theirs).kex[0] == "curve25519-sha256"
    # Both lists start alike: the KEX_ECDH_INIT that follows is the guess, and
    # the only one this client sends; a server dropping it would never reply.
    client.finish_kex(ours, theirs, strict=True)
    log_in(client)
    client.close()
    assert server.alive()
