"""``--audit-log FILE``: the audit events (tx/audit.py) as JSON lines.

One line per event in twisted.logger's JSON format (``jsonFileLogObserver``
with no record separator), read back with ``eventsFromJSONLogFile(f,
recordSeparator="")`` or any JSON-lines tool. Only events of the
``spindlex_tw.audit`` namespace are written, whatever the text log shows.
"""

from __future__ import annotations

import os
from typing import IO, Any

from twisted.application import service
from twisted.logger import ILogObserver, globalLogPublisher, jsonFileLogObserver
from twisted.python import usage
from zope.interface import implementer

from spindlex_tw.tx.audit import NAMESPACE


def open_audit_log(path: str) -> IO[str]:
    """``path`` opened for appending; a mistake is a ``UsageError`` naming it."""
    full = os.path.abspath(os.path.expanduser(path))
    try:
        # Line-buffered: each event reaches the file whole, at once, even with
        # several --workers processes appending to the same file.
        return open(full, "a", encoding="utf-8", buffering=1)
    except OSError as exc:
        raise usage.UsageError(f"--audit-log {path}: {exc.strerror}") from exc


@implementer(ILogObserver)
class AuditWriter:
    """A log observer writing the audit events it sees to ``stream``, one JSON line each.

    Added to the global publisher itself, not behind the text log's observers:
    no level filter of theirs applies to it.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._write = jsonFileLogObserver(stream, recordSeparator="")

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_namespace") == NAMESPACE:
            self._write(event)


class AuditLog(service.Service):
    """Writes audit events to a file while the service runs."""

    def __init__(self, stream: IO[str], publisher: Any = globalLogPublisher) -> None:
        self.stream = stream
        self.publisher = publisher
        self.observer = AuditWriter(stream)

    def startService(self) -> None:
        super().startService()
        self.publisher.addObserver(self.observer)

    def stopService(self) -> None:
        super().stopService()
        self.publisher.removeObserver(self.observer)
        self.stream.close()
