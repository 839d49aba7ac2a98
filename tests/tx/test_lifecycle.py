"""The drain and the reload on a task.Clock, with stand-in connections (real clients:
tests/interop/test_reload_drain.py)."""

from __future__ import annotations

from pathlib import Path

from twisted.internet import defer, task

from spindlex_tw.crypto.pkey import Ed25519Key
from spindlex_tw.twistd.credentials import FilePasswords, Passwords, hash_password
from spindlex_tw.twistd.default_app import ServerConfig
from spindlex_tw.twistd.lifecycle import Drain
from spindlex_tw.twistd.reload import reload


class _Conn:
    def __init__(self, factory: _Factory, name: str, busy: bool) -> None:
        self.factory = factory
        self.name = name
        self.busy = busy
        self.transport = None

    def disconnect(self, reason: int, description: str) -> None:
        self.factory.leave(self)


class _Factory:
    def __init__(self) -> None:
        self.connections: dict[str, _Conn] = {}
        self.draining = False
        self.host_keys = [Ed25519Key.generate()]
        self._idle: list[defer.Deferred[None]] = []

    def add(self, name: str, busy: bool) -> _Conn:
        conn = _Conn(self, name, busy)
        self.connections[name] = conn
        return conn

    def leave(self, conn: _Conn) -> None:
        self.connections.pop(conn.name, None)
        if not self.connections:
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)

    def when_idle(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        if self.connections:
            self._idle.append(d)
        else:
            d.callback(None)
        return d


def test_idle_connections_go_at_once_busy_ones_when_their_work_ends() -> None:
    clock = task.Clock()
    factory = _Factory()
    factory.add("idle", busy=False)
    working = factory.add("working", busy=True)
    drained = Drain(factory, clock, timeout=30).run()  # type: ignore[arg-type]
    assert factory.draining
    assert list(factory.connections) == ["working"]
    clock.advance(Drain.CHECK_INTERVAL)
    assert not drained.called  # still working
    working.busy = False
    clock.advance(Drain.CHECK_INTERVAL)
    assert drained.called and not factory.connections
    assert not clock.getDelayedCalls()  # the timeout and the checks are gone


def test_timeout_ends_the_drain_and_a_second_signal_cuts_it_short() -> None:
    clock = task.Clock()
    factory = _Factory()
    factory.add("working", busy=True)
    drained = Drain(factory, clock, timeout=30).run()  # type: ignore[arg-type]
    clock.advance(29.9)
    assert not drained.called
    clock.advance(0.2)
    assert drained.called and list(factory.connections) == ["working"]
    assert not clock.getDelayedCalls()

    other = Drain(factory, clock, timeout=30)  # type: ignore[arg-type]
    cut = other.run()
    other.stop_now()
    assert cut.called and not clock.getDelayedCalls()


def test_reload_uses_all_files_or_none(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text(f"alice:{hash_password('one')}\n")
    source = FilePasswords(str(passwords))
    config = ServerConfig(passwords=Passwords([source]))
    factory = _Factory()
    passwords.write_text(f"alice:{hash_password('one')}\nbob:{hash_password('two')}\n")
    assert reload(factory, config, None)  # type: ignore[arg-type]
    assert source.users() == {"alice", "bob"}
    passwords.write_text("carol:plain\n")
    assert not reload(factory, config, None)  # type: ignore[arg-type]
    assert source.users() == {"alice", "bob"}  # kept, and not read again at the next login
