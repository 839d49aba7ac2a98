"""Calling into the reactor from synchronous code, starting it in a thread if need be.

SpindleX's API is synchronous: a script calls ``manager.start_server()`` (or
``server.start_server(sock)``) and carries on. On Twisted that work belongs to
the reactor, so these helpers run it there:

- on the reactor thread, the function is called directly;
- from another thread while the reactor runs, ``blockingCallFromThread``
  waits for its result;
- when no reactor runs at all, the global reactor is started in a daemon
  thread (without signal handlers, which only the main thread may install)
  and then called as above. That reactor is stopped cleanly when the
  interpreter exits, so thread pools (SFTP's, for one) are joined and the
  process does not hang on them.

Without its signal handlers the reactor never hears SIGCHLD, and a process a
hook starts with ``spawnProcess`` (or ``utils.getProcessOutput``) that is
still running when its pipes close is never reaped: its ``processEnded``
never comes. So when the background reactor is started from the main thread
and nobody handles SIGCHLD yet, :mod:`spindlex_tw.server.child_reaper` has
the signal wake the reactor to reap its children.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

from twisted.internet import threads
from twisted.internet.error import ReactorNotRunning
from twisted.python import threadable

from spindlex_tw.server.child_reaper import reap_children

T = TypeVar("T")

STARTUP_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0
#: The module whose TestCase runs a test method, then the reactor for its Deferred.
TRIAL_RUNNER = "twisted.trial._asynctest"

_lock = threading.Lock()
_thread: threading.Thread | None = None


def get_reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def on_reactor_thread() -> bool:
    """True when the caller may touch the reactor directly."""
    return bool(threadable.isInIOThread())


def runs_here(reactor: Any) -> bool:
    """True when this thread runs ``reactor``, or is about to: its caller wants a Deferred.

    A trial test is the second case. trial calls the test method first and
    runs the reactor afterwards, for the Deferred the method returned; a
    background reactor started in between would make trial's own
    ``reactor.run()`` fail with ReactorAlreadyRunning.
    """
    if reactor.running:
        return on_reactor_thread()
    return _inside_trial_test()


def _inside_trial_test() -> bool:
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == TRIAL_RUNNER:
            return True
        frame = frame.f_back
    return False


def ensure_running(reactor: Any) -> None:
    """Start ``reactor`` in a background thread unless it already runs."""
    global _thread
    with _lock:
        if reactor.running:
            return
        if _thread is not None and _thread.is_alive():
            raise RuntimeError("the background reactor is stopping")
        started = threading.Event()
        failures: list[BaseException] = []

        def run() -> None:
            try:
                reactor.run(installSignalHandlers=False)
            except BaseException as exc:  # reported to the caller below
                failures.append(exc)
                started.set()

        reactor.callWhenRunning(started.set)
        thread = threading.Thread(target=run, name="spindlex-reactor", daemon=True)
        thread.start()
        if not started.wait(STARTUP_TIMEOUT):
            raise RuntimeError("the reactor did not start in a background thread")
        if failures:
            raise RuntimeError(f"cannot run the reactor: {failures[0]!r}") from failures[0]
        _thread = thread
        _stop_at_exit(reactor, thread)
        reap_children(reactor)


def _stop_at_exit(reactor: Any, thread: threading.Thread) -> None:
    # threading._register_atexit runs before the interpreter joins non-daemon
    # threads (unlike atexit), which is the moment to stop the reactor: its
    # shutdown joins the thread pools that would otherwise block the exit.
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return

    def stop() -> None:
        def stop_if_running() -> None:
            try:
                reactor.stop()
            except ReactorNotRunning:
                return

        if thread.is_alive():
            reactor.callFromThread(stop_if_running)
            thread.join(EXIT_TIMEOUT)

    register(stop)


def call(func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` on the reactor thread and return its result.

    On the reactor thread this is a plain call (a Deferred result is returned
    as is); elsewhere the caller blocks until the result, Deferreds included,
    is ready, starting a background reactor first when none runs.
    """
    reactor = get_reactor()
    if on_reactor_thread() and reactor.running:
        return func(*args)
    ensure_running(reactor)
    result: T = threads.blockingCallFromThread(reactor, func, *args)
    return result
