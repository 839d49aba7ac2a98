"""Calling application hooks (values, Deferreds or coroutines; time-limited) and judging codes.

Everything an application did not clearly decide is a refusal.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeGuard, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger(namespace="spindlex_tw.hooks")

T = TypeVar("T")

DEFAULT_HOOK_TIMEOUT = 30.0

# Hooks already warned about an answer of the wrong type: one warning per hook,
# not one per connection, so a busy server's log is not flooded.
_warned_types: set[str] = set()


def call_hook(
    clock: IReactorTime,
    func: Callable[..., Any],
    *args: Any,
    denied: T,
    timeout: float,
) -> defer.Deferred[Any]:
    """Call ``func(*args)`` and fire with its result, or with ``denied``.

    A hook may return a value, a Deferred or a coroutine. If it raises, fails,
    or takes longer than ``timeout`` seconds, the error is logged here with its
    traceback (never sent to the peer) and the result is ``denied``: every
    decision an application did not clearly make is a refusal.
    """
    outcome = run_hook(clock, func, *args, denied=denied, timeout=timeout)
    if isinstance(outcome, defer.Deferred):
        return outcome
    return defer.succeed(outcome)


def run_hook(
    clock: IReactorTime,
    func: Callable[..., Any],
    *args: Any,
    denied: T,
    timeout: float,
) -> Any:
    """As :func:`call_hook`, but a hook that answers at once gives its answer itself.

    Only a hook that answers later (a Deferred or a coroutine) gives a
    Deferred, time-limited as in :func:`call_hook`. Hot paths (an SFTP
    request consults one or two hooks) save the Deferred and its timer.
    """
    try:
        result = func(*args)
    except Exception:
        log.failure("hook {hook} raised: denied", hook=_name(func))
        return denied
    if isinstance(result, defer.Deferred):
        d: defer.Deferred[Any] = result
    elif inspect.isawaitable(result):
        d = defer.ensureDeferred(_awaited(result))
    else:
        _check_type(func, result, denied)
        return result
    d.addTimeout(timeout, clock)

    def answered(value: Any) -> Any:
        _check_type(func, value, denied)
        return value

    def failed(failure: Failure) -> T:
        if failure.check(defer.TimeoutError):
            log.error(
                "hook {hook} timed out after {timeout}s: denied", hook=_name(func), timeout=timeout
            )
        else:
            log.failure("hook {hook} raised: denied", failure, hook=_name(func))
        return denied

    d.addCallbacks(answered, failed)
    return d


def _check_type(func: Callable[..., Any], answer: object, denied: object) -> None:
    """Warn (once per hook) when an answer cannot be what the hook's refusal says it is.

    The refusal a caller passes tells the kind of answer: a bool for the
    True/False hooks, an int for the code hooks. ``True``, ``"yes"`` or
    ``None`` where a code is expected still refuse, but silently that is
    hard to debug.
    """
    if isinstance(denied, bool):
        expected, fits = "True or False", isinstance(answer, bool)
    elif isinstance(denied, int):
        expected, fits = "an int code", isinstance(answer, int) and not isinstance(answer, bool)
    else:
        return
    hook = _name(func)
    if fits or hook in _warned_types:
        return
    _warned_types.add(hook)
    log.warn(
        "hook {hook} answered {answer} where {expected} is expected: taken as a refusal",
        hook=hook,
        answer=repr(answer)[:80],
        expected=expected,
    )


def is_code(answer: object, *codes: int) -> TypeGuard[int]:
    """Is a hook's ``answer`` exactly one of the integer ``codes``?

    The one test of a granted (or any) code: ``False`` is ``0`` to Python but
    not here, so a hook answering ``False``, ``None`` or ``"0"`` where a code is
    expected refuses (fail closed).
    """
    return isinstance(answer, int) and not isinstance(answer, bool) and answer in codes


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", repr(func))


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
