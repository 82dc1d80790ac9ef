"""Stopping a supervisor's children: reverse order, three phases, budgets.

Each child gets ``Stop`` and its ``shutdown`` grace; then ``Cancel`` and its
``cancel_timeout``; a child still running after that swallowed cancellation:
it is reported (an ``Unkillable`` event, one error log) and left behind, and
the shutdown goes on with its siblings. A supervisor child cancelled by its
parent is told the parent's deadline and fits its own children's limits in
it, keeping a margin to end in time.

A ``Cancel`` of a supervisor, and a forced shutdown, is one pass over its
whole subtree, made in the call that asks for it
(`SupervisorShutdown._cancel_subtree`): every hard limit below counts from
that instant, and each supervisor's task then only waits
(`SupervisorShutdown._cancel_at_once`).

A child's clean-up in progress (a Loop's ``after_loop``, a worker unwinding
after ``Stop``) is not interrupted by ``Cancel``: it is cut short only when
the child's hard limit is reached, or at once by
`SupervisorShutdown._force_cancel` (``run()``'s third signal) if it was in
progress then. A cut is
published as a ``CutShort`` event and counted in the run's ``cut_short``, up
to the root, so that ``run()`` can report it in its exit status.

May import: ``supervision.core`` and what it may import.
"""

from __future__ import annotations

import asyncio
import logging

from ..core.runnable import Runnable
from ..events import Unkillable
from ..messages import Cancel, Stop
from .child import Child
from .core import SupervisorCore
from .specs import INFINITY

logger = logging.getLogger("supervised_loops")

#: A supervisor cancelled by its parent keeps this share of the time its
#: parent gives it (at most _MARGIN_CAP seconds) to report and end: its own
#: children's hard limits are cut to fit in the rest, so the parent never
#: mistakes a supervisor that is busy cancelling for an unkillable one.
_MARGIN_SHARE = 0.1
_MARGIN_CAP = 1.0

#: The Cancel of the one-pass shutdown (messages are frozen: one for them all,
#: not 10 000 allocations in the pass).
_CANCEL = Cancel()

#: Seconds a child whose clean-up was cut short is given to end before it
#: is reported unkillable (a cancelled after_loop normally ends at once).
_CUT_WAIT = 0.1

_STOP = Stop()  # messages are immutable: one for every child a batch stops


class SupervisorShutdown(SupervisorCore):
    """Three-phase termination of children (internal layer of a Supervisor)."""

    async def _shutdown_children(self) -> None:
        """Stop every child, latest started first, each within its own budget.

        Once the shutdown is forced (a ``Cancel`` of this supervisor, before
        or during the graceful phase), the children still running are
        cancelled all at once (`_cancel_at_once`) instead of one after the
        other.
        """
        pending = list(reversed(self._children))
        while pending:
            if self._rec.cancelling:
                await self._cancel_at_once(pending)
                return
            record = pending.pop(0)
            record._cancel_timer()
            if record._removed:
                continue
            if self._quiet(record):
                batch = [record]
                while pending and self._quiet(pending[0]):
                    batch.append(pending.pop(0))
                if len(batch) > 1:
                    pending[:0] = await self._stop_quiet(batch)
                    continue
            if not await self._terminate(record, yield_to_forced=True):
                pending.insert(0, record)  # still running: the forced pass takes it

    @staticmethod
    def _quiet(record: Child) -> bool:
        """Whether the child would end at once on Stop, running none of the user's code."""
        return (
            not record._removed
            and not record._abandoned
            and record.spec.shutdown is not None
            and record.actor.is_running()
            and record.actor._ends_quietly_on_stop()
        )

    async def _stop_quiet(self, batch: list[Child]) -> list[Child]:
        """Stop consecutive quiet children together; return those still running.

        Each would end at once, running no code of the user's, so ending
        them together keeps every observable effect of the reverse order
        (their ends are reported latest first) at a few event-loop cycles
        for the lot instead of a few each. One that has not ended within its
        grace goes back to the three phases.
        """
        event_loop = asyncio.get_running_loop()
        began = event_loop.time()
        for record in batch:
            self._track_latest_run(record)
            record._set_terminating(True)
            record.actor.tell(_STOP)
        try:
            for record in batch:
                grace = record.spec.shutdown
                deadline = None if grace == INFINITY else began + float(grace)  # type: ignore[arg-type]
                await self._wait_exit(record, deadline, until_cancel=True)
        finally:
            for record in batch:
                record._set_terminating(False)
        left = []
        for record in batch:
            if record.actor.is_running():
                left.append(record)
            else:
                await self._settle(record)
        return left

    async def _terminate(self, record: Child, *, yield_to_forced: bool = False) -> bool:
        """Stop one child in three phases: Stop, Cancel after its grace, give up after its limit.

        Returns True once the child has ended, or has been reported
        unkillable. With ``yield_to_forced``, returns False, the child still
        running, as soon as the shutdown becomes forced during the grace:
        the caller cancels it with the others, at once.
        """
        record._cancel_timer()
        actor = record.actor
        if record._abandoned:
            return True
        if not actor.is_running():
            await self._settle(record)
            return True
        record._set_terminating(True)
        try:
            # A child may restart itself (a Restart message) while it is being
            # stopped: the run that replaced the one stopped is stopped too.
            while actor.is_running() and not record._abandoned:
                self._track_latest_run(record)
                if not await self._stop_then_cancel(record, yield_to_forced=yield_to_forced):
                    return False
        finally:
            record._set_terminating(False)
        await self._consume_exit(record)
        return True

    def _track_latest_run(self, record: Child) -> None:
        latest = self._latest_run_of(record.actor)
        if not record._running or latest > record._run_id:
            # Running again after a restart we did not make: track that run.
            record._adopt_run(latest, asyncio.get_running_loop().create_future())

    async def _cancel_at_once(self, records: list[Child]) -> None:
        """The forced part of a shutdown: every child cancelled in one pass, then waited for.

        The pass (`_cancel_subtree`) was made in the call that forced the
        shutdown; here it is only made if a cancellation of our task came
        without one. Each child's ``after_loop`` still runs (it is the
        flush). The hard limits count from the pass, side by side, so the
        subtree takes as long as its longest limit, not the sum of them: the
        children at their limit are cut short together, and one that still
        runs after that is reported unkillable, as in the three phases.
        Their exits are dealt with (``on_child_failure``) latest started first.
        """
        self._cancel_subtree(forced=self._rec.forced)
        run = self._rec
        event_loop = asyncio.get_running_loop()
        began = run.swept_at if run.swept_at is not None else event_loop.time()
        cut = run.cut_until
        cancelled: list[tuple[Child, float | None]] = []
        for record in records:
            record._cancel_timer()
            actor = record.actor
            if record._removed or record._abandoned or not actor.is_running():
                continue
            self._track_latest_run(record)
            record._set_terminating(True)
            deadline = self._hard_deadline(record, began)
            if cut is not None and record in cut:  # its clean-up was cut by a forced pass
                deadline = cut[record] if deadline is None else min(deadline, cut[record])
            cancelled.append((record, deadline))
        cut_wait: dict[Child, float] = {}
        try:
            for record, deadline in cancelled:
                if await self._wait_exit(record, deadline, until_cancel=False):
                    continue
                # At its limit: cut it short, with every other child at its limit.
                now = event_loop.time()
                for other, limit in cancelled:
                    if other in cut_wait or limit is None or limit > now:
                        continue
                    if other._exit is not None and not other._exit.done() and self._cut(other):
                        cut_wait[other] = now + _CUT_WAIT
                until = cut_wait.get(record)
                if until is not None and await self._wait_exit(record, until, until_cancel=False):
                    continue
                self._unkillable(record, event_loop.time() - began)
        finally:
            for record, _ in cancelled:
                record._set_terminating(False)
        for record in records:
            if record._removed or record._abandoned:
                continue
            if record.actor.is_running():  # it restarted itself meanwhile
                await self._terminate(record)
            else:
                await self._settle(record)

    def _cancel_subtree(self, *, forced: bool = False) -> None:
        """Cancel this supervisor and every actor below it, in one pass, in the caller's call.

        What ``Cancel`` of a supervisor does (also when its parent's
        shutdown reaches it after its grace), and, with ``forced``, a forced
        shutdown (`_force_cancel`). Depth first, latest started first, each
        running Loop and worker below is sent ``Cancel`` and each supervisor
        below is cancelled the same way, before this call returns: every
        ``after_loop`` in the subtree begins at its task's next step, side by
        side, instead of one supervisor level per event-loop cycle. Each
        supervisor is woken after its children, so when its task runs, the
        children that ended at once have already reported. The hard limits
        of the whole subtree count from this instant (a supervisor child's
        deadline bounds its children's, see `_set_cancel_deadline`).

        ``forced`` also cuts short every clean-up in progress (``CutShort``);
        the ``after_loop`` handlers this pass starts still run, within their
        limits. A second call only wakes the task, unless it newly forces.
        """
        if not self.is_running():
            return
        run = self._rec
        if run.swept_at is not None and (run.forced or not forced):
            self._cancel_now()
            return
        if forced:
            run.forced = True
        run.stop = True  # halted from here on: children see it (no restart by message)
        run.cancelling = True
        event_loop = asyncio.get_running_loop()
        if run.swept_at is None:
            run.swept_at = event_loop.time()
        for record in list(reversed(self._children)):
            if record._removed or record._abandoned or not record.actor.is_running():
                continue
            cut_until = self._cancel_child(record, self._hard_deadline(record, run.swept_at))
            if cut_until is not None:
                if run.cut_until is None:
                    run.cut_until = {}
                run.cut_until[record] = cut_until
        self._cancel_now()

    def _cancel_child(self, record: Child, deadline: float | None) -> float | None:
        """Cancel one child, a supervisor child with its whole subtree, within ``deadline``.

        In a forced shutdown a clean-up in progress is cut short at once
        (else it outlives Cancel, to its hard limit): returns then until when
        the cut child is given to end, else None.
        """
        actor = record.actor
        forced = self._rec.forced
        if isinstance(actor, SupervisorShutdown):
            actor._set_cancel_deadline(deadline)
            actor._cancel_subtree(forced=forced)  # its whole subtree, in one pass
            return None
        actor.tell(_CANCEL)
        if forced and self._cut(record):
            return asyncio.get_running_loop().time() + _CUT_WAIT
        return None

    async def _stop_then_cancel(self, record: Child, *, yield_to_forced: bool = False) -> bool:
        actor = record.actor
        event_loop = asyncio.get_running_loop()
        grace = record.spec.shutdown
        if grace is not None and not self._rec.cancelling:
            actor.tell(Stop())
            deadline = None if grace == INFINITY else event_loop.time() + float(grace)
            if await self._wait_exit(record, deadline, until_cancel=True):
                return True
            if yield_to_forced and self._rec.cancelling:
                return False
        began = event_loop.time()
        deadline = self._hard_deadline(record, began)
        cut_until = self._cancel_child(record, deadline)
        if cut_until is not None:
            deadline = cut_until
        if await self._wait_exit(record, deadline, until_cancel=False):
            return True
        if self._cut(record):
            now = event_loop.time()
            if await self._wait_exit(record, now + _CUT_WAIT, until_cancel=False):
                return True
        self._unkillable(record, event_loop.time() - began)
        return True

    def _cut(self, record: Child) -> bool:
        """Cut short the child's clean-up in progress; count it up the tree."""
        actor = record.actor
        if not isinstance(actor, Runnable) or not actor._cut_short():
            return False
        node: object = self
        while isinstance(node, SupervisorShutdown):
            node._rec.cut_short += 1
            node = node._parent
        return True

    def _cut_short_count(self) -> int:
        """Clean-ups cut short in the subtree during the latest run (0: never started)."""
        return 0 if self._run is None else self._rec.cut_short

    def _force_cancel(self) -> None:
        """`_cancel_subtree`, also cutting short every clean-up in progress.

        What ``run()``'s third signal does (its second signal and its
        ``shutdown_timeout`` cancel without cutting: clean-ups run to their
        hard limits).
        """
        self._cancel_subtree(forced=True)

    def _hard_deadline(self, record: Child, now: float) -> float | None:
        timeout = record.spec.cancel_timeout
        deadline = None if timeout == INFINITY else now + float(timeout)
        limit = self._rec.cancel_deadline
        if limit is not None:
            deadline = limit if deadline is None else min(deadline, limit)
        return deadline

    def _set_cancel_deadline(self, deadline: float | None) -> None:
        """Our parent gives us until ``deadline`` to end after its Cancel (the earliest holds)."""
        if deadline is None or not self.is_running():
            return
        now = asyncio.get_running_loop().time()
        margin = min(max(0.0, deadline - now) * _MARGIN_SHARE, _MARGIN_CAP)
        run = self._rec
        limit = deadline - margin
        if run.cancel_deadline is None or limit < run.cancel_deadline:
            run.cancel_deadline = limit

    def _unkillable(self, record: Child, waited: float) -> None:
        record._abandon()
        record.actor._emit(Unkillable, waited=waited)
        logger.error(
            "child %r has not ended %.3f s after Cancel (does it swallow CancelledError?); "
            "supervisor %r goes on without it",
            record.path,
            waited,
            self.path,
        )
