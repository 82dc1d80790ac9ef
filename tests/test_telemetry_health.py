"""Health decisions as tables, then on live trees, then over HTTP."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from supervised_loops import ActorStatus, State, Stop, Supervisor, child, instrument, loop
from supervised_loops.telemetry import health
from supervised_loops.telemetry.server import serve_metrics
from supervised_loops.testing import VirtualClock


def status(state: State, *children: ActorStatus, path: str = "app") -> ActorStatus:
    return ActorStatus(name=path, path=path, kind="supervisor", state=state, children=children)


def leaf(path: str, state: State) -> ActorStatus:
    return ActorStatus(name=path, path=path, kind="loop", state=state)


LIVENESS = [
    (status(State.RUNNING), (), True, "app is running"),
    (status(State.STARTING), (), True, "app is starting"),
    (status(State.FAILED), (), False, "app is failed"),
    (status(State.STOPPED), (), False, "app is stopped"),
    (status(State.IDLE), (), False, "app is idle"),
    (
        status(State.RUNNING, leaf("app/db", State.FAILED)),
        ("app/db",),
        False,
        "significant child app/db is failed",
    ),
    (
        status(
            State.RUNNING, status(State.RUNNING, leaf("app/s/q", State.QUARANTINED), path="app/s")
        ),
        ("app/s/q",),
        False,
        "significant child app/s/q is quarantined",
    ),
    (
        status(State.RUNNING, leaf("app/db", State.STOPPED)),
        ("app/db",),
        False,
        "significant child app/db is stopped",
    ),
    # Not significant: the supervisor repairs it or gives up (and then it is the root that fails).
    (status(State.RUNNING, leaf("app/db", State.QUARANTINED)), (), True, "app is running"),
    (status(State.RUNNING, leaf("app/db", State.RETRYING)), ("app/db",), True, "app is running"),
]


@pytest.mark.parametrize(("snapshot", "significant", "ok", "reason"), LIVENESS)
def test_liveness_table(
    snapshot: ActorStatus, significant: tuple[str, ...], ok: bool, reason: str
) -> None:
    assert health.liveness(snapshot, significant) == health.Health(ok, reason)


@pytest.mark.parametrize(
    ("state", "ok", "reason"),
    [
        (State.RUNNING, True, "app is ready"),
        (State.STARTING, False, "app is starting"),
        (State.STOPPING, False, "app is stopping"),
        (State.STOPPED, False, "app is stopped"),
        (State.FAILED, False, "app is failed"),
    ],
)
def test_readiness_table(state: State, ok: bool, reason: str) -> None:
    assert health.readiness(status(state)) == health.Health(ok, reason)


def test_a_failed_root_says_why() -> None:
    snapshot = ActorStatus(
        name="app", path="app", kind="supervisor", state=State.FAILED, last_error="Boom: x"
    )
    assert health.liveness(snapshot, ()).reason == "app is failed (Boom: x)"


def _tree() -> Supervisor:
    @loop(seconds=10, name="tick")
    async def tick() -> None:
        pass

    @loop(seconds=10, name="db")
    async def db() -> None:
        pass

    inner = Supervisor(
        child(db, restart="transient", significant=True),
        auto_shutdown="any_significant",
        name="inner",
    )
    return Supervisor(tick, child(inner, restart="transient"), name="app")


@pytest.mark.virtual_time
async def test_check_on_a_live_tree_finds_nested_significant_children() -> None:
    tree = _tree()
    assert health.significant_paths(tree) == {"app/inner/db"}
    assert health.check(tree) == (
        health.Health(False, "app is idle"),
        health.Health(False, "app is idle"),
    )
    await tree.start()
    assert health.check(tree) == (
        health.Health(True, "app is running"),
        health.Health(True, "app is ready"),
    )
    await tree.stop()
    assert health.check(tree)[0] == health.Health(False, "app is stopped")


@pytest.fixture
async def served() -> AsyncIterator[tuple[Supervisor, int]]:
    previous = instrument.install(None)
    tree = _tree()
    async with serve_metrics(tree, 0, host="127.0.0.1", registry=CollectorRegistry()) as server:
        yield tree, server.port
    instrument.install(previous)


async def get(port: int, target: str, method: str = "GET") -> tuple[int, str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
    await writer.drain()
    answer = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition("\r\n\r\n")
    lines = head.split("\r\n")
    content_type = next(
        v for k, _, v in (h.partition(": ") for h in lines[1:]) if k == "Content-Type"
    )
    return int(lines[0].split()[1]), content_type, body


async def test_http_probes_follow_the_tree_real_sockets(served: tuple[Supervisor, int]) -> None:
    tree, port = served
    assert await get(port, "/healthz") == (
        503,
        "text/plain; charset=utf-8",
        "failing: app is idle\n",
    )
    assert (await get(port, "/readyz"))[0] == 503
    await tree.start()
    assert await get(port, "/healthz") == (200, "text/plain; charset=utf-8", "ok: app is running\n")
    assert await get(port, "/readyz") == (200, "text/plain; charset=utf-8", "ok: app is ready\n")
    await tree.stop()
    assert await get(port, "/healthz") == (
        503,
        "text/plain; charset=utf-8",
        "failing: app is stopped\n",
    )


async def test_http_metrics_and_errors_real_sockets(served: tuple[Supervisor, int]) -> None:
    tree, port = served
    await tree.start()
    code, content_type, body = await get(port, "/metrics")
    assert code == 200
    assert content_type.startswith("text/plain; version=")
    assert 'supervised_loops_actors{state="running"} 4.0' in body
    assert 'supervised_loops_mailbox_depth{path="app/inner/db"} 0.0' in body
    assert (await get(port, "/nothing"))[0] == 404
    assert (await get(port, "/metrics", method="POST"))[0] == 405
    code, _, body = await get(port, "/healthz", method="HEAD")
    assert (code, body) == (200, "")
    await tree.stop()


async def test_server_closes_its_port_and_unregisters() -> None:
    previous = instrument.install(None)
    registry = CollectorRegistry()
    tree = _tree()
    async with serve_metrics(tree, 0, host="127.0.0.1", registry=registry) as server:
        port = server.port
        assert instrument.installed is not None
    assert instrument.installed is None
    assert list(registry.collect()) == []
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    instrument.install(previous)


async def test_health_alone_needs_no_registry() -> None:
    tree = _tree()
    async with serve_metrics(tree, 0, host="127.0.0.1", metrics=False) as server:
        assert (await get(server.port, "/healthz"))[0] == 503
        assert (await get(server.port, "/metrics"))[0] == 404


@pytest.mark.parametrize(
    ("port", "error", "message"),
    [
        ("9464", TypeError, "'port' must be an int (got '9464')"),
        (True, TypeError, "'port' must be an int (got True)"),
        (-1, ValueError, "'port' must be in 0..65535 (got -1)"),
        (65536, ValueError, "'port' must be in 0..65535 (got 65536)"),
    ],
)
async def test_bad_port_is_refused_naming_it(port: object, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        async with serve_metrics(_tree(), port, metrics=False):  # type: ignore[arg-type]
            pass


@pytest.mark.virtual_time
async def test_stopping_a_significant_child_fails_liveness(virtual_clock: VirtualClock) -> None:
    tree = _tree()
    await tree.start()
    await tree.lookup("inner/db").ask(Stop())
    await virtual_clock.sleep(1)
    # The inner supervisor ended with it (auto_shutdown) and stays down
    # (transient); the root runs on, without a child it cannot do without.
    assert health.check(tree) == (
        health.Health(False, "significant child app/inner/db is stopped"),
        health.Health(True, "app is ready"),
    )
    await tree.stop()


async def test_a_failing_collector_is_a_500_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def collect(self) -> list[object]:
            raise RuntimeError("collector broke")

    previous = instrument.install(None)
    registry = CollectorRegistry()
    registry.register(Broken())  # type: ignore[arg-type]
    try:
        async with serve_metrics(_tree(), 0, host="127.0.0.1", registry=registry) as server:
            assert (await get(server.port, "/metrics"))[0] == 500
            assert (await get(server.port, "/healthz"))[0] == 503
    finally:
        instrument.install(previous)
    assert "metrics server: GET /metrics failed" in caplog.messages
