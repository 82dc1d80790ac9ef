"""The ``supervised-loops`` console command: ``run``, ``tree``, ``ctl`` and the live view.

``main(argv)`` is called in this process wherever that is enough; a service
for ``ctl`` to talk to then runs in a thread with its own event loop (real
time, minute-long loops, so nothing moves while a test looks). One test runs
the demo in a real process and steers it with the installed console script
from another, as a user would from a second shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervised_loops import Loop, Supervisor, child, loop
from supervised_loops.events import ActorEnded, RetryScheduled
from supervised_loops.service.cli import describe_event, load_target, main
from supervised_loops.service.control import COMMANDS, ControlServer, default_socket_path
from supervised_loops.service.live_view import LiveView as _LiveView

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo" / "service.py"
SCRIPT = Path(sys.executable).with_name("supervised-loops")

SMALL_TARGET = """
import datetime as dt
import pathlib

from supervised_loops import Supervisor, child, loop

STARTED = pathlib.Path(__file__).with_name("started")


@loop(seconds=5)
async def poller():
    STARTED.touch()


@loop(time=dt.time(18, 0))
async def report():
    STARTED.touch()


tree = Supervisor(Supervisor(child(poller), name="ingest"), child(report), name="app")


def make_tree():
    return Supervisor(name="made")


@loop(seconds=1, name="lonely")
async def lonely():
    STARTED.touch()


answer = 42


def make_text():
    return "text"
"""

SMALL_TREE = (
    "app             idle         failures 0  restarts 0\n"
    "├── ingest      idle         failures 0  restarts 0\n"
    "│   └── poller  idle  #0  -  failures 0  restarts 0\n"
    "└── report      idle  #0  -  failures 0  restarts 0\n"
)


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Targets are imported for real: restore sys.path and forget their modules after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("_supervised_loops_target_", "sl_cli_")):
            del sys.modules[name]


@pytest.fixture
def small(tmp_path: Path, isolated_imports: None) -> Path:
    path = tmp_path / "small.py"
    path.write_text(SMALL_TARGET)
    return path


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private directory with a short path: AF_UNIX paths stop at ~107 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="sli-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


# -- load_target ------------------------------------------------------------------------


@pytest.mark.usefixtures("isolated_imports")
def test_load_target_imports_module_colon_attribute_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "sl_cli_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "service.py").write_text(SMALL_TARGET)
    monkeypatch.chdir(tmp_path)
    tree = load_target("sl_cli_pkg.service:tree")
    assert tree is sys.modules["sl_cli_pkg.service"].tree
    assert isinstance(tree, Supervisor)
    assert tree.name == "app"


def test_load_target_imports_a_file_whose_siblings_import_as_usual(
    tmp_path: Path, isolated_imports: None
) -> None:
    (tmp_path / "sl_cli_helpers.py").write_text("NAME = 'from-a-sibling'\n")
    (tmp_path / "svc.py").write_text(
        "from sl_cli_helpers import NAME\n"
        "from supervised_loops import Supervisor\n"
        "tree = Supervisor(name=NAME)\n"
    )
    tree = load_target(f"{tmp_path / 'svc.py'}:tree")
    assert isinstance(tree, Supervisor)
    assert tree.name == "from-a-sibling"


def test_load_target_calls_a_function_returning_an_actor(small: Path) -> None:
    first = load_target(f"{small}:make_tree")
    second = load_target(f"{small}:make_tree")
    assert isinstance(first, Supervisor)
    assert first.name == "made"
    assert first is not second  # a factory: a fresh tree each time


def test_load_target_returns_a_loop_as_it_is(small: Path) -> None:
    lonely = load_target(f"{small}:lonely")
    assert isinstance(lonely, Loop)
    assert lonely.name == "lonely"


@pytest.mark.parametrize(
    ("attribute", "got"), [("answer", "42"), ("make_text", "'text'")], ids=["value", "factory"]
)
def test_load_target_refuses_what_is_not_an_actor(small: Path, attribute: str, got: str) -> None:
    target = f"{small}:{attribute}"
    with pytest.raises(TypeError) as caught:
        load_target(target)
    assert str(caught.value) == (
        f"{target!r} is not an actor nor a function returning one (got {got})"
    )


def test_load_target_names_what_is_missing(small: Path, tmp_path: Path) -> None:
    with pytest.raises(AttributeError) as missing_attribute:
        load_target(f"{small}:nope")
    assert str(missing_attribute.value) == f"{str(small)!r} has no attribute 'nope'"
    with pytest.raises(ImportError) as missing_file:
        load_target("not/there.py:tree")
    assert str(missing_file.value) == "no such file: 'not/there.py'"
    with pytest.raises(ModuleNotFoundError) as missing_module:
        load_target("sl_cli_no_such_module:tree")
    assert str(missing_module.value) == "No module named 'sl_cli_no_such_module'"
    with pytest.raises(ValueError) as no_attribute:
        load_target(str(small))
    assert str(no_attribute.value) == (
        f"TARGET must be 'module:attribute' or 'file.py:attribute' (got {str(small)!r})"
    )


# -- tree ----------------------------------------------------------------------------


def test_tree_prints_the_rendered_tree_without_starting_anything(
    small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tree", f"{small}:tree"]) == 0
    assert capsys.readouterr().out == SMALL_TREE
    assert not small.with_name("started").exists()


def test_tree_of_a_single_loop_shows_the_supervisor_run_would_wrap_it_in(
    small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tree", f"{small}:lonely"]) == 0
    assert capsys.readouterr().out == (
        "lonely      idle         failures 0  restarts 0\n"
        "└── lonely  idle  #0  -  failures 0  restarts 0\n"
    )


@pytest.mark.parametrize("action", ["tree", "run"])
def test_a_target_that_cannot_be_loaded_is_a_usage_error(
    small: Path, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([action, f"{small}:answer"]) == 2
    target = f"{small}:answer"
    assert capsys.readouterr().err == (
        f"supervised-loops {action}: cannot load {target!r}: "
        f"{target!r} is not an actor nor a function returning one (got 42)\n"
    )


def test_an_actor_already_in_a_tree_cannot_be_run_on_its_own(
    small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tree", f"{small}:poller"]) == 2
    assert capsys.readouterr().err == (
        f"supervised-loops tree: cannot load '{small}:poller': actor 'app/ingest/poller' "
        "is already supervised by 'app/ingest'; an actor has one supervisor\n"
    )


def test_an_unknown_log_level_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--log-level", "loud", "tree", "x:y"])
    assert caught.value.code == 2
    assert "argument --log-level: invalid choice: 'LOUD'" in capsys.readouterr().err


def test_a_negative_shutdown_timeout_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "x:y", "--shutdown-timeout", "-1"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.endswith(
        "error: argument --shutdown-timeout: '--shutdown-timeout' must be >= 0 (got -1)\n"
    )


@pytest.mark.parametrize("action", ["run", "tree", "ctl"])
def test_the_cli_page_documents_every_option_of_every_subcommand(
    action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    page = (REPO / "docs" / "cli.md").read_text()
    with pytest.raises(SystemExit):
        main([action, "--help"])
    options = set(re.findall(r"(--[a-z][a-z-]*)", capsys.readouterr().out)) - {"--help"}
    options.add("--log-level")
    assert options
    assert [option for option in sorted(options) if f"`{option}" not in page] == []
    assert f"## `{action}`" in page
    for command in COMMANDS:
        assert f"| `{command}` |" in page


# -- run, in this process -------------------------------------------------------------------

ENDING_TARGET = """
from supervised_loops import loop


@loop(seconds=0, count=3)
async def job():
    pass
"""


def test_run_runs_the_target_to_its_end_and_logs_its_events(
    tmp_path: Path, short_dir: Path, isolated_imports: None, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "ending.py").write_text(ENDING_TARGET)
    sock = short_dir / "job.sock"
    with caplog.at_level(logging.INFO):
        assert (
            main(["run", f"{tmp_path / 'ending.py'}:job", "--no-live", "--socket", str(sock)]) == 0
        )
    events = [r.message for r in caplog.records if r.name == "supervised_loops.events"]
    assert events[-2:] == [
        "job/job: ActorEnded cancelled=False",
        "job: ActorEnded cancelled=False",
    ]
    assert f"control socket: {sock}" in [r.message for r in caplog.records]
    assert not sock.exists()


def test_run_with_a_socket_in_a_shared_directory_is_a_usage_error(
    tmp_path: Path, short_dir: Path, isolated_imports: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ending.py").write_text(ENDING_TARGET)
    shared = short_dir / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    status = main(["run", f"{tmp_path / 'ending.py'}:job", "--socket", str(shared / "job.sock")])
    assert status == 2
    assert capsys.readouterr().err == (
        f"supervised-loops run: control directory {str(shared)!r} must belong to you "
        "with mode 0700\n"
    )


# -- ctl against a service in a thread ---------------------------------------------------


class ThreadService:
    """``app`` → ``ingest`` → ``poller`` (minutely) served on ``path``, in a thread."""

    def __init__(self, path: Path, name: str = "app") -> None:
        async def body() -> None:
            pass

        self.poller = loop(minutes=1, name="poller")(body)
        self.tree = Supervisor(Supervisor(child(self.poller), name="ingest"), name=name)
        self.path = path
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self.server: ControlServer | None = None

    def connections(self) -> int:
        """How many control connections the service holds open now."""
        return 0 if self.server is None else self.server.connections

    async def _serve(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with self.tree, ControlServer(self.tree, self.path) as server:
                self.server = server
                self._ready.set()
                await self._stop.wait()
        except BaseException as error:
            self._error = error
            raise
        finally:
            self._ready.set()

    def __enter__(self) -> ThreadService:
        self._thread.start()
        assert self._ready.wait(10.0), "the service did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._event_loop is not None
        assert self._stop is not None
        self._event_loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10.0)
        assert not self._thread.is_alive()


def ctl(*argv: str) -> int:
    return main(["ctl", *argv])


def test_ctl_with_no_service_running_says_so_and_exits_2(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    assert ctl("status") == 2
    directory = short_dir / "supervised-loops"
    assert capsys.readouterr().err == (
        f"supervised-loops ctl: no service is running (no control socket in {str(directory)!r})\n"
    )
    assert ctl("--name", "app", "status") == 2
    assert capsys.readouterr().err == (
        f"supervised-loops ctl: no service listens on {str(directory / 'app.sock')!r}\n"
    )
    assert ctl("--socket", str(short_dir / "x.sock"), "stop", "app/poller") == 2
    assert capsys.readouterr().err == (
        f"supervised-loops ctl: no service listens on {str(short_dir / 'x.sock')!r}\n"
    )


def test_ctl_finds_a_service_by_name_or_alone_and_asks_which_among_several(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    with ThreadService(default_socket_path("app")):
        assert ctl("--json", "status", "ingest/poller") == 0  # the only socket: found alone
        assert json.loads(capsys.readouterr().out)["result"]["path"] == "app/ingest/poller"
        with ThreadService(default_socket_path("other"), name="other"):
            assert ctl("status") == 2
            assert capsys.readouterr().err == (
                "supervised-loops ctl: say which service with --name or --socket "
                "(sockets found: app, other)\n"
            )
            assert ctl("--name", "other", "--json", "status") == 0
            assert json.loads(capsys.readouterr().out)["result"]["name"] == "other"


def test_ctl_status_prints_the_tree_as_run_shows_it(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = short_dir / "app.sock"
    with ThreadService(sock):
        assert ctl("--socket", str(sock), "status") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["app", "running", "failures"],
        ["└──", "ingest", "running"],
        ["└──", "poller", "sleeping"],
    ]
    assert lines[2].split()[3] == "#1"


def test_ctl_change_interval_with_seconds_and_with_times_of_day(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = short_dir / "app.sock"
    with ThreadService(sock) as service:
        assert (
            ctl("--socket", str(sock), "change-interval", "ingest/poller", "--seconds", "30") == 0
        )
        line = capsys.readouterr().out
        assert line.startswith("ingest/poller: ChangeInterval done at iteration 1, next run 20")
        assert service.poller.seconds == 30
        assert service.poller.minutes == 0
        argv = ["--socket", str(sock), "change-interval", "app/ingest/poller"]
        assert ctl(*argv, "--json", "--time", "18:00", "--time", "09:30@Europe/Berlin") == 0
        assert json.loads(capsys.readouterr().out)["result"]["message"] == "ChangeInterval"
        assert service.poller.time == [
            dt.time(9, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
            dt.time(18, 0, tzinfo=dt.UTC),
        ]


def test_ctl_prints_an_error_reply_and_exits_1(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = short_dir / "app.sock"
    with ThreadService(sock) as service:
        assert ctl("--socket", str(sock), "stop", "ingest/nope") == 1
        assert capsys.readouterr().err == (
            "error: ChildNotFound: supervisor 'app' has no child 'ingest/nope'\n"
        )
        # An interval option on another command is refused, not ignored.
        assert ctl("--socket", str(sock), "stop", "ingest/poller", "--seconds", "5") == 1
        assert capsys.readouterr().err == (
            "error: ValueError: unknown fields for 'stop': seconds\n"
        )
        assert service.poller.is_running()
        assert ctl("--socket", str(sock), "--json", "pause", "ingest") == 1
        reply = json.loads(capsys.readouterr().out)
        assert reply["ok"] is False
        assert reply["error"]["type"] == "UnhandledMessage"


# -- the live view ----------------------------------------------------------------------


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def small_tree() -> Supervisor:
    async def body() -> None:
        pass

    return Supervisor(child(loop(seconds=5, name="poller")(body)), name="app")


@pytest.fixture
def terminal_handler() -> Iterator[logging.Handler]:
    """A root handler writing to a terminal, as logging.basicConfig makes for a shell."""
    handler = logging.StreamHandler(Terminal())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def test_the_live_view_redraws_in_place_with_the_latest_log_lines(
    terminal_handler: logging.StreamHandler[Terminal],
) -> None:
    screen = Terminal()
    view = _LiveView(small_tree(), screen, footer="(Ctrl-C to stop)")
    view.open()
    try:
        assert screen.getvalue() == "\x1b[?1049h\x1b[?25l"  # alternate screen, no cursor
        for number in range(1, 6):
            logging.getLogger("demo").warning("flushed %d readings", number)
        assert terminal_handler.stream.getvalue() == ""  # held, not scribbled over the view
        # 40 columns: lines are cut. 10 rows: the tree, the footer, and as
        # many of the latest log lines as fit, the last row left empty.
        assert view.frame(40, 10) == (
            "\x1b["
            "H"
            "app         idle         failures 0  res\x1b[K\n"
            "└── poller  idle  #0  -  failures 0  res\x1b[K\n"
            "\x1b[K\n"
            "(Ctrl-C to stop)\x1b[K\n"
            "\x1b[K\n"
            "WARNING demo: flushed 2 readings\x1b[K\n"
            "WARNING demo: flushed 3 readings\x1b[K\n"
            "WARNING demo: flushed 4 readings\x1b[K\n"
            "WARNING demo: flushed 5 readings\x1b[K\n"
            "\x1b[J"
        )
    finally:
        view.close()
    assert screen.getvalue().endswith(
        "\x1b[?25h\x1b[?1049l"
        "app         idle         failures 0  restarts 0\n"
        "└── poller  idle  #0  -  failures 0  restarts 0\n"
    )
    # The held records went back to the terminal, every one of them, in order.
    assert terminal_handler.stream.getvalue() == "".join(
        f"WARNING demo: flushed {number} readings\n" for number in range(1, 6)
    )
    assert terminal_handler in logging.getLogger().handlers


def test_the_live_view_leaves_log_handlers_that_do_not_write_to_a_terminal_alone() -> None:
    to_file = logging.StreamHandler(io.StringIO())
    root = logging.getLogger()
    root.addHandler(to_file)
    try:
        view = _LiveView(small_tree(), Terminal())
        view.open()
        logging.getLogger("demo").warning("kept in the file")
        view.close()
        assert to_file.stream.getvalue() == "kept in the file\n"
    finally:
        root.removeHandler(to_file)


def test_an_event_is_described_on_one_line() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert describe_event(ActorEnded(path="app/poller", at=at)) == (
        "app/poller: ActorEnded cancelled=False"
    )
    retry = RetryScheduled(path="app/poller", at=at, iteration=7, attempt=2, delay=0.5)
    assert describe_event(retry) == "app/poller: RetryScheduled iteration=7, attempt=2, delay=0.5"


# -- ctl from another process, against the demo in a real process ------------------------------

DEADLINE = 15.0


def run_ctl(sock: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "ctl", "--socket", str(sock), *argv],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def ask_socket(sock: Path, path: str) -> dict[str, Any] | None:
    """The status of ``path`` straight from the socket; None while nothing answers yet."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5.0)
            client.connect(str(sock))
            client.sendall(json.dumps({"command": "status", "path": path}).encode() + b"\n")
            with client.makefile("rb") as replies:
                reply = json.loads(replies.readline())
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    result: dict[str, Any] | None = reply.get("result")
    return result


def poll(what: str, check: Any, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``check()`` until true, within the deadline and while the service lives."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert process.poll() is None, f"the service ended before {what}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {what} within {DEADLINE} s"
        time.sleep(0.02)


@contextlib.contextmanager
def demo_service(directory: Path, sock: Path) -> Iterator[Path]:
    """Run the demo as a real ``supervised-loops run`` until the block ends; yield its log.

    Waits for the control socket to answer before the block; after it, ends
    the service with SIGTERM and asserts a clean exit with no traceback.
    """
    log = directory / "stderr.txt"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [str(SCRIPT), "run", f"{DEMO}:make_tree", "--no-live", "--socket", str(sock)],
            cwd=directory,
            env={**os.environ, "DEMO_DB": str(directory / "demo.sqlite3")},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        poll("the control socket", lambda: ask_socket(sock, "heartbeat") is not None, process, log)
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(DEADLINE)
    stderr = log.read_text()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_real_process_ctl_stops_a_loop_of_the_demo_which_stays_down_until_restarted(
    tmp_path: Path, short_dir: Path
) -> None:
    sock = short_dir / "demo.sock"
    database = tmp_path / "demo.sqlite3"
    log = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "supervised_loops", "run", f"{DEMO}:make_tree"]
    with log.open("wb") as err:
        process = subprocess.Popen(
            [*command, "--no-live", "--socket", str(sock)],
            cwd=tmp_path,
            env={**os.environ, "DEMO_DB": str(database)},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )

    def poller() -> dict[str, Any]:
        status = ask_socket(sock, "ingest/poller")
        assert status is not None
        return status

    def beats() -> int:
        status = ask_socket(sock, "heartbeat")
        return 0 if status is None else int(status["current_loop"])

    try:
        poll("first heartbeat", lambda: beats() >= 1, process, log)

        stopped = run_ctl(sock, "stop", "demo/ingest/poller")
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.startswith("demo/ingest/poller: Stop done at iteration ")
        assert stopped.stdout.endswith(", not scheduled\n")
        shown = run_ctl(sock, "--json", "status", "demo/ingest/poller")
        assert shown.returncode == 0, shown.stderr
        down = json.loads(shown.stdout)["result"]
        assert down["state"] == "stopped"

        # It stays down (asked to end: docs/supervision.md) while the rest
        # goes on: let the heartbeat beat twice more, then look again.
        beaten = beats()
        poll("two more heartbeats", lambda: beats() >= beaten + 2, process, log)
        later = poller()
        assert (later["state"], later["current_loop"], later["restarts"]) == (
            "stopped",
            down["current_loop"],
            down["restarts"],
        )

        restarted = run_ctl(sock, "restart", "demo/ingest/poller")
        assert restarted.returncode == 0, restarted.stderr
        assert restarted.stdout.startswith("demo/ingest/poller: Restart done at iteration 0")
        poll("a poll after the restart", lambda: poller()["current_loop"] >= 1, process, log)
        assert poller()["state"] in {"running", "sleeping", "retrying"}

        shown = run_ctl(sock, "status")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[0].split()[:2] == ["demo", "running"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    assert status == 0, log.read_text()
    with contextlib.closing(sqlite3.connect(database)) as db:
        count, highest = db.execute("SELECT count(*), max(seq) FROM readings").fetchone()
    assert count == highest
