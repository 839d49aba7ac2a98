"""SSHServerProtocol in memory: version exchange, key exchange, password login, timers.

The client is tests/support/rawssh.py's, over a StringTransport; time is a
task.Clock (see tests/support/memory_client.py).
"""

from __future__ import annotations

from spindlex_tw.core import wire
from spindlex_tw.protocol import constants as c
from tests.support.memory_app import MemoryServer
from tests.support.rawssh import password_request


def test_version_and_key_exchange(memory_server: MemoryServer) -> None:
    client = memory_server.connect()
    # The server speaks first: its identification line, then its KEXINIT.
    assert client.transport.value().startswith(b"SSH-2.0-")
    client.handshake()  # verifies the host key's signature of the exchange hash
    assert client.server_version.startswith(b"SSH-2.0-")
    assert len(client.session_id) == 32
    assert client.request_service()[0] == c.SSH_MSG_SERVICE_ACCEPT
    assert memory_server.factory.connections == {client.protocol.connection_id: client.protocol}


def test_password_login_accepted(memory_server: MemoryServer) -> None:
    client = memory_server.connect()
    client.handshake()
    client.request_service()
    reply = client.password("alice", "secret")
    assert reply[0] == c.SSH_MSG_USERAUTH_SUCCESS
    assert client.protocol.username == "alice"
    assert memory_server.app.logins == [("alice", "password")]
    # Logged in: the login grace timer is gone, the connection stays.
    memory_server.clock.advance(memory_server.settings.login_grace * 2)
    assert not client.transport.disconnecting


def test_wrong_password_refused_with_the_methods(memory_server: MemoryServer) -> None:
    client = memory_server.connect()
    client.handshake()
    client.request_service()
    client.send(password_request("alice", "wrong"))
    # A refusal leaves no sooner than auth_failure_delay after the request.
    delay = memory_server.settings.auth_failure_delay
    memory_server.clock.advance(delay * 0.9)
    assert client.payloads() == []
    memory_server.clock.advance(delay * 0.1 + 0.001)  # past it: 0.9d + 0.1d may be below d
    (reply,) = client.payloads()
    assert reply[0] == c.SSH_MSG_USERAUTH_FAILURE
    reader = wire.Reader(reply, 1)
    assert reader.text() == "password"  # what get_allowed_auths offers
    assert reader.boolean() is False  # no partial success
    assert client.protocol.username is None
    assert memory_server.app.failures == [("alice", "password")]
    # The connection goes on: the right password now logs in.
    assert client.password("alice", "secret")[0] == c.SSH_MSG_USERAUTH_SUCCESS


def test_login_grace_timeout_disconnects(memory_server: MemoryServer) -> None:
    client = memory_server.connect()
    client.handshake()
    client.request_service()
    grace = memory_server.settings.login_grace
    memory_server.clock.advance(grace - 0.5)
    assert client.payloads() == []
    assert not client.transport.disconnecting
    memory_server.clock.advance(0.5)
    disconnect = client.expect_disconnect()
    assert disconnect.reason == c.SSH_DISCONNECT_PROTOCOL_ERROR
    assert disconnect.description == "Login grace time exceeded"
    assert client.transport.disconnecting  # the server closed the TCP connection
    client.lose()
    assert memory_server.factory.connections == {}


def test_password_hook_that_never_answers_is_a_refusal(memory_server: MemoryServer) -> None:
    client = memory_server.connect()
    client.handshake()
    client.request_service()
    client.send(password_request("silent", "anything"))
    memory_server.clock.advance(memory_server.settings.hook_timeout - 0.5)
    assert client.payloads() == []
    memory_server.clock.advance(0.5)
    (reply,) = client.payloads()
    assert reply[0] == c.SSH_MSG_USERAUTH_FAILURE
    assert client.protocol.username is None
    assert memory_server.app.failures == [("silent", "password")]


def test_rekey_timer_starts_a_key_exchange(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    channel = client.open_session()
    memory_server.clock.advance(memory_server.settings.rekey_seconds - 1)
    client.send(wire.byte(c.SSH_MSG_IGNORE) + wire.string(b""))
    assert client.payloads() == []  # not yet due
    memory_server.clock.advance(1)
    their_kexinit = client.recv()
    assert their_kexinit[0] == c.SSH_MSG_KEXINIT
    old_session_id = client.session_id
    client.finish_kex(client.kexinit(), their_kexinit, strict=False)
    assert client.session_id == old_session_id  # a re-key keeps the session id
    # The new keys work both ways: a command round trip on the old channel.
    client.exec(channel, b"echo after rekey")
    client.expect(c.SSH_MSG_CHANNEL_SUCCESS)
    assert client.expect(c.SSH_MSG_CHANNEL_DATA).body().string() == b"after rekey"


def test_rekey_timer_sends_kexinit_at_once(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    memory_server.clock.advance(memory_server.settings.rekey_seconds)
    assert client.recv()[0] == c.SSH_MSG_KEXINIT


def test_rekey_timer_comes_back_every_interval(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    for _ in range(2):
        memory_server.clock.advance(memory_server.settings.rekey_seconds)
        their_kexinit = client.recv()
        assert their_kexinit[0] == c.SSH_MSG_KEXINIT
        client.finish_kex(client.kexinit(), their_kexinit, strict=False)
    client.lose()
    assert memory_server.clock.getDelayedCalls() == []  # the last deadline went with it
