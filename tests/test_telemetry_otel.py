"""OpenTelemetry export: exact metric names, units, attributes and span shapes.

The SDK's in-memory reader and exporter receive what a scripted run
produces in virtual time (see telemetry_script): successes, a retried
error, the retry, a RunNow, a cancelled iteration, a skip; and a real tree
with one restart and one escalation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from telemetry_script import PATH, SECRET, drive_iterations, failing_tree, run_one

from supervised_loops import instrument
from supervised_loops.telemetry import catalogue
from supervised_loops.telemetry.otel import OpenTelemetry
from supervised_loops.testing import VirtualClock

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Sdk:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.spans = InMemorySpanExporter()
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.spans))
        self.telemetry = OpenTelemetry(meter_provider=self.meters, tracer_provider=self.tracers)

    def metrics(self) -> dict[str, Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        found: dict[str, Any] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "supervised_loops"
                for metric in scope.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
        metric = self.metrics()[name]
        return {frozenset(p.attributes.items()): p for p in metric.data.data_points}

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    previous = instrument.install(None)
    made = Sdk()
    yield made
    instrument.install(previous)


def key(**attributes: Any) -> frozenset[tuple[str, Any]]:
    names = {
        "path": catalogue.PATH,
        "outcome": catalogue.OUTCOME,
        "error_type": catalogue.ERROR_TYPE,
        "trigger": catalogue.TRIGGER,
        "reason": catalogue.REASON,
        "state": catalogue.STATE,
    }
    return frozenset((names[k], v) for k, v in attributes.items())


@pytest.mark.virtual_time(start=START)
async def test_iteration_metrics_have_exact_names_units_and_attributes(sdk: Sdk) -> None:
    sdk.telemetry.install()
    await drive_iterations()
    metrics = sdk.metrics()
    assert {m.name: m.unit for m in metrics.values()} == {
        "supervised_loops.iteration.duration": "s",
        "supervised_loops.iteration.lag": "s",
        "supervised_loops.iteration.skipped": "{iteration}",
        "supervised_loops.iteration.last_success": "s",
    }
    durations = sdk.points("supervised_loops.iteration.duration")
    assert set(durations) == {
        key(path=PATH, outcome="ok"),
        key(path=PATH, outcome="retried", error_type="ConnectionError"),
        key(path=PATH, outcome="cancelled"),
    }
    ok = durations[key(path=PATH, outcome="ok")]
    assert (ok.count, ok.sum) == (3, pytest.approx(0.8))
    assert tuple(ok.explicit_bounds) == catalogue.DURATION_BUCKETS
    assert ok.explicit_bounds[0] == 0.01
    assert ok.explicit_bounds[-1] == 3600.0
    retried = durations[key(path=PATH, outcome="retried", error_type="ConnectionError")]
    assert (retried.count, retried.sum) == (1, pytest.approx(0.75))
    lags = sdk.points("supervised_loops.iteration.lag")
    assert set(lags) == {
        key(path=PATH, trigger="schedule"),
        key(path=PATH, trigger="retry"),
        key(path=PATH, trigger="run-now"),
    }
    # Iteration 1 was due at 0.0 and started at 0.75; iteration 3 on time.
    assert lags[key(path=PATH, trigger="schedule")].sum == pytest.approx(0.75)
    assert tuple(lags[key(path=PATH, trigger="retry")].explicit_bounds) == catalogue.LAG_BUCKETS
    skipped = sdk.points("supervised_loops.iteration.skipped")
    assert {k: p.value for k, p in skipped.items()} == {key(path=PATH, reason="paused"): 1}
    # The last success ended at 5.2 virtual seconds after the start.
    last = sdk.points("supervised_loops.iteration.last_success")
    assert last[key(path=PATH)].value == pytest.approx(START.timestamp() + 5.2)


@pytest.mark.virtual_time(start=START)
async def test_no_metric_attribute_carries_error_text(sdk: Sdk) -> None:
    sdk.telemetry.install()
    await drive_iterations()
    tree, _ = failing_tree()
    async with sdk.telemetry.observe(tree):
        await tree.start()
        await tree.stop()
    for metric in sdk.metrics().values():
        for point in metric.data.data_points:
            for value in point.attributes.values():
                assert SECRET not in str(value)
                assert "db-7" not in str(value)


@pytest.mark.virtual_time(start=START)
async def test_one_span_per_iteration_with_its_shape(sdk: Sdk) -> None:
    sdk.telemetry.install()
    await drive_iterations()
    spans = sdk.finished()
    assert [s.name for s in spans] == ["poll"] * 5
    assert all(s.kind is SpanKind.INTERNAL for s in spans)
    first, _failed, _retry, _run_now, _cancelled = spans
    assert dict(first.attributes or {}) == {
        "supervised_loops.actor.path": PATH,
        "supervised_loops.iteration.number": 0,
        "supervised_loops.iteration.scheduled": START.isoformat(),
        "supervised_loops.iteration.lag": 0.0,
        "supervised_loops.iteration.trigger": "schedule",
        "supervised_loops.iteration.attempt": 1,
        "supervised_loops.iteration.outcome": "ok",
    }
    # Times are the virtual wall clock's, in ns since the epoch.
    assert first.start_time == int(START.timestamp() * 1e9)
    assert first.end_time == int((START.timestamp() + 0.5) * 1e9)
    assert first.status.status_code is StatusCode.UNSET
    assert not first.links
    assert not first.events


@pytest.mark.virtual_time(start=START)
async def test_a_retried_error_is_recorded_and_the_retry_links_to_it(sdk: Sdk) -> None:
    sdk.telemetry.install()
    await drive_iterations()
    _, failed, retry, _, _ = sdk.finished()
    assert failed.attributes is not None
    assert retry.attributes is not None
    assert failed.attributes["supervised_loops.iteration.lag"] == 0.75
    assert failed.attributes["supervised_loops.iteration.outcome"] == "retried"
    assert failed.attributes["error.type"] == "ConnectionError"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "ConnectionError"
    assert [e.name for e in failed.events] == ["exception", "supervised_loops.retry"]
    exception, retried = failed.events
    assert exception.attributes is not None
    assert retried.attributes is not None
    assert exception.attributes["exception.type"] == "ConnectionError"
    assert retried.attributes["supervised_loops.iteration.attempt"] == 2
    assert retry.attributes["supervised_loops.iteration.trigger"] == "retry"
    assert retry.attributes["supervised_loops.iteration.attempt"] == 2
    assert retry.attributes["supervised_loops.iteration.number"] == 1
    assert [link.context for link in retry.links] == [failed.context]
    assert retry.links[0].attributes == {"supervised_loops.iteration.attempt": 1}


@pytest.mark.virtual_time(start=START)
async def test_run_now_records_the_message_type_and_cancel_is_not_an_error(sdk: Sdk) -> None:
    sdk.telemetry.install()
    await drive_iterations()
    _, _, _, run_now, cancelled = sdk.finished()
    assert run_now.attributes is not None
    assert cancelled.attributes is not None
    assert run_now.attributes["supervised_loops.iteration.trigger"] == "run-now"
    assert run_now.attributes["supervised_loops.iteration.trigger.message"] == "RunNow"
    assert cancelled.attributes["supervised_loops.iteration.outcome"] == "cancelled"
    assert "error.type" not in cancelled.attributes
    assert cancelled.status.status_code is StatusCode.UNSET


@pytest.mark.virtual_time(start=START)
async def test_restart_is_an_event_on_the_first_span_of_the_new_run(sdk: Sdk) -> None:
    sdk.telemetry.install()
    sdk.telemetry.child_restarted(PATH, "Boom: it broke")
    await drive_iterations()
    first, failed, *_ = sdk.finished()
    assert [(e.name, dict(e.attributes or {})) for e in first.events] == [
        ("supervised_loops.restarted", {"supervised_loops.restart.reason": "Boom: it broke"})
    ]
    assert [e.name for e in failed.events] == ["exception", "supervised_loops.retry"]


@pytest.mark.virtual_time(start=START)
async def test_lifecycle_metrics_from_a_real_tree(sdk: Sdk, virtual_clock: VirtualClock) -> None:
    tree, runs = failing_tree()
    async with sdk.telemetry.observe(tree):
        await tree.start()
        await virtual_clock.sleep(1)
        assert runs.count("flaky") == 2
        # app/inner, a temporary child, failed and was forgotten, app/inner/doomed with it.
        actors = sdk.points("supervised_loops.actors")
        assert {k: p.value for k, p in actors.items() if p.value} == {key(state="running"): 2}
        await tree.stop()
    assert {k: p.value for k, p in sdk.points("supervised_loops.child.restarts").items()} == {
        key(path="app/flaky"): 1
    }
    escalations = sdk.points("supervised_loops.supervisor.escalations")
    assert {k: p.value for k, p in escalations.items()} == {key(path="app/inner"): 1}
    # The root ended for good: the whole tree left the gauge.
    actors = sdk.points("supervised_loops.actors")
    assert {k: p.value for k, p in actors.items() if p.value} == {}
    assert actors[key(state="running")].value == 0
    units = {m.name: m.unit for m in sdk.metrics().values()}
    assert units["supervised_loops.child.restarts"] == "{restart}"
    assert units["supervised_loops.supervisor.escalations"] == "{escalation}"
    assert units["supervised_loops.actors"] == "{actor}"


@pytest.mark.virtual_time
async def test_mailbox_depth_is_read_at_collection(sdk: Sdk, virtual_clock: VirtualClock) -> None:
    tree, _ = failing_tree()
    async with sdk.telemetry.observe(tree):
        await tree.start()
        await virtual_clock.sleep(1)
        flaky = tree.lookup("flaky")
        for n in range(3):
            flaky.tell(("hello", n))
        depths = sdk.points("supervised_loops.mailbox.depth")
        assert depths[key(path="app/flaky")].value == 3
        assert depths[key(path="app")].value == 0
        assert key(path="app/inner") not in depths  # it ended
        assert sdk.metrics()["supervised_loops.mailbox.depth"].unit == "{message}"
        await tree.stop()


@pytest.mark.virtual_time
async def test_observe_uninstalls_on_exit_and_keeps_an_earlier_install(sdk: Sdk) -> None:
    tree, _ = failing_tree()
    async with sdk.telemetry.observe(tree):
        assert instrument.installed is sdk.telemetry
    assert instrument.installed is None
    sdk.telemetry.install()
    async with sdk.telemetry.observe(tree):
        pass
    assert instrument.installed is sdk.telemetry


@pytest.mark.virtual_time
async def test_without_an_sdk_nothing_is_recorded_nor_traced() -> None:
    previous = instrument.install(None)
    try:
        telemetry = OpenTelemetry()  # the API's global, unconfigured providers
        telemetry.install()
        assert telemetry.iteration_started("a", "a", 0, "schedule", 1, 0.0, 0.0) is None
        telemetry.iteration_ended("a", "a", 0, "schedule", 1, 0.0, 0.0, 0.0, "ok", None, None)
    finally:
        instrument.install(previous)


@pytest.mark.virtual_time
async def test_without_an_sdk_an_installed_exporter_stays_out_of_the_engines_way(
    virtual_clock: VirtualClock,
) -> None:
    previous = instrument.install(None)
    try:
        telemetry = OpenTelemetry()
        telemetry.install()
        assert telemetry.is_installed
        assert instrument.installed is None  # iterations cost what they cost with none
        await virtual_clock.sleep(5)  # it keeps looking for an SDK, and finds none
        assert instrument.installed is None
        telemetry.uninstall()
        assert not telemetry.is_installed
        scheduled = asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
        assert [handle for handle in scheduled if not handle.cancelled()] == []
    finally:
        instrument.install(previous)


@pytest.mark.virtual_time
async def test_the_scope_is_the_library_at_its_installed_version(sdk: Sdk) -> None:
    import importlib.metadata

    import supervised_loops

    assert supervised_loops.__version__ == importlib.metadata.version("supervised-loops")
    sdk.telemetry.install()
    await drive_iterations()
    span = sdk.finished()[0]
    assert span.instrumentation_scope is not None
    assert (span.instrumentation_scope.name, span.instrumentation_scope.version) == (
        "supervised_loops",
        supervised_loops.__version__,
    )


@pytest.mark.virtual_time
async def test_the_iteration_span_is_a_root_and_the_parent_of_the_bodys_spans(sdk: Sdk) -> None:
    tracer = sdk.tracers.get_tracer("an.http.client")

    async def body() -> None:
        with tracer.start_as_current_span("GET /items"):
            await asyncio.sleep(0.1)

    sdk.telemetry.install()
    with tracer.start_as_current_span("request that started the loop"):
        await run_one(body)
    inner, iteration, request = sdk.finished()
    assert (inner.name, iteration.name, request.name) == (
        "GET /items",
        "poll",
        "request that started the loop",
    )
    assert iteration.parent is None
    assert inner.parent is not None
    assert inner.parent.span_id == iteration.context.span_id


SDK_SET_LATER = """
import asyncio

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from supervised_loops import instrument, loop
from supervised_loops.telemetry.otel import OpenTelemetry
from supervised_loops.testing import VirtualClock


async def main() -> None:
    telemetry = OpenTelemetry()  # the global providers: none set yet
    telemetry.install()

    @loop(seconds=1)
    async def tick() -> None:
        pass

    tick.start()
    await asyncio.sleep(5.5)
    assert instrument.installed is None, "installed before any SDK was set"
    spans = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracers)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    await asyncio.sleep(5)
    tick.cancel()
    names = [span.name for span in spans.get_finished_spans()]
    assert instrument.installed is telemetry
    print(len(names), set(names))


VirtualClock().run(main())
"""


def test_an_sdk_set_after_install_is_picked_up_within_a_second(tmp_path: Path) -> None:
    # A process of its own: the OpenTelemetry globals can be set only once.
    script = tmp_path / "later.py"
    script.write_text(SDK_SET_LATER)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    # Set at 5.5 s: the exporter attaches at its next look, at 6 s, and the
    # ticks at 6, 7, 8, 9 and 10 s are traced; none before.
    assert done.stdout == "5 {'tick'}\n"


def test_lease_metrics_in_opentelemetry(sdk: Sdk) -> None:
    from supervised_loops import Supervisor, loop
    from supervised_loops.leases import LeaseAcquired, LeaseLost
    from supervised_loops.telemetry.lifecycle import LifecycleWatcher

    @loop(seconds=60, name="report")
    async def report() -> None:
        pass

    watcher = LifecycleWatcher(Supervisor(report, name="app"), sdk.telemetry)
    path, common = "app/report", {"at": START, "lease": "nightly", "holder": "host-1"}
    watcher.handle(LeaseAcquired(path=path, fence=7, **common))
    watcher.handle(LeaseLost(path=path, fence=7, reason="refused", **common))
    watcher.handle(LeaseAcquired(path=path, fence=8, **common))
    held = sdk.points("supervised_loops.lease.held")
    assert {k: p.value for k, p in held.items()} == {key(path=path): 1}
    transitions = sdk.points("supervised_loops.lease.transitions")
    attribute = "supervised_loops.lease.transition"
    assert {k: p.value for k, p in transitions.items()} == {
        key(path=path) | {(attribute, "acquired")}: 2,
        key(path=path) | {(attribute, "lost: refused")}: 1,
    }
    units = {m.name: m.unit for m in sdk.metrics().values()}
    assert units["supervised_loops.lease.held"] == "{lease}"
    assert units["supervised_loops.lease.transitions"] == "{transition}"
