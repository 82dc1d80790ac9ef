"""Stress benchmark of a supervision tree: 10 000 loops, 1% of iterations failing.

Run ``python bench/bench_tree.py`` (``--quick`` for a smoke run). The tree is
one root supervisor over ``--supervisors`` supervisors (100) of ``--loops``
loops each (100), every loop ticking every ``--interval`` seconds (0.01) with
``missed="skip"``. In real time, it runs two phases of ``--seconds`` each:

1. **no failures**: the iteration rate the machine sustains for this tree
   (with 10 000 loops at 100 Hz the event loop is saturated: the rate is the
   CPU's, not the schedule's);
2. **failures**: each iteration raises, with probability ``--failure-rate``
   (1%), an error that is not whitelisted: the loop's error handler runs (a
   no-op here, to time the library rather than logging), ``after_loop`` runs,
   the run ends failed, the supervisor decides and restarts it.

Reported: iterations per second in each phase; restarts; the **restart
cost in isolation** (µs per restart: one loop that fails as soon as it runs,
restarted back to back by its supervisor with nothing else running: the
error handler, ``after_loop``, the exit report, the decision, the new run and
its readiness); the **restart latency** under load (from the failing body
raising to the restarted loop's ``before_loop``, median and 99th
percentile); how many loops were waiting for their restart when the failures
stopped, and how long until every loop ran again; the time to start and to
stop the whole tree; and whether the tree kept running (the root and every
supervisor running, no supervisor failed, every loop running at the end).

The tree is started and stopped *idle* (every loop hourly; the load is
switched on and off with ``ChangeInterval``): start and stop are sequential
by design (each child once the previous one is ready; reverse order on the
way down), and each child costs a few event-loop cycles, which under a
saturated event loop each process the ticks of every other loop. Restarts
under load pay the same: that is most of their latency here.

The intensity is set high (``--max-restarts`` per second per supervisor) so
that the expected failure rate never trips it: the benchmark measures
restarts, not escalation.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from supervised_loops import Every, Loop, Supervisor, child, loop


class Injected(Exception):
    """The benchmark's failure: not whitelisted, so the loop fails and is restarted."""


@dataclass
class Counters:
    iterations: int = 0
    failing: bool = False
    rate: float = 0.0
    latencies: list[float] = field(default_factory=list)


def make_loop(name: str, counters: Counters, rng: random.Random) -> Loop:
    failed_at: list[float] = []

    async def body() -> None:
        counters.iterations += 1
        if counters.failing and rng.random() < counters.rate:
            failed_at.append(time.perf_counter())
            raise Injected(name)

    body.__name__ = name
    # Built idle (hourly): the load is switched on once the tree has started.
    work = Loop(body, schedule=Every(seconds=3600), name=name, missed="skip")

    @work.before_loop
    async def ready() -> None:
        if failed_at:
            counters.latencies.append(time.perf_counter() - failed_at.pop())

    @work.error
    async def quiet(error: BaseException) -> None:
        pass

    return work


def build(args: argparse.Namespace, counters: Counters) -> tuple[Supervisor, list[Loop]]:
    rng = random.Random(args.seed)
    loops: list[Loop] = []
    groups = []
    for group in range(args.supervisors):
        members = [make_loop(f"l{index}", counters, rng) for index in range(args.loops)]
        loops.extend(members)
        groups.append(
            Supervisor(
                *(child(member) for member in members),
                max_restarts=args.max_restarts,
                max_seconds=1.0,
                name=f"s{group}",
            )
        )
    return Supervisor(*groups, max_restarts=0, name="root"), loops


async def phase(counters: Counters, seconds: float, *, failing: bool) -> tuple[int, float]:
    counters.failing = failing
    before = counters.iterations
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - began
    return counters.iterations - before, elapsed


async def restart_cost(restarts: int) -> float:
    """Microseconds per restart, in isolation: one loop failing at once, restarted over and over.

    The whole cycle is timed: the body raises, the error handler and
    after_loop run, the run ends and reports, the supervisor decides,
    counts the intensity and starts a new run, which becomes ready and
    fails again. Nothing else runs, so the event loop's cycles are cheap.
    """
    done = asyncio.get_running_loop().create_future()
    count = 0

    @loop(seconds=0)
    async def failing() -> None:
        nonlocal count
        count += 1
        if count > restarts and not done.done():
            done.set_result(None)
        raise Injected("again")

    @failing.error
    async def quiet(error: BaseException) -> None:
        pass

    tree = Supervisor(failing, max_restarts=10 * restarts, max_seconds=3600, name="alone")
    await tree.start()
    began = time.perf_counter()
    start_count = count
    await done
    elapsed = time.perf_counter() - began
    await tree.stop()
    return 1e6 * elapsed / (count - start_count)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    counters = Counters(rate=args.failure_rate)
    tree, loops = build(args, counters)
    gc.collect()
    began = time.perf_counter()
    await tree.start()
    started = time.perf_counter() - began
    for work in loops:
        work.change_interval(seconds=args.interval)  # the load begins
    await asyncio.sleep(min(1.0, args.seconds / 4))  # settle: every loop iterating
    clean, clean_time = await phase(counters, args.seconds, failing=False)
    restarts_before = sum(work.status().restarts for work in loops)
    failing, failing_time = await phase(counters, args.seconds, failing=True)
    counters.failing = False
    restarts = sum(work.status().restarts for work in loops) - restarts_before
    waiting = sum(not work.is_running() for work in loops)  # failed, restart queued
    began = time.perf_counter()
    while not all(work.is_running() for work in loops) and time.perf_counter() - began < 60:  # noqa: ASYNC110  (polling is the measurement)
        await asyncio.sleep(0.05)
    drained = time.perf_counter() - began
    running_loops = sum(work.is_running() for work in loops)
    failed_supervisors = sum(
        1 for status in tree.status().children if status.state.value != "running"
    )
    kept_running = (
        tree.is_running()
        and not tree.failed()
        and failed_supervisors == 0
        and running_loops == len(loops)
    )
    for work in loops:
        work.change_interval(seconds=3600)  # the load ends
    await asyncio.sleep(0.5)
    began = time.perf_counter()
    await tree.stop()
    stopped = time.perf_counter() - began
    clean_rate = clean / clean_time
    failing_rate = failing / failing_time
    latencies = sorted(counters.latencies)
    return {
        "restart_cost_us": await restart_cost(args.restarts),
        "waiting": waiting,
        "drain_s": drained,
        "loops": len(loops),
        "start_s": started,
        "clean_rate": clean_rate,
        "failing_rate": failing_rate,
        "restarts": restarts,
        "restart_rate": restarts / failing_time,
        "latency_median_us": 1e6 * statistics.median(latencies) if latencies else float("nan"),
        "latency_p99_us": 1e6 * latencies[int(0.99 * (len(latencies) - 1))]
        if latencies
        else float("nan"),
        "stop_s": stopped,
        "kept_running": kept_running,
        "running_loops": running_loops,
        "failed_supervisors": failed_supervisors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supervisors", type=int, default=100)
    parser.add_argument("--loops", type=int, default=100, help="loops per supervisor")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between ticks")
    parser.add_argument("--failure-rate", type=float, default=0.01)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--max-restarts", type=int, default=10_000, help="per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--restarts", type=int, default=5000, help="for the isolated cost")
    parser.add_argument("--quick", action="store_true", help="10 × 10 loops, 1 s phases")
    args = parser.parse_args(argv)
    if args.quick:
        args.supervisors, args.loops, args.seconds = 10, 10, 1.0
    logging.getLogger("supervised_loops").setLevel(logging.CRITICAL)
    result = asyncio.run(run(args))
    print(f"Python {platform.python_version()} on {platform.platform()}")
    print(
        f"tree: 1 root, {args.supervisors} supervisors × {args.loops} loops = "
        f"{result['loops']} loops, every {args.interval} s, missed='skip'; "
        f"{args.failure_rate:.0%} of iterations fail in phase 2; {args.seconds} s per phase"
    )
    rows = [
        ("start the tree, idle (all loops ready)", f"{result['start_s']:.2f} s"),
        ("iterations/s, no failures", f"{result['clean_rate']:,.0f}"),
        ("iterations/s, with failures", f"{result['failing_rate']:,.0f}"),
        ("restarts (phase 2)", f"{result['restarts']:,} ({result['restart_rate']:,.0f}/s)"),
        ("restart cost in isolation", f"{result['restart_cost_us']:,.0f} µs per restart"),
        (
            "restart latency (raise → before_loop)",
            f"median {result['latency_median_us']:,.0f} µs, p99 {result['latency_p99_us']:,.0f} µs",
        ),
        ("loops waiting for a restart at the end", f"{result['waiting']:,}"),
        ("all loops running again after", f"{result['drain_s']:.2f} s"),
        ("stop the tree, idle", f"{result['stop_s']:.2f} s"),
        (
            "tree kept running",
            f"{'yes' if result['kept_running'] else 'NO'} "
            f"({result['running_loops']} loops running, "
            f"{result['failed_supervisors']} supervisors not running)",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    return 0 if result["kept_running"] else 1


if __name__ == "__main__":
    sys.exit(main())
