"""Failover time of leased replicas after ``kill -9``, against real servers.

Run ``python bench/bench_failover.py`` with the servers of
``tests/leases_servers.sh`` (``eval "$(bash tests/leases_servers.sh)"``
exports their URLs). For each backend (Redis, PostgreSQL lease rows,
PostgreSQL advisory locks) it keeps three replica processes
(``tests/leases_replica.py``) contending for one lease and, ``--rounds``
times: waits until one holds it and has renewed at least once, ``kill -9``
the holder, and measures the time until another replica prints that it
acquired the lease (both readings from ``time.monotonic()``, machine-wide),
then starts a new replica so three remain.

``--iteration-cost`` measures instead what a held lease costs a loop's
iteration: a ``seconds=0`` loop with ``count=N`` whose body only counts, with
and without ``lease=`` (in-process backend, held from the first
iteration), interleaved rounds, median time per iteration. Renewals run in
the keeper's own task, so the difference is the gate's check and frame.

The bound to compare with is ``ttl + retry_period``: the dead holder's last
grant lives up to ``ttl`` after its last renewal, which came at most
``ttl / 3`` before the kill, and a standby asks every ``retry_period`` at
most. So the expected spread is ``[2/3 ttl, ttl + retry_period]`` plus the
time to print a line. The advisory mode hands over as soon as the server
notices the dead session, whatever the ttl.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from leases_cluster import Cluster

from supervised_loops.leases import LeaseSettings


def rounds_for(backend: str, url: str, rounds: int, ttl: float) -> list[dict[str, float]]:
    results = []
    with tempfile.TemporaryDirectory() as directory:
        cluster = Cluster(backend, url, Path(directory), ttl=ttl)
        try:
            cluster.start(3)
            for _ in range(rounds):
                holder, acquired = cluster.holder()
                # Kill at a random point of the renewal cycle.
                cluster.drain(ttl / 3 * (0.5 + (os.getpid() + len(results)) % 7 / 7))
                killed_at = holder.signal(signal.SIGKILL)
                holder.process.wait()
                taken = cluster.acquired_after(killed_at, timeout=4 * ttl + 5)
                results.append(
                    {
                        "seconds": taken["t"] - killed_at,
                        "fence_step": taken["fence"] - acquired["fence"],
                    }
                )
                cluster.start(1)
        finally:
            cluster.close()
    return results


def iteration_cost(iterations: int, rounds: int) -> None:
    import asyncio

    from supervised_loops import loop
    from supervised_loops.leases import Lease

    async def one(leased: bool) -> float:
        done = 0

        async def body() -> None:
            nonlocal done
            done += 1

        lease = Lease(name=f"bench-{leased}-{time.monotonic_ns()}") if leased else None
        work = loop(seconds=0, count=iterations, lease=lease)(body)
        started = time.perf_counter()
        await work.start()
        elapsed = time.perf_counter() - started
        assert done == iterations, done
        return elapsed / iterations

    timings: dict[bool, list[float]] = {False: [], True: []}
    for index in range(rounds):
        for leased in (False, True) if index % 2 == 0 else (True, False):
            timings[leased].append(asyncio.run(one(leased)))
    plain = statistics.median(timings[False]) * 1e6
    held = statistics.median(timings[True]) * 1e6
    # Each round times both back to back: the median of the paired
    # differences is steadier than the difference of the medians on a
    # shared machine.
    paired = statistics.median(
        (with_lease - without) * 1e6
        for with_lease, without in zip(timings[True], timings[False], strict=True)
    )
    print(f"{iterations} iterations x {rounds} interleaved rounds, median per iteration:")
    print(f"  loop without a lease   {plain:6.2f} us")
    print(f"  loop holding a lease   {held:6.2f} us   (x{held / plain:.2f})")
    print(f"  paired difference      {paired:+6.2f} us per iteration (median of the rounds)")


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p90": ordered[int(0.9 * (len(ordered) - 1))],
        "max": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--backends", default="redis,postgres,postgres-advisory")
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    parser.add_argument("--iteration-cost", action="store_true")
    parser.add_argument("--iterations", type=int, default=100_000)
    arguments = parser.parse_args()
    if arguments.iteration_cost:
        iteration_cost(arguments.iterations, 2 * max(3, arguments.rounds // 4) + 1)
        return
    urls = {
        "redis": os.environ.get("SUPERVISED_LOOPS_TEST_REDIS_URL"),
        "postgres": os.environ.get("SUPERVISED_LOOPS_TEST_POSTGRES_DSN"),
        "postgres-advisory": os.environ.get("SUPERVISED_LOOPS_TEST_POSTGRES_DSN"),
    }
    settings = LeaseSettings(ttl=arguments.ttl)
    print(
        f"ttl {settings.ttl} s, renew deadline {settings.renew_deadline:.2f} s, retry "
        f"{settings.retry_period:.2f} s: bound ttl + retry = "
        f"{settings.ttl + settings.retry_period:.2f} s; {arguments.rounds} kill -9 rounds each"
    )
    print(f"{'backend':<18} {'min':>7} {'median':>7} {'p90':>7} {'max':>7}  fence steps")
    figures = {}
    for backend in arguments.backends.split(","):
        url = urls[backend]
        if not url:
            print(f"{backend:<18} skipped: no server URL in the environment")
            continue
        started = time.monotonic()
        results = rounds_for(backend, url, arguments.rounds, arguments.ttl)
        stats = summary([r["seconds"] for r in results])
        steps = sorted({int(r["fence_step"]) for r in results})
        figures[backend] = {**stats, "fence_steps": steps, "wall": time.monotonic() - started}
        print(
            f"{backend:<18} {stats['min']:>6.2f}s {stats['median']:>6.2f}s "
            f"{stats['p90']:>6.2f}s {stats['max']:>6.2f}s  {steps}"
        )
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
