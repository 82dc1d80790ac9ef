"""The core of a Supervisor: its state, its children, and how its task waits.

A supervisor is a runnable actor (`core.runnable`: its runs, readiness and
exit report are every actor's) and a parent (`core.parent`). Its own parts,
one module each, lower never importing higher: the child record
(`supervision.child`), the pure restart decisions (`supervision.policy`),
this core (the run record, the typed queue items, adoption of children,
waiting and cancellation, starting one child, exit bookkeeping);
`supervision.shutdown` (stopping children in three phases);
`supervision.restarts` (carrying out what an exit means); and
`supervision.engine` (the task that runs it all). `supervision.face.Supervisor`
is the public face, and implements the hooks (`supervision.hooks`) the
machinery reaches through ``SupervisorCore._hooks``.

One task per supervisor does everything that changes the tree: starting
children, reacting to their exits, running the dynamic verbs
(``start_child``, ...), calling the hooks. Exits, verbs and timers are queued
to it and handled one at a time, in arrival order, so two of them never race
(a ``terminate_child`` never meets a half-done ``one_for_all`` restart).
Control messages (``Stop``, ``Cancel``, ``GetStatus``) are handled at once in
the sender's call, as for every actor: they only set flags and wake the task.

Cancellation: every await of the task goes through `SupervisorCore._idle`
or `SupervisorCore._call_hook`, which absorb a cancellation of the task
and turn it into ``Cancel`` (shut the children down urgently). A cancellation
nobody announced with ``Cancel`` is re-raised once the children are down, so
the task still ends cancelled: shutdown order and budgets hold even for a
stray ``task.cancel()``.

Exit reports: a child reports the end of each run from the run's last step
(`core.runnable.Runnable._end_in_task`), or else from its task's done
callback; `SupervisorCore._settle` waits for a report still on its way, so
no failure is missed. Each names the run that ended (the child's own run
id): a report about an older run is never news about the current one.

May import: ``core``, ``supervision.specs``, ``supervision.child``,
``supervision.hooks``, ``supervision.intensity`` and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

from .. import _validate
from ..backoff import ExponentialBackoff
from ..core.actor import Actor
from ..core.parent import Parent
from ..core.runnable import Runnable
from ..events import ChildRemoved, Escalated, describe
from ..messages import Exit, ExitKind, State
from .child import Child
from .hooks import SupervisorHooks, overridden
from .intensity import RestartWindow
from .run import ExitReport, Started, SupervisorRun
from .specs import AutoShutdown, ChildSpec, Quarantine, Strategy

logger = logging.getLogger("supervised_loops")


def _as_spec(value: ChildSpec | Actor) -> ChildSpec:
    if isinstance(value, ChildSpec):
        return value
    if not isinstance(value, Actor):
        _validate.type_error("child", "a ChildSpec or an Actor", value)
    return ChildSpec(value)


def _exit_reason(exit: Exit) -> str:
    if exit.kind is ExitKind.FAILED:
        assert exit.error is not None
        return describe(exit.error)
    return "exited" if exit.kind is ExitKind.NORMAL else "cancelled"


class SupervisorCore(Runnable, Parent):
    """State, children and waiting of a supervisor (internal; see the module docstring)."""

    _is_supervisor: ClassVar[bool] = True

    _strategy: Strategy
    _max_restarts: int
    _max_seconds: float
    _auto_shutdown: AutoShutdown
    _backoff_default: ExponentialBackoff | None
    _quarantine_default: Quarantine | None
    _given: tuple[ChildSpec, ...]

    _kind: ClassVar[str] = "supervisor"
    _run: SupervisorRun | None

    def _reset_engine(self, hooks: SupervisorHooks) -> None:
        # The hooks are called through this reference, never as methods of
        # the machinery: `Supervisor` passes itself (supervision/hooks.py).
        self._hooks = hooks
        self._children: list[Child] = []
        self._by_name: dict[str, Child] = {}
        self._by_actor: dict[Actor, Child] = {}
        self._reset_runs()
        self._wake_callback: Callable[[Any], None] = lambda _future: self._wake()

    def _new_record(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool
    ) -> SupervisorRun:
        window = RestartWindow(self._max_restarts, self._max_seconds)
        return SupervisorRun(args, kwargs, restart=restart, intensity=window)

    @property
    def _rec(self) -> SupervisorRun:
        """The current run (only called while one exists)."""
        run = self._run
        assert run is not None
        return run

    def _state_now(self) -> State:
        run = self._run
        return State.IDLE if run is None else run.state

    def _own_state(self) -> State:
        """Its status's state without walking its subtree (the dashboard's rows).

        ``stopping`` once a stop, a failure or an auto-shutdown halts it.
        """
        state = self._state_now()
        if state in (State.STARTING, State.RUNNING) and self._halted():
            return State.STOPPING
        return state

    # -- children: adoption --------------------------------------------------------------------

    def _check_spec(self, spec: ChildSpec, taken: dict[str, Child | ChildSpec]) -> None:
        actor = spec.actor
        ancestor: Actor | None = self
        while ancestor is not None:
            if ancestor is actor:
                raise ValueError(f"supervisor {self.path!r} cannot supervise itself or an ancestor")
            ancestor = ancestor._parent
        owner = actor._parent
        if owner is not None and owner is not self:
            raise ValueError(
                f"actor {actor.path!r} is already supervised by {owner.path!r}; "
                "an actor has one supervisor"
            )
        if spec.name in taken:
            raise ValueError(
                f"supervisor {self.path!r} already has a child named {spec.name!r}; "
                "names must be unique among siblings"
            )
        if spec.significant and self._auto_shutdown is AutoShutdown.NEVER:
            raise ValueError(
                f"child {spec.name!r} is significant but supervisor {self.path!r} has "
                "auto_shutdown='never'; set auto_shutdown to 'any_significant' or "
                "'all_significant'"
            )

    def _tree_children(self) -> Iterable[Actor]:
        return [record.actor for record in self._children]

    def _adopt(self, spec: ChildSpec) -> Child:
        record = Child(spec, spec.quarantine or self._quarantine_default)
        actor = spec.actor
        actor._attach(self, spec.name)  # the spec's name is the child's name, in paths too
        self._children.append(record)
        self._by_name[spec.name] = record
        self._by_actor[actor] = record
        return record

    def _adopt_declared(self) -> None:
        """Rebuild the child list from the declaration (at each start, as OTP's init)."""
        specs = [_as_spec(item) for item in self._hooks._declared()]
        taken: dict[str, Child | ChildSpec] = {}
        actors: set[Actor] = set()
        for spec in specs:
            if spec.actor in actors:
                raise ValueError(
                    f"actor {spec.actor.path!r} is given twice to supervisor {self.path!r}"
                )
            self._check_spec(spec, taken)
            taken[spec.name] = spec
            actors.add(spec.actor)
        for record in self._children:
            if record.actor not in actors:
                record.actor._detach(self)
        self._children = []
        self._by_name = {}
        self._by_actor = {}
        for spec in specs:
            self._adopt(spec)

    def _remove(self, record: Child) -> None:
        if not record._forget():
            return
        record.actor._emit(ChildRemoved)  # while its path is still in the tree
        self._children.remove(record)
        del self._by_name[record.name]
        del self._by_actor[record.actor]
        record.actor._detach(self)

    # -- waiting, and cancellation -------------------------------------------------------------

    def _halted(self) -> bool:
        run = self._rec
        return run.stop or run.error is not None or run.auto_stop

    def _admits_starts(self) -> bool:
        return self.is_running() and not self._halted()

    def _wake(self) -> None:
        run = self._run
        waiter = None if run is None else run.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _idle(self) -> None:
        """Wait until woken (an exit, a verb, a message, a flag, a timer)."""
        run = self._rec
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        run.waiter = waiter
        try:
            await waiter
        except asyncio.CancelledError:
            self._take_cancel()
        finally:
            run.waiter = None

    def _take_cancel(self) -> None:
        """Take a cancellation of our task as Cancel; remember to end cancelled.

        Unlike a Loop or a worker, a supervisor never lets a cancellation
        end its task before its children are down: ours (a Cancel during a
        hook) or not, it shuts down in order and ends cancelled.
        """
        run = self._rec
        if not self._absorb_cancel(run):
            run.stop = True  # a stray task.cancel() of a CancelledError raised at us
        run.cancelling = True

    async def _call_hook(self, name: str, hook: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Await a user hook in our task; an error it raises fails the supervisor."""
        run = self._rec
        run.in_hook = True
        try:
            await hook(*args)
        except asyncio.CancelledError as cancelled:
            if run.task.cancelling() == 0 and not run.cancel_sent:
                self._hook_failed(name, cancelled)  # raised by the hook, not a cancellation
            else:
                self._take_cancel()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self._hook_failed(name, error)
        finally:
            run.in_hook = False

    async def _drain(self) -> None:
        run = self._rec
        run.in_hook = True
        try:
            await self._drain_inbox()
        except asyncio.CancelledError:
            self._take_cancel()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self._hook_failed("handle_message", error)
        finally:
            run.in_hook = False

    def _hook_failed(self, name: str, error: BaseException) -> None:
        """Report an error raised by a hook once, and fail the supervisor with it."""
        logger.error("hook %s of supervisor %r raised", name, self.path, exc_info=error)
        run = self._run
        if run is not None and run.error is None and self.is_running():
            run.error = error
            self._emit(Escalated, error=describe(error))
            self._wake()

    def _cancel_now(self) -> None:
        """Cancel: urgent shutdown; interrupt a hook that is running."""
        run = self._rec
        run.stop = True
        run.cancelling = True
        task = run.task
        if run.in_hook and not run.cancel_sent and not task.done():
            run.cancel_sent = True
            task.cancel()
        self._wake()

    def _fail(self, error: BaseException, why: str) -> None:
        """Fail the supervisor: its children are stopped, then the error goes up."""
        run = self._rec
        if run.error is not None:
            return
        run.error = error
        self._emit(Escalated, error=describe(error))
        parent = self._parent
        where = "the tree fails" if parent is None else f"failing up to {parent.path!r}"
        logger.error("supervisor %r %s; %s", self.path, why, where)
        self._wake()

    # -- starting one child, and its exit reports ----------------------------------------------

    async def _start(self, record: Child, *, restart: bool, wait_ready: bool = True) -> Started:
        """Start a child and wait until it is ready (see `Started`).

        ``wait_ready=False`` returns once the child's run is created: nothing
        has to follow it in order (a one_for_one restart), so the exits and
        restarts of its siblings need not wait for its setup. If it ends
        before it is ready, its exit report comes through the queue as any.
        """
        if self._halted():
            return Started.HALTED  # stopping or failing: start nothing more
        if record._running or record._handled < record._run_id:  # else nothing to settle
            await self._settle(record)
        if not self._launch_child(record, restart=restart):
            return Started.ENDED
        if not wait_ready:
            return Started.LAUNCHED
        return await self._await_ready(record)

    def _launch_child(self, record: Child, *, restart: bool) -> bool:
        """Create the child's new run; False if it could not (a run failed at once, reported)."""
        actor = record.actor
        try:
            if not isinstance(actor, Runnable):
                raise TypeError(
                    f"{type(actor).__name__} cannot be supervised: "
                    "it does not implement _start_supervised"
                )
            if actor.is_running():
                raise RuntimeError(
                    f"child {record.path!r} is already running; "
                    "a supervised actor is started by its supervisor"
                )
            run_id = actor._start_supervised(record._args, dict(record._kwargs), restart=restart)
        except Exception as error:
            logger.error("could not start child %r", record.path, exc_info=error)
            run_id = record._run_id + 1  # an actor that cannot run has no ids of its own
            if isinstance(actor, Runnable):
                run_id = actor._reserve_run_id()
            record._begin_run(run_id)
            self._report(record, run_id, Exit(ExitKind.FAILED, error))
            return False
        record._begin_run(run_id)  # its exit future is made only if someone waits
        return True

    async def _await_ready(self, record: Child) -> Started:
        """Wait until the child's run just launched is ready (READY), or ended first (ENDED)."""
        actor = record.actor
        run = getattr(actor, "_run", None)
        if run is None or run.run_id != record._run_id:
            return Started.ENDED  # its start failed: no run of its own (see _launch_child)
        assert isinstance(actor, Runnable)
        # The run's own readiness future, not a task for wait_ready() (two
        # more event-loop cycles per start, the most of a loaded restart).
        known = run.readiness
        if known is not None:  # ready as it was created (a loop without before_loop)
            return Started.READY if known else Started.ENDED
        waiting = actor._ready_future()
        assert waiting is not None
        waiting.add_done_callback(self._wake_callback)
        try:
            while not waiting.done():
                if self._halted():
                    return Started.HALTED
                if record._has_exited():
                    return Started.ENDED  # ended without ever resolving its readiness
                await self._idle()
        finally:
            waiting.remove_done_callback(self._wake_callback)
        return Started.READY if waiting.result() else Started.ENDED

    def _starts_children_at_launch(self) -> bool:
        """Whether nothing runs before the first child starts: no ``before_start`` of the user's."""
        return not overridden(self._hooks, "before_start")

    async def wait_ready(self) -> bool:
        ready = await super().wait_ready()
        if ready and not self._rec.began:
            # Ready in the call that launched it (every child was): one cycle
            # lets the tree's tasks take their first step before returning.
            await asyncio.sleep(0)
        return ready

    def _start_at_launch(self, run: SupervisorRun) -> None:
        """Start the children in the call that launches the run, while each is ready at once.

        In order, each after the previous one reported ready (a Loop without
        ``before_loop``, a supervisor whose children all are); the first that
        is not ready at once (or could not start) is the last started here,
        and the task goes on from it (``run.launched`` counts them). When all
        were ready, so is the supervisor: its parent goes on in the same call.
        Nothing starts here while a previous run is still ending.
        """
        if run.previous is not None:
            return
        for record in self._children:
            if record._running or record._is_news(record._run_id):
                return  # an exit of an earlier run to deal with first: the task does
            run.launched += 1
            if not self._launch_child(record, restart=False):
                return
            child_run = getattr(record.actor, "_run", None)
            if child_run is None or child_run.readiness is not True:
                return
        run.state = State.RUNNING  # as the task would set it once its children are ready
        self._set_ready(run, True)

    @staticmethod
    def _latest_run_of(actor: Actor) -> int:
        return actor._latest_run_id() if isinstance(actor, Runnable) else 0

    async def _exit_of(self, record: Child) -> Exit | None:
        """Wait for the exit report of the child's current run (None: told to stop)."""
        future = record._exit
        if future is None:
            return None
        future.add_done_callback(self._wake_callback)
        try:
            while not future.done():
                if self._halted():
                    return None
                await self._idle()
        finally:
            future.remove_done_callback(self._wake_callback)
        return future.result()

    def _on_child_exit(self, child: Actor, run_id: int, exit: Exit) -> None:
        """Run ``run_id`` of a child ended (from its last step or its task's done callback)."""
        record = self._by_actor.get(child)
        if record is None:
            return
        if record._late_exit_of_abandoned():
            logger.warning("child %r, reported unkillable, has ended after all", record.path)
            return
        self._report(record, run_id, exit)

    def _report(self, record: Child, run_id: int, exit: Exit) -> None:
        if record._exited(run_id, exit) and self.is_running():
            self._rec.queue.append(ExitReport(record, run_id, exit))
            self._wake()

    def _on_child_ready(self, child: Actor) -> None:
        self._wake()  # the start waiting for it resumes at the next cycle

    async def _settle(self, record: Child) -> None:
        """Deal with the exit of a child that is not running, even if not reported yet."""
        if record._running and not record.actor.is_running():
            # Its task is done but the exit report (a done callback) is still
            # queued: wait for it, or its failure would never be reported.
            await self._wait_exit(record, None, until_cancel=False)
        exit = record._unseen_exit()  # no coroutine for the common case: nothing failed
        if exit is not None and exit.kind is ExitKind.FAILED:
            await self._failure_seen(record, exit)

    async def _consume_exit(self, record: Child) -> None:
        """Deal with an exit not seen yet: count a failure, tell on_child_failure."""
        exit = record._unseen_exit()
        if exit is not None and exit.kind is ExitKind.FAILED:
            await self._failure_seen(record, exit)

    async def _failure_seen(self, record: Child, exit: Exit) -> None:
        """Count the child's failed exit and tell on_child_failure."""
        assert exit.error is not None
        record._failed(exit.error)
        await self._call_hook("on_child_failure", self._hooks.on_child_failure, record, exit.error)

    async def _wait_exit(
        self, record: Child, deadline: float | None, *, until_cancel: bool
    ) -> bool:
        """Wait for the child's exit until ``deadline``; True if it ended.

        With ``until_cancel``, a Cancel of the supervisor ends the wait early
        (the grace phase gives way to the cancel phase).
        """
        if record._ended is None or record._has_exited():
            return True  # (no future made to learn it)
        future = record._exit
        assert future is not None
        event_loop = asyncio.get_running_loop()
        timer = None if deadline is None else event_loop.call_at(deadline, self._wake)
        future.add_done_callback(self._wake_callback)
        try:
            while not future.done():
                if deadline is not None and event_loop.time() >= deadline:
                    return False
                if until_cancel and self._rec.cancelling:
                    return False
                await self._idle()
        finally:
            future.remove_done_callback(self._wake_callback)
            if timer is not None:
                timer.cancel()
        return True
