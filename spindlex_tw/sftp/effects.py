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

    ``files_only`` says the call touches nothing but the served files, so on
    a filesystem held in memory it never waits and the driver may run it
    inline; account lookups, which may ask a directory server, say False.
    ``attempt``, when given, is the same call that cannot wait (a read from
    the page cache): the driver may try it inline first, and only if it
    answers None hand ``function`` to a thread.
    """

    __slots__ = ("attempt", "files_only", "function")

    def __init__(
        self,
        function: Callable[[], T],
        files_only: bool = True,
        attempt: Callable[[], T | None] | None = None,
    ) -> None:
        self.function = function
        self.files_only = files_only
        self.attempt = attempt


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
