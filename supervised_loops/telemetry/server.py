"""One HTTP port for a running tree: ``/metrics``, ``/healthz`` and ``/readyz``.

    async with serve_metrics(tree, port=9464):
        await supervised_loops.serve(tree)

or ``supervised_loops.run(tree, metrics_port=9464)``, or
``supervised-loops run TARGET --metrics-port 9464``.

* ``GET /metrics``: the Prometheus text exposition of the registry (the
  library's metrics, see `supervised_loops.telemetry.prometheus`, plus
  whatever else the registry holds).
* ``GET /healthz``: liveness, 200 or 503 with a one-line reason.
* ``GET /readyz``: readiness, 200 or 503 with a one-line reason.

Both answers come from `supervised_loops.service.health.assess`, the same
decision ``supervised-loops ctl health`` prints: ready once the tree has
finished starting, live while it runs and no significant actor is failed
or quarantined.

The server is a small asyncio one on the tree's own event loop, not
prometheus_client's thread: a scrape then reads the tree from the thread
that owns it, and a probe that gets an answer proves the event loop
answers, which is half of what liveness means. Each request is read with a
bound on its size and time, answered, and the connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from ..core.actor import Actor
from ..messages import State
from ..service.health import Health, assess, significant_paths
from ..supervision.face import Supervisor

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = ["DEFAULT_HOST", "MetricsServer", "serve_metrics"]

logger = logging.getLogger("supervised_loops.telemetry")

#: Where the port listens unless told: every interface, as a probe from the
#: kubelet and a scrape from Prometheus come from outside the container.
DEFAULT_HOST = "0.0.0.0"

#: Seconds a client has to send its request before the connection is closed.
REQUEST_TIMEOUT = 10.0

_MAX_REQUEST_BYTES = 16_384


class MetricsServer:
    """A listening metrics-and-health server (what `serve_metrics` yields).

    Attributes:
        host: the address it listens on.
        port: the port it listens on (the one chosen when 0 was asked).
    """

    def __init__(
        self,
        tree: Actor,
        exposition: Callable[[], tuple[str, bytes]] | None,
        server: asyncio.Server,
    ) -> None:
        self._tree = tree
        self._exposition = exposition
        self._server = server
        sockname = server.sockets[0].getsockname()
        self.host: str = sockname[0]
        self.port: int = sockname[1]

    def health(self) -> Health:
        """The tree's health now (started: the root has left ``idle`` and ``starting``)."""
        tree = self._tree
        status = tree.status()
        started = status.state not in (State.IDLE, State.STARTING)
        significant = significant_paths(tree) if isinstance(tree, Supervisor) else frozenset()
        return assess(status, started=started, significant=significant)

    def respond(self, method: str, target: str) -> tuple[int, str, bytes]:
        """``(status, content type, body)`` for a request (pure routing, no I/O)."""
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"only GET and HEAD\n"
        if path in ("/healthz", "/readyz"):
            verdict = self.health()
            ok = verdict.live if path == "/healthz" else verdict.ready
            body = ("ok: " if ok else "failing: ") + verdict.reason + "\n"
            return (200 if ok else 503), "text/plain; charset=utf-8", body.encode()
        if path == "/metrics" and self._exposition is not None:
            content_type, exposed = self._exposition()
            return 200, content_type, exposed
        return 404, "text/plain; charset=utf-8", b"not found: /metrics, /healthz, /readyz\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        try:
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _version = request_line.split(" ", 2)
        except ValueError:
            status, content_type, body = 400, "text/plain; charset=utf-8", b"bad request\n"
            method = "GET"
        else:
            try:
                status, content_type, body = self.respond(method, target)
            except Exception:
                # A collector or a status that raised: answer, log, keep serving.
                logger.exception("metrics server: %s %s failed", method, target)
                status, content_type, body = 500, "text/plain; charset=utf-8", b"internal error\n"
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            500: "Internal Server Error",
        }
        headers = (
            f"HTTP/1.1 {status} {reason.get(status, 'Service Unavailable')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(headers.encode("latin-1"))
        if method != "HEAD":
            writer.write(body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def serve_metrics(
    tree: Actor,
    port: int,
    *,
    host: str = DEFAULT_HOST,
    registry: CollectorRegistry | None = None,
    metrics: bool = True,
) -> AsyncIterator[MetricsServer]:
    """Serve ``tree``'s metrics and health probes on ``host:port`` while the block runs.

    Args:
        tree: the tree probed and observed (observed from the start of the
            block: start it inside, or before, either works).
        port: the TCP port; 0 picks a free one (read it from the server).
        host: the address to listen on.
        registry: the prometheus_client registry the metrics are registered
            on and served from; default prometheus_client's global one.
        metrics: False serves the probes alone (no prometheus_client needed).

    Raises:
        TypeError: ``port`` is not an int.
        ValueError: ``port`` is not in 0..65535.
        ImportError: ``metrics`` is true and prometheus_client is missing.
        OSError: the port cannot be bound (in use, no permission).

    Leaving the block closes the port and unregisters the metrics.
    Cancellation of the block does the same and propagates.
    """
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"'port' must be an int (got {port!r})")
    if not 0 <= port <= 65535:
        raise ValueError(f"'port' must be in 0..65535 (got {port!r})")
    exporter = None
    if metrics:
        from .prometheus import PrometheusMetrics

        exporter = PrometheusMetrics(registry)
    try:
        holder: list[MetricsServer] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await holder[0]._handle(reader, writer)

        server = await asyncio.start_server(
            handle, host, port, limit=_MAX_REQUEST_BYTES, reuse_address=True
        )
        try:
            served = MetricsServer(tree, None if exporter is None else exporter.exposition, server)
            holder.append(served)
            if exporter is None:
                yield served
            else:
                async with exporter.observe(tree):
                    yield served
        finally:
            server.close()
            await server.wait_closed()
    finally:
        if exporter is not None:
            exporter.close()
