"""Serve one SFTP session on standard input and output, for ``sftp -D`` and pipe tests.

    python tests/sftp/stdio_server.py ROOT [--server-class module:Class]

The stand-in channel gives the protocol StandardIO as its transport, exactly
as an SSH channel would; the process exits when the session has finished and
every handle is closed. Warnings and errors are logged to standard error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from twisted.internet import reactor, stdio
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from spindlex_tw.server.sftp_server import SFTPServer


class StdioChannel:
    """What SFTPServer needs of a channel: somewhere to attach its protocol."""

    def attach_protocol(self, protocol: Any) -> None:
        self.transport = stdio.StandardIO(protocol)


def load(spec: str) -> type[SFTPServer]:
    module, _, name = spec.partition(":")
    server_class: type[SFTPServer] = getattr(importlib.import_module(module), name)
    return server_class


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--server-class", default=None)
    args = parser.parse_args()
    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.warn)]
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    server_class = load(args.server_class) if args.server_class else SFTPServer
    server = server_class(StdioChannel(), args.root)
    server.protocol.when_finished().addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
