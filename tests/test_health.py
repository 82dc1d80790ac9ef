"""Health for probes: the pure verdict, the ``health`` request, and ``ctl health``."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_cli import DEADLINE, DEMO, SCRIPT, ThreadService, ask_socket, ctl, poll, run_ctl
from test_control import ask, short_dir

from supervised_loops import Supervisor, child, loop
from supervised_loops.messages import ActorStatus, State
from supervised_loops.service.control import ControlServer
from supervised_loops.service.health import Health, assess, significant_paths
from supervised_loops.testing import virtual_time

__all__ = ["short_dir"]  # the fixture, shared with test_control


def actor(path: str, state: State, *children: ActorStatus, error: str | None = None) -> ActorStatus:
    return ActorStatus(
        name=path.rsplit("/", 1)[-1],
        path=path,
        kind="supervisor" if children else "loop",
        state=state,
        current_loop=0,
        next_iteration=None,
        failures=0,
        restarts=0,
        last_error=error,
        schedule=None,
        children=children,
    )


def tree(writer: State = State.SLEEPING, poller: State = State.SLEEPING) -> ActorStatus:
    return actor(
        "app",
        State.RUNNING,
        actor("app/writer", writer, error="OSError: disk full" if writer is State.FAILED else None),
        actor("app/poller", poller),
    )


def test_a_started_tree_of_running_actors_is_healthy() -> None:
    assert assess(tree(), started=True) == Health(
        ready=True, live=True, reason="'app' is up (3 actors running)"
    )
    assert assess(tree(), started=True).ok


def test_a_tree_still_starting_is_live_but_not_ready() -> None:
    verdict = assess(tree(), started=False)
    assert (verdict.ready, verdict.live, verdict.ok) == (False, True, False)
    assert verdict.reason == "'app' is still starting"
    verdict = assess(tree(poller=State.STARTING), started=True)
    assert verdict.reason == "'app' is still starting: 'app/poller' is starting"
    assert not verdict.ready


@pytest.mark.parametrize(
    "state", [State.IDLE, State.STOPPED, State.CANCELLED, State.FAILED, State.QUARANTINED]
)
def test_an_actor_that_does_not_run_is_not_live(state: State) -> None:
    verdict = assess(actor("app/poller", state), started=True)
    assert not verdict.live
    assert verdict.reason == f"'app/poller' is {state}"


@pytest.mark.parametrize("state", [State.FAILED, State.QUARANTINED])
def test_a_broken_significant_child_makes_the_tree_not_live(state: State) -> None:
    verdict = assess(tree(writer=state), started=True, significant={"app/writer"})
    assert not verdict.live
    assert verdict.reason.startswith(f"significant 'app/writer' is {state}")


def test_a_broken_child_that_is_not_significant_leaves_the_tree_healthy() -> None:
    verdict = assess(tree(writer=State.FAILED), started=True, significant={"app/poller"})
    assert verdict.ok
    assert verdict.reason == "'app' is up (2 actors running)"


def test_the_reason_carries_the_error_and_counts_the_others() -> None:
    status = tree(writer=State.FAILED, poller=State.QUARANTINED)
    verdict = assess(status, started=True, significant={"app/writer", "app/poller"})
    assert verdict.reason == "significant 'app/writer' is failed (OSError: disk full) and 1 more"


def test_a_subtree_is_assessed_alone() -> None:
    status = tree(writer=State.FAILED)
    assert assess(status.children[1], started=True, significant={"app/writer"}).ok


def test_significant_paths_are_found_at_any_depth() -> None:
    async def body() -> None:
        pass

    a, b, c = (loop(seconds=1, name=name)(body) for name in "abc")
    root = Supervisor(
        Supervisor(
            child(a, significant=True, restart="transient"),
            child(b),
            name="inner",
            auto_shutdown="any_significant",
        ),
        child(c, significant=True, restart="temporary"),
        name="app",
        auto_shutdown="all_significant",
    )
    assert significant_paths(root) == frozenset({"app/inner/a", "app/c"})


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
        # Not significant: the service is still healthy, one actor fewer.
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
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [str(SCRIPT), "run", f"{DEMO}:make_tree", "--no-live", "--socket", str(sock)],
            cwd=tmp_path,
            env={**os.environ, "DEMO_DB": str(tmp_path / "demo.sqlite3")},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        poll("the control socket", lambda: ask_socket(sock, "heartbeat") is not None, process, log)
        healthy = run_ctl(sock, "health")
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert healthy.stdout == "healthy: 'demo' is up (6 actors running)\n"
        assert run_ctl(sock, "stop", "demo/ingest").returncode == 0
        down = run_ctl(sock, "health", "demo/ingest")
        assert down.returncode == 1
        assert down.stdout == "not live: 'demo/ingest' is stopped\n"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(DEADLINE)
    assert process.returncode == 0, log.read_text()
