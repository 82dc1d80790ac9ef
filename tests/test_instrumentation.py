"""The loop engine calls the installed instrumentation as supervised_loops.instrument documents.

A recording instrumentation, in virtual time: what started each iteration,
its attempt, when it was due and began on the event loop's clock, how it
ended, and why due iterations were skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from supervised_loops import ExponentialBackoff, Pause, Resume, RunNow, Stop, instrument, loop
from supervised_loops.instrument import Trigger
from supervised_loops.loops import observe
from supervised_loops.testing import virtual_time


class Recording:
    """Notes every call, in order."""

    observes_starts = True

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def iteration_started(
        self,
        path: str,
        name: str,
        iteration: int,
        trigger: Trigger,
        attempt: int,
        scheduled: float,
        started: float,
    ) -> object:
        self.calls.append(("started", iteration, trigger, attempt, scheduled, started))
        return len(self.calls)

    def iteration_ended(
        self,
        path: str,
        name: str,
        iteration: int,
        trigger: Trigger,
        attempt: int,
        scheduled: float,
        started: float,
        ended: float,
        outcome: str,
        error: BaseException | None,
        token: object,
    ) -> None:
        self.calls.append(("ended", iteration, outcome, type(error).__name__, ended, token))

    def iteration_skipped(self, path: str, name: str, reason: str) -> None:
        self.calls.append(("skipped", path, reason))


@pytest.fixture
def recording() -> Iterator[Recording]:
    installed = Recording()
    previous = instrument.install(installed)
    try:
        yield installed
    finally:
        instrument.install(previous)


@virtual_time()
async def test_iterations_and_a_retry_are_reported_with_trigger_attempt_and_times(
    recording: Recording,
) -> None:
    calls = 0

    @loop(seconds=10, count=2, backoff=ExponentialBackoff(base=1, jitter=False))
    async def poll() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1)
        if calls == 2:
            raise OSError("flaky")

    await poll.start()
    assert recording.calls == [
        ("started", 0, "schedule", 1, 0.0, 0.0),
        ("ended", 0, "ok", "NoneType", 1.0, 1),
        ("started", 1, "schedule", 1, 10.0, 10.0),
        ("ended", 1, "retried", "OSError", 11.0, 3),
        ("started", 1, "retry", 2, 13.0, 13.0),  # the first backoff window: 2 s
        ("ended", 1, "ok", "NoneType", 14.0, 5),
    ]


@virtual_time()
async def test_a_run_now_and_a_failure_are_reported(recording: Recording) -> None:
    @loop(hours=1)
    async def report() -> None:
        if report.current_loop == 1:
            raise KeyError("bad")

    @report.error
    async def quiet(error: BaseException) -> None:
        pass

    task = report.start()
    await asyncio.sleep(5)
    report.tell(RunNow())
    await asyncio.wait((task,))
    assert recording.calls == [
        ("started", 0, "schedule", 1, 0.0, 0.0),
        ("ended", 0, "ok", "NoneType", 0.0, 1),
        ("started", 1, "run-now", 1, 5.0, 5.0),
        ("ended", 1, "failed", "KeyError", 5.0, 3),
    ]


@virtual_time()
async def test_a_cancelled_iteration_is_reported_cancelled(recording: Recording) -> None:
    @loop(hours=1)
    async def slow() -> None:
        await asyncio.sleep(100)

    task = slow.start()
    await asyncio.sleep(10)
    slow.cancel()
    await asyncio.wait((task,))
    assert recording.calls == [
        ("started", 0, "schedule", 1, 0.0, 0.0),
        ("ended", 0, "cancelled", "CancelledError", 10.0, 1),
    ]


@virtual_time()
async def test_missed_and_paused_iterations_are_reported_skipped(recording: Recording) -> None:
    @loop(seconds=1, missed="skip")
    async def tick() -> None:
        if tick.current_loop == 0:
            await asyncio.sleep(3.5)  # overruns three grid points

    task = tick.start()
    await asyncio.sleep(4)
    assert ("skipped", "tick", "missed") in recording.calls
    recording.calls.clear()
    await tick.ask(Pause())
    await asyncio.sleep(5)  # due iterations pass while paused
    await tick.ask(Resume())
    assert recording.calls == [("skipped", "tick", "paused")]
    await tick.ask(Stop())
    await asyncio.wait((task,))


@virtual_time()
async def test_an_overlap_limit_reached_at_a_due_point_is_reported(recording: Recording) -> None:
    @loop(seconds=1, overlap=2)
    async def crawl() -> None:
        await asyncio.sleep(10)

    task = crawl.start()
    await asyncio.sleep(2.5)
    await crawl.ask(Stop())
    await asyncio.wait((task,))
    skipped = [call for call in recording.calls if call[0] == "skipped"]
    assert skipped == [("skipped", "crawl", "overlap")]  # once, at t=2


@virtual_time()
async def test_a_raising_instrumentation_is_logged_and_uninstalled_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Recording):
        def iteration_started(self, *begun: object) -> object:
            raise ValueError("exporter down")

    broken = Broken()
    previous = instrument.install(broken)
    try:

        @loop(seconds=1, count=3)
        async def work() -> None:
            pass

        with caplog.at_level(logging.ERROR, logger="supervised_loops"):
            await work.start()
        assert work.current_loop == 3
        assert instrument.installed is None
        assert [r.message for r in caplog.records] == [
            f"instrumentation {broken!r} raised; it is uninstalled"
        ]
        assert broken.calls == []  # nor told the end of the iteration it raised at
    finally:
        instrument.install(previous)


@virtual_time()
async def test_with_nothing_installed_the_hook_is_never_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    called: list[str] = []
    for name in ("iteration_started", "iteration_ended", "iteration_skipped", "broken"):
        monkeypatch.setattr(observe, name, lambda *args, name=name: called.append(name))
    assert instrument.installed is None

    @loop(seconds=0, count=100)
    async def spin() -> None:
        pass

    await spin.start()
    assert spin.current_loop == 100
    assert called == []


@virtual_time()
async def test_overlapping_iterations_and_their_retries_are_reported(recording: Recording) -> None:
    calls = 0

    @loop(seconds=1, count=2, overlap=True, backoff=ExponentialBackoff(base=1, jitter=False))
    async def crawl() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("flaky")
        await asyncio.sleep(3)

    await crawl.start()
    started = sorted(call for call in recording.calls if call[0] == "started")
    assert started == [
        ("started", 0, "retry", 2, 1.0, 1.0),  # the retry, capped by the next tick
        ("started", 0, "schedule", 1, 0.0, 0.0),
        ("started", 0, "schedule", 1, 1.0, 1.0),  # overlaps: iteration 0 is still retrying
    ]
    outcomes = sorted(call[2] for call in recording.calls if call[0] == "ended")
    assert outcomes == ["ok", "ok", "retried"]


@virtual_time()
async def test_a_cancelled_error_nobody_asked_for_is_reported_failed(recording: Recording) -> None:
    @loop(hours=1)
    async def fragile() -> None:
        raise asyncio.CancelledError("raised by a library")

    task = fragile.start()
    await asyncio.wait((task,))
    assert fragile.failed()
    assert [call[:4] for call in recording.calls] == [
        ("started", 0, "schedule", 1),
        ("ended", 0, "failed", "CancelledError"),
    ]


class EndsOnly(Recording):
    """Observes ends only: the engine makes one call per iteration."""

    observes_starts = False

    def iteration_started(self, *begun: object) -> object:
        raise AssertionError("not called when starts are not observed")


@virtual_time()
async def test_an_instrumentation_that_observes_ends_only_gets_one_call_with_every_value() -> None:
    seen: list[tuple[object, ...]] = []

    class Values(EndsOnly):
        def iteration_ended(self, *values: object) -> None:
            seen.append(values)

    previous = instrument.install(Values())
    try:

        @loop(seconds=10, count=2)
        async def poll() -> None:
            await asyncio.sleep(1)

        await poll.start()
    finally:
        instrument.install(previous)
    assert seen == [
        ("poll", "poll", 0, "schedule", 1, 0.0, 0.0, 1.0, "ok", None, None),
        ("poll", "poll", 1, "schedule", 1, 10.0, 10.0, 11.0, "ok", None, None),
    ]


@pytest.mark.parametrize("kind", [Recording, EndsOnly])
@pytest.mark.parametrize("overlap", [1, 2])
@virtual_time()
async def test_an_iterations_end_goes_to_the_instrumentation_that_saw_it_begin(
    kind: type[Recording], overlap: int
) -> None:
    first, second = kind(), kind()
    previous = instrument.install(first)
    try:

        @loop(seconds=10, count=2, overlap=overlap)
        async def poll() -> None:
            await asyncio.sleep(1)

        task = poll.start()
        await asyncio.sleep(0.5)  # iteration 0 runs
        instrument.install(second)
        await asyncio.wait((task,))
    finally:
        instrument.install(previous)
    token = 1 if kind is Recording else None
    started = [("started", 0, "schedule", 1, 0.0, 0.0)] if kind is Recording else []
    assert first.calls == [*started, ("ended", 0, "ok", "NoneType", 1.0, token)]
    started = [("started", 1, "schedule", 1, 10.0, 10.0)] if kind is Recording else []
    assert second.calls == [*started, ("ended", 1, "ok", "NoneType", 11.0, token)]


@virtual_time()
async def test_an_instrumentation_uninstalled_mid_iteration_still_gets_its_end() -> None:
    recording = Recording()
    previous = instrument.install(recording)
    try:

        @loop(hours=1)
        async def slow() -> None:
            await asyncio.sleep(10)

        task = slow.start()
        await asyncio.sleep(5)
        instrument.install(None)  # a span it opened is still ended, its context detached
        slow.cancel()
        await asyncio.wait((task,))
    finally:
        instrument.install(previous)
    assert recording.calls == [
        ("started", 0, "schedule", 1, 0.0, 0.0),
        ("ended", 0, "cancelled", "CancelledError", 5.0, 1),
    ]


@virtual_time()
async def test_one_raising_at_the_end_of_many_iterations_in_flight_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(EndsOnly):
        def iteration_ended(self, *values: object) -> None:
            raise ValueError("exporter down")

    broken = Broken()
    previous = instrument.install(broken)
    try:

        @loop(seconds=1, count=3, overlap=3)
        async def crawl() -> None:
            await asyncio.sleep(5)  # three iterations in flight when the first ends

        with caplog.at_level(logging.ERROR, logger="supervised_loops"):
            await crawl.start()
        assert crawl.current_loop == 3
        assert instrument.installed is None
        assert [r.message for r in caplog.records] == [
            f"instrumentation {broken!r} raised; it is uninstalled"
        ]
    finally:
        instrument.install(previous)


def test_install_refuses_an_object_that_is_not_an_instrumentation() -> None:
    class NoSkip:
        observes_starts = True

        def iteration_started(self, *begun: object) -> object:
            return None

        def iteration_ended(self, *values: object) -> None:
            pass

    with pytest.raises(TypeError) as refused:
        instrument.install(NoSkip())  # type: ignore[arg-type]
    assert str(refused.value).startswith(
        "'instrumentation' must have the methods iteration_started, iteration_ended,"
        " iteration_skipped (got <"
    )
    assert str(refused.value).endswith(", without iteration_skipped)")

    class Unsaid(Recording):
        observes_starts = "yes"  # type: ignore[assignment]

    with pytest.raises(
        TypeError, match=r"^'instrumentation.observes_starts' must be a bool \(got 'yes'\)$"
    ):
        instrument.install(Unsaid())
    assert instrument.installed is None


@virtual_time()
async def test_a_broken_instrumentation_installed_again_is_logged_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(EndsOnly):
        def iteration_ended(self, *values: object) -> None:
            raise ValueError("exporter down")

    broken = Broken()
    previous = instrument.install(broken)
    try:

        @loop(seconds=1, count=2)
        async def work() -> None:
            pass

        with caplog.at_level(logging.ERROR, logger="supervised_loops"):
            await work.start()
            instrument.install(broken)  # put back, as after a fix of its exporter
            await work.start()
        assert len(caplog.records) == 2
        assert instrument.installed is None
    finally:
        instrument.install(previous)
