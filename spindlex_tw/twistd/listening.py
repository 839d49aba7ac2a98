"""Listening on one endpoint, with a failure that twistd reports in one line."""

from __future__ import annotations

import os
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from spindlex_tw.twistd import startup

log = Logger(namespace="spindlex_tw.service")


class ListenFailed(Exception):
    """An endpoint could not listen; the message names it and says why."""


class Listener(service.Service):
    """Listens on one endpoint; binds in privilegedStartService, as twistd expects."""

    def __init__(self, description: str, endpoint: Any, factory: Any) -> None:
        self.description = description
        self.endpoint = endpoint
        self.factory = factory
        self.port: Any = None
        self._waiting: defer.Deferred[Any] | None = None

    def privilegedStartService(self) -> None:
        service.Service.privilegedStartService(self)
        self._waiting = self.endpoint.listen(self.factory)
        self._waiting.addCallback(self._listening)
        synchronous: list[Failure] = []
        still_starting = [True]

        def failed(failure: Failure) -> None:
            if still_starting[0]:
                synchronous.append(failure)
            else:
                log.failure("cannot listen on {endpoint}", failure, endpoint=self.description)

        self._waiting.addErrback(failed)
        still_starting[0] = False
        # Most endpoints (TCP, UNIX) bind at once: let the error stop the start-up.
        if synchronous:
            raise ListenFailed(startup.listen_error(self.description, synchronous[0].value))

    def _listening(self, port: Any) -> None:
        self.port = port
        address = port.getHost()
        name = getattr(address, "name", None)
        if hasattr(address, "port"):
            shown = f"{address.host}:{address.port}"
        elif isinstance(name, bytes | str):
            shown = os.fsdecode(name)  # a UNIX socket path
        else:
            shown = str(address)
        log.info(
            "listening on {address} ({endpoint})",
            address=shown,
            endpoint=self.description,
            host=getattr(address, "host", None),
            port=getattr(address, "port", None),
            event="listening",
        )

    def stopService(self) -> Any:
        service.Service.stopService(self)
        if self._waiting is not None and not self._waiting.called:
            self._waiting.cancel()
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else None
