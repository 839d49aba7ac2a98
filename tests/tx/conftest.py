"""Fixtures of the in-memory adapter tests (test_memory_*.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from twisted.python import threadable

from spindlex_tw.tx.settings import ServerSettings
from tests.support.memory_app import MemoryServer


@pytest.fixture
def make_memory_server(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., MemoryServer]]:
    """Build ``MemoryServer(settings)``s; their connections are lost at the end."""
    # The test thread plays the reactor thread: Channel then acts at once
    # instead of handing its calls to callFromThread (which a Clock lacks).
    monkeypatch.setattr(threadable, "ioThread", threadable.getThreadID())
    made: list[MemoryServer] = []

    def make(settings: ServerSettings | None = None) -> MemoryServer:
        made.append(MemoryServer(settings))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def memory_server(make_memory_server: Callable[..., MemoryServer]) -> MemoryServer:
    return make_memory_server()
