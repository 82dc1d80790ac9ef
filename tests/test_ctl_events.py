"""``events`` and ``ctl events``, ``ctl status --watch``: following a running service."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from test_cli import SCRIPT, ThreadService, ctl, short_dir
from test_control import App, ask, error

from supervised_loops.service.control import EVENT_TYPES, ControlServer
from supervised_loops.service.ctl_follow import describe_event_json
from supervised_loops.testing import virtual_time

__all__ = ["short_dir"]  # the fixture, shared with test_cli

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def open_stream(path: Path, request: dict[str, Any]) -> Any:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(json.dumps(request).encode() + b"\n")
    await writer.drain()
    return reader, writer, json.loads(await reader.readline())


@virtual_time(start=START)
async def test_an_events_request_streams_the_subtrees_events_as_json_lines(
    short_dir: Path,
) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path) as server:
        reader, writer, opened = await open_stream(
            path, {"command": "events", "path": "ingest", "types": ["ActorEnded"]}
        )
        assert opened == {"ok": True, "result": {"events": "app/ingest", "types": ["ActorEnded"]}}
        assert (await ask(path, {"command": "stop", "path": "ingest/poller"}))["ok"]
        event = json.loads(await reader.readline())
        assert event == {
            "type": "ActorEnded",
            "path": "app/ingest/poller",
            "at": "2026-01-01T00:00:00+00:00",
            "cancelled": False,
        }
        # Closing its side ends the stream, and the connection with it.
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.1)
        assert server.connections == 0


@virtual_time(start=START)
async def test_an_events_request_for_an_unknown_type_or_path_is_an_error_reply(
    short_dir: Path,
) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        reply = await ask(path, {"command": "events", "types": ["Exploded"]})
        assert reply == error(
            "ValueError",
            f"'types' must be event type names among {', '.join(EVENT_TYPES)} (got 'Exploded')",
        )
        reply = await ask(path, {"command": "events", "types": "ActorEnded"})
        assert reply["error"]["message"].startswith("'types' must be a list of event type names")
        reply = await ask(path, {"command": "events", "path": "nope"})
        assert reply["error"]["type"] == "ChildNotFound"
        reply = await ask(path, {"command": "status", "types": ["ActorEnded"]})
        assert reply == error("ValueError", "unknown fields for 'status': types")


def test_a_streamed_event_is_described_on_one_line() -> None:
    event = {"type": "RetryScheduled", "path": "app/poller", "at": "2026-01-01T00:00:00+00:00",
             "iteration": 7, "attempt": 2, "delay": 0.5}  # fmt: skip
    assert describe_event_json(event) == (
        "2026-01-01T00:00:00+00:00 app/poller: RetryScheduled iteration=7, attempt=2, delay=0.5"
    )


def test_real_process_ctl_events_shows_a_stop_sent_from_another_client(short_dir: Path) -> None:
    sock = short_dir / "app.sock"
    with ThreadService(sock) as service:
        follower = subprocess.Popen(
            [str(SCRIPT), "ctl", "--socket", str(sock), "events", "--type", "ActorEnded"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Wait until the stream is open: the service holds one more connection.
            deadline = time.monotonic() + 20
            while service.connections() != 1:
                assert time.monotonic() < deadline, "the stream never opened"
                time.sleep(0.01)
            assert ctl("--socket", str(sock), "stop", "ingest/poller") == 0
            assert follower.stdout is not None
            line = follower.stdout.readline()
            assert line.endswith(" app/ingest/poller: ActorEnded cancelled=False\n")
        finally:
            follower.send_signal(signal.SIGINT)
            _, err = follower.communicate(timeout=20)
    assert follower.returncode == 0
    assert "Traceback" not in err


def test_real_process_ctl_status_watch_redraws_until_ctrl_c(short_dir: Path) -> None:
    sock = short_dir / "app.sock"
    with ThreadService(sock):
        watcher = subprocess.Popen(
            [str(SCRIPT), "ctl", "--socket", str(sock), "status", "--watch"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert watcher.stdout is not None
        snapshots: list[list[str]] = [[]]
        while len(snapshots) < 3:
            line = watcher.stdout.readline()
            assert line, "the watch ended by itself"
            if line == "\n":
                snapshots.append([])
            else:
                snapshots[-1].append(line)
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=20)
    assert watcher.returncode == 0
    assert "Traceback" not in err
    assert snapshots[0][0].startswith("app ")
    # The same tree, a second later: the countdown moved.
    names = [[line.split()[0:2] for line in snapshot] for snapshot in snapshots[:2]]
    assert names[0] == names[1]
    assert snapshots[0] != snapshots[1]
