"""The engine of a Loop: the task of each run, from start to exit report.

`LoopEngine` starts runs, runs the hooks around the iterations
(``before_loop``, ``after_loop``, the error handler), turns an asked-for
cancellation into a clean end, escalates failures and reports how each run
ended to the parent. The run record, launch, cancellation absorption,
readiness and the exit report are every actor's (`core.runnable`); the
iterations are `loops.iteration`'s (and `loops.overlap`'s); the control
handlers `loops.control`'s; the public face `loops.face.Loop`.

Failure rules (docs/loops.md, "Failure rules"):

* An error whose class matches a retry rule is retried with backoff while
  ``reconnect`` is on and no stop was asked: the same iteration runs again,
  ``current_loop`` does not advance.
* Anything else, including an error raised by ``before_loop``, by
  ``after_loop`` or by the error handler, is escalated: the error handler is
  called, ``failed()`` becomes true, ``after_loop`` runs, the run ends and the
  parent is told.
* A ``CancelledError`` that nobody asked for (the task is not being
  cancelled: ``Task.cancelling() == 0``) is a failure, not a quiet exit.
* ``KeyboardInterrupt`` and ``SystemExit`` are never retried or swallowed.

May import: the lower ``loops`` modules (run, plan, sleep, binding, observe,
iteration, overlap), ``core`` and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from ..core.runnable import abandon, acknowledge
from ..events import ActorStarted
from ..leases.gate import gate_of
from ..messages import Exit
from .iteration import (
    _STOPPING,
    CoroFunction,
    LoopIteration,
)
from .overlap import iterate_overlapping
from .run import LoopRun as Run
from .sleep import disarm

logger = logging.getLogger("supervised_loops")


class LoopEngine(LoopIteration):
    """Runs a Loop (internal base class of `Loop`)."""

    __slots__ = ()

    _kind: ClassVar[str] = "loop"
    _always_report: ClassVar[bool] = False

    def _new_record(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> Run:
        return Run(args, kwargs, restart=restart)

    def _launch(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> Any:
        run: Run = super()._launch(args, kwargs, restart=restart)
        if self._before is None and run.previous is None:
            # Nothing to set up: the run is ready as it is created. A
            # supervisor then starts the next sibling in the same event-loop
            # cycle instead of waiting two for this task's first step; the
            # sibling's task still takes its first step after this one's.
            # A loop with a before_loop reports readiness when it has run.
            # (_set_ready, inlined: a new record has no readiness future yet.)
            run.readiness = True
            parent = self._parent
            if parent is not None:
                parent._on_child_ready(self)
        return run

    def _ends_quietly_on_stop(self) -> bool:
        # Asleep between iterations (or paused), nothing queued, nothing to
        # run on the way out: a Stop wakes the runner and it ends there.
        run = self._run
        if run is None or self._after is not None or self._overlap != 1 or self._inbox:
            return False
        waiter = run.waiter
        return waiter is not None and not waiter.done() and not run.stop

    def _cancel_run(self, run: Run) -> None:
        if run.cancelling:
            return
        run.cancelling = True
        run.stop = True
        if run.finishing is not None:
            # after_loop has begun: it runs to its end (is_being_cancelled()
            # turns true, the run ends cancelled). Only a hard shutdown limit
            # or a forced shutdown cuts it (Runnable._cut_short).
            return
        waiter = run.waiter
        if waiter is not None and not waiter.done() and self._overlap == 1:
            # Asleep (or paused) between iterations: nothing runs that needs
            # preempting, so wake the runner with the flags above, as a Stop
            # does. The outcome is the same as cancelling the task (after_loop
            # runs with is_being_cancelled() true, the task ends cancelled),
            # without throwing CancelledError through the runner's frames and
            # uncancelling it again: a mass cancel costs about half as much.
            run.attention = True
            waiter.set_result(False)
        elif run.began and not run.task.done():
            run.cancel_sent = True
            # Also flagged: a body that swallows the CancelledError (3.11's
            # wait_for can lose one in a race) returns normally, and the
            # runner must still end at its next look, not iterate on.
            run.attention = True
            run.task.cancel()
        # A run that has not begun sees the flags when it does, and goes
        # straight to after_loop: after_loop runs exactly once per start.

    async def _runner(self, run: Run) -> None:
        run.began = True
        error: BaseException | None = None
        ready = False  # whether run.ready is resolved: the end need not touch it again
        try:
            await self._await_previous(run)
            self._begin(run)
            if not run.stop:
                if self._before is not None:
                    await self._call_hook(self._before)
                self._set_ready(run, True)
                ready = True
                if not run.stop:
                    if self._overlap == 1:
                        await self._iterate(run)
                    else:
                        await iterate_overlapping(self, run)
        except asyncio.CancelledError as cancelled:
            if not self._absorb_cancel(run):
                error = cancelled
        except (KeyboardInterrupt, SystemExit) as fatal:
            run.error = fatal
            raise
        except BaseException as exc:
            error = exc
        if error is not None:
            error = await self._escalate(run, error)
        disarm(run)  # the sleep timer left armed by the iterations
        run.state = _STOPPING
        after = self._after
        if after is not None:
            run.finishing = run.task.get_loop().time()
            after_error: BaseException | None
            try:  # _guard, inlined: one coroutine fewer at the end of every run
                if self._instance is None:
                    await after()
                else:
                    await after(self._instance)
                after_error = None
            except asyncio.CancelledError as cancelled:
                after_error = None if self._absorb_cancel(run) else cancelled
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                after_error = exc
            if after_error is not None:
                after_error = await self._escalate(run, after_error)
                error = after_error if error is None else error
        if gate_of(self._coro) is not None:  # the lease is given back before the end report
            error = await self._give_back_lease(run, error)
        run.error = error
        run.ended = True
        if not ready:
            self._set_ready(run, False)
        # The end is reported from this last step (no await follows), so the
        # supervisor acts on it in the next event-loop cycle. (No new locals
        # here: they would stay in every idle loop's frame.)
        if error is not None:
            self._end_in_task(run, error)
            raise error
        if self._end_in_task(run, None) is not None:
            # Cancelled: end so without unwinding an exception through the
            # frames (a task cancelled during its last step is cancelled when
            # it returns).
            run.task.cancel()

    async def _give_back_lease(self, run: Run, error: BaseException | None) -> BaseException | None:
        """Release the run's lease; the error the run ends with (the release's, if none)."""
        gate = gate_of(self._coro)
        assert gate is not None
        late = await gate.leave(self, run)
        return late if error is None else error

    def _report_needed(self, run: Run) -> bool:
        """On a clean end, whether anything waits for the end report.

        The report answers pending asks, turns queued messages into dead
        letters, publishes the stopped event and tells the parent; a plain
        standalone loop nobody listens to skips it. (A standalone loop has no
        ancestors, so its own hub is the only place a listener could be.)
        """
        return bool(
            self._parent is not None
            or self._hub is not None
            or run.acks_end
            or run.acks_plan
            or run.acks_run_now
            or run.acks_begin
            or self._inbox
        )

    def _begin(self, run: Run) -> None:
        # The Restart asks (acks_begin) are answered once the new run has
        # planned its first iteration (loops.iteration._planned), so their
        # Ack carries when it is due; a run that ends before that answers
        # them with no next iteration (_run_ended).
        run.announced = True
        if run.restart:
            self._restart_count += 1
        self._emit(ActorStarted)

    async def _call_hook(self, hook: CoroFunction, *args: Any) -> None:
        if self._instance is not None:
            await hook(self._instance, *args)
        else:
            await hook(*args)

    async def _guard(self, run: Run, hook: CoroFunction, *args: Any) -> BaseException | None:
        """Run a hook; return what it raised, absorbing an asked-for cancellation."""
        try:
            if self._instance is not None:  # _call_hook, inlined: one coroutine fewer
                await hook(self._instance, *args)
            else:
                await hook(*args)
        except asyncio.CancelledError as cancelled:
            return None if self._absorb_cancel(run) else cancelled
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            return exc
        return None

    async def _escalate(self, run: Run, error: BaseException) -> BaseException:
        """Mark the run failed and call the error handler; return the error to escalate.

        An error raised by the handler itself is escalated in place of the
        original, which stays reachable as its ``__context__``.
        """
        run.error = error
        self._note(error)
        if self._error is None:
            logger.error(
                "loop %r failed at iteration %d", self.path, run.current_loop, exc_info=error
            )
            return error
        # discord.ext.tasks passes the exception alone (plus the instance in a
        # class), never the start arguments: handlers written for it must work.
        handler_error = await self._guard(run, self._error, error)
        if handler_error is None:
            return error
        logger.error("error handler of loop %r raised", self.path, exc_info=handler_error)
        if handler_error.__context__ is None:
            handler_error.__context__ = error
        self._note(handler_error)
        run.error = handler_error
        return handler_error

    def _iteration_of(self, run: Run) -> int:
        return run.current_loop

    def _run_ended(self, run: Run, exit: Exit) -> None:
        """Answer what waits on the ended run: plans, RunNow asks, a Restart not begun."""
        if run.acks_plan:
            acknowledge(run.acks_plan, run.current_loop, None)
        if run.acks_run_now:
            abandon(run.acks_run_now, self.path)
        if run.acks_begin:
            if run.announced:  # restarted, then ended before its first plan
                acknowledge(run.acks_begin, run.current_loop, None)
            else:
                abandon(run.acks_begin, self.path)
