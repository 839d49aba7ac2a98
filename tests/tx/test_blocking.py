"""spindlex_tw.tx.blocking: blocking calls on threads, results on the reactor."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from spindlex_tw.tx.blocking import BlockingPool


def run(pool: BlockingPool, function: Callable[[], Any]) -> defer.Deferred[Any]:
    """``pool.submit`` as a Deferred, and the thread its result was handed over on."""
    d: defer.Deferred[Any] = defer.Deferred()

    def done(ok: bool, value: Any) -> None:
        handed_over.append(threading.get_ident())
        if ok:
            d.callback(value)
        else:
            d.errback(value)

    pool.submit(function, done)
    return d


handed_over: list[int] = []


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
        handed_over.clear()
        results = await defer.gatherResults([run(pool, lambda v=v: job(v)) for v in range(50)])
        assert results == [v * 2 for v in range(50)]
        assert main not in seen
        with pytest.raises(OSError, match="disk on fire"):
            await run(pool, fail)
        # Results are handed over on the reactor thread, not the worker's.
        assert set(handed_over) == {main}
    finally:
        pool.stop()


@pytest_twisted.ensureDeferred
async def test_threads_start_on_demand_up_to_the_size() -> None:
    pool = BlockingPool(reactor, 3, "test-blocking")
    release = threading.Event()
    try:
        calls = [run(pool, release.wait) for _ in range(10)]
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
    calls = [run(pool, lambda i=i: done.append(i)) for i in range(5)]
    pool.stop()
    await defer.gatherResults(calls)
    assert done == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        await run(pool, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_raising_result_handler_does_not_strand_the_others() -> None:
    pool = BlockingPool(reactor, 1, "test-blocking")
    got: list[int] = []

    def bad(ok: bool, value: Any) -> None:
        raise RuntimeError("handler bug")

    try:
        pool.submit(lambda: 1, bad)
        last = run(pool, lambda: 2)
        pool.submit(lambda: 3, lambda ok, value: got.append(value))
        assert await last == 2
        await run(pool, lambda: None)  # the pool has handed over everything before it
        assert got == [3]
    finally:
        pool.stop()
