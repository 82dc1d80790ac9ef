"""Dynamic children: start_child, terminate_child, restart_child, delete_child, which/count.

The verbs run in the supervisor's own task, one after the other and after
what was queued before them, so they never race a restart or each other,
even when many are called at once alongside control messages.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_supervisor_support import Boom, Journal, Probe, exactly

from supervised_loops import (
    Actor,
    ActorNotRunning,
    ActorStopped,
    ChildCounts,
    ChildNotFound,
    ChildStartFailed,
    GetStatus,
    RestartType,
    State,
    Stop,
    Supervisor,
    child,
    loop,
)
from supervised_loops.testing import virtual_time


@virtual_time()
async def test_start_child_adds_at_the_end_and_returns_once_ready() -> None:
    journal = Journal()
    a, b = Probe(journal, "a"), Probe(journal, "b")
    tree = Supervisor(a.loop, name="app")
    await tree.start()
    actor = await tree.start_child(child(b.loop, restart="transient"))
    assert actor is b.loop
    assert b.loop.path == "app/b"
    assert [info.name for info in tree.which_children()] == ["a", "b"]
    await tree.stop()
    assert journal.take() == ["start a", "start b", "stop b", "stop a"]


@virtual_time()
async def test_start_child_refuses_a_taken_name_and_a_stopped_supervisor() -> None:
    journal = Journal()
    tree = Supervisor(Probe(journal, "a").loop, name="app")
    with pytest.raises(ActorNotRunning):
        await tree.start_child(Probe(journal, "b").loop)
    await tree.start()
    with pytest.raises(
        ValueError,
        match=exactly(
            "supervisor 'app' already has a child named 'a'; names must be unique among siblings"
        ),
    ):
        await tree.start_child(Probe(journal, "a").loop)
    with pytest.raises(
        ValueError, match=exactly("supervisor 'app' cannot supervise itself or an ancestor")
    ):
        await tree.start_child(tree)
    await tree.stop()


@virtual_time()
async def test_a_child_failing_to_start_is_not_kept() -> None:
    @loop(seconds=1)
    async def flaky() -> None:
        pass

    @flaky.before_loop
    async def setup() -> None:
        raise Boom("cannot connect")

    @flaky.error
    async def quiet(error: BaseException) -> None:
        pass

    tree = Supervisor(name="app")
    await tree.start()
    with pytest.raises(
        ChildStartFailed, match=exactly("child 'flaky' of supervisor 'app' failed to start")
    ) as caught:
        await tree.start_child(flaky)
    assert str(caught.value.__cause__) == "cannot connect"
    assert tree.which_children() == []
    assert flaky.parent is None
    assert tree.is_running()
    await tree.stop()


@virtual_time()
async def test_terminate_child_keeps_the_spec_and_strategies_leave_it_down() -> None:
    journal = Journal()
    a, b, c = Probe(journal, "a"), Probe(journal, "b"), Probe(journal, "c")
    tree = Supervisor(a.loop, b.loop, c.loop, strategy="one_for_all", name="app")
    await tree.start()
    await tree.terminate_child("b")
    assert [(i.name, i.state) for i in tree.which_children()] == [
        ("a", State.SLEEPING),
        ("b", State.STOPPED),
        ("c", State.SLEEPING),
    ]
    journal.take()
    a.fail_next(Boom("x"))
    a.loop.run_now()
    await asyncio.sleep(0.1)
    assert journal.take() == ["fail a", "stop a", "stop c", "start a", "start c"]
    assert not b.loop.is_running()
    await tree.restart_child("b")
    assert b.loop.is_running()
    await tree.stop()


@virtual_time()
async def test_terminate_child_removes_a_temporary_child() -> None:
    journal = Journal()
    tree = Supervisor(child(Probe(journal, "a").loop, restart="temporary"), name="app")
    await tree.start()
    await tree.terminate_child("a")
    assert tree.which_children() == []
    await tree.stop()


@virtual_time()
async def test_restart_child_restarts_a_running_child_and_counts_it() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(a.loop, name="app")
    await tree.start()
    assert await tree.restart_child("a") is a.loop
    assert journal.take() == ["start a", "stop a", "start a"]
    assert tree.child("a").restart_count == 1
    assert tree.which_children()[0].restarts == 1
    assert a.loop.status().restarts == 1
    await tree.stop()


@virtual_time()
async def test_delete_child_needs_the_child_down_and_forgets_it() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(a.loop, name="app")
    await tree.start()
    with pytest.raises(
        RuntimeError,
        match=exactly("child 'a' of supervisor 'app' is running; terminate_child() it first"),
    ):
        await tree.delete_child("a")
    await tree.terminate_child("a")
    await tree.delete_child("a")
    assert tree.which_children() == []
    assert a.loop.parent is None
    with pytest.raises(ChildNotFound, match=exactly("supervisor 'app' has no child 'a'")):
        await tree.restart_child("a")
    await tree.stop()


@virtual_time()
async def test_verbs_on_unknown_names_raise_child_not_found() -> None:
    tree = Supervisor(name="app")
    await tree.start()
    for verb in (tree.terminate_child, tree.restart_child, tree.delete_child):
        with pytest.raises(ChildNotFound, match=exactly("supervisor 'app' has no child 'ghost'")):
            await verb("ghost")
    with pytest.raises(ChildNotFound):
        tree.child("ghost")
    await tree.stop()


@virtual_time()
async def test_count_children_counts_specs_active_supervisors_and_workers() -> None:
    journal = Journal()
    a, b = Probe(journal, "a"), Probe(journal, "b")
    tree = Supervisor(a.loop, Supervisor(name="sub"), b.loop, name="app")
    assert tree.count_children() == ChildCounts(specs=3, active=0, supervisors=1, workers=2)
    await tree.start()
    await tree.terminate_child("b")
    assert tree.count_children() == ChildCounts(specs=3, active=2, supervisors=1, workers=2)
    await tree.stop()


@virtual_time()
async def test_verbs_called_at_once_run_one_after_the_other_beside_control_messages() -> None:
    journal = Journal()
    probes = {name: Probe(journal, name) for name in "abcdef"}
    tree = Supervisor(probes["a"].loop, probes["b"].loop, name="app")
    await tree.start()
    journal.take()
    statuses: list[Any] = []

    async def status() -> None:
        statuses.append(await tree.ask(GetStatus()))

    results = await asyncio.gather(
        tree.start_child(probes["c"].loop),
        tree.terminate_child("a"),
        tree.start_child(probes["d"].loop),
        status(),
        tree.restart_child("b"),
        tree.start_child(child(probes["e"].loop, restart="temporary")),
        tree.terminate_child("e"),
        tree.start_child(probes["f"].loop),
        tree.delete_child("a"),
    )
    assert results[0] is probes["c"].loop
    assert journal.take() == [
        "start c",
        "stop a",
        "start d",
        "stop b",
        "start b",
        "start e",
        "stop e",
        "start f",
    ]
    assert [info.name for info in tree.which_children()] == ["b", "c", "d", "f"]
    assert statuses[0].state is State.RUNNING
    await tree.stop()
    assert journal.take() == ["stop f", "stop d", "stop c", "stop b"]


@virtual_time()
async def test_a_stop_sent_while_verbs_are_queued_ends_them_with_actor_stopped() -> None:
    journal = Journal()
    slow = Probe(journal, "slow", seconds=1)

    @slow.loop.before_loop
    async def setup() -> None:
        await asyncio.sleep(5)
        journal.note("start slow")

    tree = Supervisor(name="app")
    await tree.start()
    starting = asyncio.ensure_future(tree.start_child(slow.loop))
    queued = asyncio.ensure_future(tree.start_child(Probe(journal, "late").loop))
    await asyncio.sleep(1)
    tree.tell(Stop())
    with pytest.raises(ActorStopped):
        await starting
    with pytest.raises(ActorStopped):
        await queued
    await asyncio.sleep(10)
    assert not tree.is_running()
    assert "start late" not in journal.lines


@virtual_time()
async def test_a_dynamic_child_is_dropped_when_its_supervisor_restarts() -> None:
    journal = Journal()
    a, extra = Probe(journal, "a"), Probe(journal, "extra")
    inner = Supervisor(a.loop, max_restarts=0, name="inner")
    root = Supervisor(inner, name="root")
    await root.start()
    await inner.start_child(extra.loop)
    a.fail_next(Boom("x"))
    a.loop.run_now()
    await asyncio.sleep(0.1)
    assert inner.is_running()
    assert [info.name for info in inner.which_children()] == ["a"]
    assert extra.loop.parent is None
    assert not extra.loop.is_running()
    assert root.which_children()[0].restart is RestartType.PERMANENT
    await root.stop()


@virtual_time()
async def test_a_loops_own_restart_is_adopted_and_its_next_failure_still_handled() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(a.loop, name="app")
    await tree.start()
    a.loop.restart()  # by the loop's owner, not through the supervisor
    await asyncio.sleep(0.1)
    assert a.loop.is_running()
    assert journal.take() == ["start a", "stop a", "start a"]
    assert tree.child("a").restart_count == 0  # not a restart by the supervisor
    a.fail_next(Boom("later"))
    a.loop.run_now()
    await asyncio.sleep(0.1)
    assert journal.take() == ["fail a", "stop a", "start a"]
    assert tree.child("a").restart_count == 1
    await tree.stop()
    assert journal.take() == ["stop a"]


@virtual_time()
async def test_an_actor_that_cannot_be_supervised_fails_the_start_with_the_reason() -> None:
    class Bare(Actor):
        def is_running(self) -> bool:
            return False

    tree = Supervisor(Bare("bare"), name="app")
    with pytest.raises(ChildStartFailed) as caught:
        await tree.start()
    assert str(caught.value.__cause__) == (
        "Bare cannot be supervised: it does not implement _start_supervised"
    )
