"""Serve one SFTP session on standard input and output, for ``sftp -D`` and pipe tests.

    python tests/sftp/stdio_server.py ROOT [--server-class module:Class] [--memory-state FILE]

The stand-in channel gives the protocol StandardIO as its transport, exactly
as an SSH channel would; the process exits when the session has finished and
every handle is closed. Warnings and errors are logged to standard error.
With ``--memory-state`` the session serves the pickled MemoryFileSystem in
FILE instead of ROOT, and writes it back when the session is over
(tests/sftp/served.py).
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

from spindlex_tw.fs.interface import FileSystem
from spindlex_tw.server.sftp_server import SFTPServer
from tests.sftp.served import load_memory, save_memory


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
    parser.add_argument("--memory-state", default=None)
    args = parser.parse_args()
    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(LogLevel.warn)]
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    server_class = load(args.server_class) if args.server_class else SFTPServer
    finished = []
    if args.memory_state is not None:
        memory = load_memory(args.memory_state)

        class MemoryServer(server_class):  # type: ignore[valid-type,misc]
            def open_storage(self) -> FileSystem:
                return memory

        server_class = MemoryServer
        finished.append(lambda: save_memory(memory, args.memory_state))
    server = server_class(StdioChannel(), args.root)
    finished.append(reactor.stop)  # type: ignore[attr-defined]
    server.protocol.when_finished().addBoth(lambda _: [step() for step in finished])
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
