"""Telemetry of real loops in a real tree, in virtual time.

Where tests/test_telemetry_otel.py drives the instrumentation by hand, here
the loop engine does: a loop succeeds, raises a transient error that is
retried, raises an error its supervisor answers with a restart, and runs
once more for a RunNow. The spans and metrics must tell exactly that story.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry

from supervised_loops import ExponentialBackoff, RunNow, Supervisor, instrument, loop
from supervised_loops.telemetry.otel import OpenTelemetry
from supervised_loops.telemetry.prometheus import PrometheusMetrics
from supervised_loops.testing import VirtualClock

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SECRET = "token=abc123"


@pytest.fixture(autouse=True)
def _nothing_installed() -> Iterator[None]:
    previous = instrument.install(None)
    yield
    instrument.install(previous)


def scripted_tree() -> Supervisor:
    """``app/poll``, every 10 s, each body taking 0.5 s; calls 2 and 4 raise."""
    calls = 0

    @loop(seconds=10, name="poll", backoff=ExponentialBackoff(base=1.0, jitter=False))
    async def poll() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.5)
        if calls == 2:
            raise ConnectionError(f"db-7 refused {SECRET}")  # transient: retried after 2 s
        if calls == 4:
            raise LookupError(f"no row for {SECRET}")  # escalated: restarted

    return Supervisor(poll, name="app")


async def script(tree: Supervisor, clock: VirtualClock) -> None:
    await tree.start()
    await clock.sleep(25)  # 0: ok; 10: retried; 12.5: ok; 20: failed, restarted, ok
    await tree.lookup("poll").ask(RunNow())
    await tree.stop()


@pytest.mark.virtual_time(start=START)
async def test_spans_of_a_real_loop_tell_its_story(virtual_clock: VirtualClock) -> None:
    spans = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = OpenTelemetry(meter_provider=MeterProvider(), tracer_provider=tracers)
    tree = scripted_tree()
    async with telemetry.observe(tree):
        await script(tree, virtual_clock)
    finished = spans.get_finished_spans()
    story = [
        (
            span.name,
            span.attributes["supervised_loops.iteration.number"],
            span.attributes["supervised_loops.iteration.trigger"],
            span.attributes["supervised_loops.iteration.attempt"],
            span.attributes["supervised_loops.iteration.outcome"],
            (span.start_time - int(START.timestamp() * 1e9)) / 1e9,
            (span.end_time - span.start_time) / 1e9,
        )
        for span in finished
        if span.attributes is not None
    ]
    assert story == [
        ("poll", 0, "schedule", 1, "ok", 0.0, 0.5),
        ("poll", 1, "schedule", 1, "retried", 10.0, 0.5),
        ("poll", 1, "retry", 2, "ok", 12.5, 0.5),
        ("poll", 2, "schedule", 1, "failed", 20.0, 0.5),
        ("poll", 0, "schedule", 1, "ok", 20.5, 0.5),
        ("poll", 1, "run-now", 1, "ok", 25.0, 0.5),
    ]
    _, retried, retry, failed, restarted, run_now = finished
    assert [link.context for link in retry.links] == [retried.context]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "LookupError"
    assert [e.name for e in restarted.events] == ["supervised_loops.restarted"]
    assert run_now.attributes is not None
    assert run_now.attributes["supervised_loops.iteration.trigger.message"] == "RunNow"
    assert all(
        s.attributes and s.attributes["supervised_loops.actor.path"] == "app/poll" for s in finished
    )


@pytest.mark.virtual_time(start=START)
async def test_metrics_of_a_real_loop_in_both_exporters(virtual_clock: VirtualClock) -> None:
    reader = InMemoryMetricReader()
    telemetry = OpenTelemetry(
        meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=TracerProvider()
    )
    prometheus = PrometheusMetrics(CollectorRegistry())
    tree = scripted_tree()
    async with telemetry.observe(tree), prometheus.observe(tree):
        await script(tree, virtual_clock)
    value = prometheus.registry.get_sample_value
    duration = "supervised_loops_iteration_duration_seconds_count"
    path = "app/poll"
    assert value(duration, {"path": path, "outcome": "ok", "error_type": ""}) == 4
    assert (
        value(duration, {"path": path, "outcome": "retried", "error_type": "ConnectionError"}) == 1
    )
    assert value(duration, {"path": path, "outcome": "failed", "error_type": "LookupError"}) == 1
    assert value("supervised_loops_child_restarts_total", {"path": path}) == 1
    assert (
        value("supervised_loops_iteration_lag_seconds_count", {"path": path, "trigger": "retry"})
        == 1
    )
    assert (
        value("supervised_loops_iteration_last_success_timestamp_seconds", {"path": path})
        == START.timestamp() + 25.5
    )
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        metric.name: {
            tuple(sorted(p.attributes.items())): getattr(p, "count", getattr(p, "value", None))
            for p in metric.data.data_points
        }
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    durations = points["supervised_loops.iteration.duration"]
    assert durations == {
        (("supervised_loops.actor.path", path), ("supervised_loops.iteration.outcome", "ok")): 4,
        (
            ("error.type", "ConnectionError"),
            ("supervised_loops.actor.path", path),
            ("supervised_loops.iteration.outcome", "retried"),
        ): 1,
        (
            ("error.type", "LookupError"),
            ("supervised_loops.actor.path", path),
            ("supervised_loops.iteration.outcome", "failed"),
        ): 1,
    }
    assert points["supervised_loops.child.restarts"] == {
        (("supervised_loops.actor.path", path),): 1
    }
    for metric_points in points.values():
        assert SECRET not in repr(metric_points)
    assert SECRET not in prometheus.exposition()[1].decode()
    prometheus.close()


@pytest.mark.virtual_time(start=START)
async def test_a_real_loops_body_spans_are_children_of_its_iteration(
    virtual_clock: VirtualClock,
) -> None:
    spans = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    client = tracers.get_tracer("an.http.client")

    @loop(seconds=10, count=2, name="fetch")
    async def fetch() -> None:
        with client.start_as_current_span("GET /items"):
            await asyncio.sleep(0.1)

    telemetry = OpenTelemetry(meter_provider=MeterProvider(), tracer_provider=tracers)
    telemetry.install()
    fetch.start()
    await fetch.get_task()
    telemetry.uninstall()
    inner1, first, inner2, second = spans.get_finished_spans()
    assert [s.name for s in (inner1, first, inner2, second)] == ["GET /items", "fetch"] * 2
    assert first.parent is None
    assert second.parent is None
    assert inner1.parent is not None
    assert inner1.parent.span_id == first.context.span_id
    assert inner2.parent is not None
    assert inner2.parent.span_id == second.context.span_id
