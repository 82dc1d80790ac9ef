"""Hot-path benchmarks of supervised_loops, side by side with discord.ext.tasks.

Run ``python bench/bench_loops.py`` (``--quick`` for a smoke run). One run
measures every figure of issue 2 for our ``Loop``, for discord.ext.tasks'
``Loop`` and, where it applies, for the bare asyncio code a loop library
wraps, then prints one table with the ratios and whether each target is met:

* **per-iteration overhead** of a ``seconds=0`` loop: N iterations of a body
  that only counts, timed from ``start()`` until the task is done (``count=N``
  ends both loops). The overhead is the time per iteration minus the body's
  own cost, measured by awaiting the body N times in a plain ``for`` loop.
  The baseline is a task doing ``await asyncio.sleep(0); await body()`` N
  times: the one yield per iteration that any fair loop must pay.
  Target: our overhead at most half of discord.ext.tasks'.
* **memory per idle loop**: ``tracemalloc``'s live bytes after creating and
  starting 10 000 loops (``hours=1``, each with its own body function and an
  ``after_loop`` hook) and letting each run its first iteration and reach its
  sleep, divided by 10 000. It counts the Loop objects, their tasks,
  coroutine frames, futures and timer handles (the body functions are made
  before tracing starts: they are the user's code, not the library's). The
  baseline is a task that runs the body once and sleeps an hour.
  Target: no more than discord.ext.tasks'.
* **cancel 10 000 sleeping loops**: the time from the first ``cancel()`` until
  every task is done, with every ``after_loop`` hook run (checked). The
  baseline is ``Task.cancel()`` on tasks sleeping in ``asyncio.sleep`` with a
  ``finally`` that awaits the same hook.
  Target: no slower than discord.ext.tasks.
* **ours only, informational**: ``ask(GetStatus())`` round trip,
  ``tell(ChangeInterval(...))`` on a sleeping loop (the sender's cost) and
  ``ask(ChangeInterval(...))`` (until the new plan is in force), and
  start-to-ready latency (``start()`` then ``wait_ready()``).

Method: every measurement runs in a fresh event loop (``asyncio.run``), so no
timer or task of one measurement weighs on another. Timings are repeated and
the median is reported with the range; the implementations are interleaved
(the order rotates each round) so that a noisy neighbour slows all of them,
not one. The cyclic garbage collector is off inside timed regions (``--gc``
leaves it on) so that a collection triggered by one implementation's garbage
is not billed to another; memory is measured after a full collection.

discord.py is only needed here (``pip install -e .[bench]``); creating and
starting a discord.ext.tasks ``Loop`` needs no bot and no connection, only a
running event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import supervised_loops
from supervised_loops import ChangeInterval, GetStatus, State

Body = Callable[[], Awaitable[None]]

#: The clock of every timing: wall time by default, the process's CPU time
#: with ``--clock cpu`` (steadier on a machine shared with other work, since
#: time spent descheduled is not counted; a single-threaded event loop is
#: busy the whole time it is timed, so on an idle machine both agree).
_now: Callable[[], float] = time.perf_counter


class LoopLike(Protocol):
    """What both libraries' ``Loop`` objects offer and the benchmarks use."""

    def start(self, *args: Any, **kwargs: Any) -> asyncio.Task[None]: ...

    def cancel(self) -> None: ...

    def after_loop(self, coro: Any) -> Any: ...


Decorator = Callable[..., Callable[[Body], LoopLike]]


def _discord_tasks() -> Any:
    """Import discord.ext.tasks, or exit with a message saying how to get it."""
    try:
        from discord.ext import tasks
    except ImportError as exc:
        raise SystemExit(
            "bench_loops: discord.py is needed to compare against discord.ext.tasks "
            f"({exc}).\nInstall the bench extra: pip install -e '.[bench]'"
        ) from exc
    return tasks


# -- helpers -----------------------------------------------------------------------


@contextmanager
def _gc_paused(enabled: bool) -> Iterator[None]:
    """Collect now, then keep the cyclic GC off inside the block (unless ``enabled``)."""
    gc.collect()
    if enabled:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Counter:
    """A shared count that bodies and hooks bump (one attribute write per call)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


def _new_body(counter: Counter) -> Body:
    """A fresh body function (its own function object) that only counts."""

    async def body() -> None:
        counter.value += 1

    return body


def _rounds(implementations: Sequence[str], repeat: int) -> Iterator[str]:
    """Each implementation ``repeat`` times, the order rotating every round."""
    count = len(implementations)
    for round_index in range(repeat):
        for offset in range(count):
            yield implementations[(round_index + offset) % count]


async def _until_count(counter: Counter, target: int) -> None:
    """Yield to the event loop until ``counter`` reaches ``target``, then once more.

    Polling, not an Event: the bodies must do nothing but count, or the
    benchmark would bill their signalling to the libraries.
    """
    while counter.value < target:  # noqa: ASYNC110
        await asyncio.sleep(0)
    await asyncio.sleep(0)


# -- per-iteration overhead ------------------------------------------------------------


async def _iterations_body_only(iterations: int, gc_on: bool) -> float:
    counter = Counter()
    body = _new_body(counter)
    with _gc_paused(gc_on):
        started = _now()
        for _ in range(iterations):
            await body()
        elapsed = _now() - started
    assert counter.value == iterations
    return elapsed / iterations


async def _iterations_bare(iterations: int, gc_on: bool) -> float:
    counter = Counter()
    body = _new_body(counter)

    async def bare() -> None:
        for _ in range(iterations):
            await asyncio.sleep(0)
            await body()

    with _gc_paused(gc_on):
        started = _now()
        await asyncio.get_running_loop().create_task(bare())
        elapsed = _now() - started
    assert counter.value == iterations
    return elapsed / iterations


async def _iterations_loop(decorator: Decorator, iterations: int, gc_on: bool) -> float:
    counter = Counter()
    loop = decorator(seconds=0, count=iterations)(_new_body(counter))
    with _gc_paused(gc_on):
        started = _now()
        await loop.start()
        elapsed = _now() - started
    assert counter.value == iterations, (counter.value, iterations)
    return elapsed / iterations


# -- idle loops: memory and cancellation ---------------------------------------------------


async def _start_idle(
    decorator: Decorator | None, bodies: list[Body], ran: Counter, after: Body
) -> tuple[list[asyncio.Task[None]], list[Callable[[], None]], list[Any]]:
    """Start one idle loop per body and wait until each has run once and sleeps."""
    tasks: list[asyncio.Task[None]] = []
    cancels: list[Callable[[], None]] = []
    loops: list[Any] = []
    if decorator is None:
        event_loop = asyncio.get_running_loop()
        for body in bodies:

            async def sleeper(body: Body = body) -> None:
                try:
                    await body()
                    await asyncio.sleep(3600)
                finally:
                    await after()

            task = event_loop.create_task(sleeper())
            tasks.append(task)
            cancels.append(task.cancel)
    else:
        for body in bodies:
            loop = decorator(hours=1)(body)
            loop.after_loop(after)
            tasks.append(loop.start())
            cancels.append(loop.cancel)
            loops.append(loop)
    total = len(bodies)
    await _until_count(ran, total)
    return tasks, cancels, loops


def _check_sleeping(tasks: list[asyncio.Task[None]], loops: list[Any], ours: bool) -> None:
    if any(task.done() for task in tasks):
        raise AssertionError("a loop ended before it was measured")
    if ours and any(loop.status().state is not State.SLEEPING for loop in loops):
        raise AssertionError("one of our loops is not sleeping")


async def _idle_memory(
    decorator: Decorator | None, count: int, ours: bool, top: int
) -> tuple[float, str]:
    ran, ended = Counter(), Counter()
    bodies = [_new_body(ran) for _ in range(count)]

    async def after() -> None:
        ended.value += 1

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot() if top else None
        baseline = tracemalloc.get_traced_memory()[0]
        tasks, cancels, loops = await _start_idle(decorator, bodies, ran, after)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - baseline
        sites = ""
        if before is not None:
            stats = tracemalloc.take_snapshot().compare_to(before, "lineno")
            sites = "\n".join(f"    {stat}" for stat in stats[:top])
    finally:
        tracemalloc.stop()
    _check_sleeping(tasks, loops, ours)
    for cancel in cancels:
        cancel()
    await asyncio.wait(tasks)
    assert ended.value == count
    return used / count, sites


async def _cancel_all(
    decorator: Decorator | None, count: int, ours: bool, gc_on: bool, profile: bool
) -> tuple[float, str]:
    ran, ended = Counter(), Counter()
    bodies = [_new_body(ran) for _ in range(count)]

    async def after() -> None:
        ended.value += 1

    tasks, cancels, loops = await _start_idle(decorator, bodies, ran, after)
    _check_sleeping(tasks, loops, ours)
    profiler = cProfile.Profile() if profile else None
    with _gc_paused(gc_on):
        if profiler is not None:
            profiler.enable()
        started = _now()
        for cancel in cancels:
            cancel()
        await asyncio.wait(tasks)
        elapsed = _now() - started
        if profiler is not None:
            profiler.disable()
    if ended.value != count or not all(task.cancelled() for task in tasks):
        raise AssertionError("not every loop ended cancelled with its after_loop run")
    return elapsed, _profile_text(profiler)


def _profile_text(profiler: cProfile.Profile | None, lines: int = 22) -> str:
    if profiler is None:
        return ""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(lines)
    return out.getvalue()


# -- ours only -----------------------------------------------------------------------------


async def _ours_informational(count: int, ready_count: int) -> dict[str, float]:
    ran = Counter()
    loop = supervised_loops.loop(hours=1)(_new_body(ran))
    loop.start()
    await _until_count(ran, 1)
    results: dict[str, float] = {}

    started = _now()
    for _ in range(count):
        status = await loop.ask(GetStatus())
    results["ask_get_status_us"] = (_now() - started) / count * 1e6
    assert status.state is State.SLEEPING

    spent = 0.0
    for _ in range(count):
        started = _now()
        loop.tell(ChangeInterval(hours=1))
        spent += _now() - started
        await asyncio.sleep(0)  # the runner re-plans and sleeps again
    results["tell_change_interval_us"] = spent / count * 1e6

    started = _now()
    for _ in range(count):
        await loop.ask(ChangeInterval(hours=1))
    results["ask_change_interval_us"] = (_now() - started) / count * 1e6
    assert loop.status().state is State.SLEEPING
    assert ran.value == 1
    loop.cancel()
    await asyncio.wait((loop.get_task(),))  # type: ignore[arg-type]

    latencies: list[float] = []
    fresh = [supervised_loops.loop(hours=1)(_new_body(ran)) for _ in range(ready_count)]
    for each in fresh:
        target = ran.value + 1
        started = _now()
        each.start()
        await each.wait_ready()
        latencies.append(_now() - started)
        # Let it run its first iteration and fall asleep before the next
        # start, so that work is not billed to the next loop's latency.
        await _until_count(ran, target)
    results["start_to_ready_us"] = statistics.median(latencies) * 1e6
    for each in fresh:
        each.cancel()
    await asyncio.wait([each.get_task() for each in fresh])  # type: ignore[misc]
    return results


# -- the run ---------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the result table."""

    metric: str
    unit: str
    ours: float
    discord: float
    bare: float | None
    ratio: float  # ours / discord
    target: str
    met: bool | None
    spread: str = ""


@dataclass
class Settings:
    iterations: int
    loops: int
    repeat: int
    gc_on: bool
    profile: bool
    info_count: int
    ready_count: int
    clock: str = "wall"


def _median_and_range(values: list[float], scale: float, digits: int) -> tuple[float, str]:
    median = statistics.median(values) * scale
    low, high = min(values) * scale, max(values) * scale
    return median, f"{low:.{digits}f}–{high:.{digits}f}"


def _paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median of the per-round ratios ``ours[i] / theirs[i]``.

    Both figures of a round were measured back to back, under the same
    conditions, so the ratio of a pair cancels most of the machine's noise;
    the median then drops the rounds a neighbour disturbed anyway.
    """
    return statistics.median(mine / other for mine, other in zip(ours, theirs, strict=True))


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def measure(settings: Settings) -> tuple[list[Row], dict[str, float], list[str]]:
    """Run every benchmark; return the table rows, our extra figures, profiles."""
    tasks = _discord_tasks()
    decorators: dict[str, Decorator | None] = {
        "ours": supervised_loops.loop,
        "discord": tasks.loop,
        "bare": None,
    }
    rows: list[Row] = []
    profiles: list[str] = []
    gc_on = settings.gc_on

    # Per-iteration overhead.
    _progress(f"per-iteration: {settings.iterations} iterations x {settings.repeat} rounds")
    per_iteration: dict[str, list[float]] = {"ours": [], "discord": [], "bare": [], "body": []}
    for name in _rounds(("ours", "discord", "bare", "body"), settings.repeat):
        decorator = decorators.get(name)
        if name == "body":
            coro = _iterations_body_only(settings.iterations, gc_on)
        elif name == "bare":
            coro = _iterations_bare(settings.iterations, gc_on)
        else:
            assert decorator is not None
            coro = _iterations_loop(decorator, settings.iterations, gc_on)
        per_iteration[name].append(asyncio.run(coro))
    body_cost = statistics.median(per_iteration["body"])
    overhead = {
        name: [value - body_cost for value in per_iteration[name]]
        for name in ("ours", "discord", "bare")
    }
    medians = {name: statistics.median(values) * 1e6 for name, values in per_iteration.items()}
    rows.append(
        Row(
            "time per iteration, seconds=0",
            "µs",
            medians["ours"],
            medians["discord"],
            medians["bare"],
            _paired_ratio(per_iteration["ours"], per_iteration["discord"]),
            "",
            None,
            _median_and_range(per_iteration["ours"], 1e6, 2)[1],
        )
    )
    ours_overhead, spread = _median_and_range(overhead["ours"], 1e6, 2)
    discord_overhead = statistics.median(overhead["discord"]) * 1e6
    ratio = _paired_ratio(overhead["ours"], overhead["discord"])
    rows.append(
        Row(
            "overhead per iteration (minus body)",
            "µs",
            ours_overhead,
            discord_overhead,
            statistics.median(overhead["bare"]) * 1e6,
            ratio,
            "ratio <= 0.50",
            ratio <= 0.5,
            spread,
        )
    )
    rows.append(
        Row(
            "body alone (await body())", "µs", medians["body"], medians["body"], None, 1.0, "", None
        )
    )

    # Memory per idle loop (deterministic enough for one round each).
    _progress(f"memory: {settings.loops} idle loops each")
    memory: dict[str, float] = {}
    for name in ("ours", "discord", "bare"):
        top = 12 if settings.profile and name != "bare" else 0
        used, sites = asyncio.run(
            _idle_memory(decorators[name], settings.loops, name == "ours", top)
        )
        memory[name] = used
        if sites:
            profiles.append(f"tracemalloc, top allocation sites, {name}:\n{sites}")
    ratio = memory["ours"] / memory["discord"]
    rows.append(
        Row(
            "memory per idle loop (hours=1)",
            "bytes",
            memory["ours"],
            memory["discord"],
            memory["bare"],
            ratio,
            "ratio <= 1.00",
            ratio <= 1.0,
        )
    )

    # Cancelling sleeping loops.
    _progress(f"cancel: {settings.loops} sleeping loops x {settings.repeat} rounds")
    cancel: dict[str, list[float]] = {"ours": [], "discord": [], "bare": []}
    for name in _rounds(("ours", "discord", "bare"), settings.repeat):
        elapsed, _ = asyncio.run(
            _cancel_all(decorators[name], settings.loops, name == "ours", gc_on, False)
        )
        cancel[name].append(elapsed)
    ours_cancel, spread = _median_and_range(cancel["ours"], 1e3, 1)
    discord_cancel = statistics.median(cancel["discord"]) * 1e3
    ratio = _paired_ratio(cancel["ours"], cancel["discord"])
    rows.append(
        Row(
            f"cancel {settings.loops} sleeping loops",
            "ms",
            ours_cancel,
            discord_cancel,
            statistics.median(cancel["bare"]) * 1e3,
            ratio,
            "ratio <= 1.00",
            ratio <= 1.0,
            spread,
        )
    )

    if settings.profile:
        _progress("profiles")
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(_iterations_loop(supervised_loops.loop, settings.iterations, gc_on))
        profiler.disable()
        profiles.append("cProfile, ours, per-iteration run:\n" + _profile_text(profiler))
        _, text = asyncio.run(_cancel_all(supervised_loops.loop, settings.loops, True, gc_on, True))
        profiles.append("cProfile, ours, cancel run:\n" + text)

    _progress("ours only: ask / tell / start-to-ready")
    info = asyncio.run(_ours_informational(settings.info_count, settings.ready_count))
    return rows, info, profiles


def _format_number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def render(rows: list[Row], info: dict[str, float], settings: Settings) -> str:
    """The result table as Markdown (readable in a terminal too)."""
    tasks = _discord_tasks()
    import discord

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = [
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, nproc={os.cpu_count()}, "
        f"load average {load[0]:.2f}",
        f"supervised_loops {_version('supervised-loops')}, "
        f"discord.py {discord.__version__} ({tasks.__name__})",
        f"iterations={settings.iterations} loops={settings.loops} repeat={settings.repeat} "
        f"gc={'on' if settings.gc_on else 'off while timing'} clock={settings.clock} "
        "(ratios: median of per-round ratios)",
        "",
        "| metric | unit | ours | discord.ext.tasks | bare asyncio | ours/discord "
        "| target | met | ours min–max |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        met = "—" if row.met is None else ("yes" if row.met else "**NO**")
        lines.append(
            f"| {row.metric} | {row.unit} | {_format_number(row.ours)} "
            f"| {_format_number(row.discord)} | {_format_number(row.bare)} "
            f"| {row.ratio:.2f} | {row.target or '—'} | {met} | {row.spread or '—'} |"
        )
    lines += [
        "",
        "| ours only | µs |",
        "|---|---:|",
        f"| ask(GetStatus()) round trip | {info['ask_get_status_us']:.2f} |",
        f"| tell(ChangeInterval(hours=1)) on a sleeping loop, sender side "
        f"| {info['tell_change_interval_us']:.2f} |",
        f"| ask(ChangeInterval(hours=1)) until the new plan is in force "
        f"| {info['ask_change_interval_us']:.2f} |",
        f"| start() to wait_ready(), median | {info['start_to_ready_us']:.2f} |",
    ]
    return "\n".join(lines)


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run the benchmarks, print the table.

    Returns 0, or 1 with ``--check`` when a target of issue 2 is missed.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--iterations", type=int, help="iterations per timing (200000)")
    parser.add_argument("--loops", type=int, help="idle loops for memory and cancel (10000)")
    parser.add_argument("--repeat", type=int, help="rounds per timing, median taken (5)")
    parser.add_argument("--gc", action="store_true", help="leave the cyclic GC on while timing")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time with the wall clock (default) or the process's CPU time",
    )
    parser.add_argument("--profile", action="store_true", help="also print where our time goes")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    options = parser.parse_args(argv)
    quick = options.quick
    settings = Settings(
        iterations=options.iterations or (20_000 if quick else 200_000),
        loops=options.loops or (2_000 if quick else 10_000),
        repeat=options.repeat or (3 if quick else 5),
        gc_on=options.gc,
        profile=options.profile,
        info_count=2_000 if quick else 20_000,
        ready_count=200 if quick else 2_000,
    )
    _discord_tasks()  # fail early, before any work, if discord.py is missing
    global _now  # one clock for the whole run, chosen here
    _now = time.process_time if options.clock == "cpu" else time.perf_counter
    settings.clock = options.clock
    started = time.perf_counter()
    rows, info, profiles = measure(settings)
    print(render(rows, info, settings))
    print(f"\n(total {time.perf_counter() - started:.1f} s)")
    for text in profiles:
        print("\n" + text)
    if options.json:
        with open(options.json, "w", encoding="utf-8") as out:
            json.dump(
                {"settings": asdict(settings), "rows": [asdict(row) for row in rows], "info": info},
                out,
                indent=2,
            )
    missed = [row.metric for row in rows if row.met is False]
    return 1 if missed and options.check else 0


if __name__ == "__main__":
    sys.exit(main())
