"""Strategies × restart types × ways a child ends (OTP's restart rules).

The rules: docs/supervision.md, "Restart types" and "Strategies".

Three loops ``a``, ``b``, ``c`` start in that order; ``b`` has the restart
type under test and ends one of four ways: it fails (an error that is not
whitelisted, so it escalates), it ends on its own (its ``count`` is
reached), or it is asked to end by a ``Stop`` or a ``Cancel`` message. A
child asked to end stays down whatever its restart type (as after OTP's
``terminate_child``); the restart types decide the other cases. The
journal then shows exactly which children were stopped and started again,
and in which order: siblings stop latest first and start in order.
"""

from __future__ import annotations

import asyncio

import pytest
from test_supervisor_support import Boom, Journal, Probe

from supervised_loops import RestartType, State, Strategy, Supervisor, child, loop
from supervised_loops.testing import virtual_time

RESTARTS = {
    # (restart type, how b ends) -> is b restarted?
    ("permanent", "error"): True,
    ("permanent", "normal"): True,
    ("permanent", "stop"): False,
    ("permanent", "cancel"): False,
    ("transient", "error"): True,
    ("transient", "normal"): False,
    ("transient", "stop"): False,
    ("transient", "cancel"): False,
    ("temporary", "error"): False,
    ("temporary", "normal"): False,
    ("temporary", "stop"): False,
    ("temporary", "cancel"): False,
}

# What the strategy does once b is to be restarted, after b's own "stop b".
AFTER_RESTART = {
    "one_for_one": ["start b"],
    "one_for_all": ["stop c", "stop a", "start a", "start b", "start c"],
    "rest_for_one": ["stop c", "start b", "start c"],
}

# Which children run a second time (their loop's status counts the restart).
RESTARTED = {
    "one_for_one": {"a": 0, "b": 1, "c": 0},
    "one_for_all": {"a": 1, "b": 1, "c": 1},
    "rest_for_one": {"a": 0, "b": 1, "c": 1},
}


def end(probe: Probe, how: str) -> None:
    if how == "error":
        probe.fail_next(Boom("b broke"))
        probe.loop.run_now()  # the failing iteration runs at once
    elif how == "stop":
        probe.loop.stop()
    elif how == "cancel":
        probe.loop.cancel()
    # "normal": b was built with count=2 and ends by itself at t=1.


@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all", "rest_for_one"])
@pytest.mark.parametrize("restart", ["permanent", "transient", "temporary"])
@pytest.mark.parametrize("how", ["error", "normal", "stop", "cancel"])
@virtual_time()
async def test_strategy_and_restart_type_decide_who_restarts_after_each_kind_of_end(
    strategy: str, restart: str, how: str
) -> None:
    journal = Journal()
    a, c = Probe(journal, "a"), Probe(journal, "c")
    b = Probe(journal, "b", count=2 if how == "normal" else None)
    tree = Supervisor(
        child(a.loop),
        child(b.loop, restart=restart),
        child(c.loop),
        strategy=strategy,
        max_restarts=10,
        name="app",
    )
    await tree.start()
    assert journal.take() == ["start a", "start b", "start c"]

    await asyncio.sleep(0.5)
    end(b, how)
    await asyncio.sleep(0.6)  # past t=1, where a "normal" b reaches its count

    restarted = RESTARTS[(restart, how)]
    expected = (["fail b"] if how == "error" else []) + ["stop b"]
    if restarted:
        expected += AFTER_RESTART[strategy]
    assert journal.take() == expected
    assert b.loop.is_running() is restarted
    assert a.loop.is_running()
    assert c.loop.is_running()
    counts = RESTARTED[strategy] if restarted else {"a": 0, "b": 0, "c": 0}
    assert {p.name: p.loop.status().restarts for p in (a, b, c)} == counts
    assert b.handled == ([b.handled[0]] if how == "error" else [])
    kept = ["a", "b", "c"] if restart != "temporary" else ["a", "c"]
    assert [info.name for info in tree.which_children()] == kept
    assert tree.is_running()
    assert not tree.failed()

    await tree.stop()
    running = [name for name in ("c", "b", "a") if name != "b" or restarted]
    assert journal.take() == [f"stop {name}" for name in running]


@virtual_time()
async def test_a_failed_transient_child_is_restarted_with_its_last_arguments() -> None:
    seen: list[tuple[int, str]] = []

    @loop(seconds=1)
    async def job(number: int, *, label: str) -> None:
        seen.append((number, label))
        if len(seen) == 2:
            raise Boom("second call")

    @job.error
    async def quiet(error: BaseException) -> None:
        pass

    tree = Supervisor(child(job, restart="transient", args=(7,), kwargs={"label": "x"}))
    async with tree:
        await asyncio.sleep(1.5)
    assert seen == [(7, "x"), (7, "x"), (7, "x")]


@virtual_time()
async def test_restart_type_and_strategy_accept_enums_and_strings_alike() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(child(a.loop, restart=RestartType.TRANSIENT), strategy=Strategy.REST_FOR_ONE)
    assert tree.strategy is Strategy.REST_FOR_ONE
    assert tree.which_children()[0].restart is RestartType.TRANSIENT
    async with tree:
        assert a.loop.status().state is State.SLEEPING
