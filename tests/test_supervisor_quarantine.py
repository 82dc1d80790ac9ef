"""Quarantine, significant children with auto_shutdown, and the RETRY directive.

Quarantine is the outcome besides restart and escalate: a child that spends
its own restart budget is parked (siblings and parent untouched), probed on
a slow schedule, and escalated only if it is significant. Significant
children end their supervisor as OTP's ``auto_shutdown`` says.
"""

from __future__ import annotations

import asyncio

import pytest
from test_supervisor_support import Boom, Journal, Probe, Recorder

from supervised_loops import (
    Child,
    Directive,
    ExponentialBackoff,
    Quarantine,
    State,
    Supervisor,
    child,
)
from supervised_loops.events import ChildRestarted, Quarantined, RetryScheduled
from supervised_loops.testing import virtual_time

POLICY = Quarantine(max_restarts=2, max_seconds=10.0, probe_every=60.0)


def now() -> float:
    return asyncio.get_running_loop().time()


@virtual_time()
async def test_a_child_that_spends_its_budget_is_parked_and_its_siblings_are_untouched() -> None:
    journal = Journal()
    a, q, c = Probe(journal, "a"), Probe(journal, "q"), Probe(journal, "c")
    q.fail_always(Boom("down"))
    tree = Supervisor(
        child(a.loop),
        child(q.loop, quarantine=POLICY),
        child(c.loop),
        strategy="one_for_all",
        max_restarts=0,  # the supervisor's own intensity is not touched by q
        name="app",
    )
    recorder = Recorder(tree)
    await tree.start()
    await asyncio.sleep(1)
    assert tree.is_running()
    assert tree.child("q").state is State.QUARANTINED
    assert [(s.name, s.state) for s in tree.status().children] == [
        ("a", State.SLEEPING),
        ("q", State.QUARANTINED),
        ("c", State.SLEEPING),
    ]
    # Two restarts (one_for_all takes a and c along), then parked on the third failure.
    assert len(q.handled) == 3
    assert a.loop.status().restarts == 2
    await recorder.close()
    assert [(e.path, e.error, e.probe_in) for e in recorder.of(Quarantined)] == [
        ("app/q", "Boom: down", 60.0)
    ]
    await tree.stop()


@virtual_time()
async def test_a_quarantined_child_is_probed_and_returns_once_a_probe_outlives_probation() -> None:
    journal = Journal()
    q = Probe(journal, "q")
    q.fail_always(Boom("down"))
    tree = Supervisor(child(q.loop, quarantine=POLICY), name="app")
    recorder = Recorder(tree)
    await tree.start()
    await asyncio.sleep(61)  # the probe at 60 fails at once: parked again
    assert tree.child("q").is_quarantined()
    assert len(q.handled) == 4
    q.heal()
    await asyncio.sleep(60)  # the probe at 120 works
    assert not tree.child("q").is_quarantined()
    assert q.loop.is_running()
    await asyncio.sleep(20)  # past probation (10 s): a fresh budget of 2 restarts
    q.fail_next(Boom("again"))
    q.loop.run_now()
    await asyncio.sleep(0.1)
    assert q.loop.is_running()
    assert not tree.child("q").is_quarantined()
    await recorder.close()
    probes = [e for e in recorder.of(ChildRestarted) if e.reason == "probe"]
    assert [e.at.timestamp() - probes[0].at.timestamp() for e in probes] == [0.0, 60.0]
    await tree.stop()


@virtual_time()
async def test_restart_child_ends_a_quarantine_at_once() -> None:
    journal = Journal()
    q = Probe(journal, "q")
    q.fail_always(Boom("down"))
    tree = Supervisor(child(q.loop, quarantine=POLICY), name="app")
    await tree.start()
    await asyncio.sleep(0.1)
    assert tree.child("q").is_quarantined()
    q.heal()
    await tree.restart_child("q")
    assert q.loop.is_running()
    assert tree.child("q").state is State.SLEEPING
    await tree.stop()


@virtual_time()
async def test_the_supervisors_quarantine_setting_applies_to_children_without_one() -> None:
    journal = Journal()
    q = Probe(journal, "q")
    q.fail_always(Boom("down"))
    tree = Supervisor(child(q.loop), quarantine=POLICY, max_restarts=0, name="app")
    await tree.start()
    await asyncio.sleep(0.1)
    assert tree.child("q").is_quarantined()
    assert tree.is_running()
    await tree.stop()


@virtual_time()
async def test_the_decide_hook_can_quarantine_with_the_default_policy() -> None:
    class Parking(Supervisor):
        def decide(self, child: Child, error: BaseException) -> Directive:
            return Directive.QUARANTINE

    journal = Journal()
    q = Probe(journal, "q")
    tree = Parking(child(q.loop), name="app")
    recorder = Recorder(tree)
    await tree.start()
    q.fail_next(Boom("once"))
    q.loop.run_now()
    await asyncio.sleep(1)
    assert tree.child("q").is_quarantined()
    await asyncio.sleep(300)  # Quarantine() probes every 300 s
    assert q.loop.is_running()
    await recorder.close()
    assert [e.probe_in for e in recorder.of(Quarantined)] == [300.0]
    await tree.stop()


@virtual_time()
async def test_a_significant_child_that_would_be_quarantined_escalates_instead() -> None:
    journal = Journal()
    q = Probe(journal, "q")
    q.fail_always(Boom("down"))
    tree = Supervisor(
        child(q.loop, restart="transient", significant=True, quarantine=POLICY),
        auto_shutdown="any_significant",
        name="app",
    )
    await tree.start()
    with pytest.raises(Boom, match="down"):
        await tree.wait()
    assert tree.failed()


# -- significant children and auto_shutdown -------------------------------------------------


@virtual_time()
async def test_any_significant_ends_the_supervisor_normally_when_one_ends_for_good() -> None:
    journal = Journal()
    a, job = Probe(journal, "a"), Probe(journal, "job")
    tree = Supervisor(
        child(a.loop),
        child(job.loop, restart="transient", significant=True),
        auto_shutdown="any_significant",
        name="app",
    )
    await tree.start()
    job.loop.stop()  # done: a normal end of a transient child is final
    await tree.wait()
    assert not tree.failed()
    assert tree.status().state is State.STOPPED
    assert journal.take() == ["start a", "start job", "stop job", "stop a"]


@virtual_time()
async def test_all_significant_waits_for_the_last_significant_child() -> None:
    journal = Journal()
    a, b = Probe(journal, "a"), Probe(journal, "b")
    tree = Supervisor(
        child(a.loop, restart="temporary", significant=True),
        child(b.loop, restart="transient", significant=True),
        auto_shutdown="all_significant",
        name="app",
    )
    await tree.start()
    a.fail_next(Boom("a is done"))
    a.loop.run_now()
    await asyncio.sleep(0.1)
    assert tree.is_running()
    b.loop.stop()
    await tree.wait()
    assert tree.status().state is State.STOPPED


@virtual_time()
async def test_a_failed_transient_significant_child_is_restarted_not_a_shutdown() -> None:
    journal = Journal()
    job = Probe(journal, "job")
    tree = Supervisor(
        child(job.loop, restart="transient", significant=True),
        auto_shutdown="any_significant",
        name="app",
    )
    await tree.start()
    job.fail_next(Boom("x"))
    job.loop.run_now()
    await asyncio.sleep(0.1)
    assert tree.is_running()
    assert job.loop.is_running()
    await tree.stop()


@virtual_time()
async def test_terminating_a_significant_child_by_hand_does_not_shut_down() -> None:
    journal = Journal()
    job = Probe(journal, "job")
    tree = Supervisor(
        child(job.loop, restart="transient", significant=True),
        auto_shutdown="any_significant",
        name="app",
    )
    await tree.start()
    await tree.terminate_child("job")
    assert tree.is_running()
    await tree.stop()


# -- the RETRY directive -----------------------------------------------------------------------


@virtual_time()
async def test_the_retry_directive_restarts_after_the_childs_backoff_delay() -> None:
    class Patient(Supervisor):
        backoff = ExponentialBackoff(base=1.0, jitter=False)

        def decide(self, child: Child, error: BaseException) -> Directive:
            return Directive.RETRY

    journal = Journal()
    a = Probe(journal, "a", seconds=100)
    tree = Patient(child(a.loop), name="app")
    recorder = Recorder(tree)
    await tree.start()
    a.fail_next(Boom("x"))
    a.loop.run_now()
    await asyncio.sleep(1)
    assert tree.child("a").state is State.RETRYING
    assert tree.status().children[0].state is State.RETRYING
    assert not a.loop.is_running()
    await asyncio.sleep(1.5)
    assert a.loop.is_running()
    await recorder.close()
    assert [(e.path, e.attempt, e.delay) for e in recorder.of(RetryScheduled)] == [
        ("app/a", 1, 2.0)
    ]
    assert journal.take() == ["start a", "fail a", "stop a", "start a"]
    await tree.stop()


@virtual_time()
async def test_retry_delays_grow_when_backoff_for_returns_an_equal_new_policy_each_time() -> None:
    # A backoff_for() that builds its policy on every call must not reset the
    # child's backoff: equal policies share the count of attempts.
    class Patient(Supervisor):
        def backoff_for(self, child: Child) -> ExponentialBackoff:
            return ExponentialBackoff(base=1.0, jitter=False)

        def decide(self, child: Child, error: BaseException) -> Directive:
            return Directive.RETRY

    journal = Journal()
    a = Probe(journal, "a", seconds=100)
    a.fail_always(Boom("x"))
    tree = Patient(child(a.loop), max_restarts=100, name="app")
    recorder = Recorder(tree)
    await tree.start()
    await asyncio.sleep(20)
    await recorder.close()
    delays = [e.delay for e in recorder.of(RetryScheduled) if e.path == "app/a"]
    assert delays[:3] == [2.0, 4.0, 8.0]
    await tree.stop()
