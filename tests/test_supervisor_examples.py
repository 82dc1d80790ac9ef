"""The example subclasses in ``examples/supervisors/`` do what they say.

Each example is imported afresh and its scenario runs in virtual time, so
what it reports is exact; one last test runs the three scripts for real, as
a user would, to prove they run stand-alone and finish within seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from supervised_loops.testing import virtual_time

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "supervisors"

SATURDAY_MORNING = dt.datetime(2026, 1, 3, 9, 0, tzinfo=dt.UTC)  # 10:00 in Paris


def load(name: str) -> ModuleType:
    """Import ``examples/supervisors/<name>.py`` as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@virtual_time()
async def test_circuit_breaker_opens_after_three_retries_alerts_and_closes_after_a_probe() -> None:
    example = load("circuit_breaker")
    assert await example.main() == [
        "ALERT circuit open for 'breaker/poller': connection refused",
        # Calls at 0 and 0.04 s, then retries capped at the regular ticks (0.1, 0.2 s);
        # the fourth failure opens the circuit until the probe at 0.7 s, when the
        # upstream is back (0.6 s): 8 polls from 0.7 to 1.4 s.
        "upstream called 12 times",
        "heartbeats: 6",
        "poller succeeded 8 times after the circuit closed",
    ]


@virtual_time()
async def test_circuit_breaker_leaves_a_failing_probe_parked_and_siblings_untouched() -> None:
    example = load("circuit_breaker")
    log: list[str] = []
    upstream = example.Upstream(up_at=10.0)  # down for the whole run
    tree = example.build(upstream, log)
    async with tree:
        await asyncio.sleep(1.45)
        assert tree.child("poller").is_quarantined()
        assert tree.child("heartbeat").is_running()
    # Opened at 0.2 s; the probes at 0.7 s and 1.2 s fail once each (half-open: no retry).
    assert tree.alerts == ["ALERT circuit open for 'breaker/poller': connection refused"] * 3
    assert upstream.calls == 4 + 2
    assert log.count("heartbeat") == 6


@virtual_time(start=SATURDAY_MORNING)
async def test_business_hours_supervisor_restarts_at_weekends_and_escalates_on_monday() -> None:
    example = load("business_hours")
    assert await example.main() == [
        "Sat 10:00 report failed (disk full): restart",
        "Mon 09:00 report failed (disk full again): escalate",
        "after the Saturday failure the tree runs: True",
        "Monday: the tree failed, as it should: disk full again",
    ]


def test_business_hours_are_weekdays_from_nine_to_five_office_time() -> None:
    example = load("business_hours")
    paris = example.OFFICE
    assert example.in_business_hours(dt.datetime(2026, 1, 5, 9, 0, tzinfo=paris))
    assert example.in_business_hours(dt.datetime(2026, 1, 9, 16, 59, tzinfo=paris))
    assert not example.in_business_hours(dt.datetime(2026, 1, 9, 17, 0, tzinfo=paris))
    assert not example.in_business_hours(dt.datetime(2026, 1, 5, 8, 59, tzinfo=paris))
    assert not example.in_business_hours(dt.datetime(2026, 1, 3, 12, 0, tzinfo=paris))
    # 07:30 UTC in July is 09:30 in Paris (summer time): open.
    assert example.in_business_hours(dt.datetime(2026, 7, 6, 7, 30, tzinfo=dt.UTC))


@virtual_time()
async def test_failover_restarts_the_fetcher_on_the_next_endpoint_each_time() -> None:
    example = load("failover")
    assert await example.main() == [
        "fetcher: https://primary.example failed (https://primary.example answered 500); "
        "next: https://secondary.example",
        "fetcher: https://secondary.example failed (https://secondary.example answered 500); "
        "next: https://tertiary.example",
        "fetched 4 times from ['https://tertiary.example']",
    ]


def test_the_example_scripts_run_stand_alone_within_seconds() -> None:
    scripts = ["circuit_breaker", "business_hours", "failover"]
    running = {
        name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / f"{name}.py")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in scripts
    }
    outputs = {name: process.communicate(timeout=20) for name, process in running.items()}
    for name, process in running.items():
        assert process.returncode == 0, outputs[name][1]
    assert outputs["circuit_breaker"][0].startswith("ALERT circuit open for 'breaker/poller'")
    assert "Monday: the tree failed, as it should" in outputs["business_hours"][0]
    assert outputs["failover"][0].endswith("fetched 4 times from ['https://tertiary.example']\n")
