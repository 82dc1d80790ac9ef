"""A supervisor that escalates only during business hours.

At night and at weekends nobody is there to act on an escalation, so a
failure is handled locally: the child is restarted. During business hours
(Monday to Friday, 09:00-17:00 in the office's time zone) a failure is
escalated at once, so the tree fails and ``run()`` exits non-zero and pages
someone who can look into it.

The decision reads the wall clock through ``supervised_loops.clock``, never
``datetime.now()``: under virtual time the clock is under the test's control,
which is how this script jumps from a Saturday to a Monday in no time. Run it
with ``python examples/supervisors/business_hours.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo

from supervised_loops import (
    Child,
    Directive,
    RestartIntensityExceeded,
    Supervisor,
    child,
    loop,
)
from supervised_loops.clock import get_clock
from supervised_loops.testing import VirtualClock

OFFICE = zoneinfo.ZoneInfo("Europe/Paris")
OPENS, CLOSES = dt.time(9, 0), dt.time(17, 0)

#: Saturday 10:00 in Paris (UTC+1 in January): the scenario starts here.
SATURDAY_MORNING = dt.datetime(2026, 1, 3, 10, 0, tzinfo=OFFICE)


def in_business_hours(moment: dt.datetime) -> bool:
    """Monday to Friday, from OPENS to CLOSES, office time."""
    local = moment.astimezone(OFFICE)
    return local.weekday() < 5 and OPENS <= local.time() < CLOSES


class BusinessHoursSupervisor(Supervisor):
    """Escalates failures during business hours; restarts children otherwise."""

    def __init__(self, *children: object, name: str) -> None:
        super().__init__(*children, max_restarts=10, max_seconds=60.0, name=name)  # type: ignore[arg-type]
        self.decisions: list[str] = []

    def decide(self, child: Child, error: BaseException) -> Directive:
        now = get_clock().wall()
        directive = Directive.ESCALATE if in_business_hours(now) else Directive.RESTART
        stamp = now.astimezone(OFFICE).strftime("%a %H:%M")
        self.decisions.append(f"{stamp} {child.name} failed ({error}): {directive.value}")
        return directive


async def main() -> list[str]:
    """Fail a job on Saturday, then on Monday morning; return what was decided."""
    failures: list[str] = []

    @loop(hours=1)
    async def report() -> None:
        if failures:
            raise RuntimeError(failures.pop())

    @report.error
    async def quiet(error: BaseException) -> None:
        pass  # the supervisor's decision is the report here

    office = BusinessHoursSupervisor(child(report), name="office")
    root = Supervisor(office, max_restarts=0, name="root")
    lines: list[str] = []
    await root.start()

    failures.append("disk full")  # Saturday 10:00: nobody in, restart quietly
    report.run_now()
    await asyncio.sleep(1)
    lines.append(f"after the Saturday failure the tree runs: {root.is_running()}")

    await asyncio.sleep(47 * 3600)  # Monday 09:00:01
    failures.append("disk full again")
    report.run_now()
    try:
        await root.wait()
    except RestartIntensityExceeded as error:
        lines.append(f"Monday: the tree failed, as it should: {error.__cause__}")
    return office.decisions + lines


if __name__ == "__main__":
    for line in VirtualClock(start=SATURDAY_MORNING).run(main()):
        print(line)
