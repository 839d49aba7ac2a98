"""Calling application hooks: plain values, Deferreds or coroutines; time-limited; fail closed."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger(namespace="spindlex_tw.hooks")

T = TypeVar("T")

DEFAULT_HOOK_TIMEOUT = 30.0


def call_hook(
    clock: IReactorTime,
    func: Callable[..., Any],
    *args: Any,
    denied: T,
    timeout: float = DEFAULT_HOOK_TIMEOUT,
) -> defer.Deferred[Any]:
    """Call ``func(*args)`` and fire with its result, or with ``denied``.

    A hook may return a value, a Deferred or a coroutine. If it raises, fails,
    or takes longer than ``timeout`` seconds, the error is logged here with its
    traceback (never sent to the peer) and the result is ``denied``: every
    decision an application did not clearly make is a refusal.
    """
    name = getattr(func, "__qualname__", repr(func))

    def invoke() -> Any:
        result = func(*args)
        if inspect.isawaitable(result):
            return defer.ensureDeferred(_awaited(result))
        return result

    d: defer.Deferred[Any] = defer.maybeDeferred(invoke)
    d.addTimeout(timeout, clock)

    def failed(failure: Failure) -> T:
        if failure.check(defer.TimeoutError):
            log.error("hook {hook} timed out after {timeout}s: denied", hook=name, timeout=timeout)
        else:
            log.failure("hook {hook} raised: denied", failure, hook=name)
        return denied

    d.addErrback(failed)
    return d


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
