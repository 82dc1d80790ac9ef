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
from supervised_loops.instrument import IterationStart
from supervised_loops.testing import virtual_time


class Recording:
    """Notes every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def iteration_started(self, start: IterationStart) -> object:
        self.calls.append(
            (
                "started",
                start.iteration,
                start.trigger,
                start.attempt,
                start.scheduled,
                start.started,
            )
        )
        return len(self.calls)

    def iteration_ended(
        self,
        start: IterationStart,
        token: object,
        outcome: str,
        error: BaseException | None,
        ended: float,
    ) -> None:
        self.calls.append(("ended", start.iteration, outcome, type(error).__name__, ended, token))

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
        def iteration_started(self, start: IterationStart) -> object:
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
    finally:
        instrument.install(previous)


@virtual_time()
async def test_with_nothing_installed_no_iteration_start_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[object] = []
    original = instrument.IterationStart

    def counting(*args: object, **kwargs: object) -> object:
        built.append(args)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(instrument, "IterationStart", counting)
    assert instrument.installed is None

    @loop(seconds=0, count=100)
    async def spin() -> None:
        pass

    await spin.start()
    assert spin.current_loop == 100
    assert built == []


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
