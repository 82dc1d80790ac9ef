"""Ordering rules that keep a large tree responsive, in virtual time.

* **Synchronous readiness.** A child that is ready as soon as it is started
  (a Loop without ``before_loop``) reports it at once, so a supervisor of
  plain loops starts them all within a few event-loop cycles; a child with
  real setup still holds its next sibling back until that setup is done.
* **Forced shutdown in one pass.** Once a shutdown is forced (``Cancel`` of a
  supervisor, also in the middle of a graceful one), every child still
  running is cancelled at once, ``after_loop`` still runs for each (it is the
  flush), and the hard limits run side by side: the subtree takes the
  longest of them, not their sum.
* **Independent restarts.** Under ``one_for_one`` a child being restarted
  does not make the restarts of its siblings wait for its ``before_loop``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from supervised_loops import (
    ActorNotRunning,
    Cancel,
    ChildStartFailed,
    Every,
    Loop,
    Restart,
    State,
    Supervisor,
    child,
)
from supervised_loops.testing import virtual_time


class Boom(Exception):
    """An application error: never whitelisted, so the run fails."""


def plain(name: str, journal: list[str], *, seconds: float = 3600.0) -> Loop:
    async def body() -> None:
        journal.append(f"body {name}")

    body.__name__ = name
    return Loop(body, schedule=Every(seconds=seconds), name=name)


def with_setup(name: str, journal: list[str], setup: float) -> Loop:
    work = plain(name, journal)

    @work.before_loop
    async def before() -> None:
        journal.append(f"setup {name}")
        await asyncio.sleep(setup)
        journal.append(f"ready {name}")

    return work


class Cycles:
    """Counts event-loop cycles: a callback that puts itself back each cycle."""

    def __init__(self) -> None:
        self.count = 0
        self._running = True
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        if self._running:
            self.count += 1
            asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> int:
        self._running = False
        return self.count


# -- synchronous readiness ---------------------------------------------------------------


@virtual_time()
async def test_a_supervisor_of_a_hundred_plain_loops_starts_in_a_few_cycles() -> None:
    journal: list[str] = []
    tree = Supervisor(*(plain(f"l{i}", journal) for i in range(100)), name="wide")
    cycles = Cycles()
    await tree.start()
    spent = cycles.stop()
    assert spent <= 5  # two per child (200 and more) before readiness was synchronous
    await asyncio.sleep(0)
    assert journal == [f"body l{i}" for i in range(100)]  # first runs in start order
    await tree.stop()


@virtual_time()
async def test_a_sibling_never_starts_before_a_before_loop_has_finished() -> None:
    journal: list[str] = []
    tree = Supervisor(
        plain("a", journal),
        with_setup("b", journal, setup=5.0),
        plain("c", journal),
        plain("d", journal),
        name="ordered",
    )
    began = asyncio.get_running_loop().time()
    await tree.start()
    assert asyncio.get_running_loop().time() - began == 5.0
    await asyncio.sleep(0)
    assert journal == ["body a", "setup b", "ready b", "body b", "body c", "body d"]
    # a was ready at once and ran first; c and d waited for b's before_loop.
    await tree.stop()


@virtual_time()
async def test_a_nested_tree_of_plain_loops_starts_in_order_and_in_few_cycles() -> None:
    journal: list[str] = []
    groups = [
        Supervisor(*(plain(f"g{g}l{i}", journal) for i in range(10)), name=f"g{g}")
        for g in range(10)
    ]
    tree = Supervisor(*groups, name="root")
    cycles = Cycles()
    await tree.start()
    spent = cycles.stop()
    assert spent <= 4 * len(groups)  # a few per supervisor, none per plain loop
    await asyncio.sleep(0)
    assert journal == [f"body g{g}l{i}" for g in range(10) for i in range(10)]
    await tree.stop()


@virtual_time()
async def test_a_tree_of_plain_loops_is_ready_in_the_call_that_starts_it() -> None:
    journal: list[str] = []
    groups = [
        Supervisor(
            *(plain(f"g{g}m{m}l{i}", journal) for i in range(3)),
            name=f"g{g}m{m}",
        )
        for g in range(3)
        for m in range(3)
    ]
    middles = [Supervisor(*groups[g * 3 : g * 3 + 3], name=f"g{g}") for g in range(3)]
    tree = Supervisor(*middles, name="root")
    tree._launch_tree(restart=False)  # what start() does before it awaits readiness
    assert tree._run is not None
    assert tree._run.readiness is True  # known: every supervisor below was ready at once
    assert all(group.status().state is State.RUNNING for group in groups)
    assert journal == []  # ready, first steps still to come, in start order
    cycles = Cycles()
    await asyncio.sleep(0)
    assert cycles.stop() <= 1
    assert journal == [f"body g{g}m{m}l{i}" for g in range(3) for m in range(3) for i in range(3)]
    await tree.stop()


@virtual_time()
async def test_start_returns_once_the_tree_has_taken_its_first_steps() -> None:
    journal: list[str] = []
    tree = Supervisor(Supervisor(plain("a", journal), name="inner"), name="app")
    cycles = Cycles()
    await tree.start()
    assert cycles.stop() <= 1
    assert journal == ["body a"]
    assert tree.status().children[0].children[0].state is State.SLEEPING
    await tree.stop()


@virtual_time()
async def test_synchronous_readiness_never_starts_a_sibling_before_a_nested_before_loop() -> None:
    event_loop = asyncio.get_running_loop()
    journal: list[str] = []
    timed: list[tuple[float, str]] = []
    first = Supervisor(
        plain("a", journal), with_setup("b", journal, setup=5.0), plain("c", journal), name="first"
    )
    second = Supervisor(plain("d", journal), name="second")
    last = plain("e", journal)
    tree = Supervisor(first, second, last, name="root")

    async def watch() -> None:
        while not last.is_running():
            timed.append((event_loop.time(), f"second running={second.is_running()}"))
            await asyncio.sleep(1)

    watcher = asyncio.create_task(watch())
    await tree.start()
    assert event_loop.time() == 5.0
    await asyncio.sleep(0)
    await watcher
    assert journal == ["body a", "setup b", "ready b", "body b", "body c", "body d", "body e"]
    # Neither the next group nor the last loop started while b was setting up.
    assert all(note == "second running=False" for at, note in timed if at < 5.0)
    await tree.stop()


@virtual_time()
async def test_a_before_start_of_the_users_runs_before_any_child_starts() -> None:
    journal: list[str] = []

    class Prepared(Supervisor):
        async def before_start(self) -> None:
            journal.append("before_start")
            await asyncio.sleep(2)
            journal.append("prepared")

    tree = Prepared(plain("a", journal), plain("b", journal), name="prepared")
    task = tree._launch_tree(restart=False)
    assert tree._run is not None
    assert tree._run.readiness is None
    assert not tree._by_name["a"].is_running()
    assert await tree.wait_ready()
    await asyncio.sleep(0)
    assert journal == ["before_start", "prepared", "body a", "body b"]
    await tree.stop()
    assert task.done()


@virtual_time()
async def test_a_child_that_cannot_start_at_launch_fails_the_start_as_any() -> None:
    journal: list[str] = []
    a = plain("a", journal)
    busy = plain("busy", journal)
    busy.start()  # running on its own: a supervisor cannot start it
    tree = Supervisor(a, busy, plain("c", journal), name="app")
    with pytest.raises(ChildStartFailed) as failed:
        await tree.start()
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert "already running" in str(failed.value.__cause__)
    assert not a.is_running()
    assert not tree.is_running()
    assert "body c" not in journal  # nothing after it started
    busy.cancel()


@virtual_time()
async def test_a_restarted_supervisor_starts_no_child_before_its_after_stop_ended() -> None:
    event_loop = asyncio.get_running_loop()
    journal: list[str] = []

    class Slow(Supervisor):
        async def after_stop(self) -> None:
            journal.append("after_stop")
            await asyncio.sleep(2)
            journal.append("after_stop done")

    inner = Slow(plain("a", journal), name="inner")
    tree = Supervisor(inner, name="root")
    await tree.start()
    restarted = asyncio.create_task(inner.ask(Restart()))
    await asyncio.sleep(1)  # its child stopped, after_stop still running
    assert journal == ["body a", "after_stop"]
    await restarted  # answered once the new run is ready: in the call after the old run ended
    assert event_loop.time() == 2.0
    await asyncio.sleep(0)
    assert journal == ["body a", "after_stop", "after_stop done", "body a"]
    await tree.stop()


# -- forced shutdown in one pass ---------------------------------------------------------------


def flusher(name: str, journal: list[tuple[str, float, bool]], flush: float) -> Loop:
    async def body() -> None:
        pass

    body.__name__ = name
    work = Loop(body, schedule=Every(seconds=3600), name=name)

    @work.after_loop
    async def after() -> None:
        event_loop = asyncio.get_running_loop()
        began = event_loop.time()
        await asyncio.sleep(flush)
        journal.append((name, began, work.is_being_cancelled()))

    return work


def flushing_tree(journal: list[tuple[str, float, bool]], flush: float, **spec: Any) -> Supervisor:
    groups = [
        Supervisor(
            *(child(flusher(f"g{g}l{i}", journal, flush), **spec) for i in range(5)),
            name=f"g{g}",
        )
        for g in range(3)
    ]
    return Supervisor(*groups, name="root")


@virtual_time()
async def test_cancel_of_a_tree_cancels_every_loop_at_once_and_runs_every_flush() -> None:
    journal: list[tuple[str, float, bool]] = []
    tree = flushing_tree(journal, flush=1.0)
    await tree.start()
    event_loop = asyncio.get_running_loop()
    asked = event_loop.time()
    tree.tell(Cancel())
    await _ended(tree)
    took = event_loop.time() - asked
    assert sorted(name for name, _, _ in journal) == sorted(
        f"g{g}l{i}" for g in range(3) for i in range(5)
    )
    assert all(cancelled for _, _, cancelled in journal)
    assert {began for _, began, _ in journal} == {asked}  # every flush began at once
    assert took == 1.0  # one flush long, not fifteen


async def _ended(tree: Supervisor) -> None:
    task = tree.get_task()
    assert task is not None
    await asyncio.wait((task,))


@virtual_time()
async def test_a_cancel_during_a_graceful_shutdown_cancels_the_rest_at_once() -> None:
    journal: list[tuple[str, float, bool]] = []
    stuck: list[str] = []

    async def long_iteration() -> None:
        stuck.append("begun")
        await asyncio.sleep(1000)  # ignores Stop until its shutdown grace is over

    slow = Loop(long_iteration, schedule=Every(seconds=3600), name="slow")
    groups = [
        Supervisor(*(flusher(f"g{g}l{i}", journal, 1.0) for i in range(5)), name=f"g{g}")
        for g in range(2)
    ]
    tree = Supervisor(*groups, child(slow, shutdown=100.0), name="root")
    await tree.start()
    event_loop = asyncio.get_running_loop()
    stopping = asyncio.ensure_future(tree.stop())
    await asyncio.sleep(10)  # the graceful phase waits for "slow" (last started, first stopped)
    assert journal == []
    asked = event_loop.time()
    tree.tell(Cancel())  # forced: what a second signal or run()'s timeout does
    await stopping
    assert event_loop.time() - asked == 1.0
    assert len(journal) == 10
    assert {began for _, began, _ in journal} == {asked}


@virtual_time()
async def test_the_hard_limit_of_a_forced_shutdown_applies_to_the_subtree_once() -> None:
    journal: list[tuple[str, float, bool]] = []
    # Flushes of 10 s against a 2 s hard limit: each child is reported unkillable.
    tree = flushing_tree(journal, flush=10.0, cancel_timeout=2.0)
    await tree.start()
    event_loop = asyncio.get_running_loop()
    asked = event_loop.time()
    tree.tell(Cancel())
    await _ended(tree)
    took = event_loop.time() - asked
    assert took <= 2.0  # not 2 s per child in turn (30 s)
    assert journal == []  # every flush was still running at the limit, and was reported


# -- independent restarts ---------------------------------------------------------------------


@virtual_time()
async def test_one_for_one_restarts_proceed_while_a_siblings_before_loop_is_slow() -> None:
    event_loop = asyncio.get_running_loop()
    runs: dict[str, list[float]] = {"slow": [], "quick": []}
    failing = {"slow": True, "quick": True}

    def failer(name: str, setup_on_restart: float) -> Loop:
        async def body() -> None:
            runs[name].append(event_loop.time())
            if len(runs[name]) == 2 and failing[name]:
                failing[name] = False
                raise Boom(name)

        body.__name__ = name
        work = Loop(body, schedule=Every(seconds=1), name=name)
        starts = [0]

        @work.before_loop
        async def before() -> None:
            starts[0] += 1
            if starts[0] > 1:
                await asyncio.sleep(setup_on_restart)

        @work.error
        async def quiet(error: BaseException) -> None:
            pass

        return work

    slow, quick = failer("slow", 30.0), failer("quick", 0.0)
    tree = Supervisor(slow, quick, max_restarts=10, max_seconds=60, name="pool")
    began = event_loop.time()
    await tree.start()
    await asyncio.sleep(5)
    # Both failed at 1 s; "slow" is still in its 30 s before_loop, "quick" runs again.
    assert [t - began for t in runs["slow"]] == [0.0, 1.0]
    assert [t - began for t in runs["quick"]][:3] == [0.0, 1.0, 1.0]
    await tree.stop()


# -- graceful stop of sleeping loops -------------------------------------------------------------


@virtual_time()
async def test_stopping_a_hundred_sleeping_loops_takes_a_few_cycles_and_keeps_reverse_order() -> (
    None
):
    journal: list[str] = []
    loops = [plain(f"l{i}", journal) for i in range(100)]
    tree = Supervisor(*loops, name="wide")
    await tree.start()
    await asyncio.sleep(1)
    ended: list[str] = []
    for work in loops:
        task = work.get_task()
        assert task is not None
        task.add_done_callback(lambda _task, name=work.name: ended.append(name))
    cycles = Cycles()
    await tree.stop()
    spent = cycles.stop()
    assert spent <= 8  # a few for the lot: nothing of theirs runs on the way out
    assert ended == [f"l{i}" for i in reversed(range(100))]


@virtual_time()
async def test_a_loop_with_after_loop_still_waits_for_the_later_siblings_to_end() -> None:
    journal: list[str] = []
    order: list[str] = []
    first = plain("first", journal)

    @first.after_loop
    async def flush() -> None:
        order.append(f"flush first, later ones running: {[w.name for w in rest if w.is_running()]}")

    rest = [plain(f"l{i}", journal) for i in range(5)]
    tree = Supervisor(first, *rest, name="mixed")
    await tree.start()
    await tree.stop()
    assert order == ["flush first, later ones running: []"]


@virtual_time()
async def test_a_restart_sent_to_a_child_during_its_supervisors_shutdown_starts_nothing() -> None:
    # Found by bench/bench_chaos.py under overload: a child already stopped by
    # a shutdown still in progress, restarted by a message, ran outside the tree.
    journal: list[str] = []
    slow = plain("slow", journal)

    @slow.after_loop
    async def flush() -> None:
        await asyncio.sleep(5)

    quick = plain("quick", journal)
    tree = Supervisor(slow, quick, name="tree")
    await tree.start()
    stopping = asyncio.ensure_future(tree.stop())
    await asyncio.sleep(1)  # quick has stopped; slow is flushing
    assert not quick.is_running()
    with pytest.raises(ActorNotRunning):
        await quick.ask(Restart())
    await stopping
    assert not quick.is_running()
    assert not tree.is_running()
