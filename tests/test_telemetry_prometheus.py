"""Prometheus export: the same scripted run, under Prometheus' names and labels."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from telemetry_script import PATH, SECRET, drive_iterations, failing_tree

from supervised_loops import instrument
from supervised_loops.telemetry import catalogue
from supervised_loops.telemetry.prometheus import PrometheusMetrics
from supervised_loops.testing import VirtualClock

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def metrics() -> Iterator[PrometheusMetrics]:
    previous = instrument.install(None)
    made = PrometheusMetrics(CollectorRegistry())
    yield made
    made.close()
    instrument.install(previous)


def value(metrics: PrometheusMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@pytest.mark.virtual_time(start=START)
async def test_iteration_metrics_under_prometheus_names(metrics: PrometheusMetrics) -> None:
    metrics.install()
    await drive_iterations()
    ok = {"path": PATH, "outcome": "ok", "error_type": ""}
    retried = {"path": PATH, "outcome": "retried", "error_type": "ConnectionError"}
    name = "supervised_loops_iteration_duration_seconds"
    assert value(metrics, f"{name}_count", **ok) == 3
    assert value(metrics, f"{name}_sum", **ok) == pytest.approx(0.8)
    assert value(metrics, f"{name}_count", **retried) == 1
    assert value(metrics, f"{name}_bucket", **retried, le="1.0") == 1
    assert value(metrics, f"{name}_bucket", **retried, le="0.5") == 0
    assert value(metrics, f"{name}_bucket", **ok, le="3600.0") == 3
    assert value(metrics, f"{name}_count", path=PATH, outcome="cancelled", error_type="") == 1
    lag = "supervised_loops_iteration_lag_seconds"
    assert value(metrics, f"{lag}_sum", path=PATH, trigger="schedule") == pytest.approx(0.75)
    assert value(metrics, f"{lag}_count", path=PATH, trigger="run-now") == 1
    assert value(metrics, f"{lag}_count", path=PATH, trigger="retry") == 1
    skipped = "supervised_loops_iteration_skipped_total"
    assert value(metrics, skipped, path=PATH, reason="paused") == 1
    last = "supervised_loops_iteration_last_success_timestamp_seconds"
    assert value(metrics, last, path=PATH) == pytest.approx(START.timestamp() + 5.2)


@pytest.mark.virtual_time(start=START)
async def test_lifecycle_metrics_and_mailboxes_from_a_real_tree(
    metrics: PrometheusMetrics, virtual_clock: VirtualClock
) -> None:
    tree, _ = failing_tree()
    async with metrics.observe(tree):
        await tree.start()
        await virtual_clock.sleep(1)
        assert value(metrics, "supervised_loops_actors", state="running") == 2
        # app/inner, a temporary child, failed and was forgotten, app/inner/doomed with it.
        assert value(metrics, "supervised_loops_actors", state="failed") == 0
        assert value(metrics, "supervised_loops_mailbox_depth", path="app/flaky") == 0
        await tree.stop()
    assert value(metrics, "supervised_loops_child_restarts_total", path="app/flaky") == 1
    assert value(metrics, "supervised_loops_supervisor_escalations_total", path="app/inner") == 1
    # The root ended for good: the whole tree left the gauge.
    for state in ("running", "stopped", "failed"):
        assert value(metrics, "supervised_loops_actors", state=state) == 0


@pytest.mark.virtual_time(start=START)
async def test_exposition_names_types_and_no_error_text(metrics: PrometheusMetrics) -> None:
    metrics.install()
    await drive_iterations()
    tree, _ = failing_tree()
    async with metrics.observe(tree):
        await tree.start()
        await tree.stop()
    content_type, body = metrics.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain; version=")
    types = {
        line.split()[2]: line.split()[3]
        for line in text.splitlines()
        # prometheus_client adds a *_created gauge beside each counter and histogram.
        if line.startswith("# TYPE") and not line.split()[2].endswith("_created")
    }
    assert types == {
        "supervised_loops_iteration_duration_seconds": "histogram",
        "supervised_loops_iteration_lag_seconds": "histogram",
        "supervised_loops_iteration_skipped_total": "counter",
        "supervised_loops_child_restarts_total": "counter",
        "supervised_loops_supervisor_escalations_total": "counter",
        "supervised_loops_actors": "gauge",
        "supervised_loops_iteration_last_success_timestamp_seconds": "gauge",
        "supervised_loops_mailbox_depth": "gauge",
        "supervised_loops_lease_held": "gauge",
        "supervised_loops_lease_transitions_total": "counter",
    }
    assert {m.prometheus for m in catalogue.METRICS} == set(types)
    assert SECRET not in text
    assert "db-7" not in text


def test_close_unregisters_so_a_registry_can_be_reused() -> None:
    registry = CollectorRegistry()
    first = PrometheusMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusMetrics(registry)
    first.close()
    PrometheusMetrics(registry).close()
    assert list(registry.collect()) == []


def test_lease_changes_are_counted_by_path_and_transition_never_by_fence(
    metrics: PrometheusMetrics,
) -> None:
    from supervised_loops import Supervisor, loop
    from supervised_loops.events import ActorEnded
    from supervised_loops.leases import LeaseAcquired, LeaseLost
    from supervised_loops.telemetry.lifecycle import LifecycleWatcher

    @loop(seconds=60, name="report")
    async def report() -> None:
        pass

    watcher = LifecycleWatcher(Supervisor(report, name="app"), metrics)
    path, common = "app/report", {"at": START, "lease": "nightly", "holder": "host-1"}
    watcher.handle(LeaseAcquired(path=path, fence=41, **common))
    assert value(metrics, "supervised_loops_lease_held", path=path) == 1
    watcher.handle(LeaseLost(path=path, fence=41, reason="deadline passed", **common))
    assert value(metrics, "supervised_loops_lease_held", path=path) == 0
    watcher.handle(LeaseAcquired(path=path, fence=42, **common))
    watcher.handle(ActorEnded(path=path, at=START))  # the run ended holding it
    assert value(metrics, "supervised_loops_lease_held", path=path) == 0
    transitions = "supervised_loops_lease_transitions_total"
    assert value(metrics, transitions, path=path, transition="acquired") == 2
    assert value(metrics, transitions, path=path, transition="lost: deadline passed") == 1
    assert value(metrics, transitions, path=path, transition="released") == 1
    samples = [
        sample
        for family in metrics.registry.collect()
        if family.name.startswith("supervised_loops_lease")
        for sample in family.samples
    ]
    assert {tuple(sorted(sample.labels)) for sample in samples} <= {
        ("path",),
        ("path", "transition"),
    }
