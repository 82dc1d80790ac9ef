"""A clean-up that has begun runs to its end.

The grid: {loop, overlapping loop, plain worker} × {Cancel, Restart, a second
Stop, a supervisor's shutdown grace running out, the hard limit} arriving
while the clean-up (a Loop's ``after_loop``, a worker's ``finally`` after
its Stop) awaits its write. Only the hard limit (or a forced shutdown) cuts
it, and that is a ``CutShort`` event and a count ``run()`` turns into exit
status 1. The rules: docs/loops.md, "Stopping and cancelling".
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from supervised_loops import Ack, Cancel, Restart, State, Stop, Supervisor, child, loop, worker
from supervised_loops.clock import get_clock
from supervised_loops.core.runnable import Runnable
from supervised_loops.events import ActorStarted, CutShort, Event
from supervised_loops.testing import virtual_time

WRITE = 0.1  # how long the clean-up's write takes


def now() -> float:
    return round(asyncio.get_running_loop().time(), 6)


def make(kind: str, journal: list[tuple[float, str]]) -> Runnable:
    """An actor whose clean-up writes for WRITE seconds and records how it went."""

    async def write() -> None:
        journal.append((now(), "clean-up begins"))
        try:
            await asyncio.sleep(WRITE)
        except asyncio.CancelledError:
            journal.append((now(), "clean-up cut"))
            raise
        journal.append((now(), "clean-up done"))

    if kind == "worker":

        async def serve() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                await write()

        return worker(serve, name="actor")

    @loop(seconds=1, overlap=2 if kind == "overlapping loop" else False, name="actor")
    async def body() -> None:
        pass

    @body.after_loop
    async def after() -> None:
        await write()

    return body


KINDS = ["loop", "overlapping loop", "worker"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("second", ["Cancel", "second Stop"])
@virtual_time()
async def test_a_request_during_the_clean_up_does_not_interrupt_it(kind: str, second: str) -> None:
    journal: list[tuple[float, str]] = []
    actor = make(kind, journal)
    actor.start()  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    task = actor.get_task()
    assert task is not None
    first = asyncio.ensure_future(actor.ask(Stop()))
    await asyncio.sleep(0.03)
    late = asyncio.ensure_future(actor.ask(Cancel() if second == "Cancel" else Stop()))
    await asyncio.wait((task,))
    assert journal == [(0.5, "clean-up begins"), (0.6, "clean-up done")]
    assert (await first).message == Stop()
    assert (await late).message == (Cancel() if second == "Cancel" else Stop())
    # A Cancel that came during the clean-up still ends the run cancelled.
    expected = State.CANCELLED if second == "Cancel" else State.STOPPED
    assert actor.status().state is expected


@pytest.mark.parametrize("kind", KINDS)
@virtual_time()
async def test_a_restart_during_the_clean_up_waits_for_its_end(kind: str) -> None:
    journal: list[tuple[float, str]] = []
    actor = make(kind, journal)
    events = actor.events()
    actor.start()  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    old = actor.get_task()
    assert old is not None
    actor.tell(Stop())
    await asyncio.sleep(0.03)
    ack = await actor.ask(Restart())
    assert old.done()
    assert journal == [(0.5, "clean-up begins"), (0.6, "clean-up done")]
    assert actor.is_running()
    assert actor.get_task() is not old
    assert now() == 0.6  # the Restart is answered once the new run has begun
    started = [e.at for e in drain(events) if isinstance(e, ActorStarted)]
    assert len(started) == 2  # the first start, then the restart once the clean-up ended
    assert ack.message == Restart()
    actor.tell(Cancel())
    await asyncio.wait((actor.get_task(),))  # type: ignore[arg-type]


def drain(subscription: Any) -> list[Event]:
    items: list[Event] = []
    while subscription._pending:
        items.append(subscription._pending.popleft())
    return items


@pytest.mark.parametrize("kind", KINDS)
@virtual_time()
async def test_the_shutdown_grace_running_out_does_not_cut_the_clean_up(kind: str) -> None:
    journal: list[tuple[float, str]] = []
    actor = make(kind, journal)
    tree = Supervisor(child(actor, shutdown=0.02, cancel_timeout=1.0), name="app")
    events = tree.events()
    await tree.start()
    await asyncio.sleep(0.5)
    await tree.stop()
    assert journal == [(0.5, "clean-up begins"), (0.6, "clean-up done")]
    assert now() == 0.6
    assert not [e for e in drain(events) if isinstance(e, CutShort)]
    assert tree._cut_short_count() == 0


@pytest.mark.parametrize("kind", KINDS)
@virtual_time()
async def test_the_hard_limit_cuts_the_clean_up_and_says_so(kind: str) -> None:
    journal: list[tuple[float, str]] = []
    actor = make(kind, journal)
    tree = Supervisor(child(actor, shutdown=0.02, cancel_timeout=0.05), name="app")
    events = tree.events()
    await tree.start()
    await asyncio.sleep(0.5)
    await tree.stop()
    assert journal == [(0.5, "clean-up begins"), (0.57, "clean-up cut")]
    cuts = [e for e in drain(events) if isinstance(e, CutShort)]
    assert [(c.path, round(c.waited, 6)) for c in cuts] == [("app/actor", 0.07)]
    assert tree._cut_short_count() == 1
    assert actor.status().state is State.CANCELLED
    assert not actor.is_running()


@virtual_time()
async def test_a_forced_shutdown_cuts_the_clean_up_at_once() -> None:
    journal: list[tuple[float, str]] = []
    actor = make("loop", journal)
    tree = Supervisor(child(actor, shutdown=5.0, cancel_timeout=5.0), name="app")
    events = tree.events()
    await tree.start()
    await asyncio.sleep(0.5)
    stopping = asyncio.ensure_future(tree.stop())
    await asyncio.sleep(0.03)
    tree._force_cancel()
    await stopping
    assert journal == [(0.5, "clean-up begins"), (0.53, "clean-up cut")]
    assert [type(e) for e in drain(events) if isinstance(e, CutShort)] == [CutShort]
    assert tree._cut_short_count() == 1


# -- the Restart acknowledgement ------------------------------------------------------


@virtual_time()
async def test_a_restart_is_acknowledged_with_the_first_due_time_after_before_loop() -> None:
    @loop(seconds=5, wait_first=True, name="paced")
    async def paced() -> None:
        pass

    @paced.before_loop
    async def connect() -> None:
        await asyncio.sleep(2)

    paced.start()
    await asyncio.sleep(3)
    ack = await paced.ask(Restart())
    assert now() == 2 + 3  # the new run's before_loop took 2 s
    wall = get_clock(asyncio.get_running_loop()).wall()
    assert ack == Ack(Restart(), 0, wall + dt.timedelta(seconds=5))  # what the tree shows
    assert paced.status().next_iteration == ack.next_iteration
    paced.cancel()
    await asyncio.wait((paced.get_task(),))  # type: ignore[arg-type]


@virtual_time()
async def test_a_restarted_run_that_ends_before_its_first_plan_acknowledges_with_no_next_run() -> (
    None
):
    @loop(seconds=5, name="paced")
    async def paced() -> None:
        pass

    @paced.before_loop
    async def connect() -> None:
        await asyncio.sleep(2)

    asked = asyncio.ensure_future(paced.ask(Restart()))
    await asyncio.sleep(1)  # in the new run's before_loop
    paced.stop()
    ack = await asked
    assert ack == Ack(Restart(), 0, None)
    assert now() == 2.0
    assert not paced.is_running()
