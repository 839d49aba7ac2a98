"""trial: serve an SSHServer for one test, stopped by the test's cleanup."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from twisted.internet import defer

from spindlex_tw.testing.running import ReactorServer, start_options_server, start_server

if TYPE_CHECKING:
    from twisted.trial.unittest import TestCase

    from spindlex_tw.server.hooks import SSHServer
    from spindlex_tw.testing.credentials import Credentials
    from spindlex_tw.tx.settings import ServerSettings


def _cleaned_up(case: TestCase, started: defer.Deferred[ReactorServer]) -> Any:
    def register(server: ReactorServer) -> ReactorServer:
        # trial waits for a cleanup's Deferred, then checks the reactor is clean.
        case.addCleanup(server.stop)
        return server

    return started.addCallback(register)


def serve_for_test(
    case: TestCase,
    server: SSHServer,
    credentials: Credentials | None = None,
    settings: ServerSettings | None = None,
) -> defer.Deferred[ReactorServer]:
    """``start_server`` in ``case``'s temporary directory, stopped after the test."""
    directory = case.mktemp()
    os.makedirs(directory)
    return cast(
        "defer.Deferred[ReactorServer]",
        _cleaned_up(case, start_server(server, directory, credentials, settings)),
    )


def serve_options_for_test(
    case: TestCase, arguments: Sequence[str], credentials: Credentials | None = None
) -> defer.Deferred[ReactorServer]:
    """``twistd spindlex ARGUMENTS``'s service for ``case``, stopped after it."""
    directory = case.mktemp()
    os.makedirs(directory)
    return cast(
        "defer.Deferred[ReactorServer]",
        _cleaned_up(case, start_options_server(arguments, directory, credentials)),
    )


class SSHServerMixin:
    """For a trial ``TestCase``: ``server = yield self.serveSSH(MyServer())``."""

    def serveSSH(
        self,
        server: SSHServer,
        credentials: Credentials | None = None,
        settings: ServerSettings | None = None,
    ) -> defer.Deferred[ReactorServer]:
        return serve_for_test(cast("TestCase", self), server, credentials, settings)

    def serveOptions(
        self, arguments: Sequence[str], credentials: Credentials | None = None
    ) -> defer.Deferred[ReactorServer]:
        return serve_options_for_test(cast("TestCase", self), arguments, credentials)
