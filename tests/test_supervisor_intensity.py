"""Restart intensity and escalation: max_restarts within max_seconds (docs/supervision.md).

At the limit the supervisor keeps restarting; one restart beyond it, it stops
its children in reverse order and fails with ``RestartIntensityExceeded``,
which its parent sees as the failure of a child, up to the root.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_supervisor_support import Boom, Journal, Probe, Recorder, exactly

from supervised_loops import (
    Child,
    Directive,
    RestartIntensityExceeded,
    State,
    Supervisor,
    child,
    loop,
)
from supervised_loops.events import Escalated, IntensityExceeded
from supervised_loops.testing import virtual_time


def fail_now(probe: Probe) -> None:
    probe.fail_next(Boom(f"{probe.name} broke"))
    probe.loop.run_now()


async def fail_at(probe: Probe, moment: float) -> None:
    """Make ``probe`` fail at virtual time ``moment``."""
    await asyncio.sleep(moment - asyncio.get_running_loop().time())
    fail_now(probe)
    await asyncio.sleep(0)


@virtual_time()
async def test_restarts_up_to_max_restarts_within_max_seconds_keep_the_supervisor_running() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(child(a.loop), max_restarts=2, max_seconds=5.0, name="app")
    await tree.start()
    await fail_at(a, 0.5)
    await fail_at(a, 1.5)
    await asyncio.sleep(1)
    assert tree.is_running()
    assert not tree.failed()
    assert a.loop.is_running()
    assert a.loop.status().restarts == 2
    await tree.stop()


@virtual_time()
async def test_one_restart_beyond_the_intensity_stops_the_children_and_fails_the_supervisor() -> (
    None
):
    journal = Journal()
    a, b = Probe(journal, "a"), Probe(journal, "b")
    tree = Supervisor(child(a.loop), child(b.loop), max_restarts=2, max_seconds=5.0, name="app")
    recorder = Recorder(tree)
    await tree.start()
    await fail_at(b, 0.5)
    await fail_at(b, 1.5)
    await asyncio.sleep(0.1)
    journal.take()
    await fail_at(b, 2.5)
    with pytest.raises(RestartIntensityExceeded) as caught:
        await tree.wait()
    error = caught.value
    assert str(error) == (
        "supervisor 'app' exceeded its restart intensity (more than 2 restarts in 5.0 seconds)"
    )
    assert (error.supervisor, error.restarts, error.seconds) == ("app", 2, 5.0)
    assert isinstance(error.__cause__, Boom)
    assert str(error.__cause__) == "b broke"
    assert journal.take() == ["fail b", "stop b", "stop a"]  # b was not restarted
    assert tree.failed()
    assert not tree.is_running()
    assert tree.status().state is State.FAILED
    assert tree.status().last_error == f"RestartIntensityExceeded: {error}"
    assert asyncio.get_running_loop().time() == 2.5
    await recorder.close()
    assert [(e.path, e.restarts, e.seconds) for e in recorder.of(IntensityExceeded)] == [
        ("app", 2, 5.0)
    ]


@pytest.mark.parametrize(
    ("second", "fails"), [(5.0, False), (4.999, True)], ids=["at-window-end", "inside-window"]
)
@virtual_time()
async def test_a_restart_stops_counting_exactly_max_seconds_after_it_happened(
    second: float, fails: bool
) -> None:
    journal = Journal()
    a = Probe(journal, "a", seconds=100)
    tree = Supervisor(child(a.loop), max_restarts=1, max_seconds=5.0, name="app")
    await tree.start()
    await fail_at(a, 1.0)
    await fail_at(a, 1.0 + second)
    await asyncio.sleep(0.5)
    assert tree.failed() is fails
    assert tree.is_running() is not fails
    if not fails:
        await tree.stop()


@virtual_time()
async def test_intensity_counts_restarts_of_all_children_together() -> None:
    journal = Journal()
    a, b = Probe(journal, "a"), Probe(journal, "b")
    tree = Supervisor(child(a.loop), child(b.loop), max_restarts=1, max_seconds=5.0)
    await tree.start()
    await fail_at(a, 0.5)
    assert tree.is_running()
    await fail_at(b, 1.0)
    with pytest.raises(RestartIntensityExceeded):
        await tree.wait()


@virtual_time()
async def test_a_permanent_child_that_keeps_ending_normally_exceeds_the_intensity_too() -> None:
    @loop(seconds=1, count=1)
    async def once() -> None:
        pass

    tree = Supervisor(child(once), max_restarts=3, max_seconds=5.0)
    await tree.start()
    with pytest.raises(RestartIntensityExceeded) as caught:
        await tree.wait()
    assert caught.value.__cause__ is None  # nothing failed: it just kept ending
    assert once.status().restarts == 3


@virtual_time()
async def test_restart_child_by_hand_does_not_count_towards_the_intensity() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(child(a.loop), max_restarts=0, max_seconds=5.0)
    await tree.start()
    for _ in range(3):
        await tree.restart_child("a")
    assert tree.is_running()
    assert a.loop.status().restarts == 3
    fail_now(a)  # with max_restarts=0 the first policy restart is one too many
    with pytest.raises(RestartIntensityExceeded):
        await tree.wait()


def three_levels(
    journal: Journal, *, mid_restarts: int = 0
) -> tuple[Supervisor, Supervisor, Supervisor, Probe]:
    x = Probe(journal, "x")
    leaf = Supervisor(child(x.loop), max_restarts=0, name="leaf")
    mid = Supervisor(leaf, max_restarts=mid_restarts, name="mid")
    root = Supervisor(mid, max_restarts=0, name="root")
    return root, mid, leaf, x


@virtual_time()
async def test_escalation_climbs_three_levels_with_each_cause_chained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "supervised_loops")
    journal = Journal()
    root, _mid, _leaf, x = three_levels(journal)
    recorder = Recorder(root)
    await root.start()
    await fail_at(x, 0.5)
    with pytest.raises(RestartIntensityExceeded) as caught:
        await root.wait()
    chain = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__
    assert [getattr(e, "supervisor", str(e)) for e in chain] == [
        "root",
        "root/mid",
        "root/mid/leaf",
        "x broke",
    ]
    await recorder.close()
    assert [e.path for e in recorder.of(Escalated)] == ["root/mid/leaf", "root/mid", "root"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "supervisor 'root/mid/leaf' exceeded its restart intensity (more than 0 restarts in "
        "5.0 seconds), the last for 'x': Boom: x broke; failing up to 'root/mid'",
        "supervisor 'root/mid' exceeded its restart intensity (more than 0 restarts in "
        "5.0 seconds), the last for 'leaf': RestartIntensityExceeded: supervisor "
        "'root/mid/leaf' exceeded its restart intensity (more than 0 restarts in 5.0 "
        "seconds); failing up to 'root'",
        "supervisor 'root' exceeded its restart intensity (more than 0 restarts in "
        "5.0 seconds), the last for 'mid': RestartIntensityExceeded: supervisor 'root/mid' "
        "exceeded its restart intensity (more than 0 restarts in 5.0 seconds); the tree fails",
    ]
    assert x.handled == [chain[-1]]  # the loop's own handler saw the error, once


@virtual_time()
async def test_a_middle_supervisor_restarts_a_failed_subtree_before_escalating() -> None:
    journal = Journal()
    root, mid, leaf, x = three_levels(journal, mid_restarts=1)
    await root.start()
    await fail_at(x, 0.5)
    await asyncio.sleep(0.1)
    assert leaf.is_running()
    assert leaf.status().restarts == 1
    assert root.is_running()
    assert mid.is_running()
    await fail_at(x, 1.0)
    with pytest.raises(RestartIntensityExceeded) as caught:
        await root.wait()
    assert caught.value.supervisor == "root"


@virtual_time()
async def test_the_escalate_directive_fails_the_supervisor_with_the_childs_own_error() -> None:
    class Strict(Supervisor):
        def decide(self, child: Child, error: BaseException) -> Directive:
            return Directive.ESCALATE

    journal = Journal()
    a = Probe(journal, "a")
    inner = Strict(child(a.loop), name="strict")
    root = Supervisor(inner, max_restarts=0, name="root")
    await root.start()
    await fail_at(a, 0.5)
    with pytest.raises(RestartIntensityExceeded) as caught:
        await root.wait()
    assert caught.value.__cause__ is a.handled[0]
    assert inner.status().last_error == "Boom: a broke"


@virtual_time()
async def test_wait_raises_the_same_error_to_every_waiter() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(child(a.loop), max_restarts=0, name="app")
    await tree.start()
    waiters = [asyncio.ensure_future(tree.wait()) for _ in range(2)]
    await fail_at(a, 0.5)
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert results[0] is results[1]
    assert isinstance(results[0], RestartIntensityExceeded)
    with pytest.raises(RestartIntensityExceeded, match=exactly(str(results[0]))):
        await tree.wait()
