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

Gating (a run that proceeds only while it holds a lease) lives in the kind's
runner; a lost permit ends the work with a requested cancellation.

May import: ``core.actor``, ``core.parent``, ``core.exit``, ``core.replies``, ``core.run_record``
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
from .parent import orphan_reason
from .replies import Pending, abandon, acknowledge, acknowledge_when_ready
from .run_record import REPORTED, RunRecord

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

#: The retry backoff of an actor with none of its own and no supervisor's:
#: discord.ext.tasks' (full jitter over 1 × 2^k seconds, capped at 2^10).
DEFAULT_BACKOFF = ExponentialBackoff()


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

    def _report_needed(self, run: Any) -> bool:
        """On a clean end, whether anything waits for the end report (a kind may skip it)."""
        return True

    # -- launching ----------------------------------------------------------------

    def _launch(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> Any:
        """Create a run, with a new run id, and its task; it begins once the previous run ended.

        Raises ``RuntimeError`` if no event loop is running.
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
        name = f"{self._kind}:{self._path_uncached()}"  # keeps no path for an idle actor
        run.task = event_loop.create_task(self._runner(run), name=name)
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
        if run.reporting is None:
            run.reporting = self
            run.task.add_done_callback(run._task_done)

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
        reason = orphan_reason(self)
        if reason is None:
            return False
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
            "%s %r: its clean-up was cut short after %.3f s (its hard limit, or a third signal)",
            self._kind,
            self.path,
            waited,
        )
        self._emit(CutShort, waited=waited)
        return True

    # -- the end of a run ---------------------------------------------------------------

    def _end_in_task(
        self, run: RunRecord, error: BaseException | None, *, report: bool | None = None
    ) -> BaseException | None:
        """End ``run`` from its task's last step: its final state, and its exit report.

        The report classifies the end, answers what waits and tells the
        parent, which acts on it in the next event-loop cycle; it is skipped
        when ``report`` is False, or, left None, for a clean end the kind says
        nothing waits for (`_report_needed`). Returns what the runner then
        raises, awaiting nothing more: ``error``, a ``CancelledError`` for a
        cancelled run, or None (it returns).
        """
        cancelled = error is None and run.cancelling
        failed = error is not None
        run.state = State.FAILED if failed else State.CANCELLED if cancelled else State.STOPPED
        run.ended = True
        if report is None:
            report = failed or self._report_needed(run)
        if report:
            registered = run.reporting is not None
            run.reporting = REPORTED
            exit = classify_exit(
                escalated=error,
                task_error=None,
                task_cancelled=cancelled,
                stop_requested=run.stop,
                cancel_requested=run.cancelling,
            )
            if error is not None and not registered:  # only to retrieve the task's exception
                run.task.add_done_callback(run._task_done)
            self._close_run(run, exit)
        return error if error is not None else asyncio.CancelledError() if cancelled else None

    def _finished(self, run: RunRecord) -> None:
        """After the task has ended, unreported: classify, answer, clean up, tell the parent.

        (A run its runner reported (`_end_in_task`) does not come here: the
        done callback only retrieves its task's exception.)
        """
        task = run.task
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
