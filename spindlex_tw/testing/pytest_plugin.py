"""pytest fixtures for servers under test.

Load them in a conftest.py with
``pytest_plugins = ["spindlex_tw.testing.pytest_plugin"]``:

- ``spindlex_server`` (needs pytest-twisted): an async starter, for tests
  that run on the reactor: ``server = await spindlex_server(MyServer())``;
- ``spindlex_server_threaded`` (plain pytest, without pytest-twisted's
  reactor): ``server = spindlex_server_threaded(MyServer())`` blocks until
  the server listens on the background reactor thread.

Both also start ``twistd spindlex``'s service with ``.options([...])``, and
stop every server they started when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from twisted.internet import defer

from spindlex_tw.testing.running import (
    ReactorServer,
    ThreadedServer,
    start_options_server,
    start_options_threaded,
    start_server,
    start_threaded,
)

if TYPE_CHECKING:
    from spindlex_tw.server.hooks import SSHServer
    from spindlex_tw.testing.credentials import Credentials

try:
    import pytest_twisted
except ImportError:  # the threaded fixture does without it
    pytest_twisted = None


class ReactorStarter:
    """``await starter(server)``: a server on the reactor, stopped after the test."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._count = 0
        self.started: list[ReactorServer] = []

    def _folder(self) -> Path:
        # Counted when asked, so servers started together never share their keys.
        self._count += 1
        return self._directory / f"spindlex-{self._count}"

    def __call__(
        self, server: SSHServer, credentials: Credentials | None = None, **kwargs: Any
    ) -> defer.Deferred[ReactorServer]:
        started = start_server(server, self._folder(), credentials, **kwargs)
        return started.addCallback(self._keep)

    def options(
        self, arguments: Sequence[str], credentials: Credentials | None = None
    ) -> defer.Deferred[ReactorServer]:
        return start_options_server(arguments, self._folder(), credentials).addCallback(self._keep)

    def _keep(self, server: ReactorServer) -> ReactorServer:
        self.started.append(server)
        return server

    def stop_all(self) -> defer.Deferred[Any]:
        return defer.gatherResults([server.stop() for server in self.started])


class ThreadedStarter:
    """``starter(server)``: a server on the background reactor thread, stopped after the test."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._count = 0
        self.started: list[ThreadedServer] = []

    def _folder(self) -> Path:
        self._count += 1
        return self._directory / f"spindlex-{self._count}"

    def __call__(
        self, server: SSHServer, credentials: Credentials | None = None, **kwargs: Any
    ) -> ThreadedServer:
        running = start_threaded(server, self._folder(), credentials, **kwargs)
        self.started.append(running)
        return running

    def options(
        self, arguments: Sequence[str], credentials: Credentials | None = None
    ) -> ThreadedServer:
        running = start_options_threaded(arguments, self._folder(), credentials)
        self.started.append(running)
        return running

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


if pytest_twisted is not None:

    @pytest_twisted.async_yield_fixture  # type: ignore[untyped-decorator]  # pytest-twisted is untyped
    async def spindlex_server(tmp_path: Path) -> AsyncIterator[ReactorStarter]:
        starter = ReactorStarter(tmp_path)
        yield starter
        await starter.stop_all()


@pytest.fixture
def spindlex_server_threaded(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[ThreadedStarter]:
    if request.config.pluginmanager.has_plugin("twisted"):
        # pytest-twisted runs the reactor in the main thread; a second one cannot run.
        pytest.fail(
            "spindlex_server_threaded needs the reactor to itself: with pytest-twisted "
            "loaded, use the spindlex_server fixture in async tests, or run pytest "
            "with -p no:twisted",
            pytrace=False,
        )
    starter = ThreadedStarter(tmp_path)
    yield starter
    starter.stop_all()
