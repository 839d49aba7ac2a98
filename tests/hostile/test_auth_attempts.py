"""Publickey queries without a signature count toward max_auth_tries, as each key sshd refuses.

Before, a client could ask about any number of keys on one connection (up to
the pipelining bound per round trip, without end over many): a cheap way to
test which keys a server accepts. Here the raw client asks about keys the
server refuses until it is disconnected, and then a good client logs in.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spindlex_tw.core import wire
from spindlex_tw.crypto.pkey import Ed25519Key
from spindlex_tw.protocol import constants as c
from tests.support.harness import ServerProcess
from tests.support.rawssh import RawClient

GOOD_SOURCE = "127.0.0.2"  # the healthy client comes from another address


def key_query(user: str, algorithm: str, blob: bytes) -> bytes:
    """SSH_MSG_USERAUTH_REQUEST "publickey" with FALSE: may I use this key? (no signature)"""
    return (
        wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
        + wire.string(user)
        + wire.string("ssh-connection")
        + wire.string("publickey")
        + wire.boolean(False)
        + wire.string(algorithm)
        + wire.string(blob)
    )


def queries_until_disconnected(port: int, queries: list[bytes]) -> tuple[int, str]:
    """Send ``queries`` one at a time; how many were refused before the DISCONNECT, and why."""
    client = RawClient(port)
    try:
        client.handshake()
        client.request_service()
        refused = 0
        for query in queries:
            client.send(query)
            answer = client.recv_skipping(c.SSH_MSG_EXT_INFO, c.SSH_MSG_USERAUTH_BANNER)
            if answer[0] == c.SSH_MSG_DISCONNECT:
                reader = wire.Reader(answer, 1)
                assert reader.uint32() == c.SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE
                return refused, reader.text()
            assert answer[0] == c.SSH_MSG_USERAUTH_FAILURE, answer[:1]
            refused += 1
        raise AssertionError(f"still connected after {refused} refused queries")
    finally:
        client.close()


def logs_in(port: int) -> bool:
    client = RawClient(port, source=GOOD_SOURCE)
    try:
        client.login()
    finally:
        client.close()
    return True


def unknown_keys(count: int) -> list[bytes]:
    return [Ed25519Key.generate().get_public_key_bytes() for _ in range(count)]


@pytest.mark.parametrize("max_failures", [6, 2])
def test_refused_key_queries_reach_the_limit(
    start_server: Callable[..., ServerProcess], max_failures: int
) -> None:
    server = start_server(settings={"auth": {"max_failures": max_failures}})
    queries = [key_query("alice", "ssh-ed25519", blob) for blob in unknown_keys(50)]
    refused, why = queries_until_disconnected(server.port, queries)
    # The query that reaches the limit is answered by the DISCONNECT itself.
    assert (refused, why) == (max_failures - 1, "Too many authentication failures")
    assert "too many authentication failures for alice" in server.log()
    assert logs_in(server.port)


def test_queries_with_unusable_keys_count_too(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(settings={"auth": {"max_failures": 4}})
    (blob,) = unknown_keys(1)
    queries = [
        key_query("alice", "ssh-dss", blob),  # an algorithm the server does not take
        key_query("alice", "rsa-sha2-256", blob),  # an ed25519 key named as RSA
        key_query("alice", "ssh-ed25519", b"not a key blob"),
        key_query("alice", "ssh-ed25519", blob),
        key_query("alice", "ssh-ed25519", blob),
    ]
    assert queries_until_disconnected(server.port, queries) == (
        3,
        "Too many authentication failures",
    )
    assert logs_in(server.port)
