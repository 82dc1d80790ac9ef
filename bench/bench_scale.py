"""Scaling figures: start, restarts, shutdown and bookkeeping at 10 000 loops, beside peers.

Run ``python bench/bench_scale.py`` (``--quick`` for a smoke run,
``--only NAME[,NAME]`` for some of the measurements). Every measurement runs
in a fresh Python process (``--one NAME --who CONTENDER`` runs one and prints
JSON), so that one contender's heap, garbage or leftover tasks never weigh on
the next; the contenders of a measurement are interleaved, the order rotating
every round; each figure is the median over ``--rounds`` rounds (heavy
measurements: ``--heavy-rounds``), shown with its range, and a ratio is the
median of the per-round ratios.

The contenders: ours (supervised_loops), discord.ext.tasks (``discord``,
the ``bench`` extra), mode's ``OneForOneSupervisor`` (``mode``, from the
``mode-streaming`` package, also in the ``bench`` extra) where it has an
equivalent, and bare asyncio where a floor helps reading.

Measurements (``--loops`` = 10 000 = ``--supervisors`` 100 × 100):

* ``start_loaded``: 10 000 plain loops at intervals drawn from 0.05–0.5 s
  (about 50 000 iterations/s asked). Ours: a tree of 100 supervisors × 100,
  ``await tree.start()`` under the load of the loops already started; the
  time until it returns and until every loop has run once, or, past
  ``--limit`` seconds, how many had started. discord.ext.tasks: ``start()``
  of 10 000 loops and the time until every loop has run once.
* ``forced_shutdown``: the same load with batchers (each iteration appends
  an item, ``after_loop`` flushes with an ``await``), running ``--load``
  seconds, then a forced shutdown: ours, ``Cancel`` to the root of the tree;
  discord.ext.tasks, ``cancel()`` of every loop. Time until every task has
  ended, and the flushes: run, cut by cancellation, never started.
* ``restart_latency``: 20 loops failing every other iteration (interval
  10 ms) beside 10 000 busy asyncio tasks (each sleeping 0.05–0.5 s in a
  loop): from the raise to the first body call of the new run, p50 / p99.
  Ours: one ``one_for_one`` supervisor of the 20. discord.ext.tasks: each
  loop started again by hand from a done callback of its task. mode: 20
  services under one ``OneForOneSupervisor``.
* ``restart_cpu``: one actor failing at once, restarted back to back with
  nothing else running: CPU time per restart (ours, discord.ext.tasks by
  hand, mode, and a bare task respawned from its done callback). Each
  contender's modules are imported before the clock starts.
* ``start_standalone``: ``start()`` of 10 000 hourly loops: the calls alone,
  and until every loop has run once (ours vs discord.ext.tasks).
* ``memory``: bytes per started idle loop (hourly, after its first
  iteration, with an ``after_loop``), tracemalloc: ours standalone, ours in
  a 100 × 100 tree (supervisors included), discord.ext.tasks.
* ``end``: ending 10 000 idle loops: ours ``stop()`` of a 100 × 100 tree,
  ours ``cancel()`` of 10 000 standalone loops, discord.ext.tasks
  ``cancel()`` of 10 000 loops; until every task has ended.
* ``status``: ``loop.status()`` vs reading discord.ext.tasks' state
  (``current_loop``, ``next_iteration``, ``is_running()``, ``failed()``,
  ``is_being_cancelled()``), µs per call.
* ``ask``: ``await loop.ask(message)`` of a user message that the loop's
  ``handle_message`` answers, with the default timeout (``ours``) and with
  ``timeout=None``, and of ``ChangeInterval(hours=1)`` (``ours_interval``:
  answered once the new plan is in force), vs a bare mailbox round trip (an
  ``asyncio.Queue`` read by the actor's task, which answers a future), µs.
* ``import``: ``import supervised_loops`` (and ``discord.ext.tasks``,
  ``mode``) after ``import asyncio``, in fresh processes, ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

LIGHT = ("restart_cpu", "start_standalone", "memory", "end", "status", "ask", "import")
HEAVY = ("start_loaded", "forced_shutdown", "restart_latency")
CONTENDERS: dict[str, tuple[str, ...]] = {
    "start_loaded": ("ours", "discord"),
    "forced_shutdown": ("ours", "discord"),
    "restart_latency": ("ours", "discord", "mode"),
    "restart_cpu": ("ours", "discord", "mode", "bare"),
    "start_standalone": ("ours", "discord"),
    "memory": ("ours", "ours_tree", "discord"),
    "end": ("ours_tree", "ours", "discord"),
    "status": ("ours", "discord"),
    "ask": ("ours", "ours_no_timeout", "ours_interval", "bare"),
    "import": ("ours", "discord", "mode"),
}


class Injected(Exception):
    """A failure that is not whitelisted: the run ends and is restarted."""


def intervals(count: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.05, 0.5) for _ in range(count)]


#: What the short measurements are timed with (``--clock``).
CLOCKS = {"wall": "perf_counter", "cpu": "process_time"}
clock: Callable[[], float] = time.perf_counter


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


# -- loops of each kind ---------------------------------------------------------------------------


def our_loop(body: Callable[[], Awaitable[None]], name: str, seconds: float) -> Any:
    # The decorator, as discord.ext.tasks' loop is made below (loops made with
    # the same interval share one schedule object).
    from supervised_loops import loop

    return loop(seconds=seconds, name=name)(body)


def discord_loop(body: Callable[[], Awaitable[None]], seconds: float) -> Any:
    from discord.ext import tasks

    return tasks.loop(seconds=seconds)(body)


def our_tree(loops: list[Any], supervisors: int) -> Any:
    from supervised_loops import Supervisor

    size = len(loops) // supervisors
    groups = [
        Supervisor(
            *loops[index * size : (index + 1) * size],
            max_restarts=10**9,
            max_seconds=1.0,
            name=f"s{index}",
        )
        for index in range(supervisors)
    ]
    return Supervisor(*groups, max_restarts=10**9, max_seconds=1.0, name="root")


class FirstRuns:
    """Counts loops that have run once; a future is set when all have."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.flags = bytearray(total)
        self.count = 0
        self.done = asyncio.get_running_loop().create_future()

    def body(self, index: int) -> Callable[[], Awaitable[None]]:
        flags = self.flags

        async def body() -> None:
            if not flags[index]:
                flags[index] = 1
                self.count += 1
                if self.count == self.total and not self.done.done():
                    self.done.set_result(time.perf_counter())

        body.__name__ = f"l{index}"
        return body


# -- measurements: each returns a dict of figures -----------------------------------------------


async def m_start_loaded(who: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.loops
    first = FirstRuns(n)
    seconds = intervals(n)
    if who == "ours":
        tree = our_tree(
            [our_loop(first.body(i), f"l{i}", s) for i, s in enumerate(seconds)], args.supervisors
        )
        gc.collect()
        began = time.perf_counter()
        starting = asyncio.ensure_future(tree.start())
        await asyncio.wait((starting,), timeout=args.limit)
        started = time.perf_counter() - began if starting.done() else None
        running = sum(
            1 for group in tree.status().children for leaf in group.children if leaf.state != "idle"
        )
    else:
        loops = [discord_loop(first.body(i), s) for i, s in enumerate(seconds)]
        gc.collect()
        began = time.perf_counter()
        for work in loops:
            work.start()
        started = time.perf_counter() - began
        running = n
    left = max(0.0, args.limit - (time.perf_counter() - began))
    await asyncio.wait((first.done,), timeout=left)
    all_ran = first.done.result() - began if first.done.done() else None
    return {"start_s": started, "first_runs_s": all_ran, "started": running, "ran": first.count}


async def m_forced_shutdown(who: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.loops
    produced = [0] * n
    flushed = [0] * n
    cut = [0] * n
    seconds = intervals(n)

    def batcher(index: int) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        async def body() -> None:
            produced[index] += 1

        async def flush() -> None:
            pending = produced[index] - flushed[index]
            try:
                await asyncio.sleep(0)  # the write
            except asyncio.CancelledError:
                cut[index] += 1
                raise
            flushed[index] += pending

        body.__name__ = f"b{index}"
        return body, flush

    from supervised_loops import Cancel

    if who == "ours":
        loops = []
        for index in range(n):
            body, flush = batcher(index)
            work = our_loop(body, f"b{index}", 3600.0)
            work.after_loop(flush)
            loops.append(work)
        tree = our_tree(loops, args.supervisors)
        await tree.start()
        for work, interval in zip(loops, seconds, strict=True):
            work.change_interval(seconds=interval)
        await asyncio.sleep(args.load)
        task = tree.get_task()
        began = time.perf_counter()
        tree.tell(Cancel())
        await asyncio.wait((task,), timeout=args.limit)
        ended = time.perf_counter() - began if task.done() else None
        still = sum(work.is_running() for work in loops)
    else:
        loops = []
        for index, interval in enumerate(seconds):
            body, flush = batcher(index)
            work = discord_loop(body, interval)
            work.after_loop(flush)
            loops.append(work)
        tasks = [work.start() for work in loops]
        await asyncio.sleep(args.load)
        began = time.perf_counter()
        for work in loops:
            work.cancel()
        await asyncio.wait(tasks, timeout=args.limit)
        ended = time.perf_counter() - began if all(t.done() for t in tasks) else None
        still = sum(not t.done() for t in tasks)
    return {
        "end_s": ended,
        "still_running": still,
        "flushes_cut": sum(1 for c in cut if c),
        "batchers_unflushed": sum(1 for p, f in zip(produced, flushed, strict=True) if p != f),
        "items_unflushed": sum(produced) - sum(flushed),
        "iterations": sum(produced),
    }


async def busy_tasks(count: int) -> list[asyncio.Task[None]]:
    rng = random.Random(2)

    async def tick(seconds: float) -> None:
        while True:  # noqa: ASYNC110  (a task that wakes up is the load)
            await asyncio.sleep(seconds)

    tasks = [asyncio.create_task(tick(rng.uniform(0.05, 0.5))) for _ in range(count)]
    await asyncio.sleep(0.6)  # every one has ticked once: the load is steady
    return tasks


class Failer:
    """A body that raises, then records the latency at the next run's first call."""

    def __init__(self, latencies: list[float], target: int, done: asyncio.Future[None]) -> None:
        self.raised_at: float | None = None
        self.latencies = latencies
        self.target = target
        self.done = done

    async def body(self) -> None:
        now = time.perf_counter()
        if self.raised_at is not None:
            self.latencies.append(now - self.raised_at)
            self.raised_at = None
            if len(self.latencies) >= self.target and not self.done.done():
                self.done.set_result(None)
            return
        self.raised_at = time.perf_counter()
        raise Injected


def restart_by_hand(work: Any, stopping: Callable[[], bool]) -> None:
    """Start a discord.ext.tasks loop again each time its task ends (until stopping)."""

    def again(_task: asyncio.Task[None]) -> None:
        if not stopping():
            work.start().add_done_callback(again)

    work.start().add_done_callback(again)


async def restarting(who: str, failers: list[Failer], interval: float) -> Callable[[], Any]:
    """Start the failing actors of ``who``; return a function that ends them."""
    if who == "ours":
        from supervised_loops import Supervisor

        loops = []
        for index, failer in enumerate(failers):
            work = our_loop(failer.body, f"f{index}", interval)

            @work.error
            async def quiet(error: BaseException) -> None:
                pass

            loops.append(work)
        tree = Supervisor(*loops, max_restarts=10**9, max_seconds=1.0, name="failing")
        await tree.start()
        return tree.stop
    if who == "discord":
        loops = []
        for failer in failers:
            work = discord_loop(failer.body, interval)

            @work.error
            async def quiet(error: BaseException) -> None:
                pass

            restart_by_hand(work, lambda: stopping)
            loops.append(work)
        stopping = False

        async def stop() -> None:
            nonlocal stopping
            stopping = True
            for work in loops:
                work.cancel()

        return stop
    if who == "mode":
        import mode
        from mode.supervisors import OneForOneSupervisor

        def service(failer: Failer) -> Any:
            class Failing(mode.Service):
                @mode.Service.task
                async def _iterate(self) -> None:
                    while not self.should_stop:
                        await failer.body()
                        await self.sleep(interval)

            return Failing()

        supervisor = OneForOneSupervisor(max_restarts=10**9, over=1.0)
        supervisor.add(*(service(failer) for failer in failers))
        await supervisor.start()
        return supervisor.stop
    raise ValueError(who)


async def m_restart_latency(who: str, args: argparse.Namespace) -> dict[str, Any]:
    busy = await busy_tasks(args.loops)
    latencies: list[float] = []
    done = asyncio.get_running_loop().create_future()
    failers = [Failer(latencies, args.restarts, done) for _ in range(20)]
    stop = await restarting(who, failers, 0.01)
    began = time.perf_counter()
    await asyncio.wait((done,), timeout=args.limit)
    elapsed = time.perf_counter() - began
    await stop()
    for task in busy:
        task.cancel()
    return {
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies, default=float("nan")),
        "restarts": len(latencies),
        "restarts_per_s": len(latencies) / elapsed,
    }


def preload(who: str) -> None:
    """Import what the contender ``who`` uses, before anything of it is timed."""
    if who == "ours":
        import supervised_loops  # noqa: F401
    elif who == "discord":
        import discord.ext.tasks  # noqa: F401
    elif who == "mode":
        import mode.supervisors  # noqa: F401


async def m_restart_cpu(who: str, args: argparse.Namespace) -> dict[str, Any]:
    count = 0
    target = args.restarts * 4
    done = asyncio.get_running_loop().create_future()

    async def body() -> None:
        nonlocal count
        count += 1
        if count >= target and not done.done():
            done.set_result(None)
        raise Injected

    if who == "bare":

        def again(_task: asyncio.Task[None]) -> None:
            if not done.done():
                asyncio.get_running_loop().create_task(body()).add_done_callback(again)

        began_cpu, began = time.process_time(), time.perf_counter()
        asyncio.get_running_loop().create_task(body()).add_done_callback(again)
        await done
        stop = None
    else:
        failer = Failer([], 0, done)
        failer.body = body  # type: ignore[method-assign]
        failers = [failer]
        preload(who)  # the import (100-200 ms) would be 25-50 µs of each restart's figure
        began_cpu, began = time.process_time(), time.perf_counter()
        stop = await restarting(who, failers, 0.0)
        await done
    cpu = time.process_time() - began_cpu
    wall = time.perf_counter() - began
    if stop is not None:
        await stop()
    return {"cpu_us": 1e6 * cpu / count, "wall_us": 1e6 * wall / count, "restarts": count}


async def m_start_standalone(who: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.loops
    first = FirstRuns(n)
    if who == "ours":
        loops = [our_loop(first.body(i), f"l{i}", 3600.0) for i in range(n)]
    else:
        loops = [discord_loop(first.body(i), 3600.0) for i in range(n)]
    gc.collect()
    gc.disable()
    began, began_clock = time.perf_counter(), clock()
    for work in loops:
        work.start()
    calls = clock() - began_clock
    gc.enable()
    await first.done
    return {"start_calls_ms": 1000 * calls, "first_runs_ms": 1000 * (first.done.result() - began)}


async def idle_loops(who: str, bodies: list[Any], names: list[str], supervisors: int) -> Any:
    """Start one hourly loop per body, each with an ``after_loop``; return what ends them."""

    async def after() -> None:
        pass

    if who in ("ours", "ours_tree"):
        loops = [our_loop(body, name, 3600.0) for body, name in zip(bodies, names, strict=True)]
        for work in loops:
            work.after_loop(after)
        if who == "ours_tree":
            tree = our_tree(loops, supervisors)
            await tree.start()
            return tree.stop
        for work in loops:
            work.start()
    else:
        loops = [discord_loop(body, 3600.0) for body in bodies]
        for work in loops:
            work.after_loop(after)
            work.start()

    async def cancel() -> None:
        tasks = [work.get_task() for work in loops]
        for work in loops:
            work.cancel()
        await asyncio.wait(tasks)

    return cancel


async def m_memory(who: str, args: argparse.Namespace) -> dict[str, Any]:
    # A warm-up run first: what is allocated once per process (lazy imports,
    # caches) is not the cost of a loop.
    warm = FirstRuns(args.supervisors)
    end = await idle_loops(
        who,
        [warm.body(i) for i in range(warm.total)],
        [f"w{i}" for i in range(warm.total)],
        1,
    )
    await warm.done
    await end()
    n = args.loops
    first = FirstRuns(n)
    bodies = [first.body(i) for i in range(n)]  # the user's code: not counted
    names = [f"l{i}" for i in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await idle_loops(who, bodies, names, args.supervisors)
    await first.done
    await asyncio.sleep(0.05)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {"bytes_per_loop": used / n}


async def m_end(who: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.loops
    first = FirstRuns(n)
    if who == "discord":
        loops = [discord_loop(first.body(i), 3600.0) for i in range(n)]
        tasks = [work.start() for work in loops]
    else:
        loops = [our_loop(first.body(i), f"l{i}", 3600.0) for i in range(n)]
        if who == "ours_tree":
            tree = our_tree(loops, args.supervisors)
            await tree.start()
            tasks = [tree.get_task()]
        else:
            tasks = [work.start() for work in loops]
    await first.done
    await asyncio.sleep(0.05)
    gc.collect()
    began = clock()
    if who == "ours_tree":
        await tree.stop()
    else:
        for work in loops:
            work.cancel()
    await asyncio.wait(tasks)
    if who == "ours_tree":
        assert not any(work.is_running() for work in loops)
    return {"end_ms": 1000 * (clock() - began)}


async def m_status(who: str, args: argparse.Namespace) -> dict[str, Any]:
    first = FirstRuns(1)
    if who == "ours":
        work = our_loop(first.body(0), "l0", 3600.0)

        def read() -> Any:
            return work.status()

    else:
        work = discord_loop(first.body(0), 3600.0)

        def read() -> Any:
            return (
                work.current_loop,
                work.next_iteration,
                work.is_running(),
                work.failed(),
                work.is_being_cancelled(),
            )

    work.start()
    await first.done
    calls = args.calls
    read()
    began = clock()
    for _ in range(calls):
        read()
    return {"us": 1e6 * (clock() - began) / calls}


class Echo:
    """A user message: the actor's task answers it with itself."""


async def m_ask(who: str, args: argparse.Namespace) -> dict[str, Any]:
    from supervised_loops import ChangeInterval, Every, Loop

    calls = args.calls // 10
    if who == "bare":
        message: Any = Echo()
        queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()

        async def actor() -> None:
            while True:
                item, reply = await queue.get()
                reply.set_result(item)

        server = asyncio.create_task(actor())

        async def ask() -> Any:
            reply = asyncio.get_running_loop().create_future()
            queue.put_nowait((message, reply))
            return await reply

    else:

        class EchoLoop(Loop):
            async def handle_message(self, message: Any) -> Any:
                if isinstance(message, Echo):
                    return message
                return await super().handle_message(message)

        first = FirstRuns(1)
        work = EchoLoop(first.body(0), schedule=Every(hours=1), name="l0")
        work.start()
        await first.done
        message = ChangeInterval(hours=1) if who.startswith("ours_interval") else Echo()
        timeout = None if who.endswith("no_timeout") else 30.0

        async def ask() -> Any:
            return await work.ask(message, timeout=timeout)

    for _ in range(100):
        await ask()
    began = clock()
    for _ in range(calls):
        await ask()
    elapsed = clock() - began
    if who == "bare":
        server.cancel()
    else:
        work.cancel()
    return {"us": 1e6 * elapsed / calls}


IMPORTS = {
    "ours": "import supervised_loops",
    "discord": "import discord.ext.tasks",
    "mode": "import mode.services, mode.supervisors",
}


def m_import(who: str, args: argparse.Namespace) -> dict[str, Any]:
    code = (
        "import asyncio, time\n"
        f"began = time.{CLOCKS[args.clock]}()\n"
        f"{IMPORTS[who]}\n"
        f"print(time.{CLOCKS[args.clock]}() - began)\n"
    )
    times = []
    for _ in range(args.imports):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        times.append(float(out))
    return {"ms": 1000 * statistics.median(times)}


MEASURES: dict[str, Callable[[str, argparse.Namespace], Any]] = {
    "start_loaded": m_start_loaded,
    "forced_shutdown": m_forced_shutdown,
    "restart_latency": m_restart_latency,
    "restart_cpu": m_restart_cpu,
    "start_standalone": m_start_standalone,
    "memory": m_memory,
    "end": m_end,
    "status": m_status,
    "ask": m_ask,
    "import": m_import,
}


def run_one(name: str, who: str, args: argparse.Namespace) -> None:
    """Run one measurement here and print its figures as JSON, then leave at once."""
    global clock
    clock = getattr(time, CLOCKS[args.clock])
    logging.disable(logging.CRITICAL)
    measure = MEASURES[name]
    result = measure(who, args) if name == "import" else asyncio.run(measure(who, args))
    print(json.dumps(result), flush=True)
    os._exit(0)  # no teardown: whatever is left running is not measured


# -- the driver -----------------------------------------------------------------------------------


def spawn(name: str, who: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one measurement in a fresh process; ``was_*`` runs ours from ``--baseline``."""
    env = dict(os.environ)
    if who.startswith("was_"):
        who = who.removeprefix("was_")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (args.baseline, env.get("PYTHONPATH"))))
    command = [sys.executable, __file__, "--one", name, "--who", who, *args.passthrough]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=args.limit * 3 + 120,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def summarise(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, tuple[Any, ...]]]:
    """For each contender and figure: (median, min, max, values)."""
    table: dict[str, dict[str, tuple[Any, ...]]] = {}
    for record in rounds:
        for who, figures in record.items():
            for key, value in figures.items():
                table.setdefault(who, {}).setdefault(key, ())
                table[who][key] += (value,)
    out: dict[str, dict[str, tuple[Any, ...]]] = {}
    for who, figures in table.items():
        out[who] = {}
        for key, values in figures.items():
            numbers = [v for v in values if isinstance(v, int | float)]
            if numbers and len(numbers) == len(values):
                out[who][key] = (statistics.median(numbers), min(numbers), max(numbers), values)
            else:
                out[who][key] = (None, None, None, values)
    return out


def ratio(rounds: list[dict[str, dict[str, Any]]], key: str, a: str, b: str) -> float | None:
    values = []
    for record in rounds:
        x = record.get(a, {}).get(key)
        y = record.get(b, {}).get(key)
        if isinstance(x, int | float) and isinstance(y, int | float) and y:
            values.append(x / y)
    return statistics.median(values) if values else None


def show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=10_000)
    parser.add_argument("--supervisors", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--heavy-rounds", type=int, default=3)
    parser.add_argument("--limit", type=float, default=30.0, help="seconds before giving up")
    parser.add_argument("--load", type=float, default=3.0, help="seconds of load before shutdown")
    parser.add_argument("--restarts", type=int, default=1000, help="latencies per round")
    parser.add_argument("--calls", type=int, default=50_000, help="status() calls per round")
    parser.add_argument("--imports", type=int, default=7, help="processes per import round")
    parser.add_argument("--only", default="", help="comma-separated measurement names")
    parser.add_argument("--quick", action="store_true", help="1 000 loops, 2 rounds")
    parser.add_argument("--json", help="also write every round's figures here")
    parser.add_argument(
        "--baseline",
        help="a source tree of supervised_loops (e.g. a git archive of an older commit): "
        "adds its figures as was_ours..., measured in the same run, for before/after ratios",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time the short measurements (status, ask, start, end, import) with the "
        "process's CPU time: steadier on a shared machine",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--who", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.loops, args.supervisors, args.rounds, args.heavy_rounds = 1000, 10, 2, 1
        args.limit, args.load, args.restarts, args.calls, args.imports = 10.0, 1.0, 200, 5000, 3
    if args.one:
        run_one(args.one, args.who, args)
    args.passthrough = [
        f"--loops={args.loops}",
        f"--supervisors={args.supervisors}",
        f"--limit={args.limit}",
        f"--load={args.load}",
        f"--restarts={args.restarts}",
        f"--calls={args.calls}",
        f"--imports={args.imports}",
        f"--clock={args.clock}",
    ]
    names = [name for name in (*HEAVY, *LIGHT) if not args.only or name in args.only.split(",")]
    load = os.getloadavg()
    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"{args.loops} loops ({args.supervisors} supervisors); load average {load[0]:.2f}")
    everything: dict[str, list[dict[str, dict[str, Any]]]] = {}
    for name in names:
        contenders = CONTENDERS[name]
        if args.baseline:
            contenders += tuple(f"was_{who}" for who in contenders if who.startswith("ours"))
        rounds: list[dict[str, dict[str, Any]]] = []
        for index in range(args.heavy_rounds if name in HEAVY else args.rounds):
            order = contenders[index % len(contenders) :] + contenders[: index % len(contenders)]
            rounds.append({who: spawn(name, who, args) for who in order})
        everything[name] = rounds
        table = summarise(rounds)
        print(f"\n## {name} ({len(rounds)} rounds; median [min–max])")
        for who in contenders:
            cells = []
            for key, (median, low, high, values) in table.get(who, {}).items():
                if median is None:
                    cells.append(f"{key} {'/'.join(show(v) for v in values)}")
                else:
                    cells.append(f"{key} {show(median)} [{show(low)}–{show(high)}]")
            print(f"  {who:<16} " + "; ".join(cells))
        base = contenders[0]
        for other in contenders[1:]:
            for key in table.get(base, {}):
                value = ratio(rounds, key, base, other)
                if value is not None and key not in ("restarts", "iterations", "ran", "started"):
                    print(f"  {base}/{other} {key}: {value:.2f}×")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(everything, stream, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
