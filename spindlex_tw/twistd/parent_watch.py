"""Worker processes end when the process that started them is gone.

A worker (``--workers`` copy or ``WorkerPool`` worker) gets a pipe as its
standard input whose other end only its parent holds. However the parent
ends, SIGKILL included, the kernel closes that end and the worker reads
end-of-file: it then stops its reactor as on SIGTERM (connections get the
usual grace), instead of serving on as an orphan nobody will stop.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.interfaces import IReadDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer


@implementer(IReadDescriptor)
class _ParentPipe:
    def __init__(self, reactor: Any, fd: int) -> None:
        self.reactor = reactor
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def doRead(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the parent is gone (anything it writes is ignored)
            self.reactor.removeReader(self)
            self._parent_gone()

    def connectionLost(self, reason: Failure) -> None:
        # epoll reports a pipe whose writer closed as a hang-up, not as readable.
        self._parent_gone()

    def _parent_gone(self) -> None:
        if self.reactor.running:
            self.reactor.stop()

    def logPrefix(self) -> str:
        return "parent-pipe"


def stop_when_parent_leaves(reactor: Any, fd: int = 0) -> None:
    """Stop ``reactor`` once ``fd`` (the pipe from the parent) reads end-of-file."""
    os.set_blocking(fd, False)
    reactor.addReader(_ParentPipe(reactor, fd))
