"""The connection's SFTP budget, sans-IO: spent and freed by sessions, waking the ones held back."""

from __future__ import annotations

from spindlex_tw.sftp.budget import Budget
from spindlex_tw.sftp.context import Limits


def test_spent_by_bytes_or_requests() -> None:
    budget = Budget(max_bytes=100, max_requests=2)
    assert budget.fits(100) and not budget.spent
    budget.spend(60, 1)
    assert not budget.fits(41) and budget.fits(40)
    budget.spend(0, 1)
    assert budget.spent and not budget.fits(1)  # two requests: no third, however small
    budget.free(0, 1)
    assert not budget.spent


def test_freeing_wakes_each_waiting_session_once() -> None:
    budget = Budget(max_bytes=100, max_requests=10)
    woken: list[str] = []
    budget.spend(100, 1)
    budget.wait("a", lambda: woken.append("a"))
    budget.wait("a", lambda: woken.append("a"))  # asked twice, woken once
    budget.wait("b", lambda: woken.append("b"))
    budget.free(0, 1)
    assert woken == []  # still spent: nobody could start
    budget.free(50)
    assert sorted(woken) == ["a", "b"]
    budget.free(50)
    assert sorted(woken) == ["a", "b"]  # forgotten once woken


def test_a_finished_session_is_forgotten() -> None:
    budget = Budget.for_limits(Limits(max_outstanding_bytes=10, max_outstanding_requests=5))
    woken: list[str] = []
    budget.spend(10)
    budget.wait("gone", lambda: woken.append("gone"))
    budget.forget("gone")
    budget.free(10)
    assert woken == []
