"""OpenTelemetry metrics and traces for loops and trees (the ``otel`` extra).

    from supervised_loops.telemetry.otel import OpenTelemetry

    telemetry = OpenTelemetry()            # the global providers, set by the SDK
    async with telemetry.observe(tree):    # iterations + the tree's lifecycle
        await supervised_loops.serve(tree)

Only ``opentelemetry-api`` is imported. Without an SDK configured, the API's
providers are no-ops: each iteration then costs two type checks here and
nothing else (no span, no measurement, no allocation beyond the engine's
own). Configure the SDK before or after creating this object; instruments
and tracer made through the API's proxies pick it up when it is set, and
this object notices within `RECHECK_SECONDS` of event-loop time.

Metrics (names, units and attributes in `supervised_loops.telemetry.catalogue`
and ``docs/observability.md``): iteration duration and lag histograms, skipped
iterations, child restarts, escalations, actors by lifecycle state, the time
of the last success, mailbox depth.

Traces: one span per iteration, named after the loop, started when the body
is called and ended when it returns or raises (never one endless span per
loop). Its attributes carry the path, iteration number, scheduled time, lag,
trigger and attempt. A retried error is recorded on its span (exception
event, error status, and a ``supervised_loops.retry`` event), and the retry's
span links to it. A restart shows as a ``supervised_loops.restarted`` event
on the first span of the restarted run. An iteration run for a ``RunNow``
records the message's type in ``supervised_loops.iteration.trigger.message``:
control messages carry no trace context, so there is no span to link to.
The span is a root span (never the child of whatever context the loop was
started from), and it is the current span while the body runs, so spans the
body starts (an HTTP client's, a database driver's) are its children.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
from collections.abc import AsyncIterator, Iterable
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
except ImportError as error:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "supervised_loops.telemetry.otel needs opentelemetry-api: "
        "pip install 'supervised-loops[otel]'"
    ) from error

from .. import __version__
from ..clock import get_clock
from ..core.actor import Actor
from ..instrument import Outcome, SkipReason, Trigger
from . import catalogue as c
from . import fanout
from .lifecycle import Watchers

__all__ = ["SCOPE", "OpenTelemetry"]

#: The instrumentation scope (meter and tracer name).
SCOPE = "supervised_loops"

_NO_TRACING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_ROOT = otel_context.Context()

# Span attribute keys (metrics use the catalogue's).
ITERATION_NUMBER = "supervised_loops.iteration.number"
SCHEDULED = "supervised_loops.iteration.scheduled"
LAG = "supervised_loops.iteration.lag"
ATTEMPT = "supervised_loops.iteration.attempt"
TRIGGER_MESSAGE = "supervised_loops.iteration.trigger.message"
RESTART_REASON = "supervised_loops.restart.reason"
RETRY_EVENT = "supervised_loops.retry"
RESTART_EVENT = "supervised_loops.restarted"


def _tracing_configured() -> bool:
    return not isinstance(trace.get_tracer_provider(), _NO_TRACING)


def _metrics_configured() -> bool:
    provider = metrics.get_meter_provider()
    # Until an SDK provider is set, the API hands out a proxy (a private
    # class, hence the name test) whose instruments drop every measurement.
    return not (
        isinstance(provider, metrics.NoOpMeterProvider)
        or type(provider).__name__ == "_ProxyMeterProvider"
    )


#: Seconds of event-loop time between two looks at whether an SDK has been
#: configured, while none is: the look reads the environment, which costs
#: more than the rest of an iteration's telemetry.
RECHECK_SECONDS = 1.0


class OpenTelemetry:
    """Reports iterations and lifecycle changes through the OpenTelemetry API.

    Args:
        meter_provider: where metrics go; default the global provider.
        tracer_provider: where spans go; default the global provider.

    It is an `supervised_loops.instrument.Instrumentation` (iterations) and a
    `supervised_loops.telemetry.lifecycle.LifecycleSink` (restarts,
    escalations, states). `observe` wires both for a tree; `install` alone
    is enough for standalone loops, which have no lifecycle to speak of.
    """

    def __init__(
        self,
        *,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self._own_meters = meter_provider is not None
        self._own_tracers = tracer_provider is not None
        # Whether measurements and spans go anywhere. A global provider, once
        # set, is never unset, so a True is final; a False is looked at
        # again every RECHECK_SECONDS (see _refresh).
        self._metering = self._own_meters or _metrics_configured()
        self._tracing = self._own_tracers or _tracing_configured()
        self._recheck_at = float("-inf")
        self._wanted = False
        self._timer: asyncio.TimerHandle | None = None
        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        self._duration = meter.create_histogram(
            c.ITERATION_DURATION.otel,
            unit=c.ITERATION_DURATION.unit,
            description=c.ITERATION_DURATION.description,
            explicit_bucket_boundaries_advisory=c.DURATION_BUCKETS,
        )
        self._lag = meter.create_histogram(
            c.ITERATION_LAG.otel,
            unit=c.ITERATION_LAG.unit,
            description=c.ITERATION_LAG.description,
            explicit_bucket_boundaries_advisory=c.LAG_BUCKETS,
        )
        self._skipped = meter.create_counter(
            c.ITERATION_SKIPPED.otel,
            unit=c.ITERATION_SKIPPED.unit,
            description=c.ITERATION_SKIPPED.description,
        )
        self._restarts = meter.create_counter(
            c.RESTARTS.otel, unit=c.RESTARTS.unit, description=c.RESTARTS.description
        )
        self._escalations = meter.create_counter(
            c.ESCALATIONS.otel, unit=c.ESCALATIONS.unit, description=c.ESCALATIONS.description
        )
        self._actors = meter.create_up_down_counter(
            c.ACTORS.otel, unit=c.ACTORS.unit, description=c.ACTORS.description
        )
        self._last_success = meter.create_gauge(
            c.LAST_SUCCESS.otel, unit=c.LAST_SUCCESS.unit, description=c.LAST_SUCCESS.description
        )
        meter.create_observable_gauge(
            c.MAILBOX_DEPTH.otel,
            callbacks=[self._observe_mailboxes],
            unit=c.MAILBOX_DEPTH.unit,
            description=c.MAILBOX_DEPTH.description,
        )
        self._lease_held = meter.create_up_down_counter(
            c.LEASE_HELD.otel, unit=c.LEASE_HELD.unit, description=c.LEASE_HELD.description
        )
        self._lease_transitions = meter.create_counter(
            c.LEASE_TRANSITIONS.otel,
            unit=c.LEASE_TRANSITIONS.unit,
            description=c.LEASE_TRANSITIONS.description,
        )
        self._watchers = Watchers(self)
        self._retried: dict[str, trace.SpanContext] = {}
        self._restarted: dict[str, str] = {}

    # -- wiring ----------------------------------------------------------------------

    @property
    def is_installed(self) -> bool:
        """Whether `install` is in force (receiving, or waiting for an SDK)."""
        return self._wanted

    def install(self) -> None:
        """Start receiving iterations (alongside any other instrumentation in force).

        With no SDK configured and an event loop running, the object stays
        out of the engine's way (an iteration then costs what it costs with
        no telemetry at all) and looks for an SDK every `RECHECK_SECONDS`
        on that loop; it starts receiving once one is set. Installed
        outside an event loop, it receives at once and drops what it gets
        until an SDK is set.
        """
        self._wanted = True
        self._arm()

    def uninstall(self) -> None:
        """Stop receiving iterations."""
        self._wanted = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        fanout.detach(self)

    def _arm(self) -> None:
        self._timer = None
        if not self._wanted:
            return
        self._metering = self._metering or _metrics_configured()
        self._tracing = self._tracing or _tracing_configured()
        try:
            event_loop = asyncio.get_running_loop()
        except RuntimeError:
            event_loop = None
        if self._metering or self._tracing or event_loop is None:
            fanout.attach(self)
            return
        fanout.detach(self)
        self._timer = event_loop.call_later(RECHECK_SECONDS, self._arm)

    @contextlib.asynccontextmanager
    async def observe(self, tree: Actor) -> AsyncIterator[OpenTelemetry]:
        """Report ``tree``'s iterations and lifecycle while the block runs.

        Iterations are received process-wide (loops outside ``tree`` are
        reported too), lifecycle changes (restarts, escalations, states,
        mailboxes) from ``tree``. Leaving the block counts the events already
        published, then uninstalls this object unless it was installed
        before; cancellation of the block ends it the same way.
        """
        async with self._watchers.observe(tree):
            yield self

    # -- iterations (the Instrumentation protocol) -----------------------------------

    def _refresh(self, now: float) -> None:
        self._recheck_at = now + RECHECK_SECONDS
        self._metering = self._metering or _metrics_configured()
        self._tracing = self._tracing or _tracing_configured()

    #: A span opens before each body (and is current in it): starts are observed.
    observes_starts = True

    def iteration_started(
        self,
        path: str,
        name: str,
        iteration: int,
        trigger: Trigger,
        attempt: int,
        scheduled: float,
        started: float,
    ) -> object:
        if not (self._metering and self._tracing) and started >= self._recheck_at:
            self._refresh(started)
        metering = self._metering
        tracing = self._tracing
        if not (metering or tracing):
            return None
        lag = max(0.0, started - scheduled)
        if metering:
            self._lag.record(lag, {c.PATH: path, c.TRIGGER: trigger})
        if not tracing:
            return None
        event_loop = asyncio.get_running_loop()
        wall = get_clock(event_loop).wall().timestamp()
        started_wall = wall - (event_loop.time() - started)
        attributes: dict[str, Any] = {
            c.PATH: path,
            ITERATION_NUMBER: iteration,
            SCHEDULED: _iso(started_wall - lag),
            LAG: lag,
            c.TRIGGER: trigger,
            ATTEMPT: attempt,
        }
        if trigger == "run-now":
            attributes[TRIGGER_MESSAGE] = "RunNow"  # the only message that runs an iteration
        links: list[Link] = []
        if trigger == "retry":
            failed = self._retried.pop(path, None)
            if failed is not None:
                links.append(Link(failed, {ATTEMPT: attempt - 1}))
        start_ns = _ns(started_wall)
        span = self._tracer.start_span(
            name,
            # A root span: the loop's task may carry the context of whoever
            # started it (a request being handled), which is not a parent of
            # every iteration to come.
            context=_ROOT,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
            start_time=start_ns,
        )
        reason = self._restarted.pop(path, None)
        if reason is not None:
            span.add_event(RESTART_EVENT, {RESTART_REASON: reason}, timestamp=start_ns)
        # Current while the body runs (the engine calls both hooks in the
        # task that runs the body): spans the body starts are its children.
        attached = otel_context.attach(trace.set_span_in_context(span))
        return _Traced(span, start_ns, attached)

    def iteration_ended(
        self,
        path: str,
        name: str,
        iteration: int,
        trigger: Trigger,
        attempt: int,
        scheduled: float,
        started: float,
        ended: float,
        outcome: Outcome,
        error: BaseException | None,
        token: object,
    ) -> None:
        duration = max(0.0, ended - started)
        failed = error is not None and outcome in ("retried", "failed")
        if self._metering:
            attributes = {c.PATH: path, c.OUTCOME: outcome}
            if failed:
                assert error is not None
                attributes[c.ERROR_TYPE] = c.error_type(error)
            self._duration.record(duration, attributes)
            if outcome == "ok":
                wall = get_clock(asyncio.get_running_loop()).wall().timestamp()
                self._last_success.set(wall, {c.PATH: path})
        if not isinstance(token, _Traced):
            return
        otel_context.detach(token.attached)
        span = token.span
        span.set_attribute(c.OUTCOME, outcome)
        end_ns = token.start_ns + _ns(duration)
        if failed:
            assert error is not None
            kind = c.error_type(error)
            span.set_attribute(c.ERROR_TYPE, kind)
            span.record_exception(error, timestamp=end_ns, escaped=True)
            span.set_status(Status(StatusCode.ERROR, kind))
        if outcome == "retried":
            span.add_event(RETRY_EVENT, {ATTEMPT: attempt + 1}, timestamp=end_ns)
            self._retried[path] = span.get_span_context()
        span.end(end_time=end_ns)

    def iteration_skipped(self, path: str, name: str, reason: SkipReason) -> None:
        if self._metering:
            self._skipped.add(1, {c.PATH: path, c.REASON: reason})

    # -- lifecycle (the LifecycleSink protocol) --------------------------------------

    def actor_moved(self, path: str, old: str | None, new: str) -> None:
        if old is not None:
            self._actors.add(-1, {c.STATE: old})
        self._actors.add(1, {c.STATE: new})

    def actor_left(self, path: str, old: str) -> None:
        self._actors.add(-1, {c.STATE: old})

    def child_restarted(self, path: str, reason: str) -> None:
        self._restarts.add(1, {c.PATH: path})
        if self._tracing:
            self._restarted[path] = reason

    def escalated(self, path: str) -> None:
        self._escalations.add(1, {c.PATH: path})

    def lease_changed(self, path: str, held: bool, transition: str) -> None:
        self._lease_held.add(1 if held else -1, {c.PATH: path})
        self._lease_transitions.add(1, {c.PATH: path, c.TRANSITION: transition})

    def _observe_mailboxes(self, options: CallbackOptions) -> Iterable[Observation]:
        # Called from the metric reader's thread: `running` is safe there,
        # and a mailbox length is a single read.
        for path, actor in self._watchers.running():
            yield Observation(actor.mailbox_depth, {c.PATH: path})


class _Traced:
    """The token of a traced iteration: its span and when it started (Unix ns)."""

    __slots__ = ("attached", "span", "start_ns")

    def __init__(
        self, span: trace.Span, start_ns: int, attached: contextvars.Token[otel_context.Context]
    ) -> None:
        self.span = span
        self.start_ns = start_ns
        self.attached = attached


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _iso(unix_seconds: float) -> str:
    return dt.datetime.fromtimestamp(unix_seconds, dt.UTC).isoformat()
