"""TokenBucket: a burst, then the average rate."""

from __future__ import annotations

from twisted.internet import task

from spindlex_tw.tx.ratelimit import TokenBucket


def test_burst_then_rate() -> None:
    clock = task.Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock.seconds)
    assert all(bucket.take() for _ in range(5))
    assert not bucket.take()
    clock.advance(0.1)  # one token back
    assert bucket.take()
    assert not bucket.take()
    clock.advance(100)  # never more than the burst
    assert sum(bucket.take() for _ in range(20)) == 5
