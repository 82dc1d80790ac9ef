"""The runnable actor: one run machinery for Loops, workers and supervisors.

An actor kind differs from another only in what a run *does* (iterate a body
on a schedule, await one coroutine, supervise children). Everything around
that is here, once:

* **The run record** (`RunRecord`): the arguments, the task, the state, the
  readiness future, the stop and cancel requests, the escalated error and
  the **run id**. Every run gets a new id from its actor, whoever started
  it (``start()``, a supervisor, the actor's own ``Restart`` message,
  ``restart_child``), and the exit report names it: a parent can always
  tell a late report about an old run from news about the current one.
* **Launch** (`Runnable._launch`): a new run may be accepted while the
  previous one is still ending; its task waits for the previous task
  (`Runnable._await_previous`), so runs never overlap and each ends with its
  own flags.
* **Cancellation absorption** (`Runnable._absorb_cancel`): a cancellation
  somebody asked for becomes a clean end; one nobody asked for (a
  ``CancelledError`` raised by library code, ``Task.cancelling() == 0``) is
  a failure.
* **Readiness** (`Runnable._set_ready`, `Runnable.wait_ready`).
* **The exit report** (`Runnable._end_in_task`): from the run's last step,
  `core.exit.classify_exit` turns how the runner is about to end into an
  `Exit`, replies are answered, the parent is told which run ended and how:
  its step comes in the next event-loop cycle (a restart reaches the new
  run's body in two cycles, not three). The task's done callback
  (`Runnable._finished`) reports what a runner could not (a task cancelled
  before its first step, ``KeyboardInterrupt``), from the task's outcome.

Seams for later kinds of gating (a run that only proceeds while it holds a
lease, say) belong in the kind's runner, between `_await_previous` and its
work; a lost permit ends or pauses the work with a requested cancellation,
which this module already reports as a requested end, not a failure.

May import: ``core.actor``, ``core.parent``, ``core.exit``, ``core.replies``
and the pure top-level modules (``messages``, ``events``, ``backoff``, ``errors``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from ..backoff import ExponentialBackoff
from ..errors import ActorNotRunning
from ..events import ActorEnded, ActorFailed, CutShort, describe
from ..messages import Exit, ExitKind, State
from .actor import Actor
from .exit import classify_exit
from .replies import Pending, abandon, acknowledge, acknowledge_when_ready

if TYPE_CHECKING:
    from collections.abc import Coroutine

__all__ = [
    "DEFAULT_BACKOFF",
    "Pending",
    "RunRecord",
    "Runnable",
    "abandon",
    "acknowledge",
    "acknowledge_when_ready",
]

logger = logging.getLogger("supervised_loops")

#: `RunRecord.reporting` flags: the done callback is registered; the end is reported.
_CALLBACK = 1
_REPORTED = 2

#: The retry backoff of an actor with none of its own and no supervisor's:
#: discord.ext.tasks' (full jitter over 1 × 2^k seconds, capped at 2^10).
DEFAULT_BACKOFF = ExponentialBackoff()


class RunRecord:
    """What every run of every actor kind has (kinds extend it with their own slots).

    Attributes:
        args, kwargs: the arguments of this run.
        run_id: the run's number, unique per actor, increasing.
        restart: the run counts as a restart in the actor's status.
        task: the run's task (set right after the record is made).
        previous: the run still ending when this one was accepted.
        state: what the run is doing (`State`).
        readiness: True once ready, False if it ended first, None until then.
        ready: its future, made only when someone waits (~150 B per loop saved).
        began, ended: the task took its first step; the run has ended.
        stop, cancelling: a stop, a cancel was asked (a cancel implies a stop).
        cancel_sent: the task was cancelled by the actor itself (to preempt
            it), so its cancellation is to be absorbed, not propagated.
        error: the error the run escalated, if any.
        reporting: what is arranged for the exit report: `_CALLBACK` (the
            done callback is registered), `_REPORTED` (the runner reported
            from its last step; the callback only retrieves the outcome).
        finishing: when (event-loop time) the run's clean-up began (a Loop's
            ``after_loop``, a worker's coroutine unwinding after its Stop), or
            None: from then on requests no longer interrupt it, only
            `Runnable._cut_short` does.
        acks_end: asks answered when the run has ended (Stop, Cancel).
    """

    __slots__ = (
        "acks_end",
        "args",
        "began",
        "cancel_sent",
        "cancelling",
        "ended",
        "error",
        "finishing",
        "kwargs",
        "previous",
        "readiness",
        "ready",
        "reporting",
        "restart",
        "run_id",
        "state",
        "stop",
        "task",
    )

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> None:
        self.args = args
        self.kwargs = kwargs
        self.restart = restart
        self.run_id = 0
        self.task: asyncio.Task[None] = None  # type: ignore[assignment]  # set right after
        self.previous: RunRecord | None = None
        self.state = State.STARTING
        self.readiness: bool | None = None
        self.ready: asyncio.Future[bool] | None = None
        self.began = False
        self.ended = False
        self.stop = False
        self.cancelling = False
        self.cancel_sent = False
        self.error: BaseException | None = None
        self.finishing: float | None = None
        self.reporting = 0
        self.acks_end: Pending | None = None

    @property
    def failed(self) -> bool:
        """Whether the run escalated an error."""
        return self.error is not None

    def ending_or_replaced(self) -> bool:
        """Whether a new start may follow this run (it is ending or ended)."""
        return self.stop or self.cancelling or self.ended

    def add_end_ack(self, message: Any, reply: asyncio.Future[Any]) -> None:
        """Answer ``reply`` once the run has ended."""
        if self.acks_end is None:
            self.acks_end = []
        self.acks_end.append((message, reply))


class Runnable(Actor):
    """An actor whose life is a sequence of runs (base of Loop, Worker, Supervisor).

    A kind provides `_new_record` (its record type), ``_runner`` (the
    coroutine of one run) and, if it has replies of its own to settle when a
    run ends, `_run_ended`. The counters (`_failure_count`,
    `_restart_count`, `_last_error`) are the actor's, across runs.
    """

    __slots__ = ("_failure_count", "_last_error", "_noted", "_restart_count", "_run", "_runs")

    #: The prefix of the run tasks' names (``"loop:app/poller"``).
    _kind: ClassVar[str] = "actor"
    #: Whether every run reports its end even with no parent and no listener.
    #: A Loop says no: a mass start and cancel of plain discord.ext.tasks-style
    #: loops then costs no done callback per loop.
    _always_report: ClassVar[bool] = True

    _run: RunRecord | None

    def _reset_runs(self) -> None:
        """Set the run bookkeeping of a fresh actor (called by the kinds' constructors)."""
        self._run = None
        self._runs = 0
        self._failure_count = 0
        self._restart_count = 0
        self._last_error: BaseException | None = None
        self._noted: BaseException | None = None

    # -- what a kind provides -------------------------------------------------

    def _new_record(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool
    ) -> RunRecord:
        return RunRecord(args, kwargs, restart=restart)

    def _runner(self, run: Any) -> Coroutine[Any, Any, None]:
        raise NotImplementedError

    def _run_ended(self, run: Any, exit: Exit) -> None:
        """Settle the kind's own pending replies of a run that has ended."""

    # -- launching ----------------------------------------------------------------

    def _launch(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> Any:
        """Create a run, with a new run id, and its task; it begins once the previous run ended.

        Raises:
            RuntimeError: no event loop is running.
        """
        event_loop = asyncio.get_running_loop()
        previous = self._run
        run = self._new_record(args, kwargs, restart=restart)
        self._runs += 1
        run.run_id = self._runs
        if previous is not None and not previous.task.done():
            run.previous = previous
        self._run = run
        self._event_loop = event_loop
        run.task = event_loop.create_task(self._runner(run), name=f"{self._kind}:{self.path}")
        if self._always_report or self._parent is not None or self._hub is not None:
            self._report_when_done(run)
        return run

    def _start_supervised(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool
    ) -> int:
        """Begin a run on behalf of the supervisor; return its run id.

        Called only when the actor is not running. ``restart`` counts the run
        as a restart in the actor's status. Readiness: `wait_ready`.
        """
        run: RunRecord = self._launch(args, kwargs, restart=restart)
        return run.run_id

    def _latest_run_id(self) -> int:
        """The id of the latest run (0: never started)."""
        return self._runs

    def _reserve_run_id(self) -> int:
        """Use up a run id for a start that failed before any run began."""
        self._runs += 1
        return self._runs

    def _report_when_done(self, run: RunRecord) -> None:
        """Have `_finished` run once the run's task is done (once)."""
        if not run.reporting & _CALLBACK:
            run.reporting |= _CALLBACK
            run.task.add_done_callback(lambda _task: self._finished(run))

    async def _await_previous(self, run: RunRecord) -> None:
        """In the run's task: wait until the run before it has ended and reported.

        Waits even when that task is already done: its done callback (the
        exit report) is queued and must run before this run announces itself.
        """
        previous = run.previous
        if previous is not None:
            await asyncio.wait((previous.task,))
            run.previous = None

    def _view(self) -> Any:
        """The run the caller is looking at: an ending run, from inside its own task."""
        run = self._run
        previous = None if run is None else run.previous
        if previous is not None and not previous.task.done():
            try:
                current = asyncio.current_task()
            except RuntimeError:
                return run
            # Several runs may be queued (start, cancel, start, cancel, start
            # in one go): each waits for the one before, so walk the chain.
            while previous is not None and not previous.task.done():
                if previous.task is current:
                    return previous
                previous = previous.previous
        return run

    # -- cancellation, readiness, failures ---------------------------------------------

    def _absorb_cancel(self, run: RunRecord) -> bool:
        """Record a cancellation of the run's task; False if nobody asked for it."""
        task = run.task
        if task.cancelling() == 0:
            return False  # a CancelledError raised by library code: a failure
        run.stop = True
        if run.cancel_sent:
            # Ours, sent for a request already recorded (a Cancel, or a
            # worker's Stop): let the end of the run proceed in a clean task.
            run.cancel_sent = False
            task.uncancel()
        else:
            run.cancelling = True  # cancelled from outside: the run ends cancelled
        return True

    def _set_ready(self, run: RunRecord, reached: bool) -> None:
        """Resolve the run's readiness (once): True ready, False ended before."""
        if run.readiness is not None:
            return
        run.readiness = reached
        ready = run.ready
        if ready is not None and not ready.done():
            ready.set_result(reached)
        parent = self._parent
        if parent is not None:
            parent._on_child_ready(self)

    def _note(self, error: BaseException) -> None:
        """Count a failure, once per escalation (see `_retried`)."""
        if error is not self._noted:
            self._noted = error
            self._failure_count += 1
            self._last_error = error

    def _retried(self) -> None:
        """The failure just noted was retried: the same object raised again is a new failure."""
        self._noted = None

    def _backoff_or_parents(self, own: ExponentialBackoff | None) -> ExponentialBackoff:
        """The retry backoff: ``own``, else the supervisor's choice, else the default."""
        if own is not None:
            return own
        parent = self._parent
        chosen = None if parent is None else parent._child_backoff(self)
        return DEFAULT_BACKOFF if chosen is None else chosen

    def _should_retry(self, error: BaseException, attempt: int, default: bool) -> bool:
        """The parent's say on retrying a failed iteration (``default`` without one)."""
        parent = self._parent
        if parent is None:
            return default
        return parent._child_should_retry(self, error, attempt, default)

    def _refuse_orphan(self, message: Any, reply: asyncio.Future[Any] | None) -> bool:
        """Refuse a start by message under a supervisor that is not running; True if refused.

        A child started while its supervisor is stopped would run outside
        its tree: nobody would stop it at shutdown, and its after_loop would
        run only in asyncio's teardown. The supervisor is to be restarted
        first (which starts its children again).
        """
        parent = self._parent
        if parent is None or parent._admits_starts():
            return False
        reason = f"{parent.path} is stopped: restart it first"
        self._dead_letter(message, None, reason)
        if reply is not None and not reply.done():
            reply.set_exception(ActorNotRunning(self.path, message, reason))
        return True

    # -- clean-up that runs to its end -------------------------------------------------

    def _finishing_run(self) -> RunRecord | None:
        """The run whose clean-up is in progress (it may be the one a Restart replaced)."""
        run = self._run
        while run is not None:
            if run.finishing is not None and not run.task.done():
                return run
            run = run.previous
        return None

    def _cut_short(self) -> bool:
        """Interrupt a clean-up in progress (a hard shutdown limit, a forced shutdown).

        Requests (Cancel, Restart, a second Stop) never interrupt a clean-up
        once it has begun; this is the only way, kept for a supervisor's hard
        limit and for a forced shutdown. The cut is published as a
        `CutShort` event (``waited``: the seconds the clean-up had run) and
        logged as an error; the run ends cancelled.

        Returns:
            Whether a clean-up was in progress and has been cancelled.
        """
        run = self._finishing_run()
        if run is None or run.finishing is None:
            return False
        waited = run.task.get_loop().time() - run.finishing
        run.stop = True
        run.cancelling = True
        run.cancel_sent = True  # absorbed: the run ends cancelled, not failed
        run.task.cancel()
        logger.error(
            "%s %r: its clean-up was cut short after %.3f s (a hard limit or a forced shutdown)",
            self._kind,
            self.path,
            waited,
        )
        self._emit(CutShort, waited=waited)
        return True

    # -- the end of a run ---------------------------------------------------------------

    def _end_in_task(
        self, run: RunRecord, error: BaseException | None, *, cancelled: bool = False
    ) -> None:
        """Report the end of ``run`` from its task's last step: classify, answer, tell the parent.

        The runner then raises ``error``, ends cancelled (``cancelled``) or returns,
        awaiting nothing: whoever the report wakes runs later and finds the task done.
        """
        run.reporting |= _REPORTED
        run.ended = True
        exit = classify_exit(
            escalated=error,
            task_error=None,
            task_cancelled=cancelled,
            stop_requested=run.stop,
            cancel_requested=run.cancelling,
        )
        if error is not None:
            self._report_when_done(run)  # only to retrieve the exception the task ends with
        self._close_run(run, exit)

    def _finished(self, run: RunRecord) -> None:
        """After the task has ended: classify, answer, clean up, tell the parent.

        A run its runner has already reported (`_end_in_task`) only has the
        task's exception retrieved here.
        """
        task = run.task
        if run.reporting & _REPORTED:
            if not task.cancelled():
                task.exception()  # marks it retrieved: the report has told the parent
            return
        run.ended = True
        cancelled = task.cancelled()
        exit = classify_exit(
            escalated=run.error,
            task_error=None if cancelled else task.exception(),  # marks it retrieved
            task_cancelled=cancelled,
            stop_requested=run.stop,
            cancel_requested=run.cancelling,
        )
        if cancelled and not run.began:  # cancelled from outside before its first step
            run.state = State.CANCELLED
        self._close_run(run, exit)

    def _close_run(self, run: RunRecord, exit: Exit) -> None:
        """Answer what waits on the ended run, publish its end, tell the parent (last)."""
        self._set_ready(run, False)
        # Each step is skipped when it has nothing to do: ending thousands of
        # loops at once (a shutdown) should cost little more than their tasks.
        if run.acks_end:
            acknowledge(run.acks_end, self._iteration_of(run), None)
        self._run_ended(run, exit)
        if self._inbox and self._run is run:
            self._discard_inbox()
        if exit.kind is ExitKind.FAILED:
            assert exit.error is not None
            if self._has_listeners():  # else the error is not worth describing
                self._emit(ActorFailed, error=describe(exit.error))
        else:
            self._emit(ActorEnded, cancelled=exit.kind is ExitKind.CANCELLED)
        parent = self._parent
        if parent is not None:
            parent._on_child_exit(self, run.run_id, exit)

    def _iteration_of(self, run: Any) -> int:
        """The iteration count an end acknowledgement carries (Loops override)."""
        return 0

    # -- queries -----------------------------------------------------------------------

    def _ready_future(self) -> asyncio.Future[bool] | None:
        """The readiness future of the latest run (None: never started); made on demand."""
        run = self._run
        if run is not None and run.ready is None:
            run.ready = run.task.get_loop().create_future()
            if run.readiness is not None:
                run.ready.set_result(run.readiness)
        return None if run is None else run.ready

    async def wait_ready(self) -> bool:
        """Wait until the latest run is ready; True if it got ready, False if it ended first.

        A run that got ready and has ended since still answers True.
        Cancelling the wait does not affect the actor.

        Raises:
            RuntimeError: the actor was never started.
        """
        run = self._run
        if run is None:
            raise RuntimeError(f"{self._kind} {self.path!r} was never started")
        if run.readiness is not None:
            return run.readiness
        ready = self._ready_future()
        assert ready is not None
        return await asyncio.shield(ready)

    def is_running(self) -> bool:
        """Whether a run is in progress, its ending included."""
        run = self._run
        return run is not None and not run.task.done()

    def get_task(self) -> asyncio.Task[None] | None:
        """The task of the latest run, or None if the actor never started."""
        run = self._run
        return None if run is None else run.task
