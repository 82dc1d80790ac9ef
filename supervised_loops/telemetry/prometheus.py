"""Prometheus metrics for loops and trees (the ``prometheus`` extra).

    from prometheus_client import CollectorRegistry
    from supervised_loops.telemetry.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics(CollectorRegistry())
    async with metrics.observe(tree):
        ...                                  # scrape metrics.registry

The same metrics as the OpenTelemetry exporter, under Prometheus'
conventions: the base unit at the end of the name (``..._duration_seconds``),
counters ending in ``..._total``, underscores, short label names (``path``,
``outcome``, ``error_type``, ``trigger``, ``reason``, ``state``). The names are listed in
`supervised_loops.telemetry.catalogue` and ``docs/observability.md``.
Mailbox depths are read when the registry is collected (at scrape time).
`supervised_loops.telemetry.server.serve_metrics` serves a registry over
HTTP with health probes beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

try:
    import prometheus_client
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector, CollectorRegistry
except ImportError as error:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "supervised_loops.telemetry.prometheus needs prometheus_client: "
        "pip install 'supervised-loops[prometheus]'"
    ) from error

from ..clock import get_clock
from ..core.actor import Actor
from ..instrument import Outcome, SkipReason, Trigger
from . import catalogue as c
from . import fanout
from .lifecycle import Watchers

__all__ = ["PrometheusMetrics"]

_M = TypeVar("_M")


class _Mailboxes(Collector):
    """Reads the mailbox depth of every running actor watched, at collection."""

    def __init__(self, owner: PrometheusMetrics) -> None:
        self._owner = owner

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for path, actor in self._owner._watchers.running():
            family.add_metric([path], actor.mailbox_depth)
        return [family]

    def _family(self) -> GaugeMetricFamily:
        m = c.MAILBOX_DEPTH
        return GaugeMetricFamily(m.prometheus, m.description, labels=list(m.prometheus_labels))


class PrometheusMetrics:
    """The library's metrics, registered on one prometheus_client registry.

    Args:
        registry: where to register; default prometheus_client's global
            ``REGISTRY`` (which also carries the process metrics).

    Raises:
        ValueError: the registry already holds these metric names (another
            `PrometheusMetrics` on it that was not `close`\\ d).

    Like `supervised_loops.telemetry.otel.OpenTelemetry`, it is an
    Instrumentation and a LifecycleSink; `observe` wires both for a tree.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry: CollectorRegistry = (
            prometheus_client.REGISTRY if registry is None else registry
        )
        r = self.registry
        self._duration = _made(
            prometheus_client.Histogram, c.ITERATION_DURATION, r, buckets=c.DURATION_BUCKETS
        )
        self._lag = _made(prometheus_client.Histogram, c.ITERATION_LAG, r, buckets=c.LAG_BUCKETS)
        self._skipped = _made(prometheus_client.Counter, c.ITERATION_SKIPPED, r)
        self._restarts = _made(prometheus_client.Counter, c.RESTARTS, r)
        self._escalations = _made(prometheus_client.Counter, c.ESCALATIONS, r)
        self._actors = _made(prometheus_client.Gauge, c.ACTORS, r)
        self._last_success = _made(prometheus_client.Gauge, c.LAST_SUCCESS, r)
        self._mailboxes = _Mailboxes(self)
        r.register(self._mailboxes)
        self._lease_held = _made(prometheus_client.Gauge, c.LEASE_HELD, r)
        self._lease_transitions = _made(prometheus_client.Counter, c.LEASE_TRANSITIONS, r)
        self._collectors: tuple[Collector, ...] = (
            self._duration,
            self._lag,
            self._skipped,
            self._restarts,
            self._escalations,
            self._actors,
            self._last_success,
            self._mailboxes,
            self._lease_held,
            self._lease_transitions,
        )
        self._watchers = Watchers(self)
        # The labelled children of the per-iteration metrics, by label values:
        # ``labels()`` takes a lock and validates on every call.
        self._children: dict[tuple[str, ...], prometheus_client.Histogram] = {}
        self._last_children: dict[str, prometheus_client.Gauge] = {}

    def close(self) -> None:
        """Stop receiving iterations and unregister every metric from the registry."""
        self.uninstall()
        for collector in self._collectors:
            with contextlib.suppress(KeyError):
                self.registry.unregister(collector)

    def exposition(self) -> tuple[str, bytes]:
        """``(content type, body)``: the registry in Prometheus' text format."""
        return prometheus_client.CONTENT_TYPE_LATEST, prometheus_client.generate_latest(
            self.registry
        )

    # -- wiring ----------------------------------------------------------------------

    @property
    def is_installed(self) -> bool:
        """Whether `install` is in force."""
        return any(member is self for member in fanout.members())

    def install(self) -> None:
        """Start receiving iterations (alongside any other instrumentation in force)."""
        fanout.attach(self)

    def uninstall(self) -> None:
        """Stop receiving iterations."""
        fanout.detach(self)

    @contextlib.asynccontextmanager
    async def observe(self, tree: Actor) -> AsyncIterator[PrometheusMetrics]:
        """Report ``tree``'s iterations and lifecycle while the block runs.

        Iterations are received process-wide (loops outside ``tree`` are
        reported too), lifecycle changes (restarts, escalations, states,
        mailboxes) from ``tree``. Leaving the block counts the events already
        published, then uninstalls this object unless it was installed
        before; cancellation of the block ends it the same way.
        """
        async with self._watchers.observe(tree):
            yield self

    # -- iterations ------------------------------------------------------------------

    #: Lag and duration are both known at the end: one call per iteration.
    observes_starts = False

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
        return None  # not called: observes_starts is False

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
        children = self._children
        labels: tuple[str, ...] = (path, trigger)
        child = children.get(labels)
        if child is None:
            child = children[labels] = self._lag.labels(*labels)
        child.observe(max(0.0, started - scheduled))
        kind = ""
        if error is not None and outcome in ("retried", "failed"):
            kind = c.error_type(error)
        labels = (path, outcome, kind)
        child = children.get(labels)
        if child is None:
            child = children[labels] = self._duration.labels(*labels)
        child.observe(max(0.0, ended - started))
        if outcome == "ok":
            wall = get_clock(asyncio.get_running_loop()).wall().timestamp()
            last = self._last_children.get(path)
            if last is None:
                last = self._last_children[path] = self._last_success.labels(path)
            last.set(wall)

    def iteration_skipped(self, path: str, name: str, reason: SkipReason) -> None:
        self._skipped.labels(path, reason).inc()

    # -- lifecycle -------------------------------------------------------------------

    def actor_moved(self, path: str, old: str | None, new: str) -> None:
        if old is not None:
            self._actors.labels(old).dec()
        self._actors.labels(new).inc()

    def actor_left(self, path: str, old: str) -> None:
        self._actors.labels(old).dec()

    def child_restarted(self, path: str, reason: str) -> None:
        self._restarts.labels(path).inc()

    def escalated(self, path: str) -> None:
        self._escalations.labels(path).inc()

    def lease_changed(self, path: str, held: bool, transition: str) -> None:
        self._lease_held.labels(path).set(1 if held else 0)
        self._lease_transitions.labels(path, transition).inc()


def _made(
    kind: Callable[..., _M], metric: c.Metric, registry: CollectorRegistry, **extra: Any
) -> _M:
    """A prometheus_client metric of ``kind`` for ``metric`` of the catalogue, on ``registry``."""
    return kind(
        _name(metric), metric.description, metric.prometheus_labels, registry=registry, **extra
    )


def _name(metric: c.Metric) -> str:
    # prometheus_client appends "_total" to counters itself.
    return metric.prometheus.removesuffix("_total")
