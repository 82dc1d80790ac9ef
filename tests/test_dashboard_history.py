"""The dashboard's history: what it keeps of iterations and events, and its bounds.

The loop engine calls the instrumentation hook for every iteration; here the
hook's interface is driven directly, with the values the engine passes.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pytest

from supervised_loops import instrument
from supervised_loops.events import ActorStarted, ChildRestarted, IterationFailed
from supervised_loops.instrument import Trigger
from supervised_loops.service.dashboard import History, history
from supervised_loops.service.dashboard.history import ITERATIONS_KEPT
from supervised_loops.telemetry.fanout import Fanout, attach, detach

AT = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class Start(NamedTuple):
    """An iteration's values, in the order the engine passes them."""

    path: str
    name: str
    iteration: int
    trigger: Trigger
    attempt: int
    scheduled: float
    started: float


def start(
    path: str = "app/poller", iteration: int = 1, scheduled: float = 10.0, started: float = 10.5
) -> Start:
    return Start(path, "poller", iteration, "schedule", 1, scheduled, started)


def end(
    recorder: History,
    begun: Start,
    outcome: str,
    *,
    took: float = 0.25,
    error: BaseException | None = None,
) -> None:
    """One iteration, reported as the engine does: the history observes ends only."""
    assert recorder.observes_starts is False
    recorder.iteration_ended(*begun, begun.started + took, outcome, error, None)  # type: ignore[arg-type]


def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def test_an_iteration_is_kept_with_its_duration_lateness_and_outcome_in_milliseconds() -> None:
    recorder = History()
    end(recorder, start(scheduled=10.0, started=10.5), "ok", took=0.25)
    recent = recorder.loops["app/poller"].recent()
    assert recent["durations"] == [250.0]
    assert recent["lateness"] == [500.0]
    assert recent["outcomes"] == "o"
    assert recent["count"] == 1


def test_outcomes_are_coded_ok_retried_failed_cancelled_in_order() -> None:
    recorder = History()
    for outcome in ("ok", "retried", "failed", "cancelled"):
        end(recorder, start(), outcome)
    assert recorder.loops["app/poller"].recent()["outcomes"] == "orfc"


def test_only_the_last_iterations_are_kept_oldest_first() -> None:
    recorder = History()
    for index in range(ITERATIONS_KEPT + 5):
        end(recorder, start(iteration=index), "ok", took=index / 1000)
    recent = recorder.loops["app/poller"].recent()
    assert len(recent["durations"]) == ITERATIONS_KEPT
    assert recent["durations"][0] == 5.0
    assert recent["durations"][-1] == float(ITERATIONS_KEPT + 4)
    assert recent["count"] == ITERATIONS_KEPT + 5


def test_a_failed_or_retried_iteration_keeps_its_traceback_a_cancelled_one_does_not() -> None:
    recorder = History()
    end(recorder, start(iteration=3), "retried", error=raised(ConnectionError("link down")))
    loop = recorder.loops["app/poller"]
    assert loop.traceback is not None
    assert "Traceback (most recent call last)" in loop.traceback
    assert "ConnectionError: link down" in loop.traceback
    assert loop.traceback_iteration == 3
    assert loop.recent()["traceback"] is True
    end(recorder, start(iteration=4), "cancelled", error=raised(TimeoutError("cut")))
    assert "link down" in (loop.traceback or "")


def test_a_huge_traceback_is_cut_from_the_front_keeping_the_error_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(history, "TRACEBACK_CHARS", 200)
    recorder = History()
    end(recorder, start(), "failed", error=raised(ValueError("x" * 500 + " the end")))
    text = recorder.loops["app/poller"].traceback or ""
    assert len(text) == 200
    assert text.startswith("…")
    assert text.rstrip().endswith("the end")


def test_skipped_iterations_are_counted() -> None:
    recorder = History()
    recorder.iteration_skipped("app/poller", "poller", "overlap")
    recorder.iteration_skipped("app/poller", "poller", "paused")
    assert recorder.loops["app/poller"].recent()["skipped"] == 2


def test_every_change_moves_the_version_so_readers_can_skip_unchanged_loops() -> None:
    recorder = History()
    end(recorder, start(), "ok")
    first = recorder.loops["app/poller"].version
    recorder.iteration_skipped("app/poller", "poller", "missed")
    assert recorder.loops["app/poller"].version > first


def test_the_number_of_loops_remembered_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "LOOPS_KEPT", 3)
    recorder = History()
    for index in range(5):
        end(recorder, start(path=f"app/loop{index}"), "ok")
    assert list(recorder.loops) == ["app/loop2", "app/loop3", "app/loop4"]


def test_the_timeline_keeps_the_last_events_with_their_fields() -> None:
    recorder = History()
    for index in range(history.EVENTS_KEPT + 3):
        recorder.record(
            IterationFailed(path="app/poller", at=AT, iteration=index, error="E: x", retried=True)
        )
    assert len(recorder.events) == history.EVENTS_KEPT
    assert recorder.events[0]["iteration"] == 3
    assert recorder.events[-1] == {
        "type": "IterationFailed",
        "path": "app/poller",
        "at": AT.isoformat(),
        "iteration": history.EVENTS_KEPT + 2,
        "error": "E: x",
        "retried": True,
    }


def test_restarts_count_in_their_supervisors_window_and_are_forgotten_after_it() -> None:
    limits = {"app": (3, 5.0)}
    recorder = History(limits.get)
    recorder.record(ChildRestarted(path="app/poller", at=AT, reason="E: x"))
    recorder.record(
        ChildRestarted(path="app/writer", at=AT + dt.timedelta(seconds=2), reason="E: y")
    )
    recorder.record(ActorStarted(path="app/poller", at=AT))
    assert recorder.intensity("app", AT + dt.timedelta(seconds=3)) == 2
    assert recorder.intensity("app", AT + dt.timedelta(seconds=5)) == 1  # the first is forgotten
    assert recorder.intensity("app", AT + dt.timedelta(seconds=7)) == 0
    assert recorder.intensity("elsewhere", AT) == 0


def test_attach_alone_installs_the_history_itself_and_detach_removes_it() -> None:
    recorder = History()
    previous = instrument.install(None)
    try:
        attach(recorder)
        assert instrument.current() is recorder
        detach(recorder)
        assert instrument.current() is None
    finally:
        instrument.install(previous)


class Recorder:
    observes_starts = True

    def __init__(self, *, broken: bool = False) -> None:
        self.seen: list[tuple[str, object]] = []
        self.broken = broken

    def iteration_started(self, *begun: object) -> object:
        if self.broken:
            raise RuntimeError("exporter down")
        iteration = Start(*begun).iteration  # type: ignore[arg-type]
        self.seen.append(("started", iteration))
        return f"token-{iteration}"

    def iteration_ended(self, *values: object) -> None:
        self.seen.append(("ended", values[-1]))

    def iteration_skipped(self, path: str, name: str, reason: str) -> None:
        self.seen.append(("skipped", reason))


def test_beside_another_instrumentation_both_see_every_iteration_with_their_own_tokens() -> None:
    exporter = Recorder()
    recorder = History()
    previous = instrument.install(exporter)  # type: ignore[arg-type]
    try:
        attach(recorder)
        hook = instrument.current()
        assert isinstance(hook, Fanout)
        begun = start(iteration=7)
        assert hook.observes_starts  # one member does
        token = hook.iteration_started(*begun)
        hook.iteration_ended(*begun, 11.0, "ok", None, token)
        hook.iteration_skipped("app/poller", "poller", "missed")
        assert exporter.seen == [("started", 7), ("ended", "token-7"), ("skipped", "missed")]
        assert recorder.loops["app/poller"].count == 1
        detach(recorder)
        assert instrument.current() is exporter  # the other one is left as it was
    finally:
        instrument.install(previous)
