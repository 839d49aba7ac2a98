"""What a request handler asks of the outside world, as plain values.

Request handlers are ``async def`` coroutines, but no event loop runs them:
each ``await`` of an effect suspends the coroutine and hands the effect to the
session, which passes blocking work and hook calls to its driver (the Twisted
adapter, or a synchronous loop in tests) and resumes the coroutine with the
result. The handlers stay free of threads, reactors and clocks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


class Effect(Generic[T]):
    """Awaiting an effect suspends the handler until the driver delivers a ``T``."""

    __slots__ = ()

    def __await__(self) -> Generator[Effect[Any], object, T]:
        result = yield self
        return cast(T, result)


class Blocking(Effect[T]):
    """Call ``function`` where blocking is harmless: a worker thread.

    Calls on the served files are placed by :meth:`Context.io
    <spindlex_tw.sftp.context.Context.io>`, which yields this effect only for
    those that must not run on the event loop; account lookups and long copy
    steps always do.
    """

    __slots__ = ("function",)

    def __init__(self, function: Callable[[], T]) -> None:
        self.function = function


class RunNow(Generic[T]):
    """Awaiting it calls ``function`` at once: the handler does not suspend.

    For calls on files that never wait (a tree in memory, or a server told to
    run file calls inline): no effect, no job, no trip through the driver.
    """

    __slots__ = ("function",)

    def __init__(self, function: Callable[[], T]) -> None:
        self.function = function

    def __await__(self) -> Generator[Effect[Any], object, T]:
        return self.function()
        yield  # unreachable: it makes this a generator that finishes at once


class TryFirst(Generic[T]):
    """Awaiting it calls ``attempt``, the same call promising not to wait; only if
    that answers None (it would have waited) does ``function`` go to a worker."""

    __slots__ = ("attempt", "function")

    def __init__(self, attempt: Callable[[], T | None], function: Callable[[], T]) -> None:
        self.attempt = attempt
        self.function = function

    def __await__(self) -> Generator[Effect[Any], object, T]:
        value = self.attempt()
        if value is not None:
            return value
        result = yield Blocking(self.function)
        return cast(T, result)


class CallHook(Effect[object]):
    """Call user code on the event-loop thread; it may answer later (a Deferred)."""

    __slots__ = ("args", "function")

    def __init__(self, function: Callable[..., object], *args: object) -> None:
        self.function = function
        self.args = args


class Signal:
    """A condition other handlers wait on; the session itself resumes the waiters."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._waiters.append(callback)

    def fire(self) -> None:
        waiters, self._waiters = self._waiters, []
        for callback in waiters:
            callback()


class Wait(Effect[None]):
    """Suspend until ``signal`` fires; handled inside the session, never by the driver."""

    __slots__ = ("signal",)

    def __init__(self, signal: Signal) -> None:
        self.signal = signal
