"""call_hook: values, Deferreds and coroutines; exceptions and timeouts fail closed."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task

from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
from spindlex_tw.tx.hooks import call_hook


def result_of(d: defer.Deferred[Any]) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def test_plain_value() -> None:
    clock = task.Clock()
    assert result_of(call_hook(clock, lambda: AUTH_SUCCESSFUL, denied=AUTH_FAILED)) == 0


def test_deferred_value() -> None:
    clock = task.Clock()
    pending: defer.Deferred[int] = defer.Deferred()
    d = call_hook(clock, lambda: pending, denied=AUTH_FAILED)
    pending.callback(AUTH_SUCCESSFUL)
    assert result_of(d) == AUTH_SUCCESSFUL


def test_coroutine_value() -> None:
    clock = task.Clock()

    async def hook(name: str) -> str:
        return name.upper()

    assert result_of(call_hook(clock, hook, "ok", denied="no")) == "OK"


def test_exception_is_denied() -> None:
    clock = task.Clock()

    def hook() -> int:
        raise RuntimeError("boom")

    assert result_of(call_hook(clock, hook, denied=AUTH_FAILED)) == AUTH_FAILED


def test_failed_deferred_is_denied() -> None:
    clock = task.Clock()
    d = call_hook(clock, lambda: defer.fail(ValueError("bad")), denied=False)
    assert result_of(d) is False


def test_timeout_is_denied() -> None:
    clock = task.Clock()
    never: defer.Deferred[int] = defer.Deferred()
    d = call_hook(clock, lambda: never, denied=AUTH_FAILED, timeout=5)
    results: list[Any] = []
    d.addBoth(results.append)
    clock.advance(4.9)
    assert results == []
    clock.advance(0.2)
    assert results == [AUTH_FAILED]
