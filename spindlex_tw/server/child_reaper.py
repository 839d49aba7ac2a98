"""SIGCHLD for a reactor that runs in a background thread.

A reactor started without its signal handlers (the only way outside the
main thread) never learns that a child process ended. Twisted reaps a child
when its pipes close, but one still running at that moment stays unreaped and
its ``processEnded`` never comes.

Python runs signal handlers in the main thread only, and only between
bytecodes: a main thread blocked in ``input()`` or ``join()`` may not run
them for a long time, since the kernel may deliver the signal to any thread.
``signal.set_wakeup_fd`` does not wait for that: the C-level handler writes a
byte to a pipe from whichever thread took the signal, and the reactor
watches the pipe's other end.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

from twisted.internet import process


class _ChildWaker:
    """The pipe's read end as a reactor reader: each wake-up reaps ended children."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def doRead(self) -> None:
        try:
            while os.read(self._fd, 4096):
                pass
        except BlockingIOError:
            pass
        process.reapAllProcesses()

    def connectionLost(self, reason: Any) -> None:
        os.close(self._fd)

    def logPrefix(self) -> str:
        return "spindlex-child-reaper"


def _ignore(signum: int, frame: FrameType | None) -> None:
    # The work is done by the wake-up byte; a Python-level handler must exist
    # for the C-level one (which writes that byte) to be installed.
    return


def reap_children(reactor: Any) -> None:
    """Have SIGCHLD wake ``reactor`` to reap its children, where that is ours to set up.

    Only from the main thread (the only one that may set signal handlers), and
    only when the program neither handles SIGCHLD nor uses the wake-up fd itself.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGCHLD) not in (signal.SIG_DFL, None):
        return
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    if previous != -1:
        signal.set_wakeup_fd(previous)  # the program's own: give it back
        os.close(read_end)
        os.close(write_end)
        return
    signal.signal(signal.SIGCHLD, _ignore)
    reactor.callFromThread(reactor.addReader, _ChildWaker(read_end))
