"""Bad input at the user-auth and connection layers (RFC 4252, RFC 4254)."""

from __future__ import annotations

import pytest

from spindlex_tw.core import wire
from spindlex_tw.protocol import constants as c
from tests.hostile.test_transport_input import still_serving
from tests.support.harness import ServerProcess
from tests.support.rawssh import RawClient

WINDOW = 2 * 1024 * 1024


def open_session(
    client: RawClient, peer_id: int = 0, kind: str = "session", body: bytes = b""
) -> bytes:
    """CHANNEL_OPEN of ``kind`` with the type-specific ``body``; the server's answer."""
    client.send(
        wire.byte(c.SSH_MSG_CHANNEL_OPEN)
        + wire.string(kind)
        + wire.uint32(peer_id)
        + wire.uint32(WINDOW)
        + wire.uint32(32768)
        + body
    )
    return client.recv_skipping(c.SSH_MSG_GLOBAL_REQUEST)


def channel_request(client: RawClient, channel: int, name: str, data: bytes = b"") -> bytes:
    client.send(
        wire.byte(c.SSH_MSG_CHANNEL_REQUEST)
        + wire.uint32(channel)
        + wire.string(name)
        + wire.boolean(True)
        + data
    )
    return client.recv_skipping(c.SSH_MSG_CHANNEL_WINDOW_ADJUST)


def test_userauth_before_service_accepted(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.handshake()
    client.send(
        wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
        + wire.string("alice")
        + wire.string("ssh-connection")
        + wire.string("none")
    )
    assert client.expect_disconnect().reason == c.SSH_DISCONNECT_PROTOCOL_ERROR
    still_serving(server)


@pytest.mark.parametrize(
    "message",
    [
        wire.byte(c.SSH_MSG_CHANNEL_OPEN)
        + wire.string("session")
        + wire.uint32(0)
        + wire.uint32(WINDOW)
        + wire.uint32(32768),
        wire.byte(c.SSH_MSG_GLOBAL_REQUEST) + wire.string("tcpip-forward") + wire.boolean(True),
        # A client claiming success for itself (libssh CVE-2018-10933).
        wire.byte(c.SSH_MSG_USERAUTH_SUCCESS),
    ],
)
def test_connection_messages_before_auth(server: ServerProcess, message: bytes) -> None:
    client = RawClient(server.port)
    client.handshake()
    assert client.request_service()[0] == c.SSH_MSG_SERVICE_ACCEPT
    client.send(message)
    assert client.expect_disconnect().reason == c.SSH_DISCONNECT_PROTOCOL_ERROR
    still_serving(server)


def test_malformed_signature_is_a_failure(server: ServerProcess) -> None:
    from spindlex_tw.crypto.pkey import Ed25519Key

    key = Ed25519Key.generate()
    client = RawClient(server.port)
    client.handshake()
    client.request_service()
    client.send(
        wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
        + wire.string("alice")
        + wire.string("ssh-connection")
        + wire.string("publickey")
        + wire.boolean(True)
        + wire.string("ssh-ed25519")
        + wire.string(key.get_public_key_bytes())
        + wire.string(b"\x00\x00\x00\x0bssh-ed25519\x00\x00")  # truncated signature blob
    )
    reply = client.recv_skipping(c.SSH_MSG_USERAUTH_BANNER)
    assert reply[0] == c.SSH_MSG_USERAUTH_FAILURE
    assert client.password("alice", "secret")[0] == c.SSH_MSG_USERAUTH_SUCCESS


def test_unknown_channel_id(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.login()
    client.send(wire.byte(c.SSH_MSG_CHANNEL_DATA) + wire.uint32(77) + wire.string(b"x"))
    assert client.expect_disconnect().reason == c.SSH_DISCONNECT_PROTOCOL_ERROR
    still_serving(server)


def test_data_beyond_window_loses_the_channel(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.login()
    confirm = open_session(client)
    assert confirm[0] == c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION
    reader = wire.Reader(confirm, 1)
    assert reader.uint32() == 0
    server_channel = reader.uint32()
    window, max_packet = reader.uint32(), reader.uint32()
    assert window == WINDOW
    assert channel_request(client, server_channel, "exec", wire.string("cat"))[0] == (
        c.SSH_MSG_CHANNEL_SUCCESS
    )
    # One packet over the advertised maximum: the peer ignored our limits.
    client.send(
        wire.byte(c.SSH_MSG_CHANNEL_DATA)
        + wire.uint32(server_channel)
        + wire.string(b"z" * (max_packet + 1))
    )
    while True:
        message = client.recv()
        if message[0] == c.SSH_MSG_CHANNEL_CLOSE:
            break
    # The connection itself survives: a new channel works.
    assert open_session(client, peer_id=1)[0] == c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION


def test_no_more_sessions(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.login()
    client.send(
        wire.byte(c.SSH_MSG_GLOBAL_REQUEST)
        + wire.string("no-more-sessions@openssh.com")
        + wire.boolean(False)
    )
    reply = open_session(client)
    assert reply[0] == c.SSH_MSG_CHANNEL_OPEN_FAILURE
    reader = wire.Reader(reply, 1)
    assert reader.uint32() == 0
    assert reader.uint32() == c.SSH_OPEN_ADMINISTRATIVELY_PROHIBITED


def test_unknown_requests_fail(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.login()
    client.send(
        wire.byte(c.SSH_MSG_GLOBAL_REQUEST)
        + wire.string("nonsense@example.com")
        + wire.boolean(True)
    )
    assert client.recv()[0] == c.SSH_MSG_REQUEST_FAILURE
    confirm = open_session(client)
    server_channel = wire.Reader(confirm, 5).uint32()
    assert channel_request(client, server_channel, "frobnicate")[0] == c.SSH_MSG_CHANNEL_FAILURE
    # Malformed data for a known request is a failure too, not a disconnect.
    assert channel_request(client, server_channel, "pty-req", b"\x00")[0] == (
        c.SSH_MSG_CHANNEL_FAILURE
    )
    assert channel_request(client, server_channel, "exec", wire.string("echo ok"))[0] == (
        c.SSH_MSG_CHANNEL_SUCCESS
    )


def test_unknown_channel_type_reason(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.login()
    reply = open_session(client, kind="x-frobnicator")
    assert reply[0] == c.SSH_MSG_CHANNEL_OPEN_FAILURE
    reader = wire.Reader(reply, 1)
    assert reader.uint32() == 0
    assert reader.uint32() == c.SSH_OPEN_UNKNOWN_CHANNEL_TYPE
    assert reader.text() == "unknown channel type"


def test_channel_limit(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(settings={"channels": {"max_channels": 3}})
    client = RawClient(server.port)
    client.login()
    for peer_id in range(3):
        assert open_session(client, peer_id)[0] == c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION
    reply = open_session(client, 3)
    assert reply[0] == c.SSH_MSG_CHANNEL_OPEN_FAILURE
    assert wire.Reader(reply, 5).uint32() == c.SSH_OPEN_RESOURCE_SHORTAGE
