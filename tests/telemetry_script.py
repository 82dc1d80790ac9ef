"""A scripted run for the telemetry tests, in virtual time.

`drive_iterations` calls the instrumentation in force exactly as the loop
engine does (``supervised_loops.instrument``), for one loop ``app/poll``:
a success, an error that is retried, the retry that succeeds, a RunNow, an
iteration cancelled by a restart, and a skip while paused. `failing_tree`
builds a real tree whose child fails once (one restart) and whose inner
supervisor gives up (one escalation).
"""

from __future__ import annotations

import asyncio

from supervised_loops import Supervisor, child, instrument, loop

PATH = "app/poll"
NAME = "poll"
SECRET = "token=abc123"


async def _iteration(
    iteration: int,
    scheduled: float,
    *,
    trigger: instrument.Trigger = "schedule",
    attempt: int = 1,
    runs_for: float,
    error: BaseException | None = None,
    outcome: instrument.Outcome = "ok",
) -> None:
    event_loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, scheduled - event_loop.time()))
    begun = (PATH, NAME, iteration, trigger, attempt, scheduled, event_loop.time())
    hooks = instrument.installed
    assert hooks is not None
    token = hooks.iteration_started(*begun) if hooks.observes_starts else None
    await asyncio.sleep(runs_for)
    hooks.iteration_ended(*begun, event_loop.time(), outcome, error, token)


async def drive_iterations() -> None:
    """The scripted iterations (virtual time must start at 0)."""
    await _iteration(0, 0.0, runs_for=0.5)
    await asyncio.sleep(0.25)  # the next one starts 0.25 s late (lag)
    await _iteration(
        1,
        0.0,
        runs_for=0.75,
        error=ConnectionError(f"db-7 refused {SECRET}"),
        outcome="retried",
    )
    await _iteration(1, 2.0, trigger="retry", attempt=2, runs_for=0.1)
    await _iteration(2, 5.0, trigger="run-now", runs_for=0.2)
    await _iteration(3, 10.0, runs_for=1.0, error=asyncio.CancelledError(), outcome="cancelled")
    hooks = instrument.installed
    assert hooks is not None
    hooks.iteration_skipped(PATH, NAME, "paused")


class Boom(Exception):
    pass


def failing_tree() -> tuple[Supervisor, list[str]]:
    """``app`` with ``app/flaky`` (fails its first run, then runs) and ``app/inner``.

    ``app/inner`` holds ``app/inner/doomed``, which fails at once, with no
    restart allowed: ``app/inner`` escalates to ``app``, which restarts it
    (and it escalates again, until ``app``'s own intensity gives up).
    """
    runs: list[str] = []

    @loop(seconds=60, name="flaky")
    async def flaky() -> None:
        runs.append("flaky")
        if runs.count("flaky") == 1:
            raise Boom(SECRET)

    @loop(seconds=60, name="doomed")
    async def doomed() -> None:
        runs.append("doomed")
        raise Boom(SECRET)

    inner = Supervisor(doomed, max_restarts=0, name="inner")
    tree = Supervisor(
        flaky, child(inner, restart="temporary"), max_restarts=5, max_seconds=60, name="app"
    )
    return tree, runs


async def run_one(body: object) -> None:
    """One scheduled iteration of ``app/poll`` whose body is ``body()`` (a coroutine function)."""
    event_loop = asyncio.get_running_loop()
    begun = (PATH, NAME, 0, "schedule", 1, event_loop.time(), event_loop.time())
    hooks = instrument.installed
    assert hooks is not None
    token = hooks.iteration_started(*begun) if hooks.observes_starts else None
    await body()  # type: ignore[operator]
    hooks.iteration_ended(*begun, event_loop.time(), "ok", None, token)
