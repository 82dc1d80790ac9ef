"""Stopping a supervisor's children: reverse order, three phases, budgets.

Each child gets ``Stop`` and its ``shutdown`` grace; then ``Cancel`` and its
``cancel_timeout``; a child still running after that swallowed cancellation:
it is reported (an ``Unkillable`` event, one error log) and left behind, and
the shutdown goes on with its siblings. A supervisor child cancelled by its
parent is told the parent's deadline and fits its own children's limits in
it, keeping a margin to end in time.

A child's clean-up in progress (a Loop's ``after_loop``, a worker unwinding
after ``Stop``) is not interrupted by ``Cancel``: it is cut short only when
the child's hard limit is reached, or at once in a forced shutdown
(`SupervisorShutdown._force_cancel`). A cut is published as a ``CutShort``
event and counted in the run's ``cut_short``, up to the root, so that
``run()`` can report it in its exit status.

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

#: Seconds a child whose clean-up was cut short is given to end before it
#: is reported unkillable (a cancelled after_loop normally ends at once).
_CUT_WAIT = 0.1


class SupervisorShutdown(SupervisorCore):
    """Three-phase termination of children (internal layer of a Supervisor)."""

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
        if record._abandoned:
            return
        if not actor.is_running():
            await self._settle(record)
            return
        record._set_terminating(True)
        try:
            # A child may restart itself (a Restart message) while it is being
            # stopped: the run that replaced the one stopped is stopped too.
            while actor.is_running() and not record._abandoned:
                latest = self._latest_run_of(actor)
                if not record._running or latest > record._run_id:
                    # Running again after a restart we did not make: track that run.
                    record._adopt_run(latest, asyncio.get_running_loop().create_future())
                await self._stop_then_cancel(record)
        finally:
            record._set_terminating(False)
        await self._consume_exit(record)

    async def _stop_then_cancel(self, record: Child) -> None:
        actor = record.actor
        event_loop = asyncio.get_running_loop()
        grace = record.spec.shutdown
        if grace is not None and not self._rec.cancelling:
            actor.tell(Stop())
            deadline = None if grace == INFINITY else event_loop.time() + float(grace)
            if await self._wait_exit(record, deadline, until_cancel=True):
                return
        began = event_loop.time()
        deadline = self._hard_deadline(record, began)
        forced = self._rec.forced
        if isinstance(actor, SupervisorShutdown):
            actor._set_cancel_deadline(deadline)
            if forced:
                actor._force_cancel()
        actor.tell(Cancel())
        # A clean-up in progress (after_loop) outlives Cancel; a forced
        # shutdown cuts it at once, the hard limit when it is reached.
        if forced and self._cut(record):
            deadline = event_loop.time() + _CUT_WAIT
        if await self._wait_exit(record, deadline, until_cancel=False):
            return
        if self._cut(record):
            now = event_loop.time()
            if await self._wait_exit(record, now + _CUT_WAIT, until_cancel=False):
                return
        self._unkillable(record, event_loop.time() - began)

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
        """Cancel, cutting short every clean-up in progress in the subtree (a forced shutdown).

        Clean-ups that begin later are cut as soon as the shutdown reaches them.
        """
        if not self.is_running():
            return
        self._rec.forced = True
        for record in self._children:
            actor = record.actor
            if isinstance(actor, SupervisorShutdown):
                actor._force_cancel()
            elif actor.is_running():
                self._cut(record)
        self._cancel_now()

    def _hard_deadline(self, record: Child, now: float) -> float | None:
        timeout = record.spec.cancel_timeout
        deadline = None if timeout == INFINITY else now + float(timeout)
        limit = self._rec.cancel_deadline
        if limit is not None:
            deadline = limit if deadline is None else min(deadline, limit)
        return deadline

    def _set_cancel_deadline(self, deadline: float | None) -> None:
        """Our parent gives us until ``deadline`` to end after its Cancel."""
        if deadline is None:
            return
        now = asyncio.get_running_loop().time()
        margin = min(max(0.0, deadline - now) * _MARGIN_SHARE, _MARGIN_CAP)
        self._rec.cancel_deadline = deadline - margin

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
