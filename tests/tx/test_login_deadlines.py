"""The login grace of every pending connection shares one reactor timer (tx/deadlines.py).

A timer per connection, cancelled at login, stays in Twisted's heap until it
would have fired and wakes the reactor then: at 10,000 connections a steady
trickle of idle wake-ups. These tests count the reactor's timers; the grace
itself is tested by test_memory_login.py and, with real clients, by
tests/hostile/test_limits.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twisted.internet import task
from twisted.internet.selectreactor import SelectReactor
from twisted.python import threadable

from spindlex_tw.crypto.pkey import Ed25519Key
from spindlex_tw.tx.factory import SSHServerFactory
from spindlex_tw.tx.settings import ServerSettings
from tests.support.memory_app import MemoryApp
from tests.support.memory_client import MemoryClient

GRACE = 20.0
COUNT = 12


@pytest.fixture
def key() -> Ed25519Key:
    return Ed25519Key.generate()


@pytest.fixture(autouse=True)
def reactor_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test thread plays the reactor thread (see tests/tx/conftest.py).
    monkeypatch.setattr(threadable, "ioThread", threadable.getThreadID())


def serve(reactor: object, key: Ed25519Key) -> SSHServerFactory:
    # No rekey timer: the login grace is then the only timer a connection has.
    settings = ServerSettings(
        login_grace=GRACE, rekey_seconds=0, max_startups=(100, 30, 100), max_startups_per_source=100
    )
    return SSHServerFactory(MemoryApp(), [key], settings, reactor=reactor)


@pytest.fixture
def select_reactor() -> Iterator[SelectReactor]:
    # A real reactor's timer heap (never run here), not the global one.
    reactor = SelectReactor()
    yield reactor
    reactor._uninstallHandler()
    for call in reactor.getDelayedCalls():
        call.cancel()
    reactor.removeAll()


def test_pending_logins_share_one_timer(key: Ed25519Key) -> None:
    clock = task.Clock()
    factory = serve(clock, key)
    clients = [MemoryClient(factory, port=50000 + n) for n in range(COUNT)]
    assert len(clock.getDelayedCalls()) == 1
    # Each still gets its grace: all time out together, and then no timer is left.
    clock.advance(GRACE - 0.5)
    assert not any(client.transport.disconnecting for client in clients)
    clock.advance(0.5)
    assert all(client.transport.disconnecting for client in clients)
    assert clock.getDelayedCalls() == []
    for client in clients:
        client.lose()
    assert factory.connections == {}


def test_logins_leave_no_cancelled_timers(select_reactor: SelectReactor, key: Ed25519Key) -> None:
    factory = serve(select_reactor, key)
    clients = [MemoryClient(factory, port=50000 + n) for n in range(COUNT)]
    for client in clients:
        client.login("alice", "secret")
        assert client.protocol.username == "alice"
    # Twisted drops a cancelled call from its heap only lazily; each would wake
    # the reactor once. Counted raw here, cancelled calls included.
    timers = select_reactor._pendingTimedCalls + select_reactor._newTimedCalls
    assert [call for call in timers if call.cancelled] == []
    assert len(timers) == 1  # the shared timer, which finds nothing due when it fires
    # Once the connections are gone no live timer is left (trial's clean-reactor
    # check), and one cancelled one at most.
    for client in clients:
        client.close()
    assert factory.connections == {}
    assert select_reactor.getDelayedCalls() == []
    timers = select_reactor._pendingTimedCalls + select_reactor._newTimedCalls
    assert len(timers) <= 1


def test_a_login_keeps_the_others_grace(key: Ed25519Key) -> None:
    clock = task.Clock()
    factory = serve(clock, key)
    early = MemoryClient(factory, port=50000)
    clock.advance(5.0)
    late = MemoryClient(factory, port=50001)
    early.login("alice", "secret")
    clock.advance(GRACE - 5.0)  # the early one's deadline passes: it logged in, it stays
    assert not early.transport.disconnecting
    assert not late.transport.disconnecting
    clock.advance(5.0)
    assert late.transport.disconnecting
    assert not early.transport.disconnecting
    assert clock.getDelayedCalls() == []
    late.lose()
    early.close()


def test_a_shorter_grace_is_kept_behind_a_longer_one(key: Ed25519Key) -> None:
    # Two factories on one reactor share the timer; the later deadline is the sooner.
    clock = task.Clock()
    patient = MemoryClient(serve(clock, key), port=50000)
    short = ServerSettings(login_grace=2.0, rekey_seconds=0)
    hasty = MemoryClient(SSHServerFactory(MemoryApp(), [key], short, reactor=clock), port=50001)
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(2.0)
    assert hasty.transport.disconnecting
    assert not patient.transport.disconnecting
    clock.advance(GRACE - 2.0)
    assert patient.transport.disconnecting
    assert clock.getDelayedCalls() == []
    hasty.lose()
    patient.lose()
