"""The exit grid: every actor kind × every way a run can end × who started the run.

For each cell, a permanent child of a supervisor runs its second run (run id
2), started by the supervisor (a restart after run 1 crashed), by the child's
own ``Restart`` message, or by ``restart_child``; that run then ends one way.
The test checks the exact `Exit` the supervisor receives, that the report
names run 2, and what the supervisor does about it: restart the child, leave
it down, or adopt the run that replaced it.

A cell that cannot happen (a Loop's body returning is an iteration, not an
end; a supervisor has no body to raise after a Stop) is listed in `NOT_APPLICABLE`
with the reason, and a test checks that every cell is either run or listed.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from test_supervisor_support import Boom, settle

from supervised_loops import (
    Actor,
    Cancel,
    ChildStartFailed,
    Exit,
    ExitKind,
    Loop,
    Restart,
    RestartIntensityExceeded,
    Stop,
    Supervisor,
    Worker,
    child,
    current_worker,
    loop,
    worker,
)
from supervised_loops.testing import virtual_time


class BeforeError(Exception):
    """Raised by a before hook (before_loop, before_start)."""


class AfterError(Exception):
    """Raised by an after hook (after_loop, after_stop)."""


class HandlerError(Exception):
    """Raised by the error handler (a Loop's error hook, a supervisor's decide)."""


KINDS = ["loop", "overlapping loop", "worker", "supervisor"]
ENDINGS = [
    "returned",
    "count reached",
    "Stop",
    "Cancel",
    "Restart message",
    "whitelisted error after Stop",
    "non-whitelisted error",
    "unrequested CancelledError",
    "swallowed cancellation",
    "error in before hook",
    "error in after hook",
    "error in error handler",
]
STARTERS = ["supervisor", "own Restart message", "restart_child"]

NOT_APPLICABLE = {
    ("loop", "returned"): "a Loop's body returning ends an iteration; see count reached",
    ("overlapping loop", "returned"): "a Loop's body returning ends an iteration",
    ("worker", "count reached"): "a worker has no count",
    ("supervisor", "count reached"): "a supervisor has no count",
    ("worker", "error in before hook"): "a worker has no hooks",
    ("worker", "error in after hook"): "a worker has no hooks",
    ("worker", "error in error handler"): "a worker has no error handler",
    ("supervisor", "Restart message"): "a supervisor refuses Restart (UnhandledMessage)",
    ("supervisor", "whitelisted error after Stop"): "a supervisor runs no body that could raise",
    ("supervisor", "own Restart message"): "a supervisor refuses Restart (UnhandledMessage)",
}

# ending -> (exit kind, requested, error type or None, decision)
EXPECTED: dict[str, tuple[ExitKind, bool, type[BaseException] | None, str]] = {
    "returned": (ExitKind.NORMAL, False, None, "restarted"),
    "count reached": (ExitKind.NORMAL, False, None, "restarted"),
    "Stop": (ExitKind.NORMAL, True, None, "down"),
    "Cancel": (ExitKind.CANCELLED, True, None, "down"),
    "Restart message": (ExitKind.CANCELLED, True, None, "adopted"),
    "whitelisted error after Stop": (ExitKind.NORMAL, True, None, "down"),
    "non-whitelisted error": (ExitKind.FAILED, False, Boom, "restarted"),
    "unrequested CancelledError": (ExitKind.FAILED, False, asyncio.CancelledError, "restarted"),
    "swallowed cancellation": (ExitKind.CANCELLED, True, None, "down"),
    "error in before hook": (ExitKind.FAILED, False, BeforeError, "restarted"),
    "error in after hook": (ExitKind.FAILED, False, AfterError, "restarted"),
    "error in error handler": (ExitKind.FAILED, False, HandlerError, "restarted"),
}


class Levers:
    """What the child does next, set by the test; one-shot levers reset themselves."""

    def __init__(self) -> None:
        self.mode = "idle"
        self.crash_once = False
        self.fail_before = False
        self.fail_after = False
        self.fail_handler = False
        self.stray_hook = False
        self.swallow_hook = False


def _loop_subject(levers: Levers, *, overlap: bool, count: int | None) -> Loop[Any]:
    @loop(seconds=1, overlap=overlap, count=count, name="child")
    async def body() -> None:
        if levers.crash_once:
            levers.crash_once = False
            raise Boom("run 1 crashes")
        mode = levers.mode
        if mode == "raise":
            levers.mode = "idle"  # the restarted run runs well
            raise Boom("escalated")
        if mode == "stray":
            levers.mode = "idle"
            raise asyncio.CancelledError("raised by a library")
        if mode == "slow then OSError":
            await asyncio.sleep(5)
            raise OSError("transient, after the stop")
        if mode == "swallow":
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                return

    @body.before_loop
    async def before() -> None:
        if levers.fail_before:
            levers.fail_before = False
            raise BeforeError("before_loop")

    @body.after_loop
    async def after() -> None:
        if levers.fail_after:
            levers.fail_after = False
            raise AfterError("after_loop")

    @body.error
    async def handler(error: BaseException) -> None:
        if levers.fail_handler:
            levers.fail_handler = False
            raise HandlerError("error handler")

    return body


def _worker_subject(levers: Levers) -> Worker:
    async def work() -> None:
        me = current_worker()
        while True:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                if levers.mode == "swallow":
                    return
                raise
            if levers.crash_once:
                levers.crash_once = False
                raise Boom("run 1 crashes")
            mode = levers.mode
            if me.stopping:
                if mode == "OSError after stop":
                    raise OSError("transient, after the stop")
                return
            if mode == "return":
                levers.mode = "idle"  # the restarted run runs on
                return
            if mode == "raise":
                levers.mode = "idle"  # the restarted run runs well
                raise Boom("escalated")
            if mode == "stray":
                levers.mode = "idle"
                raise asyncio.CancelledError("raised by a library")

    return worker(work, name="child", cooperative_stop=True)


def _supervisor_subject(levers: Levers) -> Supervisor:
    @loop(seconds=1, name="inner")
    async def inner() -> None:
        if levers.crash_once:
            levers.crash_once = False
            raise Boom("run 1 crashes")
        if levers.mode == "raise":
            levers.mode = "idle"
            raise Boom("escalated")

    class Inner(Supervisor):
        max_restarts = 0
        auto_shutdown = "any_significant"

        async def before_start(self) -> None:
            if levers.fail_before:
                levers.fail_before = False
                raise BeforeError("before_start")

        async def after_stop(self) -> None:
            if levers.fail_after:
                levers.fail_after = False
                raise AfterError("after_stop")

        async def on_child_exit(self, child: Any, exit: Exit) -> None:
            if levers.stray_hook:
                levers.stray_hook = False
                raise asyncio.CancelledError("raised in a hook")
            if levers.swallow_hook:
                levers.swallow_hook = False
                try:
                    await asyncio.sleep(100)
                except asyncio.CancelledError:
                    pass

        def decide(self, child: Any, error: BaseException) -> Any:
            if levers.fail_handler:
                levers.fail_handler = False
                raise HandlerError("decide")
            return super().decide(child, error)

    return Inner(child(inner, restart="transient", significant=True), name="child")


class Recording(Supervisor):
    """Records every exit report: (run id, exit)."""

    max_restarts = 10
    max_seconds = 1000.0

    def __init__(self, *children: Any) -> None:
        super().__init__(*children, name="app")
        self.reports: list[tuple[int, Exit]] = []

    def _on_child_exit(self, child: Actor, run_id: int, exit: Exit) -> None:
        self.reports.append((run_id, exit))
        super()._on_child_exit(child, run_id, exit)


def _cells() -> list[tuple[str, str, str]]:
    cells = []
    for kind, ending, starter in itertools.product(KINDS, ENDINGS, STARTERS):
        if (kind, ending) in NOT_APPLICABLE or (kind, starter) in NOT_APPLICABLE:
            continue
        cells.append((kind, ending, starter))
    return cells


def test_every_cell_of_the_grid_is_run_or_said_not_to_apply() -> None:
    run = set(_cells())
    for kind, ending, starter in itertools.product(KINDS, ENDINGS, STARTERS):
        listed = (kind, ending) in NOT_APPLICABLE or (kind, starter) in NOT_APPLICABLE
        assert ((kind, ending, starter) in run) != listed
    assert set(EXPECTED) == set(ENDINGS)


async def _begin_second_run(
    tree: Recording, actor: Actor, levers: Levers, kind: str, starter: str, before_fails: bool
) -> None:
    if starter == "supervisor":
        levers.crash_once = True  # run 1 crashes; the supervisor starts run 2
        await asyncio.sleep(1.5)
    elif starter == "own Restart message":
        actor.tell(Restart())
        await settle()
    elif before_fails:
        with pytest.raises(ChildStartFailed):
            await tree.restart_child("child")
    else:
        await tree.restart_child("child")
    await settle()


async def _end(actor: Actor, levers: Levers, kind: str, ending: str) -> None:
    """Make the run in progress end the given way."""
    if ending == "returned":
        if kind == "worker":
            levers.mode = "return"
            await asyncio.sleep(1.5)
        else:  # the inner supervisor's significant child stops: auto-shutdown
            assert isinstance(actor, Supervisor)
            await actor.lookup("inner").ask(Stop())
    elif ending == "count reached":
        await asyncio.sleep(2.5)  # iterations at +0, +1 and +2 seconds
    elif ending == "Stop":
        await actor.ask(Stop())
    elif ending == "Cancel":
        await actor.ask(Cancel())
    elif ending == "Restart message":
        actor.tell(Restart())
    elif ending == "whitelisted error after Stop":
        if kind == "worker":
            levers.mode = "OSError after stop"
        else:
            levers.mode = "slow then OSError"
            await asyncio.sleep(1.5)  # the body is in its slow part
        actor.tell(Stop())
        await asyncio.sleep(6)
    elif ending == "non-whitelisted error":
        levers.mode = "raise"
        await asyncio.sleep(1.5)
    elif ending == "unrequested CancelledError":
        if kind == "supervisor":
            assert isinstance(actor, Supervisor)
            levers.stray_hook = True
            actor.lookup("inner").tell(Stop())
        else:
            levers.mode = "stray"
        await asyncio.sleep(1.5)
    elif ending == "swallowed cancellation":
        if kind == "supervisor":
            assert isinstance(actor, Supervisor)
            levers.swallow_hook = True
            actor.lookup("inner").tell(Stop())
            await asyncio.sleep(1)  # its hook is in its sleep
        else:
            levers.mode = "swallow"
            await asyncio.sleep(1.5)  # the body (or the worker) is in its sleep
        actor.tell(Cancel())
        await asyncio.sleep(1)
    elif ending == "error in after hook":
        levers.fail_after = True
        actor.tell(Stop())
        await asyncio.sleep(1)
    elif ending == "error in error handler":
        levers.fail_handler = True
        levers.mode = "raise"
        await asyncio.sleep(1.5)
    await settle()


@pytest.mark.parametrize(
    ("kind", "ending", "starter"), _cells(), ids=[" | ".join(cell) for cell in _cells()]
)
@virtual_time()
async def test_exit_grid(kind: str, ending: str, starter: str) -> None:
    levers = Levers()
    actor: Actor
    if kind in ("loop", "overlapping loop"):
        count = 3 if ending == "count reached" else None
        actor = _loop_subject(levers, overlap=kind == "overlapping loop", count=count)
    elif kind == "worker":
        actor = _worker_subject(levers)
    else:
        actor = _supervisor_subject(levers)
    tree = Recording(child(actor, restart="permanent"))
    await tree.start()
    before_fails = ending == "error in before hook"
    levers.fail_before = before_fails
    await _begin_second_run(tree, actor, levers, kind, starter, before_fails)
    record = tree.child("child")
    # Restarts made by the supervisor so far: the one that began run 2, if it did.
    restarts_before = 0 if starter == "own Restart message" else 1
    if not before_fails:
        assert record.restart_count == restarts_before
        assert actor._latest_run_id() == 2  # type: ignore[attr-defined]
        assert actor.is_running()
        await _end(actor, levers, kind, ending)
    levers.mode = "idle"
    await settle()

    expected_kind, requested, error_type, decision = EXPECTED[ending]
    if before_fails and starter == "restart_child":
        decision = "down"  # a failed restart_child keeps the child down
    if kind == "supervisor" and ending == "non-whitelisted error":
        error_type = RestartIntensityExceeded  # a failing child exceeds its intensity
    of_run_2 = [exit for run_id, exit in tree.reports if run_id == 2]
    assert len(of_run_2) == 1, tree.reports
    exit = of_run_2[0]
    assert (exit.kind, exit.requested) == (expected_kind, requested), exit
    if error_type is None:
        assert exit.error is None
    else:
        assert isinstance(exit.error, error_type), exit
    assert [run_id for run_id, _ in tree.reports] == sorted({run for run, _ in tree.reports})

    if decision == "restarted":
        assert actor.is_running()
        assert record.restart_count == restarts_before + 1
    elif decision == "adopted":
        assert actor.is_running()
        assert record.restart_count == restarts_before
    else:
        assert not actor.is_running()
        assert record.restart_count == restarts_before
    await tree.stop()
    assert not actor.is_running()
