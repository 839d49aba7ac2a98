"""spindlex_tw.tx.blocking: blocking calls on threads, results on the reactor."""

from __future__ import annotations

import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from spindlex_tw.tx.blocking import BlockingPool


@pytest_twisted.ensureDeferred
async def test_results_and_errors_come_back_on_the_reactor_thread() -> None:
    pool = BlockingPool(reactor, 2, "test-blocking")
    main = threading.get_ident()
    seen: list[int] = []

    def job(value: int) -> int:
        seen.append(threading.get_ident())
        return value * 2

    def fail() -> None:
        raise OSError(5, "disk on fire")

    try:
        results = await defer.gatherResults([pool.run(lambda v=v: job(v)) for v in range(50)])
        assert results == [v * 2 for v in range(50)]
        assert main not in seen
        with pytest.raises(OSError, match="disk on fire"):
            await pool.run(fail)
        # Callbacks run on the reactor thread, not the worker's.
        callback_thread = await pool.run(lambda: 1).addCallback(lambda _: threading.get_ident())
        assert callback_thread == main
    finally:
        pool.stop()


@pytest_twisted.ensureDeferred
async def test_threads_start_on_demand_up_to_the_size() -> None:
    pool = BlockingPool(reactor, 3, "test-blocking")
    release = threading.Event()
    try:
        calls = [pool.run(release.wait) for _ in range(10)]
        assert 1 <= len(pool._threads) <= 3
        release.set()
        await defer.gatherResults(calls)
        assert len(pool._threads) <= 3
    finally:
        release.set()
        pool.stop()


@pytest_twisted.ensureDeferred
async def test_stop_finishes_queued_calls_then_refuses_new_ones() -> None:
    pool = BlockingPool(reactor, 1, "test-blocking")
    done: list[int] = []
    calls = [pool.run(lambda i=i: done.append(i)) for i in range(5)]
    pool.stop()
    await defer.gatherResults(calls)
    assert done == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        await pool.run(lambda: None)
