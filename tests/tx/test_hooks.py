"""call_hook: values, Deferreds and coroutines; exceptions and timeouts fail closed.

is_code: only an integer that is one of the codes counts.
"""

from __future__ import annotations

import enum
from typing import Any

import pytest
from twisted.internet import defer, task

from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_PARTIAL, AUTH_SUCCESSFUL
from spindlex_tw.tx.hooks import call_hook, is_code


def result_of(d: defer.Deferred[Any]) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def test_plain_value() -> None:
    clock = task.Clock()
    assert result_of(call_hook(clock, lambda: AUTH_SUCCESSFUL, denied=AUTH_FAILED, timeout=5)) == 0


def test_deferred_value() -> None:
    clock = task.Clock()
    pending: defer.Deferred[int] = defer.Deferred()
    d = call_hook(clock, lambda: pending, denied=AUTH_FAILED, timeout=5)
    pending.callback(AUTH_SUCCESSFUL)
    assert result_of(d) == AUTH_SUCCESSFUL


def test_coroutine_value() -> None:
    clock = task.Clock()

    async def hook(name: str) -> str:
        return name.upper()

    assert result_of(call_hook(clock, hook, "ok", denied="no", timeout=5)) == "OK"


def test_exception_is_denied() -> None:
    clock = task.Clock()

    def hook() -> int:
        raise RuntimeError("boom")

    assert result_of(call_hook(clock, hook, denied=AUTH_FAILED, timeout=5)) == AUTH_FAILED


def test_failed_deferred_is_denied() -> None:
    clock = task.Clock()
    d = call_hook(clock, lambda: defer.fail(ValueError("bad")), denied=False, timeout=5)
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


class _Codes(enum.IntEnum):
    SUCCESS = AUTH_SUCCESSFUL


@pytest.mark.parametrize("answer", [AUTH_SUCCESSFUL, AUTH_PARTIAL, _Codes.SUCCESS])
def test_is_code_grants_the_codes(answer: object) -> None:
    assert is_code(answer, AUTH_SUCCESSFUL, AUTH_PARTIAL)


@pytest.mark.parametrize("answer", [False, True, None, "0", 0.0, AUTH_FAILED, [0]])
def test_is_code_refuses_anything_else(answer: object) -> None:
    # False == 0 and True == 1 in Python: a boolean must still not pass for a code.
    assert not is_code(answer, AUTH_SUCCESSFUL, AUTH_PARTIAL)
