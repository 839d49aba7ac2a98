"""A small pool of threads for blocking calls, with results back on the reactor.

The same job as ``deferToThreadPool`` with Twisted's ``ThreadPool``, at a
fraction of the cost per call: Twisted's pool hands every call through a
coordinator (``twisted._threads.Team``, Python-level locks) and wakes the
reactor once per result; this one uses a C-level ``queue.SimpleQueue``, wakes
the reactor once per batch of results, and reports each result to a plain
callback instead of a Deferred. An SFTP transfer makes one such call per
256 KiB read or write, and a small file three.

A call that waits for its result still costs two thread wake-ups, 35 to
60 us of CPU on a small VM (more when the two threads run on different
vCPUs), most of it in the kernel; that is why the SFTP server runs file calls
inline where they cannot wait (``SFTPServer.disk_io``, ``Context.io``).

Threads start on demand, up to ``size``; :meth:`BlockingPool.stop` ends them
(call it when the reactor shuts down).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

log = Logger(namespace="spindlex_tw.blocking")

_STOP = None  # what a thread finds in the queue when it is to exit

#: Told ``(True, result)`` or ``(False, exception)``, on the reactor thread.
Done = Callable[[bool, Any], None]


class BlockingPool:
    """Runs blocking callables on up to ``size`` threads named ``name``."""

    def __init__(self, reactor: Any, size: int, name: str) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one thread")
        self._reactor = reactor
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Done] | None]
        self._jobs = queue.SimpleQueue()
        self._results: deque[tuple[Done, bool, Any]] = deque()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._busy = 0  # threads running a call
        self._wake_pending = False  # a drain is scheduled on the reactor
        self._stopped = False

    def submit(self, function: Callable[[], Any], done: Done) -> None:
        """Call ``function()`` in a thread, then ``done(ok, value)`` on the reactor thread."""
        if self._stopped:
            done(False, RuntimeError(f"{self._name} pool is stopped"))
            return
        self._jobs.put((function, done))
        threads = len(self._threads)
        # More calls waiting than threads free to take them: one more thread.
        if threads < self._size and self._jobs.qsize() + self._busy > threads:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{threads}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Let queued calls finish, then end every thread (reactor shutdown)."""
        if self._stopped:
            return
        self._stopped = True
        threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(_STOP)
        for thread in threads:
            thread.join()
        self._drain()

    # --- worker threads ------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            function, done = job
            with self._lock:
                self._busy += 1
            try:
                result: tuple[Done, bool, Any] = (done, True, function())
            except BaseException as exc:
                result = (done, False, exc)
            self._results.append(result)
            with self._lock:
                self._busy -= 1
                wake = not self._wake_pending
                self._wake_pending = True
            if wake:
                # One wake-up for all results that arrive before the reactor drains.
                self._reactor.callFromThread(self._drain)
            # Forget the call before waiting for the next: an idle thread would
            # otherwise keep its last caller alive (a closed SFTP session, its
            # connection and the replies queued there) until it is given work again.
            del job, function, done, result

    # --- reactor thread ------------------------------------------------------------------

    def _drain(self) -> None:
        with self._lock:
            self._wake_pending = False
        results = self._results
        while results:
            done, ok, value = results.popleft()
            try:
                done(ok, value)
            except Exception:
                # One caller's bug must not strand the results queued behind it.
                log.failure("a blocking call's result handler raised")
