"""The ``health`` request and ``ctl health``: the probes' decisions over the control socket.

The decisions themselves (``supervised_loops.service.health.assess``) are tested
as tables with the HTTP probes; here, how the socket and the command carry
them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from test_cli import ThreadService, ctl, demo_service, run_ctl
from test_control import ask, short_dir

from supervised_loops import Supervisor, child, loop
from supervised_loops.service.control import ControlServer
from supervised_loops.testing import virtual_time

__all__ = ["short_dir"]  # the fixture, shared with test_control


@virtual_time(start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
async def test_the_health_request_answers_ready_live_and_why(short_dir: Path) -> None:
    attempts: list[int] = []

    @loop(seconds=10, name="flaky")
    async def flaky() -> None:
        attempts.append(1)
        if len(attempts) > 2:
            raise RuntimeError("lost the database")

    @loop(seconds=10, name="other")
    async def other() -> None:
        pass

    root = Supervisor(child(flaky, restart="temporary"), child(other), name="app")
    path = short_dir / "app.sock"
    async with root, ControlServer(root, path):
        reply: Any = await ask(path, {"command": "health"})
        assert reply == {
            "ok": True,
            "result": {
                "ready": True,
                "live": True,
                "healthy": True,
                "reason": "'app' is up (3 actors running)",
            },
        }
        await asyncio.sleep(25)  # the third iteration fails; temporary: it stays down
        reply = await ask(path, {"command": "health"})
        # Not significant: the service is still healthy.
        assert reply["result"]["reason"] == "'app' is up (2 actors running)"
        assert reply["result"]["healthy"] is True
        assert (await ask(path, {"command": "stop", "path": "other"}))["ok"]
        other_only = await ask(path, {"command": "health", "path": "other"})
        assert other_only["result"] == {
            "ready": True,
            "live": False,
            "healthy": False,
            "reason": "'app/other' is stopped",
        }


def test_ctl_health_exits_0_when_healthy_and_1_when_nothing_answers(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = short_dir / "app.sock"
    with ThreadService(sock):
        assert ctl("--socket", str(sock), "health") == 0
        assert capsys.readouterr().out == "healthy: 'app' is up (3 actors running)\n"
        assert ctl("--socket", str(sock), "health", "ingest/poller") == 0
        capsys.readouterr()
    assert ctl("--socket", str(sock), "health") == 1
    assert capsys.readouterr().out == f"not live: no service listens on {str(sock)!r}\n"


def test_real_process_ctl_health_of_the_demo_and_of_a_stopped_subtree(
    tmp_path: Path, short_dir: Path
) -> None:
    sock = short_dir / "demo.sock"
    with demo_service(tmp_path, sock):
        healthy = run_ctl(sock, "health")
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert healthy.stdout == "healthy: 'demo' is up (6 actors running)\n"
        assert run_ctl(sock, "stop", "demo/ingest").returncode == 0
        down = run_ctl(sock, "health", "demo/ingest")
        assert down.returncode == 1
        assert down.stdout == "not live: 'demo/ingest' is stopped\n"
