"""The metrics the library reports: one table, read by every exporter.

OpenTelemetry and Prometheus spell names differently (dotted with the unit
in metadata, against underscored with the unit and a total suffix in the name),
but they report the same things with the same meaning. This module holds
what they share, so the two exporters cannot drift: each name, unit,
description and histogram bucket set is written here once.

Attribute (label) values are bounded on purpose: actor paths, outcomes,
trigger names, skip reasons, states and exception type names. Never an
error's text, a fencing token or anything else that grows without bound,
because every distinct value is a new time series.
"""

from __future__ import annotations

import attrs

__all__ = [
    "ACTORS",
    "DURATION_BUCKETS",
    "ESCALATIONS",
    "ITERATION_DURATION",
    "ITERATION_LAG",
    "ITERATION_SKIPPED",
    "LAG_BUCKETS",
    "LAST_SUCCESS",
    "LEASE_HELD",
    "LEASE_TRANSITIONS",
    "MAILBOX_DEPTH",
    "METRICS",
    "RESTARTS",
    "Metric",
    "error_type",
]

#: Histogram bucket bounds for iteration durations, in seconds: from a
#: 10 ms poll to an hour-long batch job, roughly three buckets a decade.
DURATION_BUCKETS: tuple[float, ...] = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)

#: Histogram bucket bounds for lateness, in seconds: a healthy loop starts
#: within a millisecond of its slot; minutes mean a blocked event loop or a
#: long overrun.
LAG_BUCKETS: tuple[float, ...] = (
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
)


@attrs.frozen
class Metric:
    """One metric, under both naming conventions.

    Attributes:
        otel: the OpenTelemetry instrument name (dotted).
        prometheus: the Prometheus metric name as scraped (underscored, the
            base unit and a counter's total suffix included; the exporter
            strips that suffix before registering, as prometheus_client
            appends it itself).
        unit: the OpenTelemetry unit (UCUM: ``s``, ``{iteration}``, ...).
        kind: ``histogram``, ``counter``, ``updowncounter`` or ``gauge``.
        description: one line, shown by both exporters.
        otel_attributes: the attribute keys, OpenTelemetry spelling.
        prometheus_labels: the same keys, Prometheus spelling, in order.
    """

    otel: str
    prometheus: str
    unit: str
    kind: str
    description: str
    otel_attributes: tuple[str, ...]
    prometheus_labels: tuple[str, ...]


PATH = "supervised_loops.actor.path"
OUTCOME = "supervised_loops.iteration.outcome"
ERROR_TYPE = "error.type"
TRIGGER = "supervised_loops.iteration.trigger"
REASON = "supervised_loops.skip.reason"
STATE = "supervised_loops.actor.state"

ITERATION_DURATION = Metric(
    otel="supervised_loops.iteration.duration",
    prometheus="supervised_loops_iteration_duration_seconds",
    unit="s",
    kind="histogram",
    description="How long an iteration's body ran, by how it ended.",
    otel_attributes=(PATH, OUTCOME, ERROR_TYPE),
    prometheus_labels=("path", "outcome", "error_type"),
)
ITERATION_LAG = Metric(
    otel="supervised_loops.iteration.lag",
    prometheus="supervised_loops_iteration_lag_seconds",
    unit="s",
    kind="histogram",
    description="How late an iteration started: actual start minus scheduled start.",
    otel_attributes=(PATH, TRIGGER),
    prometheus_labels=("path", "trigger"),
)
ITERATION_SKIPPED = Metric(
    otel="supervised_loops.iteration.skipped",
    prometheus="supervised_loops_iteration_skipped_total",
    unit="{iteration}",
    kind="counter",
    description="Due iterations that did not run, by reason.",
    otel_attributes=(PATH, REASON),
    prometheus_labels=("path", "reason"),
)
RESTARTS = Metric(
    otel="supervised_loops.child.restarts",
    prometheus="supervised_loops_child_restarts_total",
    unit="{restart}",
    kind="counter",
    description="Restarts of a child by its supervisor.",
    otel_attributes=(PATH,),
    prometheus_labels=("path",),
)
ESCALATIONS = Metric(
    otel="supervised_loops.supervisor.escalations",
    prometheus="supervised_loops_supervisor_escalations_total",
    unit="{escalation}",
    kind="counter",
    description="Failures a supervisor passed up to its parent.",
    otel_attributes=(PATH,),
    prometheus_labels=("path",),
)
ACTORS = Metric(
    otel="supervised_loops.actors",
    prometheus="supervised_loops_actors",
    unit="{actor}",
    kind="updowncounter",
    description="Actors in each lifecycle state.",
    otel_attributes=(STATE,),
    prometheus_labels=("state",),
)
LAST_SUCCESS = Metric(
    otel="supervised_loops.iteration.last_success",
    prometheus="supervised_loops_iteration_last_success_timestamp_seconds",
    unit="s",
    kind="gauge",
    description="Wall-clock time (Unix seconds) at which the last successful iteration ended.",
    otel_attributes=(PATH,),
    prometheus_labels=("path",),
)
MAILBOX_DEPTH = Metric(
    otel="supervised_loops.mailbox.depth",
    prometheus="supervised_loops_mailbox_depth",
    unit="{message}",
    kind="gauge",
    description="User messages waiting in a running actor's mailbox.",
    otel_attributes=(PATH,),
    prometheus_labels=("path",),
)

TRANSITION = "supervised_loops.lease.transition"

LEASE_HELD = Metric(
    otel="supervised_loops.lease.held",
    prometheus="supervised_loops_lease_held",
    unit="{lease}",
    kind="updowncounter",
    description="1 while this process holds the actor's lease, 0 while it stands by.",
    otel_attributes=(PATH,),
    prometheus_labels=("path",),
)
LEASE_TRANSITIONS = Metric(
    otel="supervised_loops.lease.transitions",
    prometheus="supervised_loops_lease_transitions_total",
    unit="{transition}",
    kind="counter",
    description="Lease changes: acquired, lost (refused, deadline passed, unreachable), released.",
    otel_attributes=(PATH, TRANSITION),
    prometheus_labels=("path", "transition"),
)

METRICS: tuple[Metric, ...] = (
    ITERATION_DURATION,
    ITERATION_LAG,
    ITERATION_SKIPPED,
    RESTARTS,
    ESCALATIONS,
    ACTORS,
    LAST_SUCCESS,
    MAILBOX_DEPTH,
    LEASE_HELD,
    LEASE_TRANSITIONS,
)


def error_type(error: BaseException) -> str:
    """The ``error.type`` of an exception: its class, qualified by module unless builtin.

    A class name, never the message: the message may hold anything.
    """
    cls = type(error)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"
