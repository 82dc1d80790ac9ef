"""A loop's ring of recent iterations: what it keeps, what the engine writes, when it has one.

The ring alone first (its numbers, order, bounds); then real loops in
virtual time, whose engine writes it: each way an iteration ends, who
started it, overlapping iterations, skipped ones; and when a loop has a
ring at all (attached, given by a failure while recording, dropped after).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from supervised_loops import Loop, loop
from supervised_loops.loops import recent
from supervised_loops.loops.recent import ITERATIONS_KEPT, RecentIterations
from supervised_loops.messages import Pause, Resume, RunNow
from supervised_loops.testing import virtual_time


def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


# -- the ring alone ------------------------------------------------------------------


def test_an_iteration_is_kept_with_its_duration_lateness_and_outcome_in_milliseconds() -> None:
    ring = RecentIterations()
    ring.add(10.5, 10.75, 10.0, recent.CODES["ok"])
    shown = ring.recent()
    assert shown["durations"] == [250.0]
    assert shown["lateness"] == [500.0]
    assert shown["outcomes"] == "o"
    assert shown["count"] == 1
    assert shown["traceback"] is False


def test_outcomes_are_coded_ok_retried_failed_cancelled_in_order() -> None:
    ring = RecentIterations()
    for outcome in ("ok", "retried", "failed", "cancelled"):
        ring.add_outcome(1.0, 2.0, 1.0, outcome, None, 1)  # type: ignore[arg-type]
    assert ring.recent()["outcomes"] == "orfc"


@pytest.mark.parametrize("extra", [0, 1, 5, ITERATIONS_KEPT, 2 * ITERATIONS_KEPT + 7])
def test_only_the_last_iterations_are_kept_oldest_first(extra: int) -> None:
    ring = RecentIterations()
    total = ITERATIONS_KEPT + extra
    for index in range(total):
        ring.add(0.0, index / 1000, 0.0, 0.0)
    shown = ring.recent()
    assert shown["durations"] == [float(i) for i in range(total - ITERATIONS_KEPT, total)]
    assert shown["count"] == ring.count == total


@pytest.mark.parametrize(
    ("total", "since", "first"),
    [(10, 0, 0), (10, 7, 7), (100, 90, 90), (100, 5, 40), (100, 100, 100)],
)
def test_the_iterations_after_the_first_since_are_the_tail_a_reader_appends(
    total: int, since: int, first: int
) -> None:
    ring = RecentIterations()
    for index in range(total):
        ring.add(0.0, index / 1000, 0.0, 0.0)
    shown = ring.recent(since)
    assert shown["first"] == first  # never before what the ring still holds
    assert shown["durations"] == [float(i) for i in range(first, total)]
    assert len(shown["outcomes"]) == total - first


def test_a_failed_or_retried_iteration_keeps_its_traceback_a_cancelled_one_does_not() -> None:
    ring = RecentIterations()
    ring.add_outcome(1.0, 2.0, 1.0, "retried", raised(ConnectionError("link down")), 3)
    assert ring.traceback is not None
    assert "Traceback (most recent call last)" in ring.traceback
    assert "ConnectionError: link down" in ring.traceback
    assert ring.traceback_iteration == 3
    assert ring.recent()["traceback"] is True
    ring.add_outcome(1.0, 2.0, 1.0, "cancelled", raised(TimeoutError("cut")), 4)
    assert "link down" in ring.traceback
    ring.add_outcome(1.0, 2.0, 1.0, "failed", raised(KeyError("gone")), 5)
    assert "KeyError: 'gone'" in ring.traceback
    assert ring.traceback_iteration == 5


def test_a_huge_traceback_is_cut_from_the_front_keeping_the_error_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recent, "TRACEBACK_CHARS", 200)
    ring = RecentIterations()
    ring.add_outcome(1.0, 2.0, 1.0, "failed", raised(ValueError("x" * 500 + " the end")), 1)
    text = ring.traceback or ""
    assert len(text) == 200
    assert text.startswith("…")
    assert text.rstrip().endswith("the end")


def test_every_change_moves_the_version_so_readers_can_skip_unchanged_loops() -> None:
    ring = RecentIterations()
    versions = [ring.version]
    ring.add(0.0, 1.0, 0.0, 0.0)
    versions.append(ring.version)
    ring.skipped += 1
    versions.append(ring.version)
    for _ in range(ITERATIONS_KEPT):  # a whole lap still moves it
        ring.add(0.0, 1.0, 0.0, 0.0)
    versions.append(ring.version)
    assert versions == sorted(set(versions))


def test_stop_recording_without_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="without start_recording"):
        recent.stop_recording()


# -- what the engine writes ------------------------------------------------------------


@pytest.fixture
def recording() -> Iterator[None]:
    recent.start_recording()
    try:
        yield
    finally:
        recent.stop_recording()


async def settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


@virtual_time()
async def test_each_iteration_is_written_with_its_duration_and_lateness_on_the_loops_clock() -> (
    None
):
    @loop(seconds=10)
    async def work() -> None:
        await asyncio.sleep(0.25)

    ring = recent.attach(work)
    work.start()
    await asyncio.sleep(25)  # iterations at 0, 10, 20
    shown = ring.recent()
    assert shown["outcomes"] == "ooo"
    assert shown["durations"] == [250.0, 250.0, 250.0]
    assert shown["lateness"] == [0.0, 0.0, 0.0]
    work.cancel()


@virtual_time()
async def test_an_iteration_late_behind_a_slow_one_shows_its_lateness() -> None:
    @loop(seconds=1)
    async def work() -> None:
        if work.current_loop == 0:
            await asyncio.sleep(2.5)  # the slots at 1 and 2 are missed, 3 runs on time

    ring = recent.attach(work)
    work.start()
    await asyncio.sleep(3.5)
    shown = ring.recent()
    assert shown["durations"][0] == 2500.0
    assert shown["lateness"][:2] == [0.0, 1500.0]  # due at 1, began at 2.5
    work.cancel()


@virtual_time()
async def test_retries_fail_and_cancel_are_told_apart_with_their_lateness_from_the_retry_time() -> (
    None
):
    attempts = []

    @loop(seconds=60)
    async def work() -> None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 1:
            raise ConnectionError("link down")
        if len(attempts) == 3:
            raise ValueError("bad data")

    work.add_exception_type(ConnectionError)
    ring = recent.attach(work)
    work.start()
    await asyncio.sleep(61)
    shown = ring.recent()
    assert shown["outcomes"] == "rof"  # retried, its retry succeeded, then a failure
    assert shown["lateness"][1] == 0.0  # the retry ran when it was due
    assert ring.traceback is not None
    assert "ValueError: bad data" in ring.traceback
    assert ring.traceback_iteration == 1


@virtual_time()
async def test_a_run_now_iteration_has_no_lateness_and_a_cancelled_one_is_marked() -> None:
    release = asyncio.Event()

    @loop(seconds=3600)
    async def work() -> None:
        if work.current_loop == 1:
            await release.wait()

    ring = recent.attach(work)
    work.start()
    await asyncio.sleep(100)
    work.tell(RunNow())  # iteration 1, asked at 100 s
    await settle()
    work.cancel()  # during the RunNow's iteration: cut
    await settle()
    shown = ring.recent()
    assert shown["outcomes"] == "oc"
    assert shown["lateness"] == [0.0, 0.0]
    assert ring.traceback is None  # a cancellation is not a failure


@virtual_time()
async def test_skipped_iterations_are_counted_missed_and_paused() -> None:
    @loop(seconds=1, missed="skip")
    async def work() -> None:
        if work.current_loop == 0:
            await asyncio.sleep(3.5)

    ring = recent.attach(work)
    work.start()
    await asyncio.sleep(4)
    missed = ring.skipped
    assert missed >= 1
    await work.ask(Pause())
    await asyncio.sleep(5)
    await work.ask(Resume())
    assert ring.skipped > missed
    work.cancel()


@virtual_time()
async def test_overlapping_iterations_are_written_too() -> None:
    @loop(seconds=1, overlap=3, count=3)
    async def work() -> None:
        await asyncio.sleep(2)

    ring = recent.attach(work)
    work.start()
    await asyncio.sleep(10)
    shown = ring.recent()
    assert shown["outcomes"] == "ooo"
    assert shown["durations"] == [2000.0, 2000.0, 2000.0]


@virtual_time()
async def test_a_loop_without_a_ring_writes_nothing_and_gets_none_while_it_succeeds(
    recording: None,
) -> None:
    @loop(seconds=1, count=3)
    async def work() -> None:
        pass

    work.start()
    await asyncio.sleep(5)
    assert recent.of(work) is None


@virtual_time()
async def test_while_recording_a_failing_loop_gets_a_ring_with_its_traceback(
    recording: None,
) -> None:
    failed = []

    @loop(seconds=1)
    async def work() -> None:
        if work.current_loop == 2 and not failed:
            failed.append(True)
            raise ConnectionError("link down")

    work.add_exception_type(ConnectionError)
    work.start()
    await asyncio.sleep(1.5)
    assert recent.of(work) is None  # two successes: nothing shows it, nothing failed
    await asyncio.sleep(2)
    ring = recent.of(work)
    assert ring is not None
    outcomes = ring.recent()["outcomes"]  # the failure, then the iterations after it
    assert outcomes.startswith("ro")
    assert set(outcomes[1:]) == {"o"}
    assert "ConnectionError: link down" in (ring.traceback or "")
    work.cancel()


@virtual_time()
async def test_without_recording_a_failure_gives_no_ring() -> None:
    @loop(seconds=1, count=1)
    async def work() -> None:
        raise ValueError("bad")

    work.start()
    await settle(10)
    assert recent.of(work) is None


@virtual_time()
async def test_a_ring_survives_a_restart() -> None:
    @loop(seconds=1)
    async def work() -> None:
        pass

    ring = recent.attach(work)
    work.start()
    await asyncio.sleep(1.5)
    work.restart()
    await asyncio.sleep(1.5)
    assert recent.of(work) is ring
    assert ring.count == 4
    work.cancel()


def test_of_any_other_actor_is_none() -> None:
    assert recent.of(object()) is None
    assert recent.of(None) is None


def test_a_ring_is_given_and_taken_per_loop() -> None:
    @loop(seconds=1)
    async def work() -> None:
        pass

    first = recent.attach(work)
    assert recent.attach(work) is first
    recent.detach(work)
    assert recent.of(work) is None


def test_every_loop_starts_without_a_ring_bound_copies_included() -> None:
    class Service:
        @loop(seconds=1)
        async def poll(self) -> None:
            pass

    service = Service()
    recent.attach(Service.poll)
    assert recent.of(service.poll) is None  # each instance's copy has its own
    assert isinstance(service.poll, Loop)


def test_recording_is_counted() -> None:
    seen = [recent.recording()]
    recent.start_recording()
    recent.start_recording()
    recent.stop_recording()
    seen.append(recent.recording())
    recent.stop_recording()
    seen.append(recent.recording())
    assert seen == [False, True, False]


@virtual_time()
async def test_while_recording_a_cancelled_iteration_gives_no_ring(recording: None) -> None:
    @loop(seconds=1)
    async def work() -> None:
        await asyncio.sleep(10)

    work.start()
    await asyncio.sleep(0.5)
    work.cancel()  # during the body
    await settle()
    assert recent.of(work) is None
