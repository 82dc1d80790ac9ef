"""One HTTP port for a running tree: /metrics, /healthz, /readyz, over real sockets.

The health decision itself (``supervised_loops.service.health.assess``) is
tested as a table in tests/test_health.py; here, that the port serves it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from test_cli import DEADLINE, DEMO, SCRIPT, poll, run_ctl
from test_control import short_dir

from supervised_loops import Supervisor, child, instrument, loop
from supervised_loops.telemetry.server import serve_metrics
from supervised_loops.testing import VirtualClock

__all__ = ["short_dir"]  # the fixture, shared with test_control


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
    text = "text/plain; charset=utf-8"
    assert await get(port, "/healthz") == (503, text, "failing: 'app' is idle\n")
    assert await get(port, "/readyz") == (503, text, "failing: 'app' is idle\n")
    await tree.start()
    assert await get(port, "/healthz") == (200, text, "ok: 'app' is up (4 actors running)\n")
    assert await get(port, "/readyz") == (200, text, "ok: 'app' is up (4 actors running)\n")
    await tree.stop()
    assert await get(port, "/healthz") == (503, text, "failing: 'app' is stopped\n")


@pytest.mark.virtual_time
async def test_a_tree_past_its_restart_intensity_fails_liveness(
    virtual_clock: VirtualClock,
) -> None:
    calls = 0

    @loop(seconds=10, name="db")
    async def db() -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise LookupError("no such table")

    tree = Supervisor(db, max_restarts=0, name="app")
    async with serve_metrics(tree, 0, host="127.0.0.1", metrics=False) as server:
        await tree.start()
        assert server.respond("GET", "/healthz")[0] == 200
        await virtual_clock.sleep(60)
        status, _, body = server.respond("GET", "/healthz")
    assert status == 503
    assert body.startswith(b"failing: 'app' is failed")


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _http(port: int, target: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{target}", timeout=5) as answer:
        return answer.status, answer.read().decode()


def _http_status(port: int, target: str) -> int | None:
    try:
        return _http(port, target)[0]
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def test_real_process_run_with_a_metrics_port_serves_probes_and_metrics(
    tmp_path: Path, short_dir: Path
) -> None:
    port = _free_port()
    sock = short_dir / "demo.sock"
    log = tmp_path / "stderr.txt"
    command = [str(SCRIPT), "run", f"{DEMO}:make_tree", "--no-live", "--socket", str(sock)]
    with log.open("wb") as err:
        process = subprocess.Popen(
            [*command, "--metrics-port", str(port)],
            cwd=tmp_path,
            env={**os.environ, "DEMO_DB": str(tmp_path / "demo.sqlite3")},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        poll("readiness", lambda: _http_status(port, "/readyz") == 200, process, log)
        assert _http(port, "/healthz") == (200, "ok: 'demo' is up (6 actors running)\n")
        status, text = _http(port, "/metrics")
        assert status == 200
        assert 'supervised_loops_actors{state="running"} 6.0' in text
        assert 'supervised_loops_mailbox_depth{path="demo/heartbeat"} 0.0' in text
        assert "process_cpu_seconds_total" in text  # the global registry's process metrics
        assert run_ctl(sock, "stop", "demo").returncode == 0
        process.wait(DEADLINE)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(DEADLINE)
    assert process.returncode == 0, log.read_text()
    assert _http_status(port, "/healthz") is None  # the port is closed with the service


def test_a_bad_metrics_port_is_a_usage_error(tmp_path: Path) -> None:
    command = [str(SCRIPT), "run", f"{DEMO}:make_tree", "--metrics-port", "http"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "'--metrics-port' must be a port, 0..65535 (got 'http')" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started, no database
