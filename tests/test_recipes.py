"""The discord.ext.tasks recipes, rewritten in ``examples/recipes/``, do what they say.

Each recipe of the original docs (seeds/000) is a runnable script here. The
tests import each one afresh and run its scenario in virtual time, asserting
what a user would check by hand: what it printed, what reached the
"database", what was retried, what was flushed on cancel. One last test runs
every script for real, as a user would, to prove they run stand-alone.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from supervised_loops import State
from supervised_loops.testing import VirtualClock, virtual_time

RECIPES = Path(__file__).resolve().parent.parent / "examples" / "recipes"


def load(name: str) -> ModuleType:
    """Import ``examples/recipes/<name>.py`` as a fresh module (fresh module-level loops)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------
# A simple background task in a cog.


@virtual_time()
async def test_simple_printer_prints_every_interval_until_unloaded(
    capsys: pytest.CaptureFixture[str], clock: VirtualClock
) -> None:
    recipe = load("simple_printer")
    cog = await recipe.main()
    assert capsys.readouterr().out == "0\n1\n2\nunloaded after 3 iterations\n"
    assert cog.index == 3
    assert cog.printer.is_running() is False
    task = cog.printer.get_task()
    assert task is not None
    assert task.cancelled()
    assert clock.monotonic() == 2.4 * recipe.INTERVAL  # unloading ended it at once


@virtual_time()
async def test_simple_printer_cogs_each_have_their_own_loop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = load("simple_printer")
    first = recipe.MyCog()
    await asyncio.sleep(recipe.INTERVAL / 2)
    second = recipe.MyCog()
    await asyncio.sleep(2 * recipe.INTERVAL)
    first.cog_unload()  # at 1.25 s: the first cog printed at 0, 0.5 and 1.0
    await asyncio.sleep(1.8 * recipe.INTERVAL)  # the second at 0.25, 0.75, 1.25, 1.75
    assert first.printer is not second.printer
    assert first.printer.is_running() is False
    assert second.printer.is_running() is True
    assert (first.index, second.index) == (3, 4)
    second.cog_unload()
    task = second.printer.get_task()
    assert task is not None
    await asyncio.wait({task})
    capsys.readouterr()


# --------------------------------------------------------------------------
# Looping a certain number of times.


@virtual_time()
async def test_slow_count_runs_five_iterations_then_after_loop(
    capsys: pytest.CaptureFixture[str], clock: VirtualClock
) -> None:
    recipe = load("slow_count")
    await recipe.main()
    assert capsys.readouterr().out == "0\n1\n2\n3\n4\ndone!\n"
    assert recipe.slow_count.current_loop == 5
    assert recipe.slow_count.is_running() is False
    assert recipe.slow_count.failed() is False
    # The first iteration runs at once, the fifth four intervals later.
    assert clock.monotonic() == 4 * recipe.INTERVAL


@virtual_time()
async def test_slow_count_can_be_started_again_and_counts_from_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = load("slow_count")
    await recipe.main()
    await recipe.main()
    assert capsys.readouterr().out == "0\n1\n2\n3\n4\ndone!\n" * 2


# --------------------------------------------------------------------------
# Waiting until the bot is ready.


@virtual_time()
async def test_wait_until_ready_prints_only_after_the_bot_is_ready(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = load("wait_until_ready")
    cog = await recipe.main()
    assert capsys.readouterr().out == ("waiting...\nbot ready\n0\n1\nunloaded after 2 iterations\n")
    assert cog.index == 2


@virtual_time()
async def test_wait_until_ready_runs_no_iteration_however_long_the_bot_takes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = load("wait_until_ready")
    bot = recipe.Bot()
    cog = recipe.MyCog(bot)
    await asyncio.sleep(3600)  # an hour without the bot being ready
    assert cog.index == 0
    assert cog.printer.status().state is State.STARTING
    assert cog.printer.next_iteration is None
    await bot.connect()
    await asyncio.sleep(recipe.INTERVAL / 2)
    assert cog.index == 1  # right after ready
    await asyncio.sleep(recipe.INTERVAL)
    assert cog.index == 2  # then one interval later
    cog.cog_unload()
    task = cog.printer.get_task()
    assert task is not None
    await asyncio.wait({task})
    assert capsys.readouterr().out == "waiting...\nbot ready\n0\n1\n"


# --------------------------------------------------------------------------
# An added exception type, for a batch update.


@virtual_time()
async def test_batch_update_retries_the_added_exception_type_and_loses_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = load("batch_update")
    rows = await recipe.main()
    assert rows == [
        ("temperature", 20.0),
        ("temperature", 21.0),
        ("temperature", 22.0),
        ("humidity", 41.5),
        ("humidity", 42.0),
    ]
    assert capsys.readouterr().out == (
        "batch update 0: 3 rows\n"
        "batch update 1: 2 rows\n"
        "5 rows saved; 2 connection errors retried\n"
    )


@virtual_time()
async def test_batch_update_retries_with_backoff_without_advancing_the_iteration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = load("batch_update")
    db = recipe.open_database()
    try:
        cog = recipe.MyCog(recipe.Bot(recipe.Pool(db, outages=2)))
        cog.record("temperature", 20.0)
        await asyncio.sleep(0.29)  # failed at 0 and at 0.1; the next retry is at 0.3
        assert db.execute("SELECT count(*) FROM readings").fetchone() == (0,)
        assert cog.batch_update.current_loop == 0
        assert cog.batch_update.status().state is State.RETRYING
        assert cog.data == [("temperature", 20.0)]  # still queued
        await asyncio.sleep(0.02)
        assert db.execute("SELECT count(*) FROM readings").fetchone() == (1,)
        assert cog.batch_update.current_loop == 1
        assert cog.batch_update.failed() is False
        assert cog.batch_update.status().failures == 2
        cog.cog_unload()
        task = cog.batch_update.get_task()
        assert task is not None
        await asyncio.wait({task})
    finally:
        db.close()
    assert capsys.readouterr().out == "batch update 0: 1 rows\n"


@virtual_time()
async def test_batch_update_without_the_added_type_would_fail_at_the_first_outage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Why the recipe calls add_exception_type: the error is not an OSError.
    recipe = load("batch_update")
    db = recipe.open_database()
    try:
        cog = recipe.MyCog(recipe.Bot(recipe.Pool(db, outages=1)))
        assert cog.batch_update.remove_exception_type(recipe.PoolConnectionError) is True

        @cog.batch_update.error
        async def on_error(self: object, error: BaseException) -> None:
            print(f"failed: {error}")

        task = cog.batch_update.get_task()
        assert task is not None
        with pytest.raises(recipe.PoolConnectionError):
            await task
        assert cog.batch_update.failed() is True
    finally:
        db.close()
    assert capsys.readouterr().out == "failed: could not connect to server\n"


# --------------------------------------------------------------------------
# Flushing a batch in after_loop when cancelled.


@virtual_time()
async def test_flush_on_cancel_saves_every_event_when_cancelled_mid_insert(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = load("flush_on_cancel")
    saved = await recipe.main()
    assert saved == [f"event {index}" for index in range(6)]
    assert capsys.readouterr().out == (
        "inserted 3 events\n"
        "cancelled with 3 events pending: flushing\n"
        "inserted 3 events\n"
        "6 events saved, 0 lost\n"
    )


@virtual_time()
async def test_flush_on_cancel_also_flushes_when_cancelled_while_sleeping(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = load("flush_on_cancel")
    db = recipe.open_database()
    try:
        cog = recipe.MyCog(recipe.Bot(db))
        await asyncio.sleep(0.1)  # the first insert (at 0) found nothing to do
        cog.add("late")
        cog.cog_unload()  # the loop sleeps until 0.5: cancelled there
        task = cog.bulker.get_task()
        assert task is not None
        await asyncio.wait({task})
        assert [row for (row,) in db.execute("SELECT event FROM events")] == ["late"]
    finally:
        db.close()
    assert capsys.readouterr().out == (
        "cancelled with 1 events pending: flushing\ninserted 1 events\n"
    )


@virtual_time()
async def test_flush_on_cancel_does_not_flush_on_a_graceful_stop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # is_being_cancelled() is false after stop(): the recipe flushes only on cancel.
    recipe = load("flush_on_cancel")
    db = recipe.open_database()
    try:
        cog = recipe.MyCog(recipe.Bot(db))
        await asyncio.sleep(0.1)
        cog.add("kept for the next start")
        cog.bulker.stop()
        task = cog.bulker.get_task()
        assert task is not None
        await task
        assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)
        assert cog._batch == ["kept for the next start"]
    finally:
        db.close()
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------
# The scripts themselves.

LAST_LINES = {
    "simple_printer": "unloaded after 3 iterations",
    "slow_count": "done!",
    "wait_until_ready": "unloaded after 2 iterations",
    "batch_update": "5 rows saved; 2 connection errors retried",
    "flush_on_cancel": "6 events saved, 0 lost",
}


def test_every_recipe_file_is_covered_here() -> None:
    assert sorted(path.stem for path in RECIPES.glob("*.py")) == sorted(LAST_LINES)


async def test_every_recipe_runs_as_a_script_in_real_time() -> None:
    async def run(name: str) -> tuple[str, int | None, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(RECIPES / f"{name}.py"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        return name, process.returncode, out.decode(), err.decode()

    # Concurrently: each script takes a second or so of real time.
    async with asyncio.timeout(30):
        results = await asyncio.gather(*(run(name) for name in LAST_LINES))
    for name, returncode, out, err in results:
        assert (name, returncode, err) == (name, 0, "")
        assert out.splitlines()[-1] == LAST_LINES[name]
