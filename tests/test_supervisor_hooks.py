"""Subclassing a Supervisor: the hooks, their call order, and errors raised in them.

A failure of a loop goes: ``should_retry`` (in the loop's task) → the loop's
error handler → ``after_loop`` → ``on_child_failure`` → ``on_child_exit`` →
``decide`` → the directive. Every hook may raise; the error is logged once
with the supervisor's path and fails the supervisor, so it reaches the
parent like any other failure: nothing raised in a hook is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import pytest
from test_supervisor_support import Boom, Journal, Probe, exactly

from supervised_loops import (
    Actor,
    Cancel,
    Child,
    ChildSpec,
    Directive,
    ExponentialBackoff,
    RestartIntensityExceeded,
    State,
    Stop,
    Supervisor,
    child,
    loop,
)
from supervised_loops.events import describe
from supervised_loops.messages import Exit
from supervised_loops.testing import virtual_time

EXACT = ExponentialBackoff(jitter=False)


class Tracing(Supervisor):
    """Notes every hook call in a journal."""

    def __init__(self, journal: Journal, *children: Any, **settings: Any) -> None:
        super().__init__(*children, **settings)
        self.journal = journal

    async def before_start(self) -> None:
        self.journal.note("before_start")

    async def after_stop(self) -> None:
        self.journal.note("after_stop")

    def should_retry(self, child: Child, error: BaseException, attempt: int) -> bool | None:
        self.journal.note(f"should_retry {child.name} {type(error).__name__} {attempt}")
        return None

    async def on_child_failure(self, child: Child, error: BaseException) -> None:
        self.journal.note(f"on_child_failure {child.name} {error}")

    async def on_child_exit(self, child: Child, exit: Exit) -> None:
        self.journal.note(f"on_child_exit {child.name} {exit.kind.value}")

    def decide(self, child: Child, error: BaseException) -> Directive | str | None:
        answer = super().decide(child, error)
        self.journal.note(f"decide {child.name} -> {Directive(answer).value}")
        return answer


def traced_probe(journal: Journal, name: str) -> Probe:
    probe = Probe(journal, name, handler=False)

    @probe.loop.error
    async def handler(error: BaseException) -> None:
        journal.note(f"handler {name} {error}")

    return probe


@virtual_time()
async def test_hooks_run_in_the_documented_order_for_a_failure_and_a_restart() -> None:
    journal = Journal()
    a = traced_probe(journal, "a")
    tree = Tracing(journal, child(a.loop), name="app")
    await tree.start()
    await asyncio.sleep(0.5)
    a.fail_next(Boom("bad"))
    a.loop.run_now()
    await asyncio.sleep(0.1)
    await tree.stop()
    assert journal.take() == [
        "before_start",
        "start a",
        "fail a",
        "should_retry a Boom 1",
        "handler a bad",
        "stop a",
        "on_child_failure a bad",
        "on_child_exit a failed",
        "decide a -> restart",
        "start a",
        "stop a",
        "after_stop",
    ]


@virtual_time()
async def test_normal_and_cancelled_exits_reach_on_child_exit_but_not_decide() -> None:
    journal = Journal()
    a = traced_probe(journal, "a")
    tree = Tracing(journal, child(a.loop, restart="transient"), name="app")
    await tree.start()
    a.loop.stop()
    await asyncio.sleep(0.1)
    await tree.stop()
    assert journal.take() == [
        "before_start",
        "start a",
        "stop a",
        "on_child_exit a normal",
        "after_stop",
    ]


@virtual_time()
async def test_should_retry_can_retry_an_error_the_loop_would_escalate(clock: Any) -> None:
    attempts: list[float] = []

    class Forgiving(Supervisor):
        backoff = EXACT

        def should_retry(self, child: Child, error: BaseException, attempt: int) -> bool:
            return attempt <= 2

    @loop(seconds=100)
    async def work() -> None:
        attempts.append(asyncio.get_running_loop().time())
        raise Boom("always")

    @work.error
    async def quiet(error: BaseException) -> None:
        pass

    tree = Forgiving(child(work, restart="temporary"), name="app")
    await tree.start()
    await asyncio.sleep(10)
    assert attempts == [0.0, 2.0, 6.0]  # two retries, 2 s then 4 s apart, then it failed
    assert tree.which_children() == []  # temporary: gone after failing
    await tree.stop()


@virtual_time()
async def test_should_retry_can_refuse_a_whitelisted_error() -> None:
    class Impatient(Supervisor):
        def should_retry(self, child: Child, error: BaseException, attempt: int) -> bool:
            return False

    journal = Journal()
    a = Probe(journal, "a")
    tree = Impatient(child(a.loop), name="app")
    await tree.start()
    a.fail_next(ConnectionError("reset"))
    a.loop.run_now()
    await asyncio.sleep(0.1)
    assert [type(e) for e in a.handled] == [ConnectionError]
    assert a.loop.status().restarts == 1
    await tree.stop()


@pytest.mark.parametrize(
    ("level", "expected"),
    [("loop", 1.0), ("spec", 2.0), ("supervisor", 3.0), ("hook", 4.0), ("none", None)],
)
@virtual_time()
async def test_the_retry_backoff_comes_from_the_loop_then_spec_then_supervisor_or_hook(
    level: str, expected: float | None
) -> None:
    delays: list[float] = []
    tries: list[float] = []

    class Chooser(Supervisor):
        def backoff_for(self, child: Child) -> ExponentialBackoff | None:
            if level == "hook":
                return ExponentialBackoff(base=2.0, jitter=False)
            return super().backoff_for(child)

    @loop(
        seconds=1000,
        backoff=ExponentialBackoff(base=0.5, jitter=False) if level == "loop" else None,
    )
    async def flaky() -> None:
        tries.append(asyncio.get_running_loop().time())
        if len(tries) == 1:
            raise ConnectionError("reset")

    spec_backoff = ExponentialBackoff(base=1.0, jitter=False) if level == "spec" else None
    tree = Chooser(
        child(flaky, backoff=spec_backoff),
        backoff=ExponentialBackoff(base=1.5, jitter=False) if level == "supervisor" else None,
        name="app",
    )
    async with tree:
        await asyncio.sleep(2000)
    delays = [tries[1] - tries[0]]
    if expected is None:
        assert 0.0 <= delays[0] <= 2.0  # discord's default: uniform(0, 2) for the first retry
    else:
        assert delays == [expected]


class Exploding(Supervisor):
    """Raises from the hook named ``where``."""

    def __init__(self, where: str, *children: Any, **settings: Any) -> None:
        super().__init__(*children, **settings)
        self.where = where

    def _boom(self, hook: str) -> None:
        if hook == self.where:
            raise Boom(f"{hook} exploded")

    async def before_start(self) -> None:
        self._boom("before_start")

    async def after_stop(self) -> None:
        self._boom("after_stop")

    def should_retry(self, child: Child, error: BaseException, attempt: int) -> bool | None:
        self._boom("should_retry")
        return None

    def backoff_for(self, child: Child) -> ExponentialBackoff | None:
        self._boom("backoff_for")
        return None

    async def on_child_failure(self, child: Child, error: BaseException) -> None:
        self._boom("on_child_failure")

    async def on_child_exit(self, child: Child, exit: Exit) -> None:
        self._boom("on_child_exit")

    def decide(self, child: Child, error: BaseException) -> Directive | str | None:
        self._boom("decide")
        return "bogus" if self.where == "decide_answer" else None

    async def handle_message(self, message: Any) -> Any:
        self._boom("handle_message")


TRIGGERS = {
    "after_stop": "stop",
    "should_retry": "error",
    "backoff_for": "oserror",
    "on_child_failure": "error",
    "on_child_exit": "normal",
    "decide": "error",
    "decide_answer": "error",
    "handle_message": "message",
}


@pytest.mark.parametrize("where", sorted(TRIGGERS))
@virtual_time()
async def test_an_error_raised_in_any_hook_fails_the_supervisor_and_is_logged_once(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "supervised_loops")
    journal = Journal()
    a = Probe(journal, "a")
    inner = Exploding(where, child(a.loop), name="inner")
    root = Supervisor(inner, max_restarts=0, name="root")
    await root.start()
    trigger = TRIGGERS[where]
    if trigger == "error":
        a.fail_next(Boom("child broke"))
        a.loop.run_now()
    elif trigger == "oserror":
        a.fail_next(ConnectionError("reset"))
        a.loop.run_now()
    elif trigger == "normal":
        a.loop.stop()
    elif trigger == "message":
        inner.tell("hello")
    else:
        inner.tell(Stop())
    await asyncio.sleep(0.1)
    assert not inner.is_running()
    assert inner.failed()
    hook = "decide" if where == "decide_answer" else where
    expected = f"Boom: {hook} exploded"
    if where == "decide_answer":
        expected = (
            "ValueError: 'decide()' must be one of 'restart', 'retry', 'stop', 'escalate', "
            "'quarantine' (got 'bogus')"
        )
    assert inner.status().last_error == expected
    reports = [r for r in caplog.records if r.getMessage().startswith("hook ")]
    assert [r.getMessage() for r in reports] == [f"hook {hook} of supervisor 'root/inner' raised"]
    # The failure climbs: root (max_restarts=0) fails too, with inner's error as cause.
    with pytest.raises(RestartIntensityExceeded) as caught:
        await root.wait()
    assert describe(caught.value.__cause__) == expected
    await root.stop()


@virtual_time()
async def test_an_error_in_before_start_fails_the_start_and_starts_no_child() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Exploding("before_start", child(a.loop), name="app")
    with pytest.raises(Boom, match=exactly("before_start exploded")):
        await tree.start()
    assert journal.take() == []
    assert tree.failed()
    assert not tree.is_running()


@virtual_time()
async def test_an_error_in_children_fails_the_start_at_once() -> None:
    class Broken(Supervisor):
        def children(self) -> Iterable[ChildSpec | Actor]:
            raise Boom("no children today")

    with pytest.raises(Boom, match=exactly("no children today")):
        await Broken(name="app").start()


@virtual_time()
async def test_a_hook_may_call_the_supervisors_own_verbs() -> None:
    journal = Journal()
    a, b = Probe(journal, "a"), Probe(journal, "b")

    class Reacting(Supervisor):
        async def on_child_failure(self, child: Child, error: BaseException) -> None:
            await self.restart_child("b")  # from inside its own task: no deadlock

    tree = Reacting(child(a.loop), child(b.loop), name="app")
    await tree.start()
    journal.take()
    a.fail_next(Boom("x"))
    a.loop.run_now()
    await asyncio.sleep(0.1)
    assert journal.take() == ["fail a", "stop a", "stop b", "start b", "start a"]
    await tree.stop()


@virtual_time()
async def test_cancel_interrupts_a_hook_that_blocks_and_the_tree_still_stops() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    entered = asyncio.Event()

    class Slow(Supervisor):
        async def on_child_exit(self, child: Child, exit: Exit) -> None:
            entered.set()
            await asyncio.sleep(3600)

    tree = Slow(child(a.loop), name="app")
    await tree.start()
    a.loop.stop()
    await entered.wait()
    assert tree.status().state is State.RUNNING
    await tree.ask(Cancel())
    assert asyncio.get_running_loop().time() == 0.0
    assert not tree.is_running()
    assert not tree.failed()


@virtual_time()
async def test_a_hook_may_stop_its_supervisor_but_not_wait_for_its_end() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    refused: list[str] = []

    class GiveUp(Supervisor):
        async def on_child_exit(self, child: Child, exit: Exit) -> None:
            try:
                await self.wait()
            except RuntimeError as error:
                refused.append(str(error))
            await self.stop()  # returns at once; the shutdown follows this hook

    tree = GiveUp(child(a.loop, restart="transient"), name="app")
    await tree.start()
    a.loop.stop()
    await tree.wait()
    assert refused == ["supervisor 'app' cannot wait for its own end from its own task"]
    assert tree.status().state is State.STOPPED


def test_each_hook_is_defined_once_by_the_supervisor_the_machinery_calls_it_through() -> None:
    # The machinery (core, shutdown, restarts, engine) declares no hook of its
    # own for the face to override: it calls them through ``_hooks``, which
    # is the supervisor itself, whose class is their one definition.
    from supervised_loops.supervision import core, engine, restarts, shutdown
    from supervised_loops.supervision.hooks import SupervisorHooks

    hooks = [
        name
        for name in vars(SupervisorHooks)
        if callable(vars(SupervisorHooks)[name]) and not name.startswith("__")
    ]
    assert sorted(hooks) == [
        "_declared",
        "after_stop",
        "backoff_for",
        "before_start",
        "decide",
        "on_child_exit",
        "on_child_failure",
        "should_retry",
    ]
    machinery = (
        core.SupervisorCore,
        shutdown.SupervisorShutdown,
        restarts.SupervisorRestarts,
        engine.SupervisorEngine,
    )
    for name in hooks:
        assert [cls.__name__ for cls in machinery if name in vars(cls)] == []
        assert name in vars(Supervisor)
    tree = Supervisor(name="app")
    assert tree._hooks is tree
