"""``run`` / ``serve``: a tree as a service, from start to exit status.

In-process tests run in virtual time with ``handle_signals=False``, or with
real signals sent to this very process where the signal is the point (the
handlers are asyncio's, so virtual time still applies). A few tests run the
console command in a real subprocess and send it real signals: they wait on
the control socket answering, or on a file the target writes, always with a
bounded deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from supervised_loops import (
    ChildStartFailed,
    RestartIntensityExceeded,
    State,
    Stop,
    Supervisor,
    child,
    loop,
)
from supervised_loops.service.control import ControlLimits
from supervised_loops.service.runner import as_tree, run, serve
from supervised_loops.testing import virtual_time

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo" / "service.py"


class Journal:
    """What the loops of a test tree did, in order."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def note(self, entry: str) -> None:
        self.entries.append(entry)


def flushing_tree(journal: Journal, *, hold: float = 0.0) -> Supervisor:
    """``app`` → ``writer`` (every 10 s; its after_loop "flushes" after ``hold`` seconds)."""

    @loop(seconds=10, name="writer")
    async def writer() -> None:
        journal.note("write")

    @writer.after_loop
    async def flush() -> None:
        journal.note("flush begins")
        try:
            await asyncio.sleep(hold)
        except asyncio.CancelledError:
            journal.note("flush cut short")
            raise
        journal.note("flush done after a cancel" if writer.is_being_cancelled() else "flush done")

    return Supervisor(child(writer, shutdown=3600.0), name="app")


def after(seconds: float, action: Callable[[], Any]) -> Callable[[Supervisor], None]:
    """An ``on_started`` callback doing ``action`` ``seconds`` later."""

    def started(_root: Supervisor) -> None:
        asyncio.get_running_loop().call_later(seconds, action)

    return started


def failing_tree(attempts: list[float]) -> Supervisor:
    @loop(seconds=1, name="broken")
    async def broken() -> None:
        attempts.append(asyncio.get_running_loop().time())
        raise ValueError("boom")

    return Supervisor(child(broken), max_restarts=1, name="fragile")


# -- exit status ----------------------------------------------------------------------


@virtual_time(start=START)
async def test_serve_returns_0_after_a_clean_stop_with_every_after_loop_done() -> None:
    journal = Journal()
    tree = flushing_tree(journal, hold=2.0)
    started_at = asyncio.get_running_loop().time()
    status = await serve(
        tree, handle_signals=False, on_started=after(25, lambda: tree.tell(Stop()))
    )
    assert status == 0
    assert journal.entries == ["write", "write", "write", "flush begins", "flush done"]
    assert asyncio.get_running_loop().time() - started_at == 27.0
    assert tree.status().state is State.STOPPED


@virtual_time(start=START)
async def test_serve_returns_0_when_the_tree_ends_by_itself() -> None:
    @loop(seconds=5, count=3, name="migration")
    async def migration() -> None:
        pass

    tree = Supervisor(
        child(migration, restart="transient", significant=True),
        auto_shutdown="any_significant",
        name="job",
    )
    assert await serve(tree, handle_signals=False) == 0
    assert migration.current_loop == 3


@virtual_time(start=START)
async def test_serve_returns_1_and_logs_the_escalated_failure_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[float] = []
    with caplog.at_level(logging.ERROR, logger="supervised_loops"):
        assert await serve(failing_tree(attempts), handle_signals=False) == 1
    assert attempts == [0.0, 0.0]  # the first run and the one restart allowed
    (record,) = [r for r in caplog.records if r.message.startswith("'fragile' failed")]
    assert record.levelno == logging.ERROR
    assert record.message == (
        "'fragile' failed: supervisor 'fragile' exceeded its restart intensity "
        "(more than 1 restarts in 5.0 seconds)"
    )
    assert record.exc_info is not None
    error = record.exc_info[1]
    assert isinstance(error, RestartIntensityExceeded)
    assert isinstance(error.__cause__, ValueError)
    assert str(error.__cause__) == "boom"
    assert "Traceback (most recent call last)" in caplog.text


@virtual_time(start=START)
async def test_a_tree_that_cannot_start_returns_1_and_logs_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @loop(seconds=1, name="db")
    async def db() -> None:
        pass

    @db.before_loop
    async def connect() -> None:
        raise ConnectionRefusedError("database down")

    with caplog.at_level(logging.ERROR, logger="supervised_loops"):
        assert await serve(Supervisor(child(db), name="app"), handle_signals=False) == 1
    (record,) = [r for r in caplog.records if r.message.startswith("'app' failed to start")]
    assert record.message == "'app' failed to start: child 'db' of supervisor 'app' failed to start"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ChildStartFailed)
    assert isinstance(record.exc_info[1].__cause__, ConnectionRefusedError)


def test_run_returns_none_after_a_clean_end() -> None:
    @loop(seconds=0, count=2, name="once")
    async def twice() -> None:
        pass

    assert run(twice) is None
    assert twice.current_loop == 2


def test_run_raises_system_exit_1_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[float] = []
    with (
        caplog.at_level(logging.ERROR, logger="supervised_loops"),
        pytest.raises(SystemExit) as caught,
    ):
        run(failing_tree(attempts))
    assert caught.value.code == 1
    assert len(attempts) == 2
    assert any(r.message.startswith("'fragile' failed: ") for r in caplog.records)


@virtual_time(start=START)
async def test_serve_refuses_a_negative_shutdown_timeout() -> None:
    with pytest.raises(ValueError) as caught:
        await serve(flushing_tree(Journal()), shutdown_timeout=-1, handle_signals=False)
    assert str(caught.value) == "'shutdown_timeout' must be >= 0 (got -1)"


# -- a single actor -------------------------------------------------------------------


def test_as_tree_wraps_a_bare_loop_in_a_one_child_supervisor_named_after_it() -> None:
    @loop(seconds=1, name="poller")
    async def poller() -> None:
        pass

    tree = as_tree(poller)
    assert isinstance(tree, Supervisor)
    assert tree.name == "poller"
    assert tree.lookup("poller") is poller
    (info,) = tree.which_children()
    assert info.restart.value == "transient"
    assert info.significant is True
    already = Supervisor(name="app")
    assert as_tree(already) is already


def test_as_tree_refuses_what_is_not_an_actor() -> None:
    with pytest.raises(TypeError) as caught:
        as_tree(42)  # type: ignore[arg-type]
    assert str(caught.value) == "'tree' must be a Supervisor, a Loop or another actor (got 42)"


@virtual_time(start=START)
async def test_a_bare_loop_that_reaches_its_count_ends_the_service_with_0() -> None:
    seen: list[Supervisor] = []

    @loop(seconds=60, count=3, name="report")
    async def report() -> None:
        pass

    assert await serve(report, handle_signals=False, on_started=seen.append) == 0
    assert report.current_loop == 3  # ran its count once, not restarted
    (root,) = seen
    assert root.name == "report"
    assert root.lookup("report") is report
    assert asyncio.get_running_loop().time() == 120.0


@virtual_time(start=START)
async def test_a_bare_loop_that_keeps_failing_is_restarted_then_ends_the_service_with_1() -> None:
    runs = 0

    @loop(seconds=1, name="flaky")
    async def flaky() -> None:
        nonlocal runs
        runs += 1
        raise KeyError("gone")

    assert await serve(flaky, handle_signals=False) == 1
    assert runs == 4  # the first run and the default intensity's 3 restarts


# -- signals (in this process, virtual time) ---------------------------------------------


def kill_self(signum: int) -> Callable[[], None]:
    return lambda: os.kill(os.getpid(), signum)


@pytest.fixture
def default_signal_handlers() -> Iterator[None]:
    """Each signal test begins and ends with the default handlers."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.usefixtures("default_signal_handlers")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@virtual_time(start=START)
async def test_a_signal_shuts_the_tree_down_gracefully_and_serve_returns_0(
    signum: signal.Signals, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal()
    with caplog.at_level(logging.WARNING, logger="supervised_loops"):
        status = await serve(
            flushing_tree(journal, hold=3.0), on_started=after(15, kill_self(signum))
        )
    assert status == 0
    assert journal.entries == ["write", "write", "flush begins", "flush done"]
    assert asyncio.get_running_loop().time() == 18.0
    assert [r.message for r in caplog.records] == [f"{signum.name} received: shutting down 'app'"]


@pytest.mark.usefixtures("default_signal_handlers")
@virtual_time(start=START)
async def test_shutdown_timeout_cancels_the_rest_and_the_flush_runs_to_its_hard_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = Journal()
    with caplog.at_level(logging.WARNING, logger="supervised_loops"):
        status = await serve(
            flushing_tree(journal, hold=3600.0),
            shutdown_timeout=5.0,
            on_started=after(15, kill_self(signal.SIGTERM)),
        )
    assert status == 1
    # The signal at 15 s, the budget spent at 20 s: the flush in progress is
    # not cut then, only at its hard limit (cancel_timeout, 5 s) from there.
    assert asyncio.get_running_loop().time() == 25.0
    assert journal.entries == ["write", "write", "flush begins", "flush cut short"]
    assert [r.message for r in caplog.records] == [
        "SIGTERM received: shutting down 'app'",
        "shutdown of 'app' took longer than 5.0 seconds: cancelling",
        "loop 'app/writer': its clean-up was cut short after 10.000 s"
        " (its hard limit, or a third signal)",
        "'app' was cancelled before its shutdown ended",
    ]


SECOND_SIGNAL = (
    "second signal: cancelling 'app' now (clean-ups run to their hard limits; "
    "a third signal cuts them short)"
)


def signal_at(*moments: float) -> Callable[[Supervisor], None]:
    """An ``on_started`` callback sending SIGINT to this process at each moment."""

    def started(_root: Supervisor) -> None:
        for moment in moments:
            asyncio.get_running_loop().call_later(moment, kill_self(signal.SIGINT))

    return started


@pytest.mark.usefixtures("default_signal_handlers")
@virtual_time(start=START)
async def test_a_second_signal_cancels_a_slow_shutdown_and_the_flush_still_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = Journal()
    with caplog.at_level(logging.WARNING, logger="supervised_loops"):
        status = await serve(flushing_tree(journal, hold=12.0), on_started=signal_at(15, 25))
    assert status == 1  # forced: not a clean stop
    assert asyncio.get_running_loop().time() == 27.0  # the flush began at 15 s and took 12
    assert journal.entries == ["write", "write", "flush begins", "flush done after a cancel"]
    assert [r.message for r in caplog.records] == [
        "SIGINT received: shutting down 'app'",
        SECOND_SIGNAL,
        "'app' was cancelled before its shutdown ended",
    ]


@pytest.mark.usefixtures("default_signal_handlers")
@virtual_time(start=START)
async def test_a_third_signal_cuts_the_flush_short_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = Journal()
    with caplog.at_level(logging.WARNING, logger="supervised_loops"):
        status = await serve(flushing_tree(journal, hold=3600.0), on_started=signal_at(15, 25, 26))
    assert status == 1
    assert asyncio.get_running_loop().time() == 26.0
    assert journal.entries == ["write", "write", "flush begins", "flush cut short"]
    assert [r.message for r in caplog.records] == [
        "SIGINT received: shutting down 'app'",
        SECOND_SIGNAL,
        "third signal: cutting short every clean-up of 'app'",
        "loop 'app/writer': its clean-up was cut short after 11.000 s"
        " (its hard limit, or a third signal)",
        "'app' was cancelled before its shutdown ended",
    ]


@virtual_time(start=START)
async def test_cancelling_serve_cancels_the_tree_and_propagates() -> None:
    journal = Journal()
    tree = flushing_tree(journal, hold=2.0)
    task = asyncio.ensure_future(serve(tree, handle_signals=False))
    await asyncio.sleep(15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert asyncio.get_running_loop().time() == 17.0  # Cancel, not Stop: no grace wait
    assert not tree.is_running()
    assert tree.status().state is State.CANCELLED
    # As documented for Cancel: after_loop still runs, and knows it was a cancel.
    assert journal.entries == ["write", "write", "flush begins", "flush done after a cancel"]


# -- the control socket ---------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private directory with a short path: AF_UNIX paths stop at ~107 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="slr-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@virtual_time(start=START)
async def test_serve_answers_on_the_control_socket_while_it_runs_and_removes_it_after(
    short_dir: Path,
) -> None:
    path = short_dir / "app.sock"
    replies: list[Any] = []

    async def stop_over_the_socket() -> None:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b'{"command": "status", "path": "app/writer"}\n{"command": "stop"}\n')
        replies.extend([json.loads(await reader.readline()) for _ in range(2)])
        writer.close()
        await writer.wait_closed()

    def started(_root: Supervisor) -> None:
        asyncio.get_running_loop().call_later(
            12, lambda: asyncio.ensure_future(stop_over_the_socket())
        )

    status = await serve(
        flushing_tree(Journal()), control=path, handle_signals=False, on_started=started
    )
    assert status == 0
    assert replies[0]["result"]["current_loop"] == 2
    assert replies[1] == {
        "ok": True,
        "result": {"message": "Stop", "iteration": 0, "next_iteration": None},
    }
    assert not path.exists()


@virtual_time(start=START)
async def test_a_control_socket_in_use_fails_serve_before_the_tree_starts(
    short_dir: Path,
) -> None:
    path = short_dir / "app.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    try:
        tree = flushing_tree(Journal())
        with pytest.raises(RuntimeError) as caught:
            await serve(tree, control=path, handle_signals=False)
        assert str(caught.value) == f"a service already listens on {str(path)!r}"
        assert tree.status().state is State.IDLE
    finally:
        listener.close()


@virtual_time(start=START)
async def test_control_true_listens_on_the_default_socket_of_the_root(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    expected = short_dir / "supervised-loops" / "app.sock"
    seen: list[bool] = []
    tree = flushing_tree(Journal())

    def started(_root: Supervisor) -> None:
        seen.append(expected.exists())
        asyncio.get_running_loop().call_soon(tree.tell, Stop())

    assert await serve(tree, control=True, handle_signals=False, on_started=started) == 0
    assert seen == [True]
    assert not expected.exists()


@pytest.mark.usefixtures("default_signal_handlers")
@virtual_time(start=START)
async def test_a_signal_held_before_serve_means_the_tree_is_never_started(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tree = flushing_tree(Journal())
    with caplog.at_level(logging.WARNING, logger="supervised_loops"):
        assert await serve(tree, held_signals=[int(signal.SIGTERM)]) == 0
    assert tree.status().state is State.IDLE
    assert [r.message for r in caplog.records] == [
        "SIGTERM received: shutting down 'app'",
        "'app' was not started",
    ]


@virtual_time(start=START)
async def test_serve_puts_back_the_signal_handlers_it_found() -> None:
    def mine(_signum: int, _frame: object) -> None:
        pass

    saved = signal.signal(signal.SIGTERM, mine)
    try:
        tree = flushing_tree(Journal())
        status = await serve(tree, on_started=after(5, lambda: tree.tell(Stop())))
        assert status == 0
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, saved)


@virtual_time(start=START)
async def test_serve_applies_the_control_limits_it_is_given(short_dir: Path) -> None:
    path = short_dir / "app.sock"
    closed_after: list[float] = []
    clients: list[asyncio.Future[None]] = []

    async def idle_client() -> None:
        reader, writer = await asyncio.open_unix_connection(str(path))
        began = asyncio.get_running_loop().time()
        assert await reader.read() == b""
        closed_after.append(asyncio.get_running_loop().time() - began)
        writer.close()

    def started(root: Supervisor) -> None:
        clients.append(asyncio.ensure_future(idle_client()))
        asyncio.get_running_loop().call_later(20, root.tell, Stop())

    limits = ControlLimits(idle_timeout=5.0)
    status = await serve(
        flushing_tree(Journal()),
        control=path,
        handle_signals=False,
        on_started=started,
        control_limits=limits,
    )
    assert status == 0
    await asyncio.gather(*clients)
    assert closed_after == [5.0]


# -- the console command in a real process, with real signals ---------------------------------

DEADLINE = 15.0


Service = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """Start ``supervised-loops run TARGET --no-live OPTIONS`` with its output in files.

    Whatever a failing test leaves running is killed at teardown.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(
        target: str, *options: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "supervised_loops", "run", target, "--no-live"]
        with (
            (tmp_path / "stdout.txt").open("wb") as out,
            (tmp_path / "stderr.txt").open("wb") as err,
        ):
            process = subprocess.Popen(
                [*command, *options],
                cwd=tmp_path,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=err,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def stderr_of(tmp_path: Path) -> str:
    return (tmp_path / "stderr.txt").read_text()


def ask_socket(path: Path, request: dict[str, Any]) -> Any:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5.0)
        client.connect(str(path))
        client.sendall(json.dumps(request).encode() + b"\n")
        with client.makefile("rb") as replies:
            return json.loads(replies.readline())


def wait_for(
    what: str, check: Callable[[], bool], process: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """Poll ``check`` until it holds; fail at the deadline or if the process ends first."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        if process.poll() is not None:
            pytest.fail(
                f"the service ended ({process.returncode}) before {what}:\n{stderr_of(tmp_path)}"
            )
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} within {DEADLINE} s:\n{stderr_of(tmp_path)}")
        time.sleep(0.02)


def status_of(path: Path, actor: str) -> dict[str, Any] | None:
    """The status of ``actor`` (``""``: the root) over the socket, or None while nothing answers."""
    try:
        request = {"command": "status", "path": actor} if actor else {"command": "status"}
        reply = ask_socket(path, request)
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    result: dict[str, Any] = reply["result"]
    return result


def ended(process: subprocess.Popen[bytes], seconds: float = DEADLINE) -> int:
    return process.wait(timeout=seconds)  # the fixture kills it if it times out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_real_process_a_signal_stops_the_demo_with_0_and_every_reading_flushed(
    tmp_path: Path, short_dir: Path, service: Service, signum: signal.Signals
) -> None:
    database = tmp_path / "demo.sqlite3"
    sock = short_dir / "demo.sock"
    process = service(f"{DEMO}:make_tree", "--socket", str(sock), env={"DEMO_DB": str(database)})

    def polled_twice() -> bool:
        status = status_of(sock, "ingest/poller")
        return status is not None and status["current_loop"] >= 2

    wait_for("two readings polled", polled_twice, process, tmp_path)
    process.send_signal(signum)
    assert ended(process) == 0, stderr_of(tmp_path)
    with contextlib.closing(sqlite3.connect(database)) as db:
        count, highest = db.execute("SELECT count(*), max(seq) FROM readings").fetchone()
    assert count >= 2
    assert count == highest  # nothing polled was lost at shutdown
    assert f"{signum.name} received: shutting down 'demo'" in stderr_of(tmp_path)
    assert not sock.exists()


SLOW_TARGET = """
import asyncio
import pathlib

from supervised_loops import Supervisor, child, loop

MARK = pathlib.Path(__file__).with_name("after_loop_began")


@loop(seconds=0.05)
async def ticker():
    pass


@ticker.after_loop
async def hold_on():
    MARK.touch()
    await asyncio.sleep(3600)


tree = Supervisor(child(ticker, shutdown=3600.0), name="slow")
"""


def test_real_process_a_third_signal_during_a_slow_shutdown_exits_1_at_once(
    tmp_path: Path, short_dir: Path, service: Service
) -> None:
    (tmp_path / "slow.py").write_text(SLOW_TARGET)
    sock = short_dir / "slow.sock"
    process = service("slow.py:tree", "--socket", str(sock), "--shutdown-timeout", "3600")
    wait_for("the control socket", lambda: status_of(sock, "") is not None, process, tmp_path)
    process.send_signal(signal.SIGINT)
    wait_for("after_loop", (tmp_path / "after_loop_began").exists, process, tmp_path)
    assert process.poll() is None  # the shutdown really is waiting on after_loop
    process.send_signal(signal.SIGTERM)  # cancels the tree; the flush goes on
    wait_for("the second signal", lambda: "second signal" in stderr_of(tmp_path), process, tmp_path)
    assert process.poll() is None  # the after_loop still runs, to its hard limit (5 s)
    began = time.monotonic()
    process.send_signal(signal.SIGINT)  # the third: cut it short now
    assert ended(process, 5.0) == 1
    assert time.monotonic() - began < 4.0
    log = stderr_of(tmp_path)
    assert "SIGINT received: shutting down 'slow'" in log
    assert "second signal: cancelling 'slow' now" in log
    assert "third signal: cutting short every clean-up of 'slow'" in log
    assert "'slow' was cancelled before its shutdown ended" in log


FRAGILE_TARGET = """
from supervised_loops import Supervisor, child, loop


@loop(seconds=0)
async def broken():
    raise ValueError("boom")


tree = Supervisor(child(broken), max_restarts=1, name="fragile")
"""


def test_real_process_a_tree_that_fails_exits_1_and_logs_the_traceback(
    tmp_path: Path, service: Service
) -> None:
    (tmp_path / "fragile.py").write_text(FRAGILE_TARGET)
    process = service("fragile.py:tree", "--no-control")
    assert ended(process) == 1
    log = stderr_of(tmp_path)
    assert (
        "ERROR supervised_loops: 'fragile' failed: supervisor 'fragile' exceeded its restart "
        "intensity (more than 1 restarts in 5.0 seconds)\nTraceback (most recent call last):"
    ) in log
    assert 'raise ValueError("boom")\nValueError: boom' in log
    assert "The above exception was the direct cause of the following exception:" in log
    assert log.rstrip().endswith(
        "supervised_loops.RestartIntensityExceeded: supervisor 'fragile' exceeded its restart "
        "intensity (more than 1 restarts in 5.0 seconds)"
    )


async def test_run_inside_a_running_event_loop_says_to_await_serve_instead() -> None:
    @loop(seconds=1, count=1)
    async def job() -> None:
        pass

    with pytest.raises(RuntimeError, match=r"use 'await supervised_loops.serve\(tree\)'"):
        run(job)
    assert not job.is_running()


@pytest.mark.usefixtures("default_signal_handlers")
@virtual_time(start=START)
async def test_an_after_loop_cut_by_its_hard_limit_makes_the_exit_status_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A Stop, its grace (2 s), a Cancel that does not interrupt the flush in
    # progress, the hard limit (3 s): the flush is cut, the stop is not clean.
    journal = Journal()

    @loop(seconds=10, name="writer")
    async def writer() -> None:
        journal.note("write")

    @writer.after_loop
    async def flush() -> None:
        journal.note("flush begins")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            journal.note("flush cut short")
            raise

    tree = Supervisor(child(writer, shutdown=2.0, cancel_timeout=3.0), name="app")
    with caplog.at_level(logging.WARNING, logger="supervised_loops"):
        status = await serve(tree, on_started=after(15, kill_self(signal.SIGTERM)))
    assert status == 1
    assert asyncio.get_running_loop().time() == 20.0
    assert journal.entries == ["write", "write", "flush begins", "flush cut short"]
    assert [r.message for r in caplog.records] == [
        "SIGTERM received: shutting down 'app'",
        "loop 'app/writer': its clean-up was cut short after 5.000 s"
        " (its hard limit, or a third signal)",
        "'app': 1 clean-up(s) (after_loop) cut short by a hard shutdown limit",
    ]
