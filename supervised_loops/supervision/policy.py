"""What a child's exit means: restart types, strategies, intensity, quarantine.

The order of OTP's ``supervisor.erl``: an exit is reported to the hooks
(``on_child_failure``, ``on_child_exit``), a failure is given to ``decide``,
a normal or cancelled end follows the restart type; a restart counts against
the intensity (or the child's quarantine budget) and takes the strategy's
siblings along; too many restarts fail the supervisor, which escalates to its
parent. Retries of a child's iterations are decided here too, synchronously
in the child's task (``should_retry``, ``backoff_for``).
"""

from __future__ import annotations

import asyncio
import logging

from ..backoff import ExponentialBackoff
from ..core.actor import DEFAULT_BACKOFF, Actor
from ..errors import RestartIntensityExceeded
from ..events import ChildRestarted, IntensityExceeded, Quarantined, RetryScheduled, describe
from ..messages import Exit, ExitKind
from .child import Child
from .core import _exit_reason
from .shutdown import SupervisorShutdown
from .specs import AutoShutdown, Directive, Quarantine, RestartType, Strategy

logger = logging.getLogger("supervised_loops")

_DEFAULT_QUARANTINE = Quarantine()


class SupervisorPolicy(SupervisorShutdown):
    """Restart decisions of a supervisor (internal layer of a Supervisor)."""

    # -- exits ---------------------------------------------------------------------------------

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
        """The restart type's answer: OTP's rules, with a cancellation as OTP's shutdown.

        A child that was asked to stop (a Stop or Cancel message sent to it,
        e.g. from ``supervised-loops ctl``) stays down like after
        ``terminate_child``: restarting it would undo the request.
        """
        if exit.requested and exit.kind is not ExitKind.FAILED:
            return Directive.STOP
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

    # -- restarts ------------------------------------------------------------------------------

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
        policy = self._backoff_of(record) or DEFAULT_BACKOFF
        tracker = record._tracker
        if tracker is None or tracker.policy != policy:  # equal policies share the count
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

    # -- staying down, quarantine, escalation --------------------------------------------------

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

    # -- hooks called from a child's task ------------------------------------------------------

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
