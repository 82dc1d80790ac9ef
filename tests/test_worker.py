"""Workers: a plain long-running coroutine as a supervised actor.

Returning is a normal exit, raising a failure (whitelisted errors are
retried with backoff, like a Loop's iteration); readiness is at once or on
``set_ready()``; ``Stop`` cancels at once unless the worker cooperates.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from test_supervisor_support import Boom, Journal, Probe, exactly

from supervised_loops import (
    Ack,
    Cancel,
    Child,
    ExponentialBackoff,
    GetStatus,
    Pause,
    Restart,
    State,
    Stop,
    Supervisor,
    UnhandledMessage,
    Worker,
    child,
    current_worker,
    dead_letters,
    worker,
)
from supervised_loops.events import CutShort
from supervised_loops.testing import virtual_time

EXACT = ExponentialBackoff(jitter=False)


def now() -> float:
    return asyncio.get_running_loop().time()


async def forever(journal: Journal, name: str = "w") -> None:
    journal.note(f"begin {name}")
    try:
        await asyncio.sleep(3600)
    finally:
        journal.note(f"end {name}")


def test_worker_validates_its_arguments() -> None:
    def plain() -> None:
        pass

    with pytest.raises(TypeError, match=r"^'function' must be a coroutine function"):
        worker(plain)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=exactly("'signals_ready' must be a bool (got 1)")):
        worker(forever, signals_ready=1)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=exactly("'backoff' must be an ExponentialBackoff or None (got 2)")
    ):
        worker(forever, backoff=2)  # type: ignore[arg-type]


def test_worker_is_named_after_its_function_unless_told() -> None:
    assert worker(forever).name == "forever"
    assert worker(forever, name="consumer").name == "consumer"
    assert isinstance(worker(forever), Worker)


def test_current_worker_outside_a_worker_is_an_error() -> None:
    with pytest.raises(
        RuntimeError, match=exactly("current_worker() must be called inside a worker's coroutine")
    ):
        current_worker()


@virtual_time()
async def test_a_returning_coroutine_is_a_normal_exit() -> None:
    async def job(result: list[int], value: int) -> None:
        await asyncio.sleep(1)
        result.append(value)

    result: list[int] = []
    w = worker(job, result, 7)
    task = w.start()
    assert await w.wait_ready() is True  # ready at once by default
    await task
    assert result == [7]
    assert w.status().state is State.STOPPED
    assert not w.is_running()
    assert not w.failed()


@virtual_time()
async def test_the_next_sibling_starts_only_once_the_worker_signals_ready() -> None:
    journal = Journal()

    async def connect() -> None:
        await asyncio.sleep(2)
        journal.note(f"ready at {now()}")
        current_worker().set_ready()
        await asyncio.sleep(3600)

    after = Probe(journal, "after")
    tree = Supervisor(child(worker(connect, signals_ready=True)), child(after.loop), name="app")
    await tree.start()
    assert journal.take() == ["ready at 2.0", "start after"]
    assert tree.lookup("connect").status().state is State.RUNNING
    await tree.stop()


@virtual_time()
async def test_stop_cancels_a_plain_worker_at_once_and_ends_it_normally() -> None:
    journal = Journal()
    w = worker(forever, journal)
    tree = Supervisor(w, name="app")
    await tree.start()
    await asyncio.sleep(1)
    await tree.stop()
    assert now() == 1.0
    assert journal.take() == ["begin w", "end w"]
    assert w.status().state is State.STOPPED


@virtual_time()
async def test_a_cooperative_worker_returns_on_stop_and_is_cancelled_after_its_grace() -> None:
    journal = Journal()

    async def polite() -> None:
        me = current_worker()
        while not me.stopping:
            await me.until_stopping()
        journal.note(f"returned at {now()}")

    async def deaf() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            journal.note(f"cancelled at {now()}")
            raise

    tree = Supervisor(
        child(worker(deaf, cooperative_stop=True), shutdown=2.0),
        child(worker(polite, cooperative_stop=True)),
        name="app",
    )
    await tree.start()
    await asyncio.sleep(1)
    await tree.stop()
    assert journal.take() == ["returned at 1.0", "cancelled at 3.0"]
    assert tree.lookup("deaf").status().state is State.CANCELLED


@virtual_time()
async def test_cancel_ends_a_worker_cancelled() -> None:
    journal = Journal()
    w = worker(forever, journal)
    task = w.start()
    await asyncio.sleep(0)
    assert await w.ask(Cancel()) == Ack(Cancel(), 0, None)
    assert task.cancelled()
    assert w.status().state is State.CANCELLED


@virtual_time()
async def test_whitelisted_errors_are_retried_with_backoff_in_the_same_run() -> None:
    calls: list[float] = []

    async def flaky() -> None:
        calls.append(now())
        if len(calls) < 4:
            raise ConnectionError("reset")
        await asyncio.sleep(3600)

    w = worker(flaky, backoff=EXACT)
    w.start()
    await asyncio.sleep(20)
    assert calls == [0.0, 2.0, 6.0, 14.0]
    assert w.status().failures == 3
    assert w.status().restarts == 0
    assert w.status().last_error == "ConnectionError: reset"
    w.stop()
    await asyncio.sleep(0)


@virtual_time()
async def test_the_supervisor_supplies_the_backoff_and_may_refuse_a_retry() -> None:
    calls: list[float] = []

    class Picky(Supervisor):
        backoff = ExponentialBackoff(base=0.5, jitter=False)

        def should_retry(self, child: Child, error: BaseException, attempt: int) -> bool | None:
            return None if attempt < 3 else False

    async def flaky() -> None:
        calls.append(now())
        raise TimeoutError("slow")

    tree = Picky(child(worker(flaky), restart="temporary"), name="app")
    await tree.start()
    await asyncio.sleep(10)
    assert calls == [0.0, 1.0, 3.0]  # two retries (1 s, 2 s), the third failure escalates
    assert tree.which_children() == []
    await tree.stop()


@virtual_time()
async def test_stop_during_a_retry_wait_ends_the_worker_normally() -> None:
    async def flaky() -> None:
        raise ConnectionError("reset")

    w = worker(flaky, backoff=EXACT)
    task = w.start()
    await asyncio.sleep(1)
    assert w.status().state is State.RETRYING
    w.stop()
    await task
    assert w.status().state is State.STOPPED
    assert not w.failed()


@virtual_time()
async def test_a_failure_is_logged_once_with_the_path_and_the_supervisor_restarts_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "supervised_loops")
    runs: list[float] = []

    async def fragile() -> None:
        runs.append(now())
        await asyncio.sleep(1)
        if len(runs) == 1:
            raise Boom("bad state")
        await asyncio.sleep(3600)

    tree = Supervisor(worker(fragile), name="app")
    await tree.start()
    await asyncio.sleep(2)
    assert runs == [0.0, 1.0]
    assert [(r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        ("worker 'app/fragile' failed", True)
    ]
    status = tree.lookup("fragile").status()
    assert (status.kind, status.failures, status.restarts) == ("worker", 1, 1)
    await tree.stop()


@virtual_time()
async def test_an_unrequested_cancelled_error_inside_is_a_failure() -> None:
    async def confused() -> None:
        raise asyncio.CancelledError

    w = worker(confused)
    task = w.start()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert w.failed()
    assert w.status().state is State.FAILED


@virtual_time()
async def test_a_worker_refuses_messages_other_than_its_control_messages() -> None:
    journal = Journal()
    w = worker(forever, journal)
    w.start()
    await asyncio.sleep(0)
    with pytest.raises(UnhandledMessage):
        await w.ask("hello")
    with pytest.raises(UnhandledMessage):
        await w.ask(Pause())
    w.tell("hello")
    assert dead_letters.count == 3
    status = await w.ask(GetStatus())
    assert status.state is State.RUNNING
    w.stop()
    await asyncio.sleep(0)


@virtual_time()
async def test_restart_message_starts_again_with_new_arguments() -> None:
    seen: list[Any] = []

    async def job(value: int) -> None:
        seen.append(value)
        await asyncio.sleep(3600)

    w = worker(job, 1)
    w.start()
    await asyncio.sleep(0)
    ack = await w.ask(Restart((2,)))
    assert ack.message == Restart((2,))
    assert seen == [1, 2]
    assert w.status().restarts == 1
    w.stop()
    await asyncio.sleep(0)


@virtual_time()
async def test_start_while_running_is_refused() -> None:
    journal = Journal()
    w = worker(forever, journal)
    w.start()
    await asyncio.sleep(0)
    with pytest.raises(
        RuntimeError, match=exactly("worker 'forever' is already running; stop() it first")
    ):
        w.start()
    w.tell(Stop())
    await asyncio.sleep(0)
    w.start()  # accepted once the previous run is ending
    await asyncio.sleep(0)
    assert journal.take() == ["begin w", "end w", "begin w"]
    w.stop()
    await asyncio.sleep(0)


@virtual_time()
async def test_a_worker_finishing_its_work_after_its_stop_is_cut_only_at_the_hard_limit() -> None:
    # Stop cancels a plain worker; what it runs after catching that
    # CancelledError is its clean-up, which runs to its end like a Loop's
    # after_loop: the Cancel that follows its grace does not interrupt it,
    # the hard limit does, and says so (a CutShort event).
    journal = Journal()

    async def finishes_its_work() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            journal.note(f"stop swallowed at {now()}")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            journal.note(f"cancelled at {now()}")
            raise

    w = worker(finishes_its_work)
    tree = Supervisor(child(w, shutdown=2.0, cancel_timeout=3.0), name="app")
    events = tree.events()
    await tree.start()
    await asyncio.sleep(1)
    await tree.stop()
    assert now() == 6.0
    assert journal.take() == ["stop swallowed at 1.0", "cancelled at 6.0"]
    assert not w.is_running()
    assert w.status().state is State.CANCELLED
    cut = [event async for event in _until_closed(events) if isinstance(event, CutShort)]
    assert [(event.path, event.waited) for event in cut] == [("app/finishes_its_work", 5.0)]
    assert tree._cut_short_count() == 1


async def _until_closed(subscription: Any) -> Any:
    subscription.close()
    async for event in subscription:
        yield event


@virtual_time()
async def test_a_restart_waits_for_the_clean_up_of_a_worker_that_caught_its_stop() -> None:
    # Restart does not cut the clean-up short (it runs to its end, as a
    # Loop's after_loop does); the new run begins once it has ended.
    journal = Journal()

    async def finishes_its_work() -> None:
        journal.note(f"begin at {now()}")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            journal.note(f"stop swallowed at {now()}")
        await asyncio.sleep(5)
        journal.note(f"work finished at {now()}")

    w = worker(finishes_its_work)
    w.start()
    await asyncio.sleep(1)
    w.stop()
    await asyncio.sleep(1)
    ack = await w.ask(Restart())
    assert ack == Ack(Restart(), 0, None)
    assert now() == 6.0
    assert journal.take() == [
        "begin at 0.0",
        "stop swallowed at 1.0",
        "work finished at 6.0",
        "begin at 6.0",
    ]
    assert w.is_running()
    w.cancel()
    await asyncio.sleep(0)


@virtual_time()
async def test_a_run_still_ending_after_a_restart_reads_its_own_stop_flag() -> None:
    # The Restart has already queued the next run; the old coroutine asking
    # current_worker().stopping must see its own run (asked to stop), not the
    # next one (which is not).
    seen: list[bool] = []

    async def work() -> None:
        me = current_worker()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append(me.stopping)

    w = worker(work)
    w.start()
    await asyncio.sleep(1)
    await w.ask(Restart())
    assert seen == [True]
    assert w.is_running()
    assert not w.stopping  # outside the coroutine: the latest run
    w.cancel()
    await asyncio.sleep(0)
