"""Per-iteration cost of telemetry: off, the OpenTelemetry API without an SDK, the SDK, Prometheus.

Run: python bench/bench_telemetry.py [--iterations N] [--rounds N]
(needs the `bench` extra: opentelemetry-api and -sdk, prometheus_client).

Each variant runs the same loop, ``loop(seconds=0, count=N)`` whose body does
nothing, so the figure is the library's own cost per iteration, the worst
case for relative overhead (any real body dilutes it). The variants:

* ``off``: nothing installed in ``supervised_loops.instrument``.
* ``no-op hook``: an instrumentation whose methods do nothing and that
  observes starts: what the engine's side of the hook costs at most (two
  calls per iteration; one for an instrumentation that observes ends only).
* ``api, no SDK``: ``OpenTelemetry()`` installed (inside the event loop, as
  ``observe`` does) over the API's global providers, with no SDK configured:
  what a user gets by installing the ``otel`` extra and nothing else.
* ``SDK, no-op export``: ``OpenTelemetry`` with an SDK ``MeterProvider``
  (an in-memory reader never collected: aggregation only) and an SDK
  ``TracerProvider`` whose ``SimpleSpanProcessor`` hands each span to an
  exporter that drops it: the price of recording, not of shipping.
* ``prometheus``: ``PrometheusMetrics`` on a fresh registry.

Rounds are interleaved (every variant once per round, in a rotating order)
so that noise from a shared machine hits all of them alike; the median of
the rounds is reported, with the ratio to ``off``. Time is the process's
CPU time (``time.process_time``), which a busy shared machine disturbs less
than the wall clock; the cyclic GC is off inside timed regions.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from supervised_loops import instrument, loop
from supervised_loops.telemetry.otel import OpenTelemetry
from supervised_loops.telemetry.prometheus import PrometheusMetrics


class DropSpans(SpanExporter):
    """An exporter that accepts every span and sends it nowhere."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def off() -> Callable[[], None]:
    instrument.install(None)
    return lambda: None


class NoOp:
    """An instrumentation that does nothing: the engine's own cost of the hook."""

    observes_starts = True

    def iteration_started(self, *args: object) -> object:
        return None

    def iteration_ended(self, *args: object) -> None:
        pass

    def iteration_skipped(self, *args: object) -> None:
        pass


def hook_floor() -> Callable[[], None]:
    instrument.install(NoOp())  # type: ignore[arg-type]
    return lambda: instrument.install(None)


def api_without_sdk() -> Callable[[], None]:
    telemetry = OpenTelemetry()
    holder.append(telemetry)  # installed inside the event loop, by per_iteration
    return lambda: telemetry.uninstall()


def sdk_noop_export() -> Callable[[], None]:
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(DropSpans()))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrument.install(OpenTelemetry(meter_provider=meters, tracer_provider=tracers))

    def undo() -> None:
        instrument.install(None)
        tracers.shutdown()
        meters.shutdown()

    return undo


def prometheus() -> Callable[[], None]:
    metrics = PrometheusMetrics(CollectorRegistry())
    instrument.install(metrics)

    def undo() -> None:
        instrument.install(None)
        metrics.close()

    return undo


holder: list[OpenTelemetry] = []

VARIANTS: dict[str, Callable[[], Callable[[], None]]] = {
    "off": off,
    "no-op hook": hook_floor,
    "api, no SDK": api_without_sdk,
    "SDK, no-op export": sdk_noop_export,
    "prometheus": prometheus,
}


async def per_iteration(iterations: int) -> float:
    """Microseconds per iteration of a do-nothing loop."""

    @loop(seconds=0, count=iterations, name="bench")
    async def work() -> None:
        pass

    while holder:
        holder.pop().install()  # as observe() does: inside the running event loop
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        work.start()
        await work.get_task()
        elapsed = time.process_time() - started
    finally:
        gc.enable()
    assert work.current_loop == iterations
    return elapsed / iterations * 1e6


def measure(name: str, iterations: int) -> float:
    undo = VARIANTS[name]()
    try:
        return asyncio.run(per_iteration(iterations))
    finally:
        undo()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=11)
    options = parser.parse_args()
    logging.getLogger("supervised_loops").setLevel(logging.WARNING)
    names = list(VARIANTS)
    runs: dict[str, list[float]] = {name: [] for name in names}
    measure("off", 2_000)  # warm up imports and caches
    for round_number in range(options.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(measure(name, options.iterations))
    base = statistics.median(runs["off"])
    print(f"{options.iterations} iterations x {options.rounds} interleaved rounds, medians")
    print(f"{'variant':<20} {'µs/iteration':>13} {'range':>17} {'vs off':>8}")
    for name in names:
        times = runs[name]
        median = statistics.median(times)
        spread = f"{min(times):.2f}-{max(times):.2f}"
        print(f"{name:<20} {median:>13.2f} {spread:>17} {median / base:>7.2f}x")


if __name__ == "__main__":
    main()
