"""A forced shutdown in one pass over the subtree, and restarts in two event-loop cycles.

In virtual time a cycle costs nothing, so what matters under a saturated
event loop (each cycle can take half a second there) is counted here in
cycles, with a callback that puts itself back each cycle for a bounded
number of them (a callback always ready would keep virtual time still).

* **One pass.** A ``Cancel`` of a supervisor cancels every run of its whole
  subtree in the call that sends it: every ``after_loop`` below begins at its
  task's next step, whatever the depth, and a tree whose clean-ups do not
  wait ends within that cycle. A forced shutdown (``run()``'s second signal
  or its ``shutdown_timeout``) does the same and cuts the clean-ups already
  in progress.
* **The hard limit applies once.** The ``cancel_timeout`` of every child
  below counts from that pass: a supervisor busy waiting for one child's
  clean-up does not hold its other children's ``Cancel`` back, so the
  subtree ends by the largest limit, and every clean-up still running then
  is cut short (``CutShort``), together.
* **Restarts.** A run reports its end from its task's last step: the
  supervisor acts in the next cycle and the new run's first step reaches
  its body, two cycles after the raise.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from supervised_loops import Cancel, Every, Loop, Supervisor, child, worker
from supervised_loops.events import ActorFailed, CutShort, Event, Subscription
from supervised_loops.service.runner import serve
from supervised_loops.testing import VirtualClock, virtual_time


class Boom(Exception):
    """An application error: never whitelisted, so the run fails."""


class Cycles:
    """Counts event-loop cycles from now, for at most ``limit`` of them."""

    def __init__(self, limit: int = 50, watch: Callable[[], bool] | None = None) -> None:
        self.count = 0
        self.watched = 0  # ticks at which ``watch()`` was still true
        self._watch = watch
        self._left = limit
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.count += 1
        if self._watch is not None and self._watch():
            self.watched += 1
        self._left -= 1
        if self._left > 0:
            asyncio.get_running_loop().call_soon(self._tick)


Journal = list[tuple[str, float, int]]  # (loop, when its after_loop began, cycle then)


def flusher(name: str, journal: Journal, flush: float, clock: list[Cycles]) -> Loop:
    """A loop asleep between hourly iterations whose ``after_loop`` takes ``flush`` seconds."""

    async def body() -> None:
        pass

    body.__name__ = name
    work = Loop(body, schedule=Every(seconds=3600), name=name)

    @work.after_loop
    async def after() -> None:
        moment = asyncio.get_running_loop().time()
        journal.append((name, moment, clock[0].count if clock else -1))
        if flush:
            await asyncio.sleep(flush)

    return work


def deep_tree(journal: Journal, clock: list[Cycles], flush: float = 0.0) -> Supervisor:
    """root > 3 groups > 2 teams > 3 loops: 18 loops, three supervisor levels."""
    groups = [
        Supervisor(
            *(
                Supervisor(
                    *(flusher(f"g{g}t{t}l{i}", journal, flush, clock) for i in range(3)),
                    name=f"t{t}",
                )
                for t in range(2)
            ),
            name=f"g{g}",
        )
        for g in range(3)
    ]
    return Supervisor(*groups, name="root")


async def _ended(tree: Supervisor) -> None:
    task = tree.get_task()
    assert task is not None
    await asyncio.wait((task,))


# -- one pass -----------------------------------------------------------------------------------


@virtual_time()
async def test_cancel_of_a_deep_tree_begins_every_after_loop_in_the_next_cycle() -> None:
    journal: Journal = []
    clock: list[Cycles] = []
    tree = deep_tree(journal, clock)
    await tree.start()
    await asyncio.sleep(1)
    tree.tell(Cancel())
    clock.append(Cycles(watch=tree.is_running))  # queued after every task the Cancel woke
    await _ended(tree)
    assert sorted(name for name, _, _ in journal) == sorted(
        f"g{g}t{t}l{i}" for g in range(3) for t in range(2) for i in range(3)
    )
    # Every after_loop began before the counter's first tick: in the cycle
    # right after the Cancel, three supervisor levels down (one level per
    # cycle before: the loops of the deepest level began three cycles later).
    assert {cycle for _, _, cycle in journal} == {0}
    # Their clean-ups awaited nothing: the whole tree ended in that cycle,
    # before the first tick (each supervisor is woken after its children,
    # which have reported by then).
    assert clock[0].watched == 0


@virtual_time()
async def test_a_forced_shutdown_during_a_graceful_one_cancels_the_rest_in_one_pass() -> None:
    journal: Journal = []
    clock: list[Cycles] = []
    tree = deep_tree(journal, clock, flush=2.0)
    await tree.start()
    event_loop = asyncio.get_running_loop()
    stopping = asyncio.ensure_future(tree.stop())
    await asyncio.sleep(1)  # the graceful part: g2t1l2, the last started, is flushing
    assert [name for name, _, _ in journal] == ["g2t1l2"]
    tree._force_cancel()  # what run()'s second signal and its shutdown_timeout do
    clock.append(Cycles())
    forced_at = event_loop.time()
    await stopping
    began = {name: (moment, cycle) for name, moment, cycle in journal}
    assert began.pop("g2t1l2") == (0.0, -1)  # cut short at once: it was in progress
    assert len(began) == 17
    assert set(began.values()) == {(forced_at, 0)}  # the rest: all in the next cycle
    assert event_loop.time() - forced_at == 2.0  # their flushes ran, side by side


# -- the hard limit, once for the whole subtree ----------------------------------------------


def limited_tree(
    journal: Journal, flushes: dict[str, float], sub_grace: float | str = "infinity"
) -> tuple[Supervisor, Supervisor]:
    """root > sub > a, b, c: each loop has a 1 s grace and a 4 s hard limit."""
    clock: list[Cycles] = []
    sub = Supervisor(
        *(
            child(flusher(name, journal, flush, clock), shutdown=1.0, cancel_timeout=4.0)
            for name, flush in flushes.items()
        ),
        name="sub",
    )
    return Supervisor(child(sub, shutdown=sub_grace), name="root"), sub


@virtual_time()
async def test_a_cancel_reaches_every_child_while_a_sibling_is_at_its_hard_limit() -> None:
    journal: Journal = []
    tree, _ = limited_tree(journal, {"a": 10.0, "b": 10.0, "c": 10.0})
    await tree.start()
    events = tree.events()
    event_loop = asyncio.get_running_loop()
    began = event_loop.time()
    stopping = asyncio.ensure_future(tree.stop())
    # Graceful: sub stops c first; c's after_loop begins at once and outlasts
    # its 1 s grace, so sub waits in c's cancel phase, until its limit at 5 s.
    await asyncio.sleep(2)
    tree.tell(Cancel())  # a and b are cancelled now, not when c is done
    await stopping
    assert [(name, moment - began) for name, moment, _ in journal] == [
        ("c", 0.0),
        ("b", 2.0),
        ("a", 2.0),
    ]
    # c was cut at its own limit (1 + 4 s); a and b together at theirs (2 + 4 s),
    # not one after the other, nor 4 s after c's end.
    assert event_loop.time() - began == 6.0
    cuts = [(event.path, event.at) for event in await _drain(events) if isinstance(event, CutShort)]
    assert [path for path, _ in cuts] == ["root/sub/c", "root/sub/b", "root/sub/a"]
    assert cuts[1][1] == cuts[2][1]
    assert tree._cut_short_count() == 3  # what run() turns into exit status 1


@virtual_time()
async def test_a_supervisor_whose_grace_is_spent_has_its_whole_subtree_cancelled_at_once() -> None:
    journal: Journal = []
    tree, _ = limited_tree(journal, {"a": 10.0, "b": 10.0, "c": 10.0}, sub_grace=2.0)
    await tree.start()
    event_loop = asyncio.get_running_loop()
    began = event_loop.time()
    await tree.stop()  # graceful: sub has 2 s, and is busy with c's clean-up then
    assert [(name, moment - began) for name, moment, _ in journal] == [
        ("c", 0.0),
        ("b", 2.0),  # root's Cancel of sub, when sub's grace was spent, reached them
        ("a", 2.0),
    ]
    assert event_loop.time() - began == 6.0  # their limits counted from that Cancel


@virtual_time()
async def test_a_forced_shutdown_cuts_the_clean_ups_in_progress_and_lets_the_others_run() -> None:
    journal: Journal = []
    tree, _ = limited_tree(journal, {"a": 10.0, "b": 3.0, "c": 10.0})
    await tree.start()
    events = tree.events()
    event_loop = asyncio.get_running_loop()
    began = event_loop.time()
    stopping = asyncio.ensure_future(tree.stop())
    await asyncio.sleep(2)  # c is flushing (graceful), a and b not stopped yet
    tree._force_cancel()
    await stopping
    assert [(name, moment - began) for name, moment, _ in journal] == [
        ("c", 0.0),
        ("b", 2.0),
        ("a", 2.0),
    ]
    published = await _drain(events)
    cuts = {event.path: event.waited for event in published if isinstance(event, CutShort)}
    # c, in progress, cut at once; b's 3 s flush ran to its end; a's was cut
    # at its hard limit, 4 s after the forced pass.
    assert cuts == {"root/sub/c": 2.0, "root/sub/a": 4.0}
    assert event_loop.time() - began == 6.0


async def _drain(subscription: Subscription) -> list[Event]:
    """The events published so far (the subscription is closed)."""
    subscription.close()
    return [event async for event in subscription]


@pytest.mark.usefixtures("default_signal_handlers")
@virtual_time()
async def test_serves_second_signal_ends_a_nested_tree_within_one_hard_limit() -> None:
    journal: Journal = []
    clock: list[Cycles] = []
    groups = [
        Supervisor(
            *(
                child(flusher(f"g{g}l{i}", journal, 20.0, clock), shutdown=100.0, cancel_timeout=8)
                for i in range(3)
            ),
            name=f"g{g}",
        )
        for g in range(2)
    ]
    tree = Supervisor(*groups, name="app")
    event_loop = asyncio.get_running_loop()

    def signal_twice(_root: Supervisor) -> None:
        event_loop.call_later(15, _kill_self(signal.SIGINT))
        event_loop.call_later(25, _kill_self(signal.SIGINT))  # shutdown_timeout: 30 s

    began = event_loop.time()
    assert await serve(tree, on_started=signal_twice) == 1  # forced: not a clean stop
    moments = {name: moment - began for name, moment, _ in journal}
    # The graceful part reached g1l2 (its flush holds the shutdown); the
    # second signal cut it and started every other flush at once; those were
    # cut together at their 8 s limit: 33 s, not 8 s per loop in turn.
    rest = ("g1l1", "g1l0", "g0l2", "g0l1", "g0l0")
    assert moments == {"g1l2": 15.0} | dict.fromkeys(rest, 25.0)
    assert event_loop.time() - began == 33.0


@pytest.mark.usefixtures("default_signal_handlers")
def test_the_shutdown_budget_counts_from_the_signal_even_when_a_cycle_is_slow() -> None:
    clock = VirtualClock()

    async def main() -> tuple[int, float]:
        journal: Journal = []
        tree = Supervisor(flusher("slow", journal, 3600.0, []), name="app")
        event_loop = asyncio.get_running_loop()

        def saturated_cycle() -> None:
            os.kill(os.getpid(), signal.SIGINT)  # handled at once; on_signal is queued
            clock._jump(3.0)  # the rest of this cycle takes 3 s, as on a saturated loop

        def signal_in_a_slow_cycle(_root: Supervisor) -> None:
            event_loop.call_later(15, saturated_cycle)

        began = event_loop.time()
        status = await serve(tree, shutdown_timeout=5.0, on_started=signal_in_a_slow_cycle)
        return status, event_loop.time() - began

    status, took = clock.run(main())
    assert status == 1  # forced: the flush was cut at its hard limit
    # Forced 5 s after the signal arrived (20 s), not 5 s after the event
    # loop got to it (23 s), nor once wait_for around stop() had unwound;
    # the flush in progress then ran to its hard limit (cancel_timeout, 5 s).
    assert took == 25.0


def _kill_self(signum: int) -> Callable[[], None]:
    return lambda: os.kill(os.getpid(), signum)


@pytest.fixture
def default_signal_handlers() -> Any:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- restarts in two cycles ---------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all", "rest_for_one"])
@pytest.mark.parametrize("kind", ["loop", "worker"])
@virtual_time()
async def test_a_restart_reaches_the_new_runs_body_two_cycles_after_the_raise(
    kind: str, strategy: str
) -> None:
    seen: list[int] = []  # the cycle count at each call of the body
    clock: list[Cycles] = []

    async def body() -> None:
        seen.append(clock[0].count if clock else -1)
        if len(seen) == 1:
            await asyncio.sleep(10)  # the tree has long started: nothing else is queued
            clock.append(Cycles())  # counting from the step that raises
            raise Boom("once")
        await asyncio.sleep(3600)

    if kind == "loop":
        actor: Any = Loop(body, schedule=Every(seconds=3600), name="flaky")

        @actor.error
        async def quiet(error: BaseException) -> None:
            pass  # awaited, as a handler is: no cycle of its own

    else:
        actor = worker(body, name="flaky")
    tree = Supervisor(actor, strategy=strategy, name="tree")
    events = tree.events()
    await tree.start()
    await asyncio.sleep(11)
    # Raised in cycle 0; the supervisor's step in cycle 1 (the end was
    # reported from the run's last step, not from a done callback a cycle
    # later); the new run's first step, in cycle 2, calls the body.
    assert seen == [-1, 2]
    assert [type(event) for event in await _drain(events)].count(ActorFailed) == 1
    await tree.stop()
