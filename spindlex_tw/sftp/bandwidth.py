"""Per-user bandwidth limits: a token bucket shared by all of a user's SFTP sessions.

Sans-IO: the caller passes the time (the reactor's clock in the adapter, a
``task.Clock`` in tests). :meth:`TokenBucket.take` never refuses: it
charges the bytes that just went through, possibly into debt, and says how
long the caller must hold off before the next ones so that the average stays
at the rate. A debt model rather than "wait until there are enough tokens":
an SFTP READ reply or WRITE request is charged after the fact, whatever its
size, and the pause that follows pays for it exactly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


class TokenBucket:
    """``rate`` bytes per second, with at most ``burst`` bytes saved up while idle."""

    def __init__(self, rate: int, burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"a bandwidth limit must be positive, not {rate}")
        self.rate = rate
        # A small burst: an idle second must not let the next one go at twice the rate.
        self.burst = rate // 10 if burst is None else burst
        self._tokens = float(self.burst)
        self._stamp: float | None = None
        # Sessions of one user in --workers threads or hooks may share a bucket.
        self._lock = threading.Lock()

    def take(self, nbytes: int, now: float) -> float:
        """Charge ``nbytes`` that went through at ``now``; seconds to wait before more may."""
        with self._lock:
            if self._stamp is not None:
                earned = (now - self._stamp) * self.rate
                self._tokens = min(float(self.burst), self._tokens + earned)
            self._stamp = now
            self._tokens -= nbytes
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass(frozen=True)
class Bandwidth:
    """The limits one user's sessions share; None: that direction is not limited."""

    upload: TokenBucket | None = None
    download: TokenBucket | None = None
