"""SSHServerProtocol in memory: channels open and close, windows, refused requests.

Each test logs in as alice through the in-memory raw client
(tests/support/memory_client.py) and drives the connection protocol
(RFC 4254) packet by packet; hook timeouts run on the factory's task.Clock.
"""

from __future__ import annotations

from collections.abc import Callable

from spindlex_tw.core import wire
from spindlex_tw.core.connection import ChannelLimits
from spindlex_tw.protocol import constants as c
from spindlex_tw.tx.settings import ServerSettings
from tests.support.memory_app import MemoryServer, pattern
from tests.support.memory_client import NOISE, data_of, exit_status, kinds

# --- open and close -----------------------------------------------------------------------


def test_session_open_is_confirmed(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    client.open_channel("session", sender=7, window=5000, max_packet=1000)
    confirmation = client.expect(c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION)
    assert confirmation.recipient == 7
    body = confirmation.body()
    server_id = body.uint32()
    limits = memory_server.settings.channels
    assert (body.uint32(), body.uint32()) == (limits.window, limits.max_packet)
    (channel,) = memory_server.app.opened
    assert (channel.channel_id, channel.kind, channel.username) == (server_id, "session", "alice")
    assert client.protocol.channels() == [channel]


def test_exec_echo_eof_and_close(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    channel = client.open_session(sender=3)
    client.exec(channel, b"cat")
    assert client.expect(c.SSH_MSG_CHANNEL_SUCCESS).recipient == 3
    assert memory_server.app.commands == [b"cat"]
    assert type(memory_server.app.commands[0]) is bytes
    client.data(channel, b"hello ")
    client.data(channel, b"world")
    echoed = client.channel_messages()
    assert kinds(echoed) == [c.SSH_MSG_CHANNEL_DATA] * 2
    assert {m.recipient for m in echoed} == {3}
    assert data_of(echoed) == b"hello world"
    # EOF: the program exits 0 and the server closes its side.
    client.eof(channel)
    status, close = client.channel_messages()
    assert exit_status(status) == 0
    assert (close.kind, close.recipient) == (c.SSH_MSG_CHANNEL_CLOSE, 3)
    assert memory_server.app.closed == []  # closed only once both sides sent CLOSE
    client.close_channel(channel)
    assert client.channel_messages() == []
    assert memory_server.app.closed == memory_server.app.opened
    assert memory_server.app.closed[0].closed
    assert client.protocol.channels() == []


def test_client_closes_first(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    channel = client.open_session(sender=4)
    client.exec(channel, b"cat")
    client.expect(c.SSH_MSG_CHANNEL_SUCCESS)
    client.close_channel(channel)
    (close,) = client.channel_messages()
    assert (close.kind, close.recipient) == (c.SSH_MSG_CHANNEL_CLOSE, 4)
    assert len(memory_server.app.closed) == 1
    assert client.protocol.channels() == []
    # The connection carries on with a new channel.
    client.open_session(sender=5)
    assert len(client.protocol.channels()) == 1


def test_output_of_the_exec_hook_follows_its_success(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    channel = client.open_session()
    client.exec(channel, b"echo hi there")
    messages = client.channel_messages()
    assert kinds(messages) == [
        c.SSH_MSG_CHANNEL_SUCCESS,
        c.SSH_MSG_CHANNEL_DATA,
        c.SSH_MSG_CHANNEL_REQUEST,
        c.SSH_MSG_CHANNEL_CLOSE,
    ]
    assert data_of(messages) == b"hi there"
    assert exit_status(messages[2]) == 0


def test_connection_lost_closes_the_channels(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    client.open_session()
    (channel,) = memory_server.app.opened
    client.lose()
    assert channel.closed
    assert memory_server.app.closed == [channel]
    assert memory_server.factory.connections == {}


# --- windows ----------------------------------------------------------------------------------


def test_output_stays_within_the_client_window(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    channel = client.open_session(window=1000, max_packet=300)
    client.exec(channel, b"write 5000")
    first = client.channel_messages()
    assert kinds(first)[0] == c.SSH_MSG_CHANNEL_SUCCESS
    assert kinds(first)[1:] == [c.SSH_MSG_CHANNEL_DATA] * 4  # 300 + 300 + 300 + 100
    assert all(len(m.body().string()) <= 300 for m in first[1:])
    sent = data_of(first)
    assert sent == pattern(5000)[:1000]
    # Each WINDOW_ADJUST lets out exactly as much more, in order.
    client.adjust_window(channel, 1500)
    more = client.channel_messages()
    assert set(kinds(more)) == {c.SSH_MSG_CHANNEL_DATA}
    sent += data_of(more)
    assert sent == pattern(5000)[:2500]
    assert client.channel_messages() == []
    # The exit status and CLOSE wait behind the data they follow.
    client.adjust_window(channel, 10_000)
    rest = client.channel_messages()
    assert kinds(rest)[-2:] == [c.SSH_MSG_CHANNEL_REQUEST, c.SSH_MSG_CHANNEL_CLOSE]
    assert exit_status(rest[-2]) == 0
    assert sent + data_of(rest) == pattern(5000)


def _small_window_server(make: Callable[..., MemoryServer]) -> MemoryServer:
    return make(ServerSettings(channels=ChannelLimits(window=1024, max_packet=4096)))


def test_client_overrunning_the_window_loses_the_channel(
    make_memory_server: Callable[..., MemoryServer],
) -> None:
    server = _small_window_server(make_memory_server)
    client = server.login()
    channel = client.open_session(sender=9)
    client.exec(channel, b"sink")  # granted, reads nothing: the window stays used
    client.expect(c.SSH_MSG_CHANNEL_SUCCESS)
    client.data(channel, b"x" * 1000)
    client.data(channel, b"x" * 24)  # exactly the window: still fine
    assert client.channel_messages() == []
    client.data(channel, b"x")  # one byte over
    (close,) = client.channel_messages()
    assert (close.kind, close.recipient) == (c.SSH_MSG_CHANNEL_CLOSE, 9)
    assert len(server.app.closed) == 1
    assert server.app.closed[0].closed
    # Just that channel: the connection and new channels work on.
    client.close_channel(channel)
    assert not client.transport.disconnecting
    other = client.open_session(sender=10)
    client.exec(other, b"echo still here")
    client.expect(c.SSH_MSG_CHANNEL_SUCCESS)
    assert client.expect(c.SSH_MSG_CHANNEL_DATA).body().string() == b"still here"


def test_consumed_data_reopens_the_server_window(
    make_memory_server: Callable[..., MemoryServer],
) -> None:
    server = _small_window_server(make_memory_server)
    client = server.login()
    channel = client.open_session()
    client.exec(channel, b"cat")
    client.expect(c.SSH_MSG_CHANNEL_SUCCESS)
    echoed = b""
    for _ in range(5):  # five windows' worth, each byte echoed and so consumed
        client.data(channel, b"y" * 1024)
        messages = client.channel_messages()
        assert c.SSH_MSG_CHANNEL_WINDOW_ADJUST in kinds(messages)
        echoed += data_of(messages)
    assert echoed == b"y" * 5 * 1024
    assert server.app.closed == []


# --- refusals ----------------------------------------------------------------------------------


def test_unknown_channel_type_is_refused(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    client.open_channel("x-unknown@test", sender=11)
    failure = client.expect(c.SSH_MSG_CHANNEL_OPEN_FAILURE)
    assert failure.recipient == 11
    body = failure.body()
    assert body.uint32() == c.SSH_OPEN_UNKNOWN_CHANNEL_TYPE
    assert body.text() == "unknown channel type"
    assert memory_server.app.opened == []


def test_refused_exec_is_a_channel_failure(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    channel = client.open_session(sender=12)
    client.exec(channel, b"not allowed")
    assert client.expect(c.SSH_MSG_CHANNEL_FAILURE).recipient == 12
    assert client.channel_messages() == []
    # Refused, the channel may still start a program.
    client.exec(channel, b"echo second try")
    client.expect(c.SSH_MSG_CHANNEL_SUCCESS)
    assert client.expect(c.SSH_MSG_CHANNEL_DATA).body().string() == b"second try"


def test_refused_pty_is_a_channel_failure(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    channel = client.open_session(sender=13)
    pty = wire.string("xterm") + b"".join(map(wire.uint32, (80, 24, 0, 0))) + wire.string(b"")
    client.request(channel, "pty-req", pty)
    assert client.expect(c.SSH_MSG_CHANNEL_FAILURE).recipient == 13
    assert memory_server.app.ptys == ["xterm"]
    assert memory_server.app.opened[0].term is None


def test_exec_hook_that_never_answers_times_out_as_a_refusal(
    memory_server: MemoryServer,
) -> None:
    client = memory_server.login()
    channel = client.open_session(sender=14)
    client.exec(channel, b"silent")
    memory_server.clock.advance(memory_server.settings.hook_timeout - 0.5)
    assert client.channel_messages() == []
    memory_server.clock.advance(0.5)
    (failure,) = client.channel_messages()
    assert (failure.kind, failure.recipient) == (c.SSH_MSG_CHANNEL_FAILURE, 14)
    # The channel was not started: another exec may still be granted.
    client.exec(channel, b"echo ok")
    client.expect(c.SSH_MSG_CHANNEL_SUCCESS)


def test_exec_hook_answering_later_holds_its_output(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    channel = client.open_session(sender=17)
    client.exec(channel, b"later")
    # The hook wrote before answering: nothing leaves before its SUCCESS.
    assert client.channel_messages() == []
    memory_server.app.waiting[0].callback(True)
    success, data = client.channel_messages()
    assert (success.kind, success.recipient) == (c.SSH_MSG_CHANNEL_SUCCESS, 17)
    assert data_of([data]) == b"early"


def test_unknown_global_request_is_refused(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    for name in ("x-unknown@test", "keepalive@openssh.com"):
        client.send(wire.byte(c.SSH_MSG_GLOBAL_REQUEST) + wire.string(name) + wire.boolean(True))
        assert client.recv_skipping(*NOISE) == wire.byte(c.SSH_MSG_REQUEST_FAILURE)
    assert not client.transport.disconnecting


def test_channel_open_hook_that_never_answers_times_out(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    client.open_channel("x-silent@test", sender=15)
    memory_server.clock.advance(memory_server.settings.hook_timeout - 0.5)
    assert client.channel_messages() == []
    memory_server.clock.advance(0.5)
    failure = client.expect(c.SSH_MSG_CHANNEL_OPEN_FAILURE)
    assert failure.recipient == 15
    assert failure.body().uint32() == c.SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
    assert memory_server.app.opened == []


def test_channel_open_hook_is_timed_by_the_setting(memory_server: MemoryServer) -> None:
    client = memory_server.login()
    client.open_channel("x-silent@test", sender=16)
    memory_server.clock.advance(memory_server.settings.hook_timeout)
    assert client.expect(c.SSH_MSG_CHANNEL_OPEN_FAILURE).recipient == 16
