"""Who may connect: the total cap, a per-source cap, and MaxStartups-style early drop.

OpenSSH's ``MaxStartups start:rate:full`` refuses unauthenticated connections
at random once ``start`` are pending (with probability ``rate`` percent,
rising linearly to 100 at ``full``) so that a flood of half-open logins cannot
crowd out real users; ``PerSourceMaxStartups`` caps what one address may hold.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spindlex_tw.tx.settings import ServerSettings


class Admission:
    """Counts connections by state and source and decides on each new one.

    Limits are read from the settings at each decision, so changing them on a
    running server (``SSHServerManager.set_max_connections``) takes effect.
    """

    def __init__(
        self, settings: ServerSettings, chance: Callable[[], float] = random.random
    ) -> None:
        self.settings = settings
        self._chance = chance
        self._by_source: Counter[str] = Counter()
        self._pending_by_source: Counter[str] = Counter()
        self.total = 0
        self.pending = 0

    def refusal(self, source: str) -> str | None:
        """Why a new connection from ``source`` is refused, or ``None`` to admit it."""
        limits = self.settings
        if self.total >= limits.max_connections:
            return "too many connections"
        if self._by_source[source] >= limits.max_connections_per_source:
            return "too many connections from this address"
        if self._pending_by_source[source] >= limits.max_startups_per_source:
            return "too many unauthenticated connections from this address"
        start, rate, full = limits.max_startups
        if self.pending >= full:
            return "too many unauthenticated connections"
        if self.pending >= start:
            span = max(full - start, 1)
            drop = rate + (100 - rate) * (self.pending - start) / span
            if self._chance() * 100 < drop:
                return "too many unauthenticated connections"
        return None

    def opened(self, source: str) -> None:
        self.total += 1
        self.pending += 1
        self._by_source[source] += 1
        self._pending_by_source[source] += 1

    def authenticated(self, source: str) -> None:
        self.pending -= 1
        self._forget(self._pending_by_source, source)

    def closed(self, source: str, was_pending: bool) -> None:
        self.total -= 1
        self._forget(self._by_source, source)
        if was_pending:
            self.authenticated(source)

    @staticmethod
    def _forget(counter: Counter[str], source: str) -> None:
        counter[source] -= 1
        if counter[source] <= 0:
            del counter[source]
