"""Carrying out what a child's exit means: hooks, restarts, retries, quarantine, escalation.

The order of OTP's ``supervisor.erl``: an exit is reported to the hooks
(``on_child_failure``, ``on_child_exit``), a failure is given to ``decide``,
a normal or cancelled end follows the restart type; a restart counts against
the intensity (or the child's quarantine budget) and takes the strategy's
siblings along; too many restarts fail the supervisor, which escalates to its
parent. The decisions are `supervision.policy`'s pure functions; this layer
runs them in the supervisor's task and applies the answer. Retries of a
child's iterations are answered here too, synchronously in the child's task
(``should_retry``, ``backoff_for``).

May import: ``core``, the lower ``supervision`` modules (specs, child,
intensity, policy, core, shutdown) and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import logging

from ..backoff import ExponentialBackoff
from ..core.actor import Actor
from ..core.runnable import DEFAULT_BACKOFF
from ..errors import RestartIntensityExceeded
from ..events import ChildRestarted, IntensityExceeded, Quarantined, RetryScheduled, describe
from ..messages import Exit, ExitKind
from .child import Child, TimerKind
from .core import _exit_reason
from .hooks import overridden
from .policy import ExitPlan, plan_exit, restart_type_directive
from .run import TimerFired
from .shutdown import SupervisorShutdown
from .specs import AutoShutdown, Directive, Quarantine, RestartType, Strategy

logger = logging.getLogger("supervised_loops")

_DEFAULT_QUARANTINE = Quarantine()


class SupervisorRestarts(SupervisorShutdown):
    """Restart decisions of a supervisor, carried out (internal layer of a Supervisor)."""

    # -- exits ---------------------------------------------------------------------------------

    async def _child_exited(self, record: Child, run_id: int, exit: Exit) -> None:
        if record._removed or not record._is_news(run_id) or record._terminating:
            return
        record._handle(run_id)
        actor = record.actor
        latest = self._latest_run_of(actor)
        failed = exit.kind is ExitKind.FAILED
        if failed:
            assert exit.error is not None
            record._failed(exit.error)
            if overridden(self._hooks, "on_child_failure"):
                await self._call_hook(
                    "on_child_failure", self._hooks.on_child_failure, record, exit.error
                )
        if latest > run_id:
            # A later run exists, started by someone else (the child's own
            # Restart message): this exit is superseded (a failure is still
            # counted and told). The later run is tracked; its exit decides.
            if latest > record._run_id:
                record._adopt_run(latest, asyncio.get_running_loop().create_future())
            return
        if overridden(self._hooks, "on_child_exit"):
            await self._call_hook("on_child_exit", self._hooks.on_child_exit, record, exit)
        if self._halted() or record._removed or actor.is_running():
            return  # a hook stopped, deleted or restarted it
        decided: Directive | None = None
        if failed and overridden(self._hooks, "decide"):  # the default is the restart type's answer
            assert exit.error is not None
            try:
                answer = self._hooks.decide(record, exit.error)
                decided = None if answer is None else Directive.parse("decide()", answer)
            except Exception as error:
                self._hook_failed("decide", error)
                return
        plan = self._plan(record, exit, decided)
        await self._apply(record, plan, exit)

    def _policy(self, record: Child, exit: Exit) -> Directive:
        """The restart type's answer (see `supervision.policy.restart_type_directive`)."""
        return restart_type_directive(record.spec.restart, exit)

    def _active_flags(self) -> list[bool]:
        """Per child: may a strategy take it along (running, or waiting for a delayed restart)?"""
        return [
            not other._quarantined
            and not other._kept_down
            and not other._abandoned
            and (other.actor.is_running() or other._timer_kind is TimerKind.RETRY)
            for other in self._children
        ]

    async def _apply(self, record: Child, plan: ExitPlan, exit: Exit) -> None:
        directive = plan.directive
        if directive is Directive.RESTART:
            await self._restart_group(record, [self._children[i] for i in plan.group], exit)
        elif directive is Directive.RETRY:
            self._schedule_retry(record, exit)
        elif directive is Directive.STOP:
            self._stay_down(record)
        elif plan.exceeded:
            self._intensity_exceeded(record, exit)
        elif directive is Directive.ESCALATE:
            self._escalate(record, exit)
        else:
            self._quarantine(record, exit)

    # -- restarts ------------------------------------------------------------------------------

    async def _restart(self, record: Child, exit: Exit) -> None:
        """Restart now by the strategy, unless the child's budget or the intensity is spent."""
        await self._apply(record, self._plan(record, exit, Directive.RESTART), exit)

    def _plan(self, record: Child, exit: Exit, decided: Directive | None) -> ExitPlan:
        """Ask the pure policy what to do with ``record``'s exit, now."""
        return plan_exit(
            strategy=self._strategy,
            restart=record.spec.restart,
            exit=exit,
            intensity=self._rec.intensity,
            budget=record._window,
            on_probation=record.is_on_probation(),
            now=asyncio.get_running_loop().time(),
            index=self._children.index(record),
            # one_for_one takes no sibling along: asking each of them whether it
            # runs would cost a restart in a supervisor of 100 children ~30 µs.
            active=() if self._strategy is Strategy.ONE_FOR_ONE else self._active_flags(),
            decided=decided,
        )

    async def _restart_group(self, record: Child, group: list[Child], exit: Exit) -> None:
        """Stop the group's other members (latest first), then start the group in order."""
        record._on_probation(None)
        for other in reversed(group):
            if other is record:
                continue
            await self._terminate(other)
            if other.spec.restart is RestartType.TEMPORARY:
                self._remove(other)  # OTP: a temporary child is never restarted
            if self._halted():
                return
        strategy = self._strategy
        told = logger.isEnabledFor(logging.INFO)
        for other in group:
            if other._removed:
                continue
            other._restarted()
            actor = other.actor
            if told or actor._has_listeners():  # the reason is worth making
                why = _exit_reason(exit)
                if other is not record:
                    why = f"{strategy.value}: {record.name!r} restarted"
                actor._emit(ChildRestarted, reason=why)
                logger.info("supervisor %r restarts %r (%s)", self.path, other.path, why)
            await self._start(other, restart=True, wait_ready=self._orders_restarts())
            if self._halted():
                return

    def _orders_restarts(self) -> bool:
        """Whether a restarted child must be ready before the supervisor goes on.

        Under one_for_all and rest_for_one a group restarts in start order,
        each member once the previous one is ready, as OTP does. Under
        one_for_one nothing follows a restarted child in order: waiting for
        its ``before_loop`` would only hold back its siblings' restarts.
        """
        return self._strategy is not Strategy.ONE_FOR_ONE

    def _schedule_retry(self, record: Child, exit: Exit) -> None:
        """Restart the child after its backoff delay (Directive.RETRY)."""
        policy = self._backoff_of(record) or DEFAULT_BACKOFF
        tracker = record._retry_tracker(policy)
        event_loop = asyncio.get_running_loop()
        delay = tracker.failure(event_loop.time())
        handle = event_loop.call_later(delay, self._timer_due, record, TimerKind.RETRY)
        record._park(TimerKind.RETRY, handle, exit)
        record.actor._emit(RetryScheduled, iteration=0, attempt=tracker.attempt, delay=delay)
        logger.info(
            "supervisor %r restarts %r in %.3f s (retry %d)",
            self.path,
            record.path,
            delay,
            tracker.attempt,
        )

    def _timer_due(self, record: Child, kind: TimerKind) -> None:
        if self.is_running() and not record._removed and record._timer_kind is kind:
            self._rec.queue.append(TimerFired(record, kind))
            self._wake()

    async def _timer_fired(self, record: Child, kind: TimerKind) -> None:
        if record._removed or record._timer_kind is not kind:
            return  # cancelled after it was queued
        cause = record._timer_due(kind)
        if kind is TimerKind.RETRY:
            await self._restart(record, cause or Exit(ExitKind.NORMAL))
            return
        policy = record.spec.quarantine or self._quarantine_default or _DEFAULT_QUARANTINE
        now = asyncio.get_running_loop().time()
        record._restarted()
        record._on_probation(now + policy.max_seconds)
        record.actor._emit(ChildRestarted, reason="probe")
        logger.info("supervisor %r probes quarantined child %r", self.path, record.path)
        await self._start(record, restart=True, wait_ready=self._orders_restarts())

    # -- staying down, quarantine, escalation --------------------------------------------------

    def _stay_down(self, record: Child) -> None:
        record._keep_down()
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
        self._rec.auto_stop = True
        self._wake()

    def _quarantine(self, record: Child, exit: Exit) -> None:
        if record.spec.significant:
            self._escalate(record, exit)  # a significant child is never parked
            return
        policy = record.spec.quarantine or self._quarantine_default or _DEFAULT_QUARANTINE
        event_loop = asyncio.get_running_loop()
        handle = event_loop.call_later(policy.probe_every, self._timer_due, record, TimerKind.PROBE)
        record._park(TimerKind.PROBE, handle)
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

    # -- the parent protocol: calls from a child's task -----------------------------------------

    def _child_should_retry(
        self, child: Actor, error: BaseException, attempt: int, default: bool
    ) -> bool:
        record = self._by_actor.get(child)
        if record is None:
            return default
        try:
            answer = self._hooks.should_retry(record, error, attempt)
        except Exception as hook_error:
            self._hook_failed("should_retry", hook_error)
            return False
        return default if answer is None else bool(answer)

    def _child_backoff(self, child: Actor) -> ExponentialBackoff | None:
        record = self._by_actor.get(child)
        return None if record is None else self._backoff_of(record)

    def _backoff_of(self, record: Child) -> ExponentialBackoff | None:
        try:
            chosen = self._hooks.backoff_for(record)
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
