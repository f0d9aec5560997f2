"""emulator/polling.py: the one deadline-poll helper every wait in the emulator uses."""

from __future__ import annotations

import time

import pytest

from emulator.polling import PollTimeout, poll_until


def test_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, "", "ready", "later"])
    assert poll_until(lambda: next(answers), timeout=5, interval=0.001) == "ready"
    assert next(answers) == "later"  # asked no more than needed


def test_gives_none_at_the_deadline_after_asking_at_least_twice() -> None:
    calls: list[float] = []
    started = time.monotonic()
    assert poll_until(lambda: calls.append(time.monotonic()), timeout=0.05, interval=0.01) is None
    assert len(calls) >= 2
    assert calls[-1] - started >= 0.05  # the last try happens at the deadline, not before it


def test_a_named_wait_raises_saying_what_did_not_happen() -> None:
    with pytest.raises(PollTimeout, match="the pod being scheduled did not happen within 0.01 s"):
        poll_until(lambda: False, timeout=0.01, interval=0.001, what="the pod being scheduled")
    assert issubclass(PollTimeout, TimeoutError)


def test_give_up_ends_a_wait_without_deadline() -> None:
    tries: list[int] = []
    assert poll_until(lambda: tries.append(1), None, 0.001, give_up=lambda: len(tries) >= 3) is None
    assert len(tries) == 3


def test_backoff_grows_the_pause_up_to_the_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)
    tries = iter(range(6))
    poll_until(lambda: next(tries) == 5, None, 0.01, backoff=2, max_interval=0.05)
    assert pauses == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05])


def test_wait_first_pauses_before_the_first_try(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(time, "sleep", lambda seconds: events.append(f"sleep {seconds:g}"))
    assert poll_until(lambda: events.append("try") or True, 10, 0.2, wait_first=True) is True
    assert events == ["sleep 0.2", "try"]


def test_errors_of_the_predicate_propagate() -> None:
    def broken() -> bool:
        raise ValueError("the container exited")

    with pytest.raises(ValueError, match="the container exited"):
        poll_until(broken, timeout=5)
