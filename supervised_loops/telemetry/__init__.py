"""Telemetry for running trees: OpenTelemetry, Prometheus, health probes.

Every module here is optional and imports its third-party library only
when imported itself, so ``import supervised_loops`` never pulls them in:

* `supervised_loops.telemetry.otel`: metrics and one span per iteration
  through ``opentelemetry-api`` (extra ``otel``).
* `supervised_loops.telemetry.prometheus`: the same metrics on a
  prometheus_client registry (extra ``prometheus``).
* `supervised_loops.telemetry.server`: ``serve_metrics``, one HTTP port
  with ``/metrics``, ``/healthz`` and ``/readyz``.
* `supervised_loops.telemetry.catalogue`: the metrics, under both naming
  conventions.
* `supervised_loops.telemetry.lifecycle` and `supervised_loops.telemetry.fanout`:
  the plumbing the exporters share (events hub follower, several
  instrumentations in one slot).

Iterations reach the exporters through `supervised_loops.instrument`;
lifecycle changes through the tree's events. The page is
``docs/observability.md``.
"""
