"""The engine of a Loop: the task of each run, from start to exit report.

`LoopEngine` starts runs, runs the hooks around the iterations
(``before_loop``, ``after_loop``, the error handler), turns an asked-for
cancellation into a clean end, escalates failures and reports how each run
ended to the parent. The iterations themselves are
`LoopIteration`'s; the public face
(construction, discord.ext.tasks methods, control handlers) is
`supervised_loops.loop.Loop`, its only subclass.

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
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..events import ActorStarted
from ..messages import Exit, ExitKind
from .iteration import (
    _CANCELLED,
    _FAILED,
    _STOPPED,
    _STOPPING,
    CoroFunction,
    LoopIteration,
    _abandon,
    _acknowledge,
)
from .plan import Run

logger = logging.getLogger("supervised_loops")


class LoopEngine(LoopIteration):
    """Runs a Loop (internal base class of `Loop`)."""

    __slots__ = ()

    def _reset_engine(self) -> None:
        self._run = None
        self._failure_count = 0
        self._restart_count = 0
        self._last_error = None
        self._noted = None

    # -- runs ---------------------------------------------------------------------

    def _launch(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> Run:
        """Create a run and its task; it begins once the previous run has ended.

        Raises:
            RuntimeError: no event loop is running.
        """
        event_loop = asyncio.get_running_loop()
        previous = self._run
        run = Run(args, kwargs, restart=restart)
        if previous is not None and not previous.task.done():
            run.previous = previous
            if restart:
                self._cancel_run(previous)
        self._run = run
        self._event_loop = event_loop
        run.ready = event_loop.create_future()

        run.task = event_loop.create_task(self._runner(run), name=f"loop:{self.path}")
        if self._parent is not None or self._hub is not None:
            self._report_when_done(run)
        return run

    def _report_when_done(self, run: Run) -> None:
        """Have `_finished` run once the run's task is done.

        A supervised or observed loop always reports its end; a standalone
        one only when something waits for it (see `_report_if_needed`),
        which spares the mass start and cancel of plain discord.ext.tasks-style
        loops a done callback each.
        """
        if not run.reporting:
            run.reporting = True
            run.task.add_done_callback(lambda _task: self._finished(run))

    def _cancel_run(self, run: Run) -> None:
        if run.cancelling:
            return
        run.cancelling = True
        run.stop = True
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

    def _view(self) -> Run | None:
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

    async def _runner(self, run: Run) -> None:
        run.began = True
        error: BaseException | None = None
        ready = False  # whether run.ready is resolved: the end need not touch it again
        try:
            previous = run.previous
            if previous is not None:
                # Wait even when the task is already done: its done callback
                # (_finished: the exit report to the parent, the stopped event)
                # is queued and must run before this run's start is announced.
                await asyncio.wait((previous.task,))
                run.previous = None
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
                        await self._iterate_overlapping(run)
        except asyncio.CancelledError as cancelled:
            if not self._absorb_cancel(run):
                error = cancelled
        except (KeyboardInterrupt, SystemExit):
            run.failed = True
            raise
        except BaseException as exc:
            error = exc
        if error is not None:
            error = await self._escalate(run, error)
        run.state = _STOPPING
        after = self._after
        if after is not None:
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
        run.ended = True
        if not ready:
            self._set_ready(run, False)
        if error is not None:
            run.state = _FAILED
            self._report_when_done(run)  # _finished also retrieves the task's exception
            raise error
        if run.cancelling:
            run.state = _CANCELLED
            self._report_if_needed(run)
            # End cancelled without unwinding an exception through the frames:
            # a task cancelled during its last step is cancelled when it returns.
            run.task.cancel()
            return
        run.state = _STOPPED
        self._report_if_needed(run)

    def _report_if_needed(self, run: Run) -> None:
        """On a clean end, ask for the end report if anything waits for it.

        ``_finished`` answers pending asks, turns queued messages into dead
        letters, publishes the stopped event and tells the parent. Called on
        the runner's last step, with no await after it, so nothing can change
        the answer before the task is done. (A standalone loop has no
        ancestors, so its own hub is the only place a listener could be.)
        """
        if (
            self._parent is not None
            or self._hub is not None
            or run.acks_end
            or run.acks_plan
            or run.acks_run_now
            or run.acks_begin
            or self._inbox
        ):
            self._report_when_done(run)

    def _begin(self, run: Run) -> None:
        if run.restart:
            self._restart_count += 1
        _acknowledge(run.acks_begin, 0, None)
        self._emit(ActorStarted)

    def _set_ready(self, run: Run, reached: bool) -> None:
        # The result says whether before_loop was passed: asked later, a run
        # that got ready and has since ended still reports it was ready.
        ready = run.ready
        if ready is not None and not ready.done():
            ready.set_result(reached)
            parent = self._parent
            if parent is not None:
                parent._on_child_ready(self)

    def _absorb_cancel(self, run: Run) -> bool:
        """Record a cancellation of the run's task; False if nobody asked for it."""
        task = run.task
        if task.cancelling() == 0:
            return False  # a CancelledError raised by library code: a failure
        run.cancelling = True
        run.stop = True
        if run.cancel_sent:
            run.cancel_sent = False
            task.uncancel()  # ours: let after_loop run in a clean task
        return True

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
        run.failed = True
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
        return handler_error

    def _finished(self, run: Run) -> None:
        """After the task has ended: answer, clean up, tell the parent."""
        task = run.task
        run.ended = True
        if task.cancelled() and run.failed and self._last_error is not None:
            # An unrequested CancelledError was escalated and re-raised, which
            # makes the task look cancelled: report the failure it really is.
            exit = Exit(ExitKind.FAILED, self._last_error)
        elif task.cancelled():
            exit = Exit(ExitKind.CANCELLED, requested=True)
            if not run.began:  # cancelled from outside before its first step
                run.state = _CANCELLED
        else:
            error = task.exception()  # also marks it retrieved: it was reported already
            if error is None:
                exit = Exit(ExitKind.NORMAL, requested=run.stop)
            else:
                exit = Exit(ExitKind.FAILED, error)
        # Each step below is skipped when it has nothing to do: ending
        # thousands of loops at once (a shutdown) should cost little more
        # than ending their tasks.
        iteration = run.current_loop
        if run.acks_end:
            _acknowledge(run.acks_end, iteration, None)
        if run.acks_plan:
            _acknowledge(run.acks_plan, iteration, None)
        if run.acks_run_now:
            _abandon(run.acks_run_now, self.path)
        if run.acks_begin:
            _abandon(run.acks_begin, self.path)
        if self._inbox and self._run is run:
            self._discard_inbox()
        self._report_exit(exit)
