"""What a Loop keeps per run and per status, made cheaper without changing what users see.

* ``status()`` returns the same frozen snapshot while nothing it shows has
  changed, and a new one, equal to a freshly built one, after every change.
* A Loop's run record sets every field of the shared record and of its own.
* A message that wakes a sleeping loop leaves its timer armed: the loop
  still iterates exactly on its grid, and nothing is left armed at its end.
* ``loop()`` shares one schedule per interval, as given (``1`` and ``1.0``
  stay apart); children without keyword arguments share one empty mapping,
  and each start still gets its own arguments.
* A supervised child's exit future is made only when someone waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any

import pytest

from supervised_loops import (
    ActorStatus,
    ChangeInterval,
    Every,
    Loop,
    Pause,
    Restart,
    Resume,
    RunNow,
    State,
    Supervisor,
    child,
    loop,
)
from supervised_loops.core.runnable import RunRecord
from supervised_loops.loops.run import LoopRun
from supervised_loops.testing import virtual_time


class Flaky(Exception):
    """A transient error: whitelisted below, so the iteration is retried."""


def fresh_status(work: Loop[Any]) -> ActorStatus:
    """The status built from scratch, ignoring the snapshot kept by the last call."""
    work._shown_status = None
    return work.status()


# -- status() ------------------------------------------------------------------------------------


@virtual_time()
async def test_status_is_the_same_snapshot_while_nothing_it_shows_changes() -> None:
    @loop(hours=1)
    async def idle() -> None:
        pass

    idle.start()
    await asyncio.sleep(0)
    first = idle.status()
    assert idle.status() is first
    await asyncio.sleep(60)  # time passes; the next iteration is still the same moment
    assert idle.status() is first
    assert first.state is State.SLEEPING
    assert first.current_loop == 1
    idle.cancel()


@virtual_time()
async def test_status_after_each_change_equals_a_freshly_built_one() -> None:
    calls = 0
    gate, waiting = asyncio.Event(), asyncio.Event()

    @loop(seconds=10)
    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Flaky("once")
        if calls == 4:
            waiting.set()
            await gate.wait()

    work.add_exception_type(Flaky)
    seen: list[ActorStatus] = []

    def check() -> None:
        shown = work.status()
        assert shown == fresh_status(work)
        seen.append(shown)

    check()  # never started
    work.start()
    check()  # started, first step still to come
    await asyncio.sleep(0)
    check()  # sleeping after the first iteration
    work.tell(ChangeInterval(seconds=20))
    await asyncio.sleep(0)
    check()  # new schedule, new next iteration
    work.tell(Pause())
    check()  # paused at once
    work.tell(Resume())
    await asyncio.sleep(0)
    check()  # resumed
    work.tell(RunNow())
    await asyncio.sleep(0)
    check()  # the extra iteration raised Flaky: retrying, one failure, last error
    await waiting.wait()
    check()  # retried, then on to an iteration that waits in its body
    assert seen[-1].state is State.RUNNING
    gate.set()
    await asyncio.sleep(0)
    check()
    await work.ask(Restart())  # answered once the new run has begun
    check()  # restarted: one restart
    work.stop()
    check()  # stopping, shown at once
    await asyncio.sleep(0)
    check()  # stopped
    assert [s.state for s in seen[:3]] == [State.IDLE, State.STARTING, State.SLEEPING]
    assert seen[3].schedule == str(Every(seconds=20)) != seen[2].schedule
    assert seen[4].state is State.PAUSED
    assert seen[5].state is State.SLEEPING
    assert seen[6].state is State.RETRYING
    assert seen[6].failures == 1
    assert seen[6].last_error == "Flaky: once"
    assert seen[-3].restarts == 1
    assert seen[-2].state is State.STOPPING
    assert seen[-1].state is State.STOPPED
    # Each change gave a new snapshot: none was shown for a state it no longer had.
    assert all(a != b for a, b in itertools.pairwise(seen))


@virtual_time()
async def test_status_follows_a_change_of_name_or_of_the_error_object() -> None:
    @loop(seconds=1)
    async def named() -> None:
        raise ValueError("boom")

    @named.error
    async def quiet(error: BaseException) -> None:
        pass

    before = named.status()
    tree = Supervisor(child(named, name="renamed"), name="app")
    assert named.status().path == "app/renamed"
    assert named.status() is not before
    await tree.start()
    await asyncio.sleep(0)
    failed = named.status()
    assert failed.last_error == "ValueError: boom"
    assert failed.failures >= 1
    assert failed == fresh_status(named)
    await tree.stop()


@virtual_time()
async def test_a_ready_loop_paused_before_its_first_step_shows_paused_and_never_runs() -> None:
    ran: list[float] = []

    @loop(seconds=1)
    async def work() -> None:
        ran.append(asyncio.get_running_loop().time())

    work.start()  # no before_loop: ready at once, first step still to come
    work.pause()
    assert work.status().state is State.PAUSED
    await asyncio.sleep(5)
    assert ran == []
    assert work.status().state is State.PAUSED
    work.resume()
    await asyncio.sleep(0)
    assert ran == [5.0]
    work.cancel()


# -- the run record ------------------------------------------------------------------------------


def _slots(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())}


def test_a_loop_run_sets_every_field_of_the_shared_record_and_its_own() -> None:
    run = LoopRun(("a",), {"b": 1}, restart=True)
    assert _slots(RunRecord) <= _slots(LoopRun)
    unset = [name for name in _slots(LoopRun) if not hasattr(run, name)]
    assert unset == []
    shared = RunRecord(("a",), {"b": 1}, restart=True)
    for name in _slots(RunRecord):
        if name != "task":
            assert getattr(run, name) == getattr(shared, name), name
    assert run.state is State.STARTING
    assert run.args == ("a",)
    assert run.kwargs == {"b": 1}


def test_runs_without_keyword_arguments_share_one_empty_dict_that_nothing_changes() -> None:
    first, second = LoopRun((), {}, restart=False), LoopRun((), {}, restart=False)
    assert first.kwargs is second.kwargs
    assert first.kwargs == {}
    own = {"x": 1}
    assert LoopRun((), own, restart=False).kwargs is own


# -- the sleep timer -----------------------------------------------------------------------------


class Echo(Loop[Any]):
    async def handle_message(self, message: Any) -> Any:
        return message


@virtual_time()
async def test_messages_to_a_sleeping_loop_keep_its_timer_and_its_grid() -> None:
    event_loop = asyncio.get_running_loop()
    ran: list[float] = []

    async def body() -> None:
        ran.append(event_loop.time())

    work = Echo(body, schedule=Every(seconds=10), name="echo")
    work.start()
    await asyncio.sleep(0)
    run = work._run
    assert run is not None
    timer = run.timer
    assert timer is not None
    for moment in (3.0, 5.5, 9.0):
        await asyncio.sleep(moment - event_loop.time())
        assert await work.ask(moment) == moment
        assert run.timer is timer  # woken and asleep again: the same timer
    await asyncio.sleep(21 - event_loop.time())
    assert ran == [0.0, 10.0, 20.0]
    await work.ask(ChangeInterval(seconds=4))  # a new due time: a new timer
    assert run.timer is not timer
    assert timer.cancelled() is False
    await asyncio.sleep(24 - event_loop.time())
    assert ran == [0.0, 10.0, 20.0, 24.0]
    last = run.timer
    assert last is not None
    work.stop()
    await asyncio.sleep(0)
    assert not work.is_running()
    assert run.timer is None
    assert last.cancelled()


@virtual_time()
async def test_a_message_handled_past_the_due_time_runs_the_iteration_at_once() -> None:
    event_loop = asyncio.get_running_loop()
    ran: list[float] = []

    async def body() -> None:
        ran.append(event_loop.time())

    class Slow(Loop[Any]):
        async def handle_message(self, message: Any) -> Any:
            await asyncio.sleep(message)
            return message

    work = Slow(body, schedule=Every(seconds=10), name="slow")
    work.start()
    await asyncio.sleep(8)
    assert await work.ask(5.0) == 5.0  # handled from 8 to 13: the timer fired meanwhile
    await asyncio.sleep(0)
    assert ran == [0.0, 13.0]  # the iteration due at 10 ran as soon as the runner was free
    await asyncio.sleep(20.5 - event_loop.time())
    assert ran == [0.0, 13.0, 20.0]
    work.cancel()


@virtual_time()
async def test_a_pause_cancels_the_timer_of_the_sleep_it_interrupts() -> None:
    ran: list[float] = []

    @loop(seconds=10)
    async def work() -> None:
        ran.append(asyncio.get_running_loop().time())

    work.start()
    await asyncio.sleep(1)
    run = work._run
    assert run is not None
    assert run.timer is not None
    armed = run.timer
    work.pause()
    await asyncio.sleep(0)
    assert armed.cancelled()
    assert run.timer is None
    await asyncio.sleep(30)
    assert ran == [0.0]
    work.cancel()


# -- shared schedules and arguments ----------------------------------------------------------------


def test_loop_shares_one_schedule_per_interval_as_given() -> None:
    async def a() -> None:
        pass

    async def b() -> None:
        pass

    one, two = loop(seconds=5)(a), loop(seconds=5)(b)
    assert one.schedule is two.schedule
    as_float = loop(seconds=5.0)(a).schedule
    assert as_float == one.schedule
    assert repr(as_float) == repr(one.schedule)
    zero, negative_zero = loop(seconds=0.0)(a).schedule, loop(seconds=-0.0)(a).schedule
    assert repr(zero) == repr(Every(seconds=0.0))
    assert repr(negative_zero) == repr(Every(seconds=-0.0))
    assert loop(minutes=1)(a).schedule is not loop(seconds=60)(a).schedule


@pytest.mark.parametrize(
    ("value", "error"),
    [(-1, ValueError), (math.nan, ValueError), (math.inf, ValueError), ("5", TypeError)],
)
def test_bad_intervals_are_still_refused_and_never_kept(value: Any, error: type) -> None:
    async def body() -> None:
        pass

    for _ in range(2):  # the second time too: a refused interval is not cached
        with pytest.raises(error, match="'seconds'"):
            loop(seconds=value)(body)


@virtual_time()
async def test_children_without_keyword_arguments_share_nothing_they_can_change() -> None:
    received: list[dict[str, Any]] = []

    def make(name: str) -> Loop[Any]:
        async def body(**kwargs: Any) -> None:
            received.append(kwargs)

        return Loop(body, schedule=Every(hours=1), name=name)

    a, b, c = make("a"), make("b"), make("c")
    tree = Supervisor(child(a), child(b), child(c, kwargs={"x": 1}), name="app")
    await tree.start()
    await asyncio.sleep(0)
    assert received == [{}, {}, {"x": 1}]
    record_a, record_b = tree._by_name["a"], tree._by_name["b"]
    assert record_a.kwargs == {}
    assert record_a.kwargs is not record_b.kwargs
    record_a.kwargs["y"] = 2  # a copy: the child's arguments do not change
    record_a.set_args(z=3)
    await tree.restart_child("a")
    await tree.restart_child("b")
    await asyncio.sleep(0)
    assert received[-2:] == [{"z": 3}, {}]
    await tree.stop()


@virtual_time()
async def test_a_childs_exit_future_is_made_only_when_someone_waits() -> None:
    @loop(hours=1)
    async def idle() -> None:
        pass

    tree = Supervisor(idle, name="app")
    await tree.start()
    record = tree._by_actor[idle]
    assert not isinstance(record._ended, asyncio.Future)  # nobody waits: no future
    await tree.stop()
    assert record._has_exited()
    ended = record._exit  # made on demand, already resolved with the exit
    assert ended is not None
    assert ended.done()
    assert ended.result().requested
