"""Cost of lifecycle events on a Loop's hot path, with and without subscribers.

Run: python bench/bench_events.py
Success path: loop(seconds=0, count=N) doing nothing (no event is published per success).
Failure path: every other call raises OSError, retried after a 1e-9 s backoff
(each failure publishes IterationFailed + RetryScheduled when someone listens).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import timeit

from supervised_loops import ExponentialBackoff, loop
from supervised_loops.core.actor import Actor

N = 20_000
ROUNDS = 11
TINY = ExponentialBackoff(base=1e-9, cap=1e-9, jitter=False)


def make(kind: str):
    calls = 0
    if kind == "success":

        @loop(seconds=0, count=N)
        async def body() -> None:
            pass
    else:

        @loop(seconds=0, count=N, backoff=TINY)
        async def body() -> None:
            nonlocal calls
            calls += 1
            if calls % 2:
                raise OSError("flaky")

    return body


async def one(kind: str, subscribers: str) -> float:
    work = make(kind)
    readers = []
    subs = []
    if subscribers == "idle":  # a subscriber that never reads (bounded queue, drops oldest)
        subs.append(work.events(max_pending=1000))
    elif subscribers == "reader":  # a subscriber draining in its own task
        sub = work.events(max_pending=1_000_000)
        subs.append(sub)

        async def drain() -> None:
            async for _ in sub:
                pass

        readers.append(asyncio.ensure_future(drain()))
    started = time.perf_counter()
    work.start()
    await work.get_task()
    elapsed = time.perf_counter() - started
    for sub in subs:
        sub.close()
    for reader in readers:
        await reader
    return elapsed / N * 1e6  # µs per iteration (failure path: per failure + retry + success)


def main() -> None:
    import logging

    logging.getLogger("supervised_loops").setLevel(logging.WARNING)
    # Interleaved rounds, so machine noise hits every variant alike; min and median reported.
    variants = [(k, s) for k in ("success", "failure") for s in ("none", "idle", "reader")]
    runs: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
    for _ in range(ROUNDS):
        for variant in variants:
            runs[variant].append(asyncio.run(one(*variant)))
    for (kind, subscribers), times in runs.items():
        print(
            f"{kind:8} subscribers={subscribers:7} min {min(times):6.2f}  median "
            f"{statistics.median(times):6.2f} µs/iteration ({ROUNDS} rounds of {N})"
        )

    # The walk itself: _has_listeners() on an actor at depth d with no hub anywhere.
    class Bare(Actor):
        __slots__ = ()

    for depth in (1, 3, 6):
        chain = [Bare(f"a{i}") for i in range(depth)]
        for parent, child in itertools.pairwise(chain):
            child._parent = parent
        leaf = chain[-1]
        per = min(timeit.repeat(leaf._has_listeners, number=200_000, repeat=5)) / 200_000 * 1e9
        print(f"_has_listeners() depth {depth}: {per:.0f} ns")


main()
