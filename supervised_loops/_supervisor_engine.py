"""The engine of a Supervisor: its task, and how it starts, restarts and stops children.

:class:`SupervisorEngine` is the mechanism; :class:`supervised_loops.Supervisor`
is its only subclass and public face (settings, hooks, the API). The module
follows the order of OTP's ``supervisor.erl``: start, exits and restarts,
shutdown, intensity and reporting.

One task per supervisor does everything that changes the tree: starting
children, reacting to their exits, running the dynamic verbs
(``start_child``, ...), calling the hooks. Exits, verbs and timers are queued
to it and handled one at a time, in arrival order, so two of them never race
(a ``terminate_child`` never meets a half-done ``one_for_all`` restart).
Control messages (``Stop``, ``Cancel``, ``GetStatus``) are handled at once in
the sender's call, as for every actor: they only set flags and wake the task.

Cancellation: every await of the task goes through :meth:`_idle` or
:meth:`_call_hook`, which absorb a cancellation of the task and turn it into
``Cancel`` (shut the children down urgently). A cancellation nobody announced
with ``Cancel`` is re-raised once the children are down, so the task still
ends cancelled: shutdown order and budgets hold even for a stray
``task.cancel()``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

from ._child import Child
from ._intensity import RestartWindow
from .actor import Actor
from .backoff import ExponentialBackoff
from .child_spec import (
    INFINITY,
    AutoShutdown,
    ChildSpec,
    Directive,
    Quarantine,
    RestartType,
    Strategy,
)
from .errors import ActorStopped, ChildStartFailed, RestartIntensityExceeded
from .events import (
    ActorFailed,
    ActorStarted,
    ChildRestarted,
    Escalated,
    IntensityExceeded,
    Quarantined,
    RetryScheduled,
    Unkillable,
    describe,
)
from .events import ActorStopped as ActorStoppedEvent
from .messages import Ack, Cancel, Exit, ExitKind, State, Stop

logger = logging.getLogger("supervised_loops")

#: A supervisor cancelled by its parent keeps this share of the time its
#: parent gives it (at most _MARGIN_CAP seconds) to report and end: its own
#: children's hard limits are cut to fit in the rest, so the parent never
#: mistakes a supervisor that is busy cancelling for an unkillable one.
_MARGIN_SHARE = 0.1
_MARGIN_CAP = 1.0

_DEFAULT_BACKOFF = ExponentialBackoff()
_DEFAULT_QUARANTINE = Quarantine()

# Queue items: ("exit", child, run id, exit) | ("call", coroutine function,
# future) | ("timer", child, kind).
_Item = tuple[Any, ...]


def _as_spec(value: ChildSpec | Actor) -> ChildSpec:
    if isinstance(value, ChildSpec):
        return value
    if isinstance(value, Actor):
        return ChildSpec(value)
    raise TypeError(f"a child must be a ChildSpec or an Actor (got {value!r})")


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A verb whose caller stopped waiting: its error must not be reported by
    # asyncio as "never retrieved"; the caller chose not to see it.
    if not future.cancelled():
        future.exception()


def _exit_reason(exit: Exit) -> str:
    if exit.kind is ExitKind.FAILED:
        assert exit.error is not None
        return describe(exit.error)
    return "exited" if exit.kind is ExitKind.NORMAL else "cancelled"


class SupervisorEngine(Actor):
    """Runs a Supervisor (internal base class of :class:`~supervised_loops.Supervisor`)."""

    _is_supervisor: ClassVar[bool] = True

    _strategy: Strategy
    _max_restarts: int
    _max_seconds: float
    _auto_shutdown: AutoShutdown
    _backoff_default: ExponentialBackoff | None
    _quarantine_default: Quarantine | None
    _given: tuple[ChildSpec, ...]

    def _reset_engine(self) -> None:
        self._children: list[Child] = []
        self._by_name: dict[str, Child] = {}
        self._by_actor: dict[Actor, Child] = {}
        self._task: asyncio.Task[None] | None = None
        self._state = State.IDLE
        self._ready: asyncio.Future[bool] | None = None
        self._ended: asyncio.Future[Exit] | None = None
        self._restart_count = 0
        self._failure_count = 0
        self._last_error: BaseException | None = None
        self._wake_callback: Callable[[Any], None] = lambda _future: self._wake()
        self._new_run()

    def _new_run(self) -> None:
        self._queue: collections.deque[_Item] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._stop_requested = False
        self._cancelling = False
        self._cancel_sent = False  # our task was cancelled by us (Cancel during a hook)
        self._cancelled_from_outside = False
        self._in_hook = False
        self._auto_stop = False
        self._failure: BaseException | None = None
        self._cancel_deadline: float | None = None
        self._acks_end: list[tuple[Any, asyncio.Future[Any]]] = []
        self._intensity = RestartWindow(self._max_restarts, self._max_seconds)

    # -- what the public face provides (hooks; see supervisor.py) ---------------

    def _declared(self) -> Iterable[ChildSpec | Actor]:
        raise NotImplementedError

    async def before_start(self) -> None:
        raise NotImplementedError

    async def after_stop(self) -> None:
        raise NotImplementedError

    def should_retry(self, child: Child, error: BaseException, attempt: int) -> bool | None:
        raise NotImplementedError

    def backoff_for(self, child: Child) -> ExponentialBackoff | None:
        raise NotImplementedError

    async def on_child_failure(self, child: Child, error: BaseException) -> None:
        raise NotImplementedError

    async def on_child_exit(self, child: Child, exit: Exit) -> None:
        raise NotImplementedError

    def decide(self, child: Child, error: BaseException) -> Directive | str | None:
        raise NotImplementedError

    # -- children: adoption ------------------------------------------------------

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

    def _adopt(self, spec: ChildSpec) -> Child:
        record = Child(spec)
        actor = spec.actor
        actor._parent = self
        actor._name = spec.name  # the spec's name is the child's name, in paths too
        policy = spec.quarantine or self._quarantine_default
        if policy is not None:
            record._window = RestartWindow(policy.max_restarts, policy.max_seconds)
        self._children.append(record)
        self._by_name[spec.name] = record
        self._by_actor[actor] = record
        return record

    def _adopt_declared(self) -> None:
        """Rebuild the child list from the declaration (at each start, as OTP's init)."""
        specs = [_as_spec(item) for item in self._declared()]
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
            if record.actor not in actors and record.actor._parent is self:
                record.actor._parent = None
        self._children = []
        self._by_name = {}
        self._by_actor = {}
        for spec in specs:
            self._adopt(spec)

    def _remove(self, record: Child) -> None:
        if record._removed:
            return
        record._removed = True
        record._cancel_timer()
        self._children.remove(record)
        del self._by_name[record.name]
        del self._by_actor[record.actor]
        if record.actor._parent is self:
            record.actor._parent = None

    # -- the run ---------------------------------------------------------------------

    def _launch(self, *, restart: bool) -> asyncio.Task[None]:
        task = self._task
        if task is not None and not task.done():
            raise RuntimeError(f"supervisor {self.path!r} is already running; stop() it first")
        event_loop = asyncio.get_running_loop()
        self._adopt_declared()  # may raise: a bad declaration fails the start at once
        self._event_loop = event_loop
        self._new_run()
        if restart:
            self._restart_count += 1
        self._state = State.STARTING
        self._ready = event_loop.create_future()
        self._ended = event_loop.create_future()
        task = event_loop.create_task(self._runner(), name=f"supervisor:{self.path}")
        self._task = task
        task.add_done_callback(self._finished)
        return task

    def _start_supervised(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool
    ) -> None:
        self._launch(restart=restart)

    def _halted(self) -> bool:
        return self._stop_requested or self._failure is not None or self._auto_stop

    async def _runner(self) -> None:
        self._emit(ActorStarted)
        try:
            if not self._halted():
                await self._call_hook("before_start", self.before_start)
            if not self._halted():
                await self._start_initial()
            if not self._halted():
                self._state = State.RUNNING
                self._set_ready(True)
                await self._serve()
        except asyncio.CancelledError:  # a safety net: every await absorbs its own
            self._absorb_cancel()
        self._set_ready(False)
        self._state = State.STOPPING
        await self._shutdown_children()
        await self._call_hook("after_stop", self.after_stop)
        self._end_run()
        failure = self._failure
        if failure is not None:
            self._state = State.FAILED
            raise failure
        if self._cancelling:
            self._state = State.CANCELLED
            raise asyncio.CancelledError
        self._state = State.STOPPED

    def _set_ready(self, ready: bool) -> None:
        future = self._ready
        if future is not None and not future.done():
            future.set_result(ready)

    async def _serve(self) -> None:
        queue = self._queue
        while not self._halted():
            if queue:
                await self._process(queue.popleft())
            elif self._inbox:
                await self._drain()
            else:
                await self._idle()

    async def _process(self, item: _Item) -> None:
        kind = item[0]
        if kind == "exit":
            await self._child_exited(item[1], item[2], item[3])
        elif kind == "call":
            function, future = item[1], item[2]
            try:
                result = await function()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)
        else:
            await self._timer_fired(item[1], item[2])

    def _end_run(self) -> None:
        for record in self._children:
            record._cancel_timer()
        while self._queue:
            item = self._queue.popleft()
            if item[0] == "call" and not item[2].done():
                item[2].set_exception(ActorStopped(self.path, "a supervisor verb"))
        self._discard_inbox()

    def _finished(self, task: asyncio.Task[None]) -> None:
        """After the task has ended: answer, tell the subscribers and the parent."""
        if task.cancelled():
            exit = Exit(ExitKind.CANCELLED)
            if self._state is not State.CANCELLED:
                self._state = State.CANCELLED  # cancelled before its first step
        else:
            error = task.exception()  # also marks it retrieved: it was logged already
            exit = Exit(ExitKind.NORMAL) if error is None else Exit(ExitKind.FAILED, error)
            if error is not None:
                self._failure_count += 1
                self._last_error = error
                self._state = State.FAILED
        self._set_ready(False)
        for message, future in self._acks_end:
            if not future.done():
                future.set_result(Ack(message, 0, None))
        self._acks_end.clear()
        ended = self._ended
        if ended is not None and not ended.done():
            ended.set_result(exit)
        if exit.kind is ExitKind.FAILED:
            assert exit.error is not None
            self._emit(ActorFailed, error=describe(exit.error))
        else:
            self._emit(ActorStoppedEvent, cancelled=exit.kind is ExitKind.CANCELLED)
        parent = self._parent
        if parent is not None:
            parent._on_child_exit(self, exit)

    # -- waiting, and cancellation ----------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _idle(self) -> None:
        """Wait until woken (an exit, a verb, a message, a flag, a timer)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        except asyncio.CancelledError:
            self._absorb_cancel()
        finally:
            self._waiter = None

    def _absorb_cancel(self) -> None:
        """Take a cancellation of our task as Cancel; remember to end cancelled."""
        task = self._task
        if self._cancel_sent:
            self._cancel_sent = False
            if task is not None:
                task.uncancel()  # ours, for Cancel during a hook: nothing to re-raise
        else:
            self._cancelled_from_outside = True
        self._stop_requested = True
        self._cancelling = True

    async def _call_hook(self, name: str, hook: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Await a user hook in our task; an error it raises fails the supervisor."""
        self._in_hook = True
        try:
            await hook(*args)
        except asyncio.CancelledError as cancelled:
            task = self._task
            if task is not None and task.cancelling() == 0 and not self._cancel_sent:
                self._hook_failed(name, cancelled)  # raised by the hook, not a cancellation
            else:
                self._absorb_cancel()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self._hook_failed(name, error)
        finally:
            self._in_hook = False

    async def _drain(self) -> None:
        self._in_hook = True
        try:
            await self._drain_inbox()
        except asyncio.CancelledError:
            self._absorb_cancel()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:
            self._hook_failed("handle_message", error)
        finally:
            self._in_hook = False

    def _hook_failed(self, name: str, error: BaseException) -> None:
        """Report an error raised by a hook once, and fail the supervisor with it."""
        logger.error("hook %s of supervisor %r raised", name, self.path, exc_info=error)
        if self._failure is None and self.is_running():
            self._failure = error
            self._emit(Escalated, error=describe(error))
            self._wake()

    def _cancel_now(self) -> None:
        """Cancel: urgent shutdown; interrupt a hook that is running."""
        self._stop_requested = True
        self._cancelling = True
        task = self._task
        if self._in_hook and not self._cancel_sent and task is not None and not task.done():
            self._cancel_sent = True
            task.cancel()
        self._wake()

    # -- start -------------------------------------------------------------------------

    async def _start_initial(self) -> None:
        """Start the children in order, each once the previous one is ready.

        A child that fails before it is ready fails the start (as in OTP): the
        children already started are stopped, and the supervisor fails with
        :class:`ChildStartFailed`.
        """
        for record in list(self._children):
            if self._halted():
                return
            if record._removed:
                continue
            if await self._start(record, restart=False) is False:
                exit = await self._exit_of(record)
                if exit is not None and exit.kind is ExitKind.FAILED:
                    await self._consume_exit(record)
                    assert exit.error is not None
                    error = ChildStartFailed(self.path, record.name)
                    error.__cause__ = exit.error
                    self._fail(error, f"could not start child {record.name!r}")
                    return

    async def _start(self, record: Child, *, restart: bool) -> bool | None:
        """Start a child and wait until it is ready.

        Returns:
            True when ready, False when it ended first (its exit is queued),
            None when the supervisor was told to stop meanwhile.
        """
        await self._consume_exit(record)
        actor = record.actor
        event_loop = asyncio.get_running_loop()
        record._run_id += 1
        record._running = True
        record._kept_down = False
        record._last_exit = None
        record._exit = event_loop.create_future()
        try:
            if actor.is_running():
                raise RuntimeError(
                    f"child {record.path!r} is already running; "
                    "a supervised actor is started by its supervisor"
                )
            actor._start_supervised(record._args, dict(record._kwargs), restart=restart)
        except Exception as error:
            logger.error("could not start child %r", record.path, exc_info=error)
            self._on_child_exit(actor, Exit(ExitKind.FAILED, error), force=True)
            return False
        waiting = asyncio.ensure_future(actor.wait_ready())
        waiting.add_done_callback(self._wake_callback)
        try:
            while not waiting.done():
                if self._halted():
                    return None
                await self._idle()
        finally:
            if not waiting.done():
                waiting.cancel()
        if waiting.cancelled() or waiting.exception() is not None:
            return False
        return bool(waiting.result())

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

    # -- exits and restarts -------------------------------------------------------------

    def _on_child_exit(self, child: Actor, exit: Any, *, force: bool = False) -> None:
        """A child's run ended (called from its task's done callback)."""
        record = self._by_actor.get(child)
        if record is None:
            return
        if record._abandoned and not force:
            record._abandoned = False
            logger.warning("child %r, reported unkillable, has ended after all", record.path)
            return
        record._running = False
        record._last_exit = exit
        future = record._exit
        if future is not None and not future.done():
            future.set_result(exit)
        if self.is_running():
            self._queue.append(("exit", record, record._run_id, exit))
            self._wake()

    async def _consume_exit(self, record: Child) -> None:
        """Deal with an exit not seen yet: count a failure, tell on_child_failure."""
        if record._running or record._handled >= record._run_id:
            return
        record._handled = record._run_id
        exit = record._last_exit
        if exit is not None and exit.kind is ExitKind.FAILED:
            assert exit.error is not None
            record._failure_count += 1
            record._last_error = exit.error
            await self._call_hook("on_child_failure", self.on_child_failure, record, exit.error)

    async def _child_exited(self, record: Child, run_id: int, exit: Exit) -> None:
        if record._removed or record._handled >= run_id or record._terminating:
            return
        if record.actor.is_running():
            # Started again by someone else (a Loop's own restart()): it runs,
            # still under this supervisor, and its next exit is ours to handle.
            record._handled = run_id
            record._run_id += 1
            record._running = True
            record._exit = asyncio.get_running_loop().create_future()
            return
        record._handled = run_id
        failed = exit.kind is ExitKind.FAILED
        if failed:
            assert exit.error is not None
            record._failure_count += 1
            record._last_error = exit.error
            await self._call_hook("on_child_failure", self.on_child_failure, record, exit.error)
        await self._call_hook("on_child_exit", self.on_child_exit, record, exit)
        if self._halted() or record._removed or record.actor.is_running():
            return  # a hook stopped, deleted or restarted it
        if failed:
            assert exit.error is not None
            directive = self._decide(record, exit)
            if directive is None:
                return  # decide raised: the supervisor is failing
        else:
            directive = self._policy(record, exit)
        await self._apply(record, directive, exit)

    def _policy(self, record: Child, exit: Exit) -> Directive:
        """The restart type's answer: OTP's rules, with a cancellation as OTP's shutdown."""
        restart = record.spec.restart
        if restart is RestartType.PERMANENT:
            return Directive.RESTART
        if restart is RestartType.TRANSIENT and exit.kind is ExitKind.FAILED:
            return Directive.RESTART
        return Directive.STOP

    def _decide(self, record: Child, exit: Exit) -> Directive | None:
        assert exit.error is not None
        try:
            answer = self.decide(record, exit.error)
            if answer is None:
                return self._policy(record, exit)
            return Directive.parse("decide()", answer)  # type: ignore[no-any-return]
        except Exception as error:
            self._hook_failed("decide", error)
            return None

    async def _apply(self, record: Child, directive: Directive, exit: Exit) -> None:
        if directive is Directive.RESTART:
            await self._restart(record, exit)
        elif directive is Directive.RETRY:
            self._schedule_retry(record, exit)
        elif directive is Directive.STOP:
            self._stay_down(record)
        elif directive is Directive.ESCALATE:
            self._escalate(record, exit)
        else:
            self._quarantine(record, exit)

    async def _restart(self, record: Child, exit: Exit) -> None:
        """Restart by the strategy, unless the child's budget or the intensity is spent."""
        now = asyncio.get_running_loop().time()
        window = record._window
        if window is not None:
            probation = record._probation_until
            if probation is not None and now < probation:
                self._quarantine(record, exit)  # a probe that failed: parked again at once
                return
            record._probation_until = None
            if window.add(now):
                self._quarantine(record, exit)
                return
        elif self._intensity.add(now):
            self._intensity_exceeded(record, exit)
            return
        await self._restart_group(record, _exit_reason(exit))

    async def _restart_group(self, record: Child, reason: str) -> None:
        """Stop the siblings the strategy takes along (latest first), start all in order."""
        children = self._children
        strategy = self._strategy
        if strategy is Strategy.ONE_FOR_ONE:
            group = [record]
        elif strategy is Strategy.ONE_FOR_ALL:
            group = list(children)
        else:
            group = children[children.index(record) :]
        # Siblings that are parked, abandoned or down for good stay as they are.
        chosen = [
            other
            for other in group
            if other is record
            or (
                not other._quarantined
                and not other._kept_down
                and not other._abandoned
                and (other.actor.is_running() or other._timer_kind == "retry")
            )
        ]
        for other in reversed(chosen):
            if other is record:
                continue
            await self._terminate(other)
            if other.spec.restart is RestartType.TEMPORARY:
                self._remove(other)  # OTP: a temporary child is never restarted
            if self._halted():
                return
        for other in chosen:
            if other._removed:
                continue
            why = reason if other is record else f"{strategy.value}: {record.name!r} restarted"
            other._cancel_timer()
            other._restart_count += 1
            other.actor._emit(ChildRestarted, reason=why)
            logger.info("supervisor %r restarts %r (%s)", self.path, other.path, why)
            await self._start(other, restart=True)
            if self._halted():
                return

    def _schedule_retry(self, record: Child, exit: Exit) -> None:
        """Restart the child after its backoff delay (Directive.RETRY)."""
        policy = self._backoff_of(record) or _DEFAULT_BACKOFF
        tracker = record._tracker
        if tracker is None or tracker.policy is not policy:
            tracker = record._tracker = policy.tracker()
        event_loop = asyncio.get_running_loop()
        delay = tracker.failure(event_loop.time())
        record._retry_exit = exit
        handle = event_loop.call_later(delay, self._timer_due, record, "retry")
        record._set_timer(handle, "retry")
        record.actor._emit(RetryScheduled, iteration=0, attempt=tracker.attempt, delay=delay)
        logger.info(
            "supervisor %r restarts %r in %.3f s (retry %d)",
            self.path,
            record.path,
            delay,
            tracker.attempt,
        )

    def _timer_due(self, record: Child, kind: str) -> None:
        if self.is_running() and not record._removed and record._timer_kind == kind:
            self._queue.append(("timer", record, kind))
            self._wake()

    async def _timer_fired(self, record: Child, kind: str) -> None:
        if record._removed or record._timer_kind != kind:
            return  # cancelled after it was queued
        record._timer = None
        record._timer_kind = None
        if kind == "retry":
            exit = record._retry_exit or Exit(ExitKind.NORMAL)
            record._retry_exit = None
            await self._restart(record, exit)
            return
        policy = record.spec.quarantine or self._quarantine_default or _DEFAULT_QUARANTINE
        record._quarantined = False
        if record._window is not None:
            record._window.clear()
        now = asyncio.get_running_loop().time()
        record._probation_until = now + policy.max_seconds
        record._restart_count += 1
        record.actor._emit(ChildRestarted, reason="probe")
        logger.info("supervisor %r probes quarantined child %r", self.path, record.path)
        await self._start(record, restart=True)

    def _stay_down(self, record: Child) -> None:
        record._kept_down = True
        significant = record.spec.significant
        if record.spec.restart is RestartType.TEMPORARY:
            self._remove(record)
        if significant:
            self._auto_shutdown_check(record)

    def _auto_shutdown_check(self, record: Child) -> None:
        mode = self._auto_shutdown
        if mode is AutoShutdown.ALL_SIGNIFICANT:
            for other in self._children:
                if other.spec.significant and (not other._kept_down or other.actor.is_running()):
                    return
        elif mode is not AutoShutdown.ANY_SIGNIFICANT:
            return
        logger.info(
            "supervisor %r shuts down: significant child %r has ended (%s)",
            self.path,
            record.name,
            mode.value,
        )
        self._auto_stop = True
        self._wake()

    def _quarantine(self, record: Child, exit: Exit) -> None:
        if record.spec.significant:
            self._escalate(record, exit)  # a significant child is never parked
            return
        policy = record.spec.quarantine or self._quarantine_default or _DEFAULT_QUARANTINE
        record._quarantined = True
        record._probation_until = None
        event_loop = asyncio.get_running_loop()
        handle = event_loop.call_later(policy.probe_every, self._timer_due, record, "probe")
        record._set_timer(handle, "probe")
        reason = _exit_reason(exit)
        record.actor._emit(Quarantined, error=reason, probe_in=policy.probe_every)
        logger.warning(
            "supervisor %r quarantines %r after %s; next probe in %s seconds",
            self.path,
            record.path,
            reason,
            policy.probe_every,
        )

    # -- shutdown -----------------------------------------------------------------------

    async def _shutdown_children(self) -> None:
        """Stop every child, latest started first, each within its own budget."""
        for record in reversed(list(self._children)):
            record._cancel_timer()
            if record._removed:
                continue
            await self._terminate(record)

    async def _terminate(self, record: Child) -> None:
        """Stop one child in three phases: Stop, Cancel after its grace, give up after its limit.

        Returns once the child has ended, or has been reported unkillable.
        """
        record._cancel_timer()
        actor = record.actor
        if record._abandoned or not actor.is_running():
            await self._consume_exit(record)
            return
        event_loop = asyncio.get_running_loop()
        if not record._running:  # running again after a restart we did not make
            record._handled = record._run_id
            record._run_id += 1
            record._running = True
            record._exit = event_loop.create_future()
        record._terminating = True
        try:
            await self._stop_then_cancel(record)
        finally:
            record._terminating = False
        await self._consume_exit(record)

    async def _stop_then_cancel(self, record: Child) -> None:
        actor = record.actor
        event_loop = asyncio.get_running_loop()
        grace = record.spec.shutdown
        if grace is not None and not self._cancelling:
            actor.tell(Stop())
            deadline = None if grace == INFINITY else event_loop.time() + float(grace)
            if await self._wait_exit(record, deadline, until_cancel=True):
                return
        began = event_loop.time()
        deadline = self._hard_deadline(record, began)
        if isinstance(actor, SupervisorEngine):
            actor._set_cancel_deadline(deadline)
        actor.tell(Cancel())
        if not await self._wait_exit(record, deadline, until_cancel=False):
            self._unkillable(record, event_loop.time() - began)

    def _hard_deadline(self, record: Child, now: float) -> float | None:
        timeout = record.spec.cancel_timeout
        deadline = None if timeout == INFINITY else now + float(timeout)
        limit = self._cancel_deadline
        if limit is not None:
            deadline = limit if deadline is None else min(deadline, limit)
        return deadline

    def _set_cancel_deadline(self, deadline: float | None) -> None:
        """Our parent gives us until ``deadline`` to end after its Cancel."""
        if deadline is None:
            return
        now = asyncio.get_running_loop().time()
        margin = min(max(0.0, deadline - now) * _MARGIN_SHARE, _MARGIN_CAP)
        self._cancel_deadline = deadline - margin

    async def _wait_exit(
        self, record: Child, deadline: float | None, *, until_cancel: bool
    ) -> bool:
        """Wait for the child's exit until ``deadline``; True if it ended.

        With ``until_cancel``, a Cancel of the supervisor ends the wait early
        (the grace phase gives way to the cancel phase).
        """
        future = record._exit
        if future is None or future.done():
            return True
        event_loop = asyncio.get_running_loop()
        timer = None if deadline is None else event_loop.call_at(deadline, self._wake)
        future.add_done_callback(self._wake_callback)
        try:
            while not future.done():
                if deadline is not None and event_loop.time() >= deadline:
                    return False
                if until_cancel and self._cancelling:
                    return False
                await self._idle()
        finally:
            future.remove_done_callback(self._wake_callback)
            if timer is not None:
                timer.cancel()
        return True

    def _unkillable(self, record: Child, waited: float) -> None:
        record._abandoned = True
        record._running = False
        record._handled = record._run_id
        record.actor._emit(Unkillable, waited=waited)
        logger.error(
            "child %r has not ended %.3f s after Cancel (does it swallow CancelledError?); "
            "supervisor %r goes on without it",
            record.path,
            waited,
            self.path,
        )

    # -- intensity and escalation -----------------------------------------------------

    def _intensity_exceeded(self, record: Child, exit: Exit) -> None:
        self._emit(IntensityExceeded, restarts=self._max_restarts, seconds=self._max_seconds)
        error = RestartIntensityExceeded(self.path, self._max_restarts, self._max_seconds)
        error.__cause__ = exit.error
        self._fail(
            error,
            f"exceeded its restart intensity (more than {self._max_restarts} restarts in "
            f"{self._max_seconds} seconds), the last for {record.name!r}: {_exit_reason(exit)}",
        )

    def _escalate(self, record: Child, exit: Exit) -> None:
        error = exit.error
        if error is None:
            error = RuntimeError(f"child {record.path!r} {_exit_reason(exit)}")
        self._fail(error, f"escalates the failure of {record.name!r}: {describe(error)}")

    def _fail(self, error: BaseException, why: str) -> None:
        """Fail the supervisor: its children are stopped, then the error goes up."""
        if self._failure is not None:
            return
        self._failure = error
        self._emit(Escalated, error=describe(error))
        parent = self._parent
        where = "the tree fails" if parent is None else f"failing up to {parent.path!r}"
        logger.error("supervisor %r %s; %s", self.path, why, where)
        self._wake()

    # -- hooks called from a child's task ----------------------------------------------

    def _child_should_retry(
        self, child: Actor, error: BaseException, attempt: int, default: bool
    ) -> bool:
        record = self._by_actor.get(child)
        if record is None:
            return default
        try:
            answer = self.should_retry(record, error, attempt)
        except Exception as hook_error:
            self._hook_failed("should_retry", hook_error)
            return False
        return default if answer is None else bool(answer)

    def _child_backoff(self, child: Actor) -> ExponentialBackoff | None:
        record = self._by_actor.get(child)
        return None if record is None else self._backoff_of(record)

    def _backoff_of(self, record: Child) -> ExponentialBackoff | None:
        try:
            chosen = self.backoff_for(record)
        except Exception as error:
            self._hook_failed("backoff_for", error)
            return None
        if chosen is not None and not isinstance(chosen, ExponentialBackoff):
            self._hook_failed(
                "backoff_for",
                TypeError(
                    f"backoff_for() must return an ExponentialBackoff or None (got {chosen!r})"
                ),
            )
            return None
        return chosen

    # -- verbs run in the task ------------------------------------------------------------

    async def _command(self, function: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``function`` in the supervisor's task, after what is queued before it."""
        if asyncio.current_task() is self._task:
            return await function()  # from a hook: queueing would wait for ourselves
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._queue.append(("call", function, future))
        self._wake()
        return await asyncio.shield(future)
