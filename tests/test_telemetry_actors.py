"""Which actors the ``actors`` metric counts, under both exporters.

An actor enters at its first start; one that ended but that its supervisor
keeps (and may start again) goes on counting in its final state; one that
ended for good leaves, with everything below it: a standalone loop or the
root of the tree whose run ended, a child forgotten by ``delete_child`` or
because it was temporary. See docs/observability.md, "Which actors are
counted".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from supervised_loops import Stop, Supervisor, child, instrument, loop, worker
from supervised_loops.events import ChildRemoved
from supervised_loops.telemetry import catalogue
from supervised_loops.telemetry.otel import OpenTelemetry
from supervised_loops.telemetry.prometheus import PrometheusMetrics
from supervised_loops.testing import VirtualClock

STATES = ("running", "stopped", "cancelled", "failed", "quarantined")

Counts = Callable[[], dict[str, float]]


def otel() -> tuple[Any, Counts, Callable[[], None]]:
    reader = InMemoryMetricReader()
    telemetry = OpenTelemetry(meter_provider=MeterProvider(metric_readers=[reader]))

    def counts() -> dict[str, float]:
        data = reader.get_metrics_data()
        found: dict[str, float] = {}
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == catalogue.ACTORS.otel:
                        for point in metric.data.data_points:
                            state = str(point.attributes[catalogue.STATE])
                            found[state] = found.get(state, 0) + point.value
        return {state: value for state, value in found.items() if value}

    return telemetry, counts, lambda: None


def prometheus() -> tuple[Any, Counts, Callable[[], None]]:
    metrics = PrometheusMetrics(CollectorRegistry())

    def counts() -> dict[str, float]:
        found = {
            state: metrics.registry.get_sample_value(catalogue.ACTORS.prometheus, {"state": state})
            for state in STATES
        }
        return {state: value for state, value in found.items() if value}

    return metrics, counts, metrics.close


@pytest.fixture(params=["otel", "prometheus"])
def exporter(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Counts]]:
    previous = instrument.install(None)
    made, counts, close = otel() if request.param == "otel" else prometheus()
    yield made, counts
    close()
    instrument.install(previous)


async def nothing() -> None:
    pass


async def forever() -> None:
    await asyncio.Event().wait()


async def applied(clock: VirtualClock) -> None:
    """Let the exporter's watcher task apply the events published so far (virtual time)."""
    await clock.sleep(0.01)


@pytest.mark.virtual_time
async def test_a_stopped_standalone_loop_leaves_and_enters_again_when_started(
    exporter: tuple[Any, Counts], virtual_clock: VirtualClock
) -> None:
    telemetry, counts = exporter
    tick = loop(seconds=1, name="tick")(nothing)
    async with telemetry.observe(tick):
        assert counts() == {}
        tick.start()
        await virtual_clock.sleep(0.5)
        assert counts() == {"running": 1}
        await tick.ask(Stop())
        await applied(virtual_clock)
        assert counts() == {}  # nothing starts it again by itself
        tick.start()
        await virtual_clock.sleep(0.5)
        assert counts() == {"running": 1}
        tick.cancel()
        await virtual_clock.sleep(0.5)
        assert counts() == {}


@pytest.mark.virtual_time
async def test_a_terminated_child_counts_as_stopped_until_it_is_deleted(
    exporter: tuple[Any, Counts], virtual_clock: VirtualClock
) -> None:
    telemetry, counts = exporter
    tree = Supervisor(
        loop(seconds=1, name="a")(nothing),
        loop(seconds=1, name="b")(nothing),
        Supervisor(loop(seconds=1, name="c")(nothing), worker(forever), name="sub"),
        name="app",
    )
    events = tree.events()
    async with telemetry.observe(tree):
        await tree.start()
        await virtual_clock.sleep(0.5)
        assert counts() == {"running": 6}  # app, a, b, sub, sub/c, sub/forever
        await tree.terminate_child("b")
        await applied(virtual_clock)
        assert counts() == {"running": 5, "stopped": 1}  # kept: restart_child may start it
        await tree.delete_child("b")
        await applied(virtual_clock)
        assert counts() == {"running": 5}
        await tree.terminate_child("sub")
        await applied(virtual_clock)
        assert counts() == {"running": 2, "stopped": 3}
        await tree.delete_child("sub")  # the subtree leaves with it
        await applied(virtual_clock)
        assert counts() == {"running": 2}
        await tree.stop()
        await applied(virtual_clock)
        assert counts() == {}
    events.close()
    removed = [event.path async for event in events if isinstance(event, ChildRemoved)]
    assert removed == ["app/b", "app/sub"]


@pytest.mark.virtual_time
async def test_a_temporary_child_that_ends_leaves_a_transient_one_stays_stopped(
    exporter: tuple[Any, Counts], virtual_clock: VirtualClock
) -> None:
    telemetry, counts = exporter
    tree = Supervisor(
        child(loop(seconds=1, count=1, name="once")(nothing), restart="temporary"),
        child(loop(seconds=1, count=1, name="done")(nothing), restart="transient"),
        loop(seconds=1, name="tick")(nothing),
        name="app",
    )
    async with telemetry.observe(tree):
        await tree.start()
        await virtual_clock.sleep(0.5)
        # Both ran their one iteration: "once" was forgotten, "done" is kept
        # (restart_child may start it again).
        assert counts() == {"running": 2, "stopped": 1}
        await tree.stop()
        await applied(virtual_clock)
        assert counts() == {}


@pytest.mark.virtual_time
async def test_a_watched_subtree_with_a_parent_stays_counted_when_it_stops(
    exporter: tuple[Any, Counts], virtual_clock: VirtualClock
) -> None:
    telemetry, counts = exporter
    sub = Supervisor(loop(seconds=1, name="c")(nothing), name="sub")
    tree = Supervisor(sub, name="app")
    await tree.start()
    async with telemetry.observe(sub):
        await virtual_clock.sleep(0.5)
        assert counts() == {"running": 2}
        await tree.terminate_child("sub")  # its parent keeps it: it may start again
        await applied(virtual_clock)
        assert counts() == {"stopped": 2}
        await tree.restart_child("sub")
        await virtual_clock.sleep(0.5)
        assert counts() == {"running": 2}
    await tree.stop()
