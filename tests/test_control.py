"""The control socket: a private Unix socket speaking one JSON request per line.

Everything here runs a real :class:`ControlServer` on a real socket, in
virtual time so the tree's loops (and the ``next_iteration`` in replies) are
deterministic. The socket lives in a short directory under /tmp: AF_UNIX
paths are limited to about 107 bytes, and pytest's ``tmp_path`` can be
longer than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import stat
import tempfile
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervised_loops import (
    ActorStatus,
    ChangeInterval,
    Loop,
    State,
    Stop,
    Supervisor,
    child,
    dead_letters,
)
from supervised_loops import loop as make_loop
from supervised_loops.schedule import DailyAt
from supervised_loops.service.control import (
    MAX_REQUEST_BYTES,
    ControlClient,
    ControlServer,
    default_socket_path,
    parse_request,
)
from supervised_loops.testing import virtual_time

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private directory with a short path (mkdtemp makes it 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="slc-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


class App:
    """``app`` → ``ingest`` → (``writer``, ``poller``): minute loops doing nothing."""

    def __init__(self) -> None:
        self.writer = self._minutely("writer")
        self.poller = self._minutely("poller")
        self.tree = Supervisor(
            Supervisor(child(self.writer), child(self.poller), name="ingest"), name="app"
        )

    @staticmethod
    def _minutely(name: str) -> Loop[Any]:
        async def body() -> None:
            pass

        return make_loop(seconds=60, name=name)(body)


async def exchange(path: Path, data: bytes, replies: int = 1, *, eof: bool = False) -> list[Any]:
    """Send raw bytes on one connection (then EOF if asked); read ``replies`` reply lines."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(data)
        if eof:
            writer.write_eof()
        await writer.drain()
        return [json.loads(await reader.readline()) for _ in range(replies)]
    finally:
        writer.close()
        await writer.wait_closed()


async def ask(path: Path, request: Any) -> Any:
    """One request as the ``ctl`` client sends it; the decoded reply."""
    (reply,) = await exchange(path, json.dumps(request).encode() + b"\n")
    return reply


async def hung_up(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection: EOF, or a reset (it left bytes unread)."""
    try:
        return await reader.read() == b""
    except ConnectionResetError:
        return True


def error(kind: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"type": kind, "message": message}}


# -- the socket file and its directory ------------------------------------------------


@virtual_time(start=START)
async def test_the_directory_is_created_0700_and_the_socket_0600(short_dir: Path) -> None:
    app = App()
    path = short_dir / "run" / "app.sock"
    async with ControlServer(app.tree, path) as server:
        assert server.path == path
        directory_mode = path.parent.stat().st_mode
        socket_mode = path.stat().st_mode
        assert stat.S_ISDIR(directory_mode)
        assert stat.S_IMODE(directory_mode) == 0o700
        assert stat.S_ISSOCK(socket_mode)
        assert stat.S_IMODE(socket_mode) == 0o600


@virtual_time(start=START)
async def test_a_directory_open_to_group_or_others_is_refused(short_dir: Path) -> None:
    shared = short_dir / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o750)  # group bits alone are enough to refuse
    server = ControlServer(App().tree, shared / "app.sock")
    with pytest.raises(PermissionError) as caught:
        await server.start()
    assert (
        str(caught.value) == f"control directory {str(shared)!r} must belong to you with mode 0700"
    )
    assert list(shared.iterdir()) == []


@virtual_time(start=START)
async def test_a_directory_owned_by_someone_else_is_refused(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = short_dir / "theirs"
    private.mkdir(mode=0o700)
    # Seen from another user, this 0700 directory is someone else's.
    monkeypatch.setattr(os, "getuid", lambda: private.stat().st_uid + 1)
    with pytest.raises(PermissionError, match="must belong to you with mode 0700"):
        await ControlServer(App().tree, private / "app.sock").start()
    assert list(private.iterdir()) == []


@virtual_time(start=START)
async def test_close_removes_the_socket_file_and_ends_open_connections(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    server = ControlServer(app.tree, path)
    await server.start()
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(b'{"command": "status", "path": "ingest"}\n')
    assert json.loads(await reader.readline())["ok"] is True  # now idle, mid-conversation
    await server.close()
    assert not path.exists()
    assert await reader.read() == b""  # the server hung up
    writer.close()
    await writer.wait_closed()
    await server.close()  # closing twice is harmless


@virtual_time(start=START)
async def test_a_connection_accepted_as_the_server_closes_is_hung_up_on(short_dir: Path) -> None:
    server = ControlServer(App().tree, short_dir / "app.sock")
    await server.start()
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    await server.close()  # before the server has even seen the connection
    try:
        # Hung up (EOF), or reset while still in the listener's backlog; never
        # left waiting for a reply that cannot come.
        assert await asyncio.wait_for(reader.read(), 1.0) == b""
    except ConnectionResetError:
        pass
    writer.close()
    with contextlib.suppress(ConnectionResetError):
        await writer.wait_closed()


@virtual_time(start=START)
async def test_a_stale_socket_left_by_a_killed_process_is_replaced(short_dir: Path) -> None:
    path = short_dir / "app.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # a killed process leaves exactly this: a file nobody listens on
    dead.close()
    assert stat.S_ISSOCK(path.stat().st_mode)
    app = App()
    async with app.tree, ControlServer(app.tree, path):
        reply = await ask(path, {"command": "status", "path": "ingest/poller"})
        assert reply["ok"] is True
        assert reply["result"]["path"] == "app/ingest/poller"


@virtual_time(start=START)
async def test_a_live_socket_refuses_a_second_server_and_keeps_serving(short_dir: Path) -> None:
    path = short_dir / "app.sock"
    app = App()
    async with app.tree, ControlServer(app.tree, path):
        with pytest.raises(RuntimeError) as caught:
            await ControlServer(App().tree, path).start()
        assert str(caught.value) == f"a service already listens on {str(path)!r}"
        reply = await ask(path, {"command": "status", "path": "app"})
        assert reply["result"]["name"] == "app"


@virtual_time(start=START)
async def test_a_path_that_is_not_a_socket_is_never_deleted(short_dir: Path) -> None:
    path = short_dir / "notes.txt"
    path.write_text("keep me")
    with pytest.raises(FileExistsError) as caught:
        await ControlServer(App().tree, path).start()
    assert str(caught.value) == f"{str(path)!r} exists and is not a socket"
    assert path.read_text() == "keep me"


def test_the_default_socket_is_in_the_private_runtime_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_socket_path("demo") == tmp_path / "supervised-loops" / "demo.sock"


def test_without_a_runtime_directory_the_socket_is_in_a_per_user_temp_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    expected = tmp_path / f"supervised-loops-{os.getuid()}" / "demo.sock"
    assert default_socket_path("demo") == expected
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))  # set but absent
    assert default_socket_path("demo") == expected


# -- requests that are refused ---------------------------------------------------------

REFUSED = [
    pytest.param(
        b"{nope\n",
        error(
            "ValueError",
            "malformed JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        id="malformed-json",
    ),
    pytest.param(
        b"\xff\xfe\n",
        error(
            "ValueError",
            "malformed JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
            "invalid start byte",
        ),
        id="not-utf8",
    ),
    pytest.param(
        b'["status"]\n',
        error("ValueError", "a request must be a JSON object (got list)"),
        id="non-object",
    ),
    pytest.param(
        b'{"command": "frobnicate"}\n',
        error(
            "ValueError",
            "'command' must be one of stop, cancel, restart, pause, resume, run-now, status, "
            "change-interval, health, events (got 'frobnicate')",
        ),
        id="unknown-command",
    ),
    pytest.param(
        b'{"path": "ingest"}\n',
        error(
            "ValueError",
            "'command' must be one of stop, cancel, restart, pause, resume, run-now, status, "
            "change-interval, health, events (got None)",
        ),
        id="no-command",
    ),
    pytest.param(
        b'{"command": "stop", "path": "ingest/poller", "seconds": 5, "force": true}\n',
        error("ValueError", "unknown fields for 'stop': force, seconds"),
        id="unknown-fields",
    ),
    pytest.param(
        b'{"command": "stop", "path": ["ingest", "poller"]}\n',
        error("ValueError", "'path' must be a string (got ['ingest', 'poller'])"),
        id="path-not-a-string",
    ),
]


@pytest.mark.parametrize(("line", "reply"), REFUSED)
@virtual_time(start=START)
async def test_a_bad_request_gets_an_error_reply_and_changes_nothing(
    short_dir: Path, line: bytes, reply: dict[str, Any]
) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        before = app.tree.status()
        assert await exchange(path, line) == [reply]
        assert app.tree.status() == before
        assert dead_letters.count == 0


BAD_INTERVALS = [
    pytest.param({"seconds": "5"}, "'seconds' must be a number (got '5')", id="string"),
    pytest.param({"minutes": True}, "'minutes' must be a number (got True)", id="bool"),
    pytest.param({"hours": None}, "'hours' must be a number (got None)", id="null"),
    pytest.param({"seconds": -1}, "'seconds' must be >= 0 (got -1)", id="negative"),
    pytest.param({"seconds": float("nan")}, "'seconds' must be finite (got nan)", id="nan"),
    pytest.param({"hours": float("inf")}, "'hours' must be finite (got inf)", id="infinite"),
    pytest.param({}, "'change-interval' needs seconds, minutes, hours or time", id="nothing"),
    pytest.param(
        {"seconds": 5, "time": ["18:00"]},
        "'time' cannot be mixed with seconds/minutes/hours; use either a relative interval "
        "or times of day",
        id="time-and-seconds",
    ),
    pytest.param({"time": []}, "'time' must be a non-empty sequence (got [])", id="no-times"),
    pytest.param({"time": ["25:00"]}, "'time[0]' must be 'HH:MM[:SS]' (got '25:00')", id="hour"),
    pytest.param(
        {"time": ["18:00", 1800]}, "'time[1]' must be 'HH:MM[:SS]' (got 1800)", id="number"
    ),
    pytest.param(
        {"time": [{"time": "09:30", "tz": "Mars/Olympus"}]},
        "'time[0]': unknown time zone 'Mars/Olympus'",
        id="unknown-zone",
    ),
    pytest.param(
        {"time": [{"time": "09:30"}]},
        "'time[0]' 'tz' must be a zone name (got None)",
        id="zone-missing",
    ),
    pytest.param(
        {"time": [{"time": "09:30", "tz": "UTC", "dst": False}]},
        "'time[0]' has unknown fields ['dst']",
        id="zone-object-extra-field",
    ),
]


@pytest.mark.parametrize(("fields", "message"), BAD_INTERVALS)
def test_a_bad_interval_is_refused_with_the_field_named(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        parse_request({"command": "change-interval", "path": "ingest/poller", **fields})
    assert str(caught.value) == message


@virtual_time(start=START)
async def test_a_bad_interval_over_the_socket_leaves_the_schedule_alone(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        # NaN is not JSON, but Python's decoder takes it: it must still be refused.
        line = b'{"command": "change-interval", "path": "ingest/poller", "seconds": NaN}\n'
        assert await exchange(path, line) == [
            error("ValueError", "'seconds' must be finite (got nan)")
        ]
        assert app.poller.seconds == 60
        assert app.poller.next_iteration == START + dt.timedelta(seconds=60)


def test_every_simple_command_becomes_its_message() -> None:
    assert parse_request({"command": "stop", "path": "app/ingest/poller"}) == (
        "app/ingest/poller",
        Stop(),
    )
    names = {
        command: type(parse_request({"command": command})[1]).__name__
        for command in ("stop", "cancel", "restart", "pause", "resume", "run-now", "status")
    }
    assert names == {
        "stop": "Stop",
        "cancel": "Cancel",
        "restart": "Restart",
        "pause": "Pause",
        "resume": "Resume",
        "run-now": "RunNow",
        "status": "GetStatus",
    }


def test_change_interval_takes_times_of_day_in_utc_or_in_a_named_zone() -> None:
    path, message = parse_request(
        {
            "command": "change-interval",
            "path": "report",
            "time": ["18:00", {"time": "09:30:15", "tz": "Europe/Berlin"}, "06:00+02:00"],
        }
    )
    assert path == "report"
    expected = ChangeInterval(
        time=[
            dt.time(18, 0, tzinfo=dt.UTC),
            dt.time(9, 30, 15, tzinfo=BERLIN),
            dt.time(6, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ]
    )
    assert message == expected
    # A single time needs no list.
    _, single = parse_request({"command": "change-interval", "time": "18:00"})
    assert single == ChangeInterval(time=dt.time(18, 0, tzinfo=dt.UTC))


# -- requests that are answered -------------------------------------------------------


@virtual_time(start=START)
async def test_status_of_the_whole_tree_is_the_snapshot_as_json(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        await asyncio.sleep(10)

        def a_loop(name: str) -> dict[str, Any]:
            return {
                "name": name,
                "path": f"app/ingest/{name}",
                "kind": "loop",
                "state": "sleeping",
                "current_loop": 1,
                "next_iteration": "2026-01-01T00:01:00+00:00",
                "failures": 0,
                "restarts": 0,
                "last_error": None,
                "schedule": "Every(seconds=60.0)",
                "children": [],
            }

        def a_supervisor(name: str, path: str, children: list[Any]) -> dict[str, Any]:
            return {
                "name": name,
                "path": path,
                "kind": "supervisor",
                "state": "running",
                "current_loop": 0,
                "next_iteration": None,
                "failures": 0,
                "restarts": 0,
                "last_error": None,
                "schedule": None,
                "children": children,
            }

        expected = a_supervisor(
            "app",
            "app",
            [a_supervisor("ingest", "app/ingest", [a_loop("writer"), a_loop("poller")])],
        )
        assert await ask(path, {"command": "status"}) == {"ok": True, "result": expected}
        assert await ask(path, {"command": "status", "path": "app"}) == {
            "ok": True,
            "result": expected,
        }


@pytest.mark.parametrize("written", ["app/ingest/poller", "ingest/poller"])
@virtual_time(start=START)
async def test_a_path_is_taken_as_status_shows_it_or_relative_to_the_root(
    short_dir: Path, written: str
) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        reply = await ask(path, {"command": "stop", "path": written})
        assert reply == {
            "ok": True,
            "result": {"message": "Stop", "iteration": 1, "next_iteration": None},
        }
        assert app.poller.status().state is State.STOPPED
        assert app.writer.status().state is State.SLEEPING


@pytest.mark.parametrize("written", ["nope", "app/ingest/nope", "ingest/poller/deeper"])
@virtual_time(start=START)
async def test_an_unknown_path_is_an_error_naming_it_and_the_tree_is_untouched(
    short_dir: Path, written: str
) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        before = app.tree.status()
        reply = await ask(path, {"command": "stop", "path": written})
        assert reply == error("ChildNotFound", f"supervisor 'app' has no child {written!r}")
        assert app.tree.status() == before
        assert app.tree.is_running()
        assert dead_letters.count == 0


@virtual_time(start=START)
async def test_change_interval_in_seconds_moves_the_next_run_at_once(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        await asyncio.sleep(10)
        reply = await ask(
            path, {"command": "change-interval", "path": "ingest/poller", "seconds": 30}
        )
        # Recomputed from the last iteration (at 00:00:00), not from now.
        assert reply == {
            "ok": True,
            "result": {
                "message": "ChangeInterval",
                "iteration": 1,
                "next_iteration": "2026-01-01T00:00:30+00:00",
            },
        }
        assert (app.poller.seconds, app.poller.minutes, app.poller.hours) == (30, 0, 0)
        reply = await ask(
            path,
            {"command": "change-interval", "path": "ingest/poller", "minutes": 1, "hours": 1},
        )
        assert reply["result"]["next_iteration"] == "2026-01-01T01:01:00+00:00"


@virtual_time(start=START)
async def test_change_interval_with_times_of_day_and_zones(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        request = {
            "command": "change-interval",
            "path": "app/ingest/poller",
            "time": ["18:00", {"time": "09:30", "tz": "Europe/Berlin"}],
        }
        reply = await ask(path, request)
        # 09:30 in Berlin is 08:30 UTC on 1 January: the earlier of the two.
        assert reply == {
            "ok": True,
            "result": {
                "message": "ChangeInterval",
                "iteration": 1,
                "next_iteration": "2026-01-01T08:30:00+00:00",
            },
        }
        assert app.poller.time == [dt.time(9, 30, tzinfo=BERLIN), dt.time(18, 0, tzinfo=dt.UTC)]
        status = await ask(path, {"command": "status", "path": "ingest/poller"})
        assert status["result"]["schedule"] == str(
            DailyAt([dt.time(9, 30, tzinfo=BERLIN), dt.time(18, tzinfo=dt.UTC)])
        )


@virtual_time(start=START)
async def test_a_message_the_actor_refuses_is_an_error_reply(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        reply = await ask(path, {"command": "pause", "path": "ingest"})
        assert reply == error(
            "UnhandledMessage",
            "actor 'app/ingest' does not take Pause: a supervisor is not paused as a whole; "
            "pause its loops one by one, or stop it (its children stop with it) "
            "and restart it later",
        )
        assert app.tree.is_running()


@virtual_time(start=START)
async def test_a_message_to_a_loop_that_is_not_running_is_an_error_reply(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        assert (await ask(path, {"command": "stop", "path": "ingest/poller"}))["ok"] is True
        reply = await ask(path, {"command": "pause", "path": "ingest/poller"})
        assert reply == error(
            "ActorNotRunning", "actor 'app/ingest/poller' is not running; Pause() was not delivered"
        )
        assert app.poller.status().state is State.STOPPED
        assert app.writer.is_running()


@virtual_time(start=START)
async def test_requests_on_one_connection_are_answered_in_order(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        lines = (
            b'{"command": "pause", "path": "ingest/poller"}\n'
            b'{"command": "status", "path": "ingest/poller"}\n'
            b"[]\n"
            b'{"command": "resume", "path": "ingest/poller"}'  # the last line may lack "\n"
        )
        replies = await exchange(path, lines, replies=4, eof=True)
        assert [reply["ok"] for reply in replies] == [True, True, False, True]
        assert replies[0]["result"]["message"] == "Pause"
        assert replies[1]["result"]["state"] == "paused"
        assert replies[3]["result"]["message"] == "Resume"


@virtual_time(start=START)
async def test_an_oversized_request_is_refused_and_its_connection_closed(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        # Exactly the limit (the newline not counted) is still a request...
        request = b'{"command": "status", "path": "ingest"}'
        padded = request + b" " * (MAX_REQUEST_BYTES - len(request))
        (reply,) = await exchange(path, padded + b"\n")
        assert reply["ok"] is True
        assert reply["result"]["path"] == "app/ingest"
        # ...one byte more is refused, far more too, and the server hangs up.
        for size in (MAX_REQUEST_BYTES + 1, 4 * MAX_REQUEST_BYTES):
            reader, writer = await asyncio.open_unix_connection(str(path))
            writer.write(request + b" " * (size - len(request)) + b"\n")
            refused = json.loads(await reader.readline())
            assert refused == error("ValueError", f"request longer than {MAX_REQUEST_BYTES} bytes")
            assert await hung_up(reader)
            writer.close()
            with contextlib.suppress(ConnectionResetError):
                await writer.wait_closed()
        # Others are still served.
        reply = await ask(path, {"command": "status", "path": "ingest/writer"})
        assert reply["result"]["state"] == "sleeping"


@virtual_time(start=START)
async def test_fifty_concurrent_clients_each_get_their_own_reply(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        connections = [await asyncio.open_unix_connection(str(path)) for _ in range(50)]

        def request_of(index: int) -> dict[str, Any]:
            if index % 3 == 0:
                return {"command": "status", "path": "ingest/writer"}
            if index % 3 == 1:
                return {"command": "status", "path": "app/ingest/poller"}
            return {"command": "status", "path": f"missing{index}"}

        for index, (_, writer) in enumerate(connections):
            writer.write(json.dumps(request_of(index)).encode() + b"\n")
        replies = await asyncio.gather(*(reader.readline() for reader, _ in connections))
        for index, line in enumerate(replies):
            reply = json.loads(line)
            if index % 3 == 0:
                assert reply["result"]["path"] == "app/ingest/writer"
            elif index % 3 == 1:
                assert reply["result"]["path"] == "app/ingest/poller"
            else:
                assert reply == error(
                    "ChildNotFound", f"supervisor 'app' has no child 'missing{index}'"
                )
        for _, writer in connections:
            writer.close()
            await writer.wait_closed()


@virtual_time(start=START)
async def test_the_client_sends_one_request_and_decodes_the_reply(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    client = ControlClient(path)
    with pytest.raises(ConnectionError) as caught:
        await client.request({"command": "status"})
    assert str(caught.value) == f"no service listens on {str(path)!r}"
    async with app.tree, ControlServer(app.tree, path):
        reply = await client.request({"command": "run-now", "path": "ingest/poller"})
        assert reply == {
            "ok": True,
            "result": {
                "message": "RunNow",
                "iteration": 2,
                "next_iteration": "2026-01-01T00:01:00+00:00",
            },
        }
        assert app.poller.current_loop == 2


@virtual_time(start=START)
async def test_an_actor_slow_to_acknowledge_gets_an_ask_timeout_reply(short_dir: Path) -> None:
    async def slow_body() -> None:
        await asyncio.sleep(3600)  # a long iteration: Stop waits for its end

    slow = make_loop(seconds=1, name="slow")(slow_body)
    tree = Supervisor(child(slow), name="app")
    path = short_dir / "app.sock"
    async with tree, ControlServer(tree, path, timeout=5.0):
        began = asyncio.get_running_loop().time()
        reply = await ask(path, {"command": "stop", "path": "slow"})
        assert reply == error(
            "AskTimeout", "actor 'app/slow' did not answer Stop() within 5.0 seconds"
        )
        assert asyncio.get_running_loop().time() - began == 5.0
        assert slow.status().state is State.STOPPING  # delivered: it still takes effect


@virtual_time(start=START)
async def test_the_client_gives_up_on_a_server_that_never_replies(short_dir: Path) -> None:
    path = short_dir / "mute.sock"
    connections: list[asyncio.StreamWriter] = []

    async def mute(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # reads nothing, answers nothing, keeps the line open

    server = await asyncio.start_unix_server(mute, path=str(path))
    try:
        with pytest.raises(TimeoutError) as caught:
            await ControlClient(path, timeout=2.0).request({"command": "status"})
        assert str(caught.value) == f"no reply from {str(path)!r} within 2.0 seconds"
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()


@virtual_time(start=START)
async def test_the_client_reports_a_service_that_hangs_up_without_replying(
    short_dir: Path,
) -> None:
    path = short_dir / "rude.sock"

    async def rude(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_unix_server(rude, path=str(path))
    try:
        with pytest.raises(ConnectionError) as caught:
            await ControlClient(path).request({"command": "status"})
        assert str(caught.value) == "the service closed the connection without replying"
    finally:
        server.close()
        await server.wait_closed()


class HugeTree:
    """Enough of a tree for the server: a root with ten thousand loops in its status."""

    name = "huge"

    def lookup(self, path: str) -> Any:
        raise LookupError(path)

    def status(self) -> ActorStatus:
        loops = tuple(
            ActorStatus(
                name=f"loop{index}",
                path=f"huge/loop{index}",
                kind="loop",
                state=State.SLEEPING,
                current_loop=index,
                next_iteration=START,
                schedule="Every(seconds=60.0)",
            )
            for index in range(10_000)
        )
        return ActorStatus(
            name="huge", path="huge", kind="supervisor", state=State.RUNNING, children=loops
        )


@virtual_time(start=START)
async def test_the_status_of_ten_thousand_loops_comes_back_whole(short_dir: Path) -> None:
    path = short_dir / "huge.sock"
    async with ControlServer(HugeTree(), path):
        reply = await ControlClient(path).request({"command": "status"})
    children = reply["result"]["children"]
    assert len(json.dumps(reply)) > 2 * 1024 * 1024  # far more than a request may be
    assert len(children) == 10_000
    assert children[-1]["path"] == "huge/loop9999"
    assert children[-1]["current_loop"] == 9999
