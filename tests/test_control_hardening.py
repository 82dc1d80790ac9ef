"""The control socket under hostile input: every request answered, every connection bounded.

Requests that once closed the connection without a reply (nesting deeper
than the JSON decoder goes, integers past Python's 4 300-digit limit, a
time zone that is a directory of the zone database), ill-formed paths that
once meant the root, idle and excess connections, accept errors, and the
umask. Real sockets; virtual time wherever a timeout is involved.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from test_control import App, ask, error, exchange, hung_up, short_dir

from supervised_loops import Supervisor, child, loop
from supervised_loops.messages import ChangeInterval
from supervised_loops.service.control import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    MAX_REQUEST_BYTES,
    ControlLimits,
    ControlServer,
)
from supervised_loops.service.control_protocol import SHOWN_WIDTH, parse_request
from supervised_loops.testing import virtual_time

__all__ = ["short_dir"]  # the fixture, shared with test_control

REPO = Path(__file__).resolve().parent.parent

_PATH_RULE = "'path' must be names joined by '/', with no empty name; leave it out for the root"

UNANSWERED_ONCE = [
    pytest.param(b"[" * 60_000 + b"\n", "malformed JSON: nested too deeply", id="nested-array"),
    pytest.param(
        b'{"command": "stop", "path": ' + b"[" * 60_000 + b"\n",
        "malformed JSON: nested too deeply",
        id="nested-object-in-a-field",
    ),
    pytest.param(
        b'{"command": "change-interval", "path": "ingest/poller", "seconds": '
        + b"9" * 5_000
        + b"}\n",
        "malformed JSON: a number has too many digits",
        id="int-past-4300-digits",
    ),
    pytest.param(
        json.dumps({"command": "change-interval", "path": "ingest/poller", "seconds": 10**4000})
        .encode()
        .replace(b"\n", b"")
        + b"\n",
        "'seconds' must be <= 31536000000 (1000 years) (got 1"
        + "0" * 19
        + "..."
        + "0" * 19
        + " (4001 characters))",
        id="int-of-4000-digits",
    ),
]


def zone_request(zone: Any) -> bytes:
    request = {
        "command": "change-interval",
        "path": "ingest/writer",
        "time": [{"time": "09:30", "tz": zone}],
    }
    return json.dumps(request).encode() + b"\n"


ZONES = [
    pytest.param("Europe", "'time[0]': unknown time zone 'Europe'", id="zone-directory"),
    pytest.param("x" * 300, "'time[0]': unknown time zone 'xxxxxxx", id="zone-too-long"),
    pytest.param("Europe/", "'time[0]': unknown time zone 'Europe/'", id="zone-trailing-slash"),
    pytest.param("../../etc/passwd", "'time[0]': unknown time zone '../../", id="zone-outside"),
    pytest.param("/etc/passwd", "'time[0]': unknown time zone '/etc/passwd'", id="zone-absolute"),
    pytest.param("a\x00b", "'time[0]': unknown time zone 'a\\x00b'", id="zone-nul"),
    pytest.param("Mars/Olympus", "'time[0]': unknown time zone 'Mars/Olympus'", id="zone-unknown"),
    pytest.param(["UTC"], "'time[0]' 'tz' must be a zone name (got ['UTC'])", id="zone-list"),
]

WRONG_TYPES = [
    ({"command": 5}, "'command' must be one of"),
    ({"command": ["stop"]}, "'command' must be one of"),
    ({"command": "stop", "path": 5}, "'path' must be a string (got 5)"),
    ({"command": "stop", "path": None}, "'path' must be a string (got None)"),
    ({"command": "stop", "path": {"a": 1}}, "'path' must be a string (got {'a': 1})"),
    ({"command": "change-interval", "path": "app", "seconds": "5"}, "'seconds' must be a number"),
    ({"command": "change-interval", "path": "app", "minutes": True}, "'minutes' must be a number"),
    ({"command": "change-interval", "path": "app", "hours": None}, "'hours' must be a number"),
    ({"command": "change-interval", "path": "app", "hours": [1]}, "'hours' must be a number"),
    ({"command": "change-interval", "path": "app", "time": 930}, "'time[0]' must be 'HH:MM"),
    ({"command": "change-interval", "path": "app", "time": [None]}, "'time[0]' must be 'HH:MM"),
    (
        {"command": "change-interval", "path": "app", "time": [{"time": 9, "tz": "UTC"}]},
        "'time[0]' must be 'HH:MM",
    ),
    ({"command": "change-interval", "path": "app", "time": ["x" * 500]}, "'time[0]' must be"),
]


@pytest.mark.parametrize(("line", "message"), UNANSWERED_ONCE)
@virtual_time()
async def test_requests_the_decoder_chokes_on_get_an_error_reply(
    short_dir: Path, line: bytes, message: str
) -> None:
    assert len(line) <= MAX_REQUEST_BYTES + 1
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        assert await exchange(path, line) == [error("ValueError", message)]
        assert app.poller.is_running()
        # The connection and the server still serve.
        assert (await ask(path, {"command": "status", "path": "ingest/poller"}))["ok"]


@pytest.mark.parametrize(("zone", "message"), ZONES)
@virtual_time()
async def test_a_zone_that_is_not_a_zone_gets_an_error_reply(
    short_dir: Path, zone: Any, message: str
) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        before = app.writer.next_iteration
        (reply,) = await exchange(path, zone_request(zone))
        assert reply["ok"] is False
        assert reply["error"]["type"] == "ValueError"
        assert reply["error"]["message"].startswith(message)
        assert len(reply["error"]["message"]) < 200  # a long value is cut short
        assert app.writer.next_iteration == before


@pytest.mark.parametrize(("request_", "message"), WRONG_TYPES)
@virtual_time()
async def test_a_field_of_the_wrong_type_is_named_in_the_error_reply(
    short_dir: Path, request_: dict[str, Any], message: str
) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        reply = await ask(path, request_)
        assert reply["ok"] is False
        assert reply["error"]["type"] == "ValueError"
        assert reply["error"]["message"].startswith(message)
        assert app.tree.is_running()


@pytest.mark.parametrize("written", ["/", "", "app/", "ingest/", "a//b", "/ingest", "app//ingest"])
@pytest.mark.parametrize("command", ["stop", "cancel", "status"])
@virtual_time()
async def test_an_ill_formed_path_is_an_error_naming_it_never_the_root(
    short_dir: Path, written: str, command: str
) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        reply = await ask(path, {"command": command, "path": written})
        assert reply == error("ValueError", f"{_PATH_RULE} (got {written!r})")
        assert app.tree.is_running()
        assert app.poller.is_running()
        assert app.writer.is_running()


@virtual_time()
async def test_a_request_without_a_path_is_for_the_root(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        status = await ask(path, {"command": "status"})
        assert status["result"]["path"] == "app"
        assert (await ask(path, {"command": "stop"}))["ok"]
        assert not app.tree.is_running()


@pytest.mark.parametrize(
    ("written", "meant"),
    [("poller", "'app/ingest/poller'"), ("app/poller", "'app/ingest/poller'")],
)
@virtual_time()
async def test_a_path_that_misses_suggests_the_actor_it_probably_meant(
    short_dir: Path, written: str, meant: str
) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        reply = await ask(path, {"command": "stop", "path": written})
        assert reply == error(
            "ChildNotFound",
            f"supervisor 'app' has no child {written!r}; did you mean {meant}?",
        )
        assert app.poller.is_running()


# -- one copy of the checks: the library's rules, the value cut to the reply's width ----

SAME_AS_LOOP = [
    pytest.param("seconds", "5", id="string"),
    pytest.param("minutes", True, id="bool"),
    pytest.param("hours", [1], id="list"),
    pytest.param("seconds", -1, id="negative"),
    pytest.param("minutes", float("nan"), id="nan"),
    pytest.param("hours", float("-inf"), id="minus-infinity"),
]


@pytest.mark.parametrize(("field", "value"), SAME_AS_LOOP)
def test_an_interval_part_is_refused_in_the_words_loop_uses(field: str, value: Any) -> None:
    with pytest.raises((TypeError, ValueError)) as by_loop:
        loop(**{field: value})
    with pytest.raises(ValueError) as by_request:
        parse_request({"command": "change-interval", "path": "app", field: value})
    assert str(by_request.value) == str(by_loop.value)


LIMITS = [
    pytest.param("seconds", 31_536_000_000, id="seconds"),
    pytest.param("minutes", 525_600_000, id="minutes"),
    pytest.param("hours", 8_760_000, id="hours"),
]


@pytest.mark.parametrize(("field", "limit"), LIMITS)
def test_an_interval_part_may_reach_the_libraries_1000_years_and_no_further(
    field: str, limit: int
) -> None:
    # The request takes what loop() takes: 1000 years, counted in the field's own unit.
    _, message = parse_request({"command": "change-interval", "path": "app", field: limit})
    assert message == ChangeInterval(**{field: limit})
    with pytest.raises(ValueError) as caught:
        parse_request({"command": "change-interval", "path": "app", field: limit + 1})
    assert str(caught.value) == f"'{field}' must be <= {limit} (1000 years) (got {limit + 1})"


LONG_VALUES = [
    pytest.param({"command": "x" * 5_000}, "'command' must be one of", 5_002, id="command"),
    pytest.param(
        {"command": "stop", "path": "a" * 2_000}, "'path' must be at most", 2_002, id="path"
    ),
    pytest.param(
        {"command": "stop", "path": [list(range(300))]}, "'path' must be a string", 1_392, id="list"
    ),
    pytest.param(
        {"command": "change-interval", "path": "a", "hours": "9" * 900},
        "'hours' must be a number",
        902,
        id="amount",
    ),
    pytest.param(
        {"command": "change-interval", "path": "a", "time": ["9" * 30]},
        "'time[0]' must be 'HH:MM[:SS]'",
        32,
        id="short-time-shown-whole",
    ),
    pytest.param(
        {"command": "events", "types": ["E" * 900]}, "'types' must be event", 902, id="types"
    ),
]


@pytest.mark.parametrize(("request_", "start", "length"), LONG_VALUES)
def test_a_long_bad_value_is_shown_in_at_most_60_characters_with_its_length(
    request_: dict[str, Any], start: str, length: int
) -> None:
    with pytest.raises(ValueError) as caught:
        parse_request(request_)
    text = str(caught.value)
    assert text.startswith(start)
    shown = text[text.index("(got ") + len("(got ") : -1]
    assert len(shown) <= SHOWN_WIDTH
    if length > SHOWN_WIDTH:
        assert shown.endswith(f" ({length} characters)")
    else:
        assert len(shown) == length


class Exploding:
    """A tree whose lookup fails in a way nobody planned for."""

    name = "boom"

    def lookup(self, path: str) -> Any:
        raise ZeroDivisionError("division by zero")

    def status(self) -> Any:
        raise ZeroDivisionError("division by zero")


@virtual_time()
async def test_an_unexpected_failure_is_an_error_reply_and_is_logged_once(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = short_dir / "boom.sock"
    async with ControlServer(Exploding(), path):
        for _ in range(3):
            reply = await ask(path, {"command": "stop", "path": "x"})
            assert reply == error("ZeroDivisionError", "division by zero")
    failures = [r for r in caplog.records if r.name == "supervised_loops.control"]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "logged once" in failures[0].getMessage()


# -- connections --------------------------------------------------------------------------


def test_the_limits_have_documented_defaults_and_are_checked() -> None:
    assert ControlLimits() == ControlLimits(idle_timeout=30.0, max_connections=64)
    assert (DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS) == (30.0, 64)
    with pytest.raises(ValueError, match=r"'idle_timeout' must be > 0 \(got 0\)"):
        ControlLimits(idle_timeout=0)
    with pytest.raises(TypeError, match=r"'max_connections' must be an int \(got 2.5\)"):
        ControlLimits(max_connections=2.5)  # type: ignore[arg-type]


@virtual_time()
async def test_an_idle_connection_is_closed_after_the_idle_timeout(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path) as server:
        reader, writer = await asyncio.open_unix_connection(str(path))
        await asyncio.sleep(DEFAULT_IDLE_TIMEOUT - 1)
        # Still open: a request on it is answered, and restarts the clock.
        writer.write(b'{"command": "status", "path": "ingest"}\n')
        assert json.loads(await reader.readline())["ok"]
        await asyncio.sleep(DEFAULT_IDLE_TIMEOUT - 1)
        assert server.connections == 1
        writer.write(b'{"command": "sta')  # half a request is still idle
        await asyncio.sleep(2)
        assert await hung_up(reader)
        assert server.connections == 0
        writer.close()


@virtual_time()
async def test_many_idle_connections_do_not_keep_a_client_out(short_dir: Path) -> None:
    app = App()
    path = short_dir / "app.sock"
    limits = ControlLimits(max_connections=8)
    async with app.tree, ControlServer(app.tree, path, limits=limits) as server:
        idle = [await asyncio.open_unix_connection(str(path)) for _ in range(40)]
        await asyncio.sleep(0.1)
        assert server.connections <= 8
        # The oldest idle ones were closed to make room for the newer.
        assert await hung_up(idle[0][0])
        reply = await ask(path, {"command": "status", "path": "ingest/poller"})
        assert reply["ok"]
        for _reader, writer in idle:
            writer.close()


@virtual_time()
async def test_a_client_beyond_the_cap_of_busy_connections_gets_a_busy_reply(
    short_dir: Path,
) -> None:
    gate = asyncio.Event()

    @loop(hours=1, name="slow")
    async def slow() -> None:
        await gate.wait()

    tree = Supervisor(child(slow), name="app")
    path = short_dir / "app.sock"
    limits = ControlLimits(max_connections=2)
    async with tree, ControlServer(tree, path, limits=limits):
        await asyncio.sleep(0.1)  # the first iteration is waiting on the gate
        busy = [
            asyncio.ensure_future(ask(path, {"command": "run-now", "path": "slow"}))
            for _ in range(2)
        ]
        await asyncio.sleep(0.1)
        reply = await ask(path, {"command": "status", "path": "slow"})
        assert reply["ok"] is False
        assert reply["error"]["type"] == "ServerBusy"
        assert "2 connections busy" in reply["error"]["message"]
        gate.set()
        assert all(r["ok"] for r in await asyncio.gather(*busy))
        assert (await ask(path, {"command": "status", "path": "slow"}))["ok"]


@virtual_time()
async def test_the_socket_is_bound_without_touching_the_process_umask(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real_umask = os.umask

    def watched(mask: int) -> int:
        calls.append(mask)
        return real_umask(mask)

    monkeypatch.setattr(os, "umask", watched)
    app = App()
    path = short_dir / "app.sock"
    async with app.tree, ControlServer(app.tree, path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert (await ask(path, {"command": "status"}))["ok"]
    assert calls == []


ACCEPT_STORM = """
import asyncio, logging, resource, sys
from supervised_loops import Supervisor
from supervised_loops.service.control import ControlLimits, ControlServer

logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

async def main():
    tree = Supervisor(name="app")
    limits = ControlLimits(max_connections=1000)  # above the fd limit: accept must fail
    async with tree, ControlServer(tree, sys.argv[1], limits=limits):
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

asyncio.run(main())
"""


def test_real_process_accept_errors_are_logged_once_per_burst(short_dir: Path) -> None:
    path = short_dir / "storm.sock"
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(ACCEPT_STORM), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    clients: list[socket.socket] = []
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        for _ in range(80):  # twice what the service may hold
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(str(path))
            clients.append(client)
        # Let the service spin on its accept errors for a while.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        probe.connect(str(path))
        with pytest.raises(TimeoutError):
            probe.recv(1)
        for client in clients:
            client.close()
        clients.clear()
        # Room again: the waiting client's request is answered.
        probe.settimeout(10)
        probe.sendall(b'{"command": "status"}\n')
        with probe.makefile("rb") as replies:
            assert json.loads(replies.readline())["ok"]
        probe.close()
    finally:
        for client in clients:
            client.close()
        _out, err = process.communicate("\n", timeout=20)
    assert process.returncode == 0, err
    failures = [line for line in err.splitlines() if "cannot accept connections" in line]
    assert len(failures) == 1, err
    assert "Too many open files" in failures[0]
    assert "Traceback" not in err
