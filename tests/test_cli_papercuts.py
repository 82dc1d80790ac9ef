"""The console command's rough edges, each smoothed: one test each."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import SCRIPT, ThreadService, ctl, isolated_imports, short_dir, small

from supervised_loops import Supervisor, child, loop
from supervised_loops.messages import State
from supervised_loops.service.cli import main
from supervised_loops.service.cli_parser import build_parser
from supervised_loops.service.ctl_output import describe_ack
from supervised_loops.service.live_view import STOPPING_FOOTER, LiveView, short_record

__all__ = ["isolated_imports", "short_dir", "small"]  # fixtures shared with test_cli

FACTORY_FAILS = """
from supervised_loops import Supervisor


def make_tree():
    workers = int("two")
    return Supervisor(name="never")
"""

IMPORT_FAILS = """
import os

settings = {}
DATABASE = settings["database"]
"""


@pytest.mark.parametrize(
    ("source", "attribute", "line", "error"),
    [
        (
            FACTORY_FAILS,
            "make_tree",
            'line 6, in make_tree\n    workers = int("two")',
            "ValueError",
        ),
        (IMPORT_FAILS, "tree", "line 5, in <module>", "KeyError: 'database'"),
        ("def broken(:\n    pass\n", "tree", "line 1\n    def broken(:", "SyntaxError"),
    ],
)
def test_a_target_whose_code_raises_shows_the_users_traceback_and_exits_2(
    tmp_path: Path, source: str, attribute: str, line: str, error: str
) -> None:
    (tmp_path / "app.py").write_text(source)
    result = subprocess.run(
        [str(SCRIPT), "run", f"app.py:{attribute}", "--no-control"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"supervised-loops run: cannot load 'app.py:{attribute}':\n")
    assert f'File "{tmp_path / "app.py"}", {line}' in result.stderr
    assert error in result.stderr
    # The user's frames only: nothing of the loader or importlib.
    assert "supervised_loops" not in result.stderr.replace("supervised-loops run", "")
    assert "importlib" not in result.stderr


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"supervised-loops {version('supervised-loops')}\n"


def test_python_dash_m_runs_the_console_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "supervised_loops", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("supervised-loops ")


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "warning", "tree", "x.py:tree"],
        ["tree", "x.py:tree", "--log-level", "warning"],
        ["run", "--log-level", "warning", "x.py:tree"],
        ["ctl", "status", "--log-level", "WARNING"],
    ],
)
def test_log_level_is_taken_before_or_after_the_subcommand(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).log_level == "WARNING"


def test_log_level_defaults_to_info() -> None:
    assert build_parser().parse_args(["tree", "x.py:tree"]).log_level == "INFO"


def test_a_reader_that_goes_away_ends_the_output_quietly(small: Path) -> None:
    process = subprocess.Popen(
        [str(SCRIPT), "tree", f"{small}:tree"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # as `| head` does once it has read enough
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "BrokenPipeError" not in err
    assert "Traceback" not in err


def test_ctl_status_json_piped_into_a_reader_that_goes_away(short_dir: Path) -> None:
    sock = short_dir / "app.sock"
    with ThreadService(sock):
        process = subprocess.Popen(
            [str(SCRIPT), "ctl", "--socket", str(sock), "status", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        process.stdout.close()
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err
    assert process.returncode == 0


def test_ctl_a_zone_that_is_a_directory_is_an_error_reply_and_exit_1(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = short_dir / "app.sock"
    with ThreadService(sock) as service:
        before = service.poller.status().schedule
        code = ctl(
            "--socket", str(sock), "change-interval", "app/ingest/poller", "--time", "09:30@Europe"
        )
        assert code == 1
        assert (
            capsys.readouterr().err == "error: ValueError: 'time[0]': unknown time zone 'Europe'\n"
        )
        assert service.poller.status().schedule == before


def test_ctl_a_short_path_suggests_the_full_one(
    short_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sock = short_dir / "app.sock"
    with ThreadService(sock) as service:
        assert ctl("--socket", str(sock), "stop", "poller") == 1
        assert capsys.readouterr().err == (
            "error: ChildNotFound: supervisor 'app' has no child 'poller'; "
            "did you mean 'app/ingest/poller'?\n"
        )
        assert service.poller.is_running()


@pytest.mark.parametrize("option", ["--seconds", "--minutes", "--hours"])
def test_a_negative_interval_names_the_option_typed(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["ctl", "change-interval", "app/poller", option, "-1"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"error: argument {option}: '{option}' must be >= 0 (got -1)\n"
    )


def test_a_restart_acknowledgement_does_not_claim_nothing_is_scheduled() -> None:
    ack = {"message": "Restart", "iteration": 0, "next_iteration": None}
    assert (
        describe_ack("app/poller", ack)
        == "app/poller: Restart done at iteration 0, a new run has begun"
    )
    stop = {"message": "Stop", "iteration": 6, "next_iteration": None}
    assert describe_ack("app/poller", stop) == "app/poller: Stop done at iteration 6, not scheduled"


def test_the_live_view_shows_a_traceback_as_its_last_frame_and_message() -> None:
    def fail() -> None:
        raise ValueError("bad reading\non two lines")

    try:
        fail()
    except ValueError:
        record = logging.LogRecord(
            "app", logging.ERROR, __file__, 1, "poll failed", None, sys.exc_info()
        )
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    lines = short_record(record, handler)
    assert lines[0] == "ERROR poll failed"
    assert lines[1].startswith(f"  at {__file__}:")
    assert lines[1].endswith(" in fail")
    assert lines[2] == "  ValueError: bad reading on two lines"
    assert len(lines) == 3
    # The record itself is untouched: the log handlers get the full traceback.
    assert "Traceback (most recent call last)" in handler.format(record)


def test_the_live_view_footer_says_a_second_ctrl_c_forces_a_slow_shutdown() -> None:
    @loop(seconds=1)
    async def tick() -> None:
        pass

    tree = Supervisor(child(tick), name="app")
    view = LiveView(tree, io.StringIO(), footer="(Ctrl-C to stop)")
    assert "(Ctrl-C to stop)" in view.frame(80, 24)
    stopping = tree.status()
    object.__setattr__(stopping, "state", State.STOPPING)
    tree.status = lambda: stopping  # type: ignore[method-assign]
    frame = view.frame(80, 24)
    assert STOPPING_FOOTER in frame
    assert "Ctrl-C again cancels the rest" in frame
