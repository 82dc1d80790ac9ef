"""Signals while ``supervised-loops run`` starts: an orderly end, never a traceback.

Real processes of the installed console script. A target whose import takes
a while stands for a heavy application; the storm rounds at the end signal
the batcher of ``bench/storm_service.py`` at random moments (``slow``; the
long run is ``bench/signal_storm.py``).
"""

from __future__ import annotations

import importlib.util
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("supervised-loops")

SLOW_IMPORT = """
import pathlib, time
pathlib.Path(__file__).with_name("importing").touch()
time.sleep(3)
from supervised_loops import loop

@loop(seconds=1)
async def ticker():
    pathlib.Path(__file__).with_name("ticked").touch()
"""


def storm() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "signal_storm", REPO / "bench" / "signal_storm.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def start_slow(tmp_path: Path) -> subprocess.Popen[str]:
    (tmp_path / "slow.py").write_text(SLOW_IMPORT)
    process = subprocess.Popen(
        [str(SCRIPT), "run", "slow.py:ticker", "--no-live", "--no-control"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not (tmp_path / "importing").exists():
        assert time.monotonic() < deadline, "the target was never imported"
        assert process.poll() is None
        time.sleep(0.01)
    return process


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_real_process_a_signal_while_the_target_loads_ends_with_0_and_nothing_started(
    tmp_path: Path, signum: signal.Signals
) -> None:
    process = start_slow(tmp_path)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"{signum.name} received while loading 'slow.py:ticker': nothing was started" in output
    assert "Traceback" not in output
    assert not (tmp_path / "ticked").exists()


def test_real_process_a_second_signal_while_the_target_loads_stops_it_at_once(
    tmp_path: Path,
) -> None:
    process = start_slow(tmp_path)
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert time.monotonic() - began < 2.5  # the three-second import was cut short
    assert process.returncode == 1, output
    assert "second SIGTERM while loading 'slow.py:ticker': stopped" in output
    assert "Traceback" not in output


def test_real_process_ctrl_c_while_tree_loads_ends_it_with_130_and_no_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "slow.py").write_text(SLOW_IMPORT)
    process = subprocess.Popen(
        [str(SCRIPT), "tree", "slow.py:ticker"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not (tmp_path / "importing").exists():
        assert time.monotonic() < deadline, "the target was never imported"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert output == ""


@pytest.mark.slow
# Seeds whose moments fall while the target loads (3: SIGINT at 0.26 s;
# 15: two SIGINTs from 0.32 s), while the tree starts (18: SIGINT then
# SIGTERM from 0.67 s) and in the steady run (11: SIGTERM at 1.71 s; 2: SIGINT
# then SIGTERM from 1.67 s).
@pytest.mark.parametrize("seed", [3, 15, 18, 11, 2])
def test_real_process_a_signal_at_a_random_moment_ends_in_order(seed: int) -> None:
    result = storm().run_round(random.Random(seed))
    assert result.problems() == [], result.output
    if result.status == 0:
        assert result.polled == result.stored


def test_the_console_script_holds_signals_before_importing_the_library() -> None:
    # The entry point's module must not import the library before it has
    # taken the signal handlers over.
    source = (REPO / "supervised_loops_console.py").read_text()
    hold = source.index("_signal.signal(signum, _hold)")
    assert source.index("from supervised_loops") > hold
    assert "import supervised_loops" not in source[:hold]
