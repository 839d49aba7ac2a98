"""Agent and Unix-socket forwarding requests against an application that grants none.

The SSHServer defaults refuse, each with the protocol's own answer; malformed
bodies are refused the same way and never cost the connection.
"""

from __future__ import annotations

from collections.abc import Callable

from spindlex_tw.core import wire
from spindlex_tw.protocol import constants as c
from tests.hostile.test_connection_input import channel_request, open_session
from tests.hostile.test_transport_input import still_serving
from tests.support.harness import ServerProcess
from tests.support.rawssh import RawClient


def _global(client: RawClient, name: str, body: bytes) -> bytes:
    client.send(wire.byte(c.SSH_MSG_GLOBAL_REQUEST) + wire.string(name) + wire.boolean(True) + body)
    return client.recv_skipping(c.SSH_MSG_GLOBAL_REQUEST)


def test_defaults_refuse_agent_and_socket_forwarding(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.login()
    assert open_session(client)[0] == c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION
    assert channel_request(client, 0, "auth-agent-req@openssh.com")[0] == c.SSH_MSG_CHANNEL_FAILURE
    path = wire.string("/tmp/spindlex-never.sock")
    assert _global(client, "streamlocal-forward@openssh.com", path)[0] == c.SSH_MSG_REQUEST_FAILURE
    body = path + wire.string("") + wire.uint32(0)
    refused = open_session(client, 5, "direct-streamlocal@openssh.com", body)
    assert refused[0] == c.SSH_MSG_CHANNEL_OPEN_FAILURE
    reader = wire.Reader(refused[1:])
    assert reader.uint32() == 5
    assert reader.uint32() == c.SSH_OPEN_UNKNOWN_CHANNEL_TYPE
    client.close()
    still_serving(server)


def test_malformed_bodies_are_refused(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(app="tests.support.socket_forward_apps:SocketForwardingServer")
    client = RawClient(server.port)
    client.login()
    assert open_session(client)[0] == c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION
    # auth-agent-req has no body; one with trailing bytes is not it.
    assert channel_request(client, 0, "auth-agent-req@openssh.com", b"x")[0] == (
        c.SSH_MSG_CHANNEL_FAILURE
    )
    for body in (b"", wire.string(""), wire.string("/a\0b"), wire.string("/a") + b"!"):
        answer = _global(client, "streamlocal-forward@openssh.com", body)
        assert answer[0] == c.SSH_MSG_REQUEST_FAILURE
        answer = _global(client, "cancel-streamlocal-forward@openssh.com", body)
        assert answer[0] == c.SSH_MSG_REQUEST_FAILURE
    refused = open_session(client, 5, "direct-streamlocal@openssh.com", wire.string("/a"))
    assert refused[0] == c.SSH_MSG_CHANNEL_OPEN_FAILURE
    reader = wire.Reader(refused[1:])
    assert (reader.uint32(), reader.uint32()) == (5, c.SSH_OPEN_CONNECT_FAILED)
    # Nobody listens on a cancelled path that was never granted.
    assert (
        _global(client, "cancel-streamlocal-forward@openssh.com", wire.string("/tmp/none.sock"))[0]
        == c.SSH_MSG_REQUEST_FAILURE
    )
    # The connection still works: a second session opens.
    assert open_session(client, peer_id=1)[0] == c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION
    client.close()
    still_serving(server)
