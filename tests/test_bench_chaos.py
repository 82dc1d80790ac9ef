"""The chaos benchmark's smoke run: a small tree, real time, real signals.

It runs ``bench/bench_chaos.py --quick`` in a fresh process (it sends itself
SIGINT to shut down, as an operator would) and relies on the benchmark's own
checks: the exit status is 0 only when every ask was answered or failed
clearly, every item produced was flushed, every loop ran again, the shutdown
kept its budget and no task was left behind.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_chaos.py"


@pytest.mark.slow
def test_chaos_quick_run_reports_no_violation_in_real_time() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "violations: 0" in lines
    figures = next(line for line in lines if line.startswith("items produced"))
    produced, flushed, cut = re.findall(r"[\d,]+", figures.split("flushed", 1)[1])
    assert produced == flushed
    assert int(produced.replace(",", "")) > 0
    assert cut == "0"
    assert any(line.startswith("tasks left") and line.split()[-1] == "0" for line in lines)
