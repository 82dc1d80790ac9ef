"""Lifecycle defects of the first version, each pinned by a test.

The first four were found in a chaos run; they came from the run machinery
being written three times (loop, worker, supervisor) and the copies drifting
apart. The others were found while making it one. Each test states the
behaviour a user relies on.
"""

from __future__ import annotations

import asyncio

import pytest
from test_supervisor_support import Boom, Journal, Probe, settle

from supervised_loops import (
    ExponentialBackoff,
    Restart,
    RestartIntensityExceeded,
    State,
    Stop,
    Supervisor,
    child,
    loop,
    worker,
)
from supervised_loops.testing import virtual_time


@virtual_time()
async def test_a_loop_revived_by_its_own_restart_message_and_then_failing_is_restarted() -> None:
    # `ctl stop app/a` then `ctl restart app/a`, and later the body fails.
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(child(a.loop, restart="permanent"), name="app")
    await tree.start()
    await a.loop.ask(Stop())
    await settle()
    assert not a.loop.is_running()  # asked to stop: the supervisor leaves it down
    await a.loop.ask(Restart())
    assert a.loop.is_running()
    journal.take()
    a.fail_next(Boom("after the revival"))
    a.loop.run_now()
    await asyncio.sleep(0.1)
    assert journal.take() == ["fail a", "stop a", "start a"]
    assert a.loop.is_running()
    assert tree.child("a").failure_count == 1
    assert tree.child("a").restart_count == 1
    await tree.stop()


@virtual_time()
async def test_a_loop_restarted_while_its_supervisor_is_busy_is_restarted_on_failure() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    busy = asyncio.Event()

    class Slow(Supervisor):
        async def on_child_exit(self, child: object, exit: object) -> None:
            await busy.wait()  # the supervisor is busy in a hook

    b = Probe(journal, "b", count=1)
    tree = Slow(child(a.loop), child(b.loop, restart="temporary"), name="app")
    await tree.start()
    await asyncio.sleep(1.5)  # b reaches its count: the supervisor sits in on_child_exit
    a.loop.restart()  # while the supervisor is busy...
    await settle()
    a.fail_next(Boom("at once"))  # ...and the new run fails before it is free again
    a.loop.run_now()
    await settle()
    assert not a.loop.is_running()
    journal.take()
    busy.set()
    await asyncio.sleep(0.1)
    assert journal.take() == ["start a"]
    assert a.loop.is_running()
    assert tree.child("a").failure_count == 1
    await tree.stop()


@virtual_time()
async def test_a_permanent_worker_raising_an_unrequested_cancelled_error_is_restarted() -> None:
    starts = 0

    async def consume() -> None:
        nonlocal starts
        starts += 1
        if starts == 1:
            raise asyncio.CancelledError  # a library's, nobody asked for it
        await asyncio.sleep(3600)

    w = worker(consume)
    tree = Supervisor(child(w, restart="permanent"), name="app")
    await tree.start()
    await settle()
    assert starts == 2
    assert w.is_running()
    assert tree.child("consume").failure_count == 1
    assert w.status().failures == 1
    await tree.stop()


@virtual_time()
async def test_a_worker_failing_with_the_same_exception_instance_counts_every_failure() -> None:
    error = OSError("cached")  # whitelisted: retried in the same run
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise error

    w = worker(flaky, backoff=ExponentialBackoff(base=0.5, jitter=False))
    task = w.start()
    await task
    assert calls == 4
    assert w.status().failures == 3


@virtual_time()
async def test_stop_during_an_overlapping_loops_retry_backoff_ends_at_once() -> None:
    calls = 0

    @loop(seconds=3600, overlap=True, backoff=ExponentialBackoff(base=500, jitter=False))
    async def poll() -> None:
        nonlocal calls
        calls += 1
        raise OSError("transient")

    began = asyncio.get_running_loop().time()
    task = poll.start()
    await asyncio.sleep(1)  # the first iteration failed; its retry waits 1000 s
    assert calls == 1
    assert poll.status().state is not State.STOPPED
    await poll.ask(Stop(), timeout=5)
    await asyncio.wait((task,))
    assert asyncio.get_running_loop().time() - began < 5
    assert calls == 1  # the abandoned retry never calls the body again


@virtual_time()
async def test_failures_of_a_revived_loop_count_toward_the_restart_intensity() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(child(a.loop, restart="permanent"), max_restarts=1, name="app")
    await tree.start()
    await a.loop.ask(Stop())
    await a.loop.ask(Restart())  # revived by its own Restart
    a.fail_always(Boom("again and again"))
    await asyncio.sleep(3)
    with pytest.raises(RestartIntensityExceeded):
        async with asyncio.timeout(60):  # virtual seconds: a dropped failure fails fast
            await tree.wait()
    assert tree.child("a").failure_count == 2


@virtual_time()
async def test_a_failure_superseded_by_a_restart_message_is_still_counted_and_told() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    busy = asyncio.Event()
    told: list[BaseException] = []

    class Slow(Supervisor):
        async def on_child_exit(self, child: object, exit: object) -> None:
            await busy.wait()

        async def on_child_failure(self, child: object, error: BaseException) -> None:
            told.append(error)

    b = Probe(journal, "b", count=1)
    tree = Slow(child(a.loop), child(b.loop, restart="temporary"), name="app")
    await tree.start()
    await asyncio.sleep(1.5)  # the supervisor sits in on_child_exit for b
    error = Boom("failed while the supervisor was busy")
    a.fail_next(error)
    a.loop.run_now()
    await settle()
    a.loop.restart()  # revived before the supervisor saw the failure
    await settle()
    busy.set()
    await settle()
    assert told == [error]
    assert tree.child("a").failure_count == 1
    assert tree.child("a").restart_count == 0  # the loop's own restart, not the supervisor's
    assert a.loop.is_running()
    await tree.stop()


@virtual_time()
async def test_a_child_restarting_itself_while_it_is_terminated_is_terminated_too() -> None:
    journal = Journal()
    a = Probe(journal, "a")

    @a.loop.after_loop
    async def slow_after() -> None:
        journal.note("stop a")
        await asyncio.sleep(1)  # the supervisor waits for this run to end...

    tree = Supervisor(child(a.loop), name="app")
    await tree.start()
    stopping = asyncio.ensure_future(tree.terminate_child("a"))
    await asyncio.sleep(0.5)
    a.loop.tell(Restart())  # ...and the loop is restarted meanwhile
    await stopping
    assert not a.loop.is_running()
    await tree.stop()
