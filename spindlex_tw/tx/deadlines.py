"""Many deadlines, one reactor timer: every connection's login grace and re-key by time.

A ``callLater`` per connection costs a timer that is almost always cancelled
(most logins take milliseconds), and Twisted drops cancelled timers from its
heap only lazily: each still wakes the reactor once, ``login_grace`` after its
connection opened, which at 10,000 connections is a steady trickle of idle
wake-ups. A ``LoopingCall`` for the hourly re-key costs some 600 bytes on each
idle connection. Here a connection's deadline is an entry in a heap of our own,
watched by one ``callLater`` set for the earliest entry. Withdrawing a
deadline (a login) only marks its entry; the timer is never moved later, and
cancelled only once no connection that had a deadline is open any more (so a
program's reactor, or trial's, is left with no timer once its connections are
gone): a server holding connections leaves no cancelled timer behind, an
idle one at most one each time its last connection closed. When the timer
fires it calls what is due, drops withdrawn entries and, if a live one
remains, sets itself for it.
"""

from __future__ import annotations

import heapq
import itertools
import weakref
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

log = Logger(namespace="spindlex_tw.deadlines")


class Deadline:
    """One scheduled call; :meth:`withdraw` it to call nothing."""

    __slots__ = ("callback", "owner")

    def __init__(self, owner: Deadlines, callback: Callable[[], None]) -> None:
        self.owner: Deadlines | None = owner
        self.callback: Callable[[], None] | None = callback

    def withdraw(self) -> None:
        # Lets go of the callback (and the connection it holds) at once; the
        # entry itself leaves the heap when the timer next passes it.
        self.callback = None

    def release(self) -> None:
        """Withdraw, for good: the connection that had this deadline is gone."""
        self.callback = None
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.released()


class Deadlines:
    """The deadlines of one reactor, watched by at most one timer."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()  # ties keep arrival order; Deadlines never compare
        self._timer: Any = None
        self._calling = False  # in _due, which sets the timer once it is done
        self._held = 0  # deadlines not yet released: their connections are open

    def call_at(self, when: float, callback: Callable[[], None]) -> Deadline:
        """Call ``callback()`` at reactor time ``when`` unless withdrawn before."""
        deadline = Deadline(self, callback)
        heapq.heappush(self._heap, (when, next(self._order), deadline))
        self._held += 1
        if not self._calling:
            self._set_timer()
        return deadline

    def released(self) -> None:
        self._held -= 1
        if self._held == 0:
            self._heap.clear()  # every entry left is withdrawn or called
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _set_timer(self) -> None:
        """Have the timer due by the earliest entry."""
        if not self._heap:
            return
        when = self._heap[0][0]
        delay = max(0.0, when - self.reactor.seconds())
        if self._timer is None:
            self._timer = self.reactor.callLater(delay, self._due)
        elif when < self._timer.getTime():
            # Sooner only moves the timer within the heap; never later (see above).
            self._timer.reset(delay)

    def _due(self) -> None:
        self._timer = None
        self._calling = True
        try:
            self._call_due()
        finally:
            self._calling = False
        self._set_timer()

    def _call_due(self) -> None:
        now = self.reactor.seconds()
        heap = self._heap
        while heap and (heap[0][2].callback is None or heap[0][0] <= now):
            deadline = heapq.heappop(heap)[2]
            callback, deadline.callback = deadline.callback, None
            if callback is not None:
                try:
                    callback()
                except Exception:
                    # One failing callback must not cost the others their deadline.
                    log.failure("deadline callback failed")


_by_reactor: weakref.WeakKeyDictionary[Any, Deadlines] = weakref.WeakKeyDictionary()


def of(reactor: Any) -> Deadlines:
    """The :class:`Deadlines` every connection on ``reactor`` shares."""
    deadlines = _by_reactor.get(reactor)
    if deadlines is None:
        deadlines = _by_reactor[reactor] = Deadlines(reactor)
    return deadlines
