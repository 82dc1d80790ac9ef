"""Chaos benchmark: 10 000 loops, failures, random control traffic, then a shutdown.

Run ``python bench/bench_chaos.py`` (``--quick`` for a smoke run of a few
seconds, ``--rate overloaded`` for a load the machine cannot keep up with).
It is a benchmark, not a timed test: it prints figures and checks the
guarantees a service relies on while everything goes wrong at once.

The tree: one root supervisor over ``--supervisors`` supervisors (100) of
``--loops`` loops each (100), every loop a *batcher*: each iteration appends
the next sequence number to its buffer, and ``after_loop`` flushes the buffer
(an ``await`` stands for the write), checking that the numbers arrive in
order. While the traffic lasts, each iteration fails with probability
``--whitelisted`` (1%) with a ``ConnectionError`` (retried with backoff in the
same run) and with probability ``--other`` (0.5%) with an error that is not
whitelisted (the run fails; ``after_loop`` flushes; the supervisor restarts
the loop, one_for_one).

For ``--seconds`` (60) control traffic hits random loops (and, rarely, a
group supervisor) with every message type (``Stop``, ``Cancel``,
``Restart``, ``ChangeInterval``, ``Pause``, ``Resume``, ``RunNow``,
``GetStatus``) over all three channels: ``tell``, ``ask`` (with a timeout of
0.25, 1 or 5 s) and ``tell_threadsafe`` from a thread of its own. A paused
loop is resumed a little later. Then the failures and the traffic stop, what
was asked to end (a ``Stop`` or ``Cancel`` sent to it, which a supervisor
respects) is brought back (``Restart`` to a loop, ``restart_child`` for a
supervisor), the tree is given ``--settle`` seconds to have every loop
running again, and the
process sends itself SIGINT: ``supervised_loops.serve`` shuts the tree down
with ``--budget`` seconds of graceful shutdown, after which it cancels what
is left.

The rate (``--rate``) sets the loops' intervals and the traffic:

* ``sustainable``: intervals 0.5–5 s (about 5 000 iterations/s asked), 200
  messages/s;
* ``overloaded``: intervals 0.01–0.1 s (about 200 000 iterations/s asked,
  several times what one core runs), 1 000 messages/s.

Checked (each failure is a violation; the exit status is 1 if there is any):

* every ask answered, or failed with a clear error (``AskTimeout``,
  ``ActorNotRunning``, ``ActorStopped``), and none later than its timeout by
  more than the event loop's worst observed lag (plus 50 ms);
* for every batcher, items produced == items flushed, in order (flushes cut
  by cancellation are counted and reported);
* no failed permanent child left unrestarted: after the settle time every
  loop and every supervisor is running (those stopped on purpose having been
  restarted by the benchmark);
* the shutdown ends within the budget plus 2 s (the forced part included);
* no task left behind once ``serve`` returned.

Reported besides: start time, iterations, failures, restarts, messages sent
per channel, dead letters, peak RSS and the event loop's lag (p50/p99/max,
sampled by a task asking to sleep 10 ms).

By default the tree is started idle (every loop hourly) and the load is
switched on with ``change_interval`` once it runs, so that the figures do not
depend on how fast a loaded tree starts (that is ``bench_scale.py``'s
business); ``--start loaded`` starts it at full load.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import random
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from supervised_loops import (
    ActorNotRunning,
    ActorStopped,
    AskTimeout,
    Cancel,
    ChangeInterval,
    ChildStartFailed,
    Every,
    ExponentialBackoff,
    GetStatus,
    Loop,
    Pause,
    Restart,
    Resume,
    RunNow,
    Stop,
    Supervisor,
    dead_letters,
    serve,
)


@dataclass(frozen=True)
class Rate:
    shortest: float
    longest: float
    messages_per_second: float


RATES = {
    "sustainable": Rate(0.5, 5.0, 200.0),
    "overloaded": Rate(0.01, 0.1, 1000.0),
}

LOOP_MESSAGES = ("stop", "cancel", "restart", "interval", "pause", "resume", "run_now", "status")
# A supervisor takes Stop, Cancel and GetStatus; it is brought back by its parent.
SUPERVISOR_MESSAGES = ("stop", "cancel", "status")
ASK_TIMEOUTS = (0.25, 1.0, 5.0)
CLEAR_ERRORS = (AskTimeout, ActorNotRunning, ActorStopped)


class Injected(Exception):
    """The benchmark's failure that is not whitelisted: the run fails and is restarted."""


class Batch:
    """One batcher's bookkeeping: what it produced, buffered, flushed."""

    __slots__ = ("buffer", "cut", "flushed", "next", "out_of_order", "produced")

    def __init__(self) -> None:
        self.next = 0  # the sequence number the next flush should start with
        self.produced = 0
        self.flushed = 0
        self.cut = 0
        self.out_of_order = 0
        self.buffer: list[int] = []


@dataclass
class Stats:
    failing: bool = False
    iterations: int = 0
    whitelisted: int = 0
    other: int = 0
    escalated: int = 0
    sent: dict[str, int] = field(default_factory=lambda: {"tell": 0, "ask": 0, "threadsafe": 0})
    asks: dict[str, int] = field(default_factory=dict)
    late_asks: list[float] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)


def build(
    args: argparse.Namespace, rate: Rate, stats: Stats, rng: random.Random
) -> tuple[Supervisor, list[Loop], list[Supervisor], list[Batch], list[float]]:
    loops: list[Loop] = []
    batches: list[Batch] = []
    intervals: list[float] = []
    groups: list[Supervisor] = []
    backoff = ExponentialBackoff(base=0.01, cap=0.5)
    whitelisted, other = args.whitelisted, args.other
    for group in range(args.supervisors):
        members: list[Loop] = []
        for index in range(args.loops):
            batch = Batch()
            interval = rng.uniform(rate.shortest, rate.longest)
            members.append(make_batcher(f"b{index}", batch, stats, rng, whitelisted, other))
            if args.start == "loaded":
                members[-1].change_interval(seconds=interval)
            batches.append(batch)
            intervals.append(interval)
        loops.extend(members)
        groups.append(
            Supervisor(
                *members,
                max_restarts=10_000_000,
                max_seconds=1.0,
                backoff=backoff,
                name=f"s{group}",
            )
        )
    root = Supervisor(*groups, max_restarts=10_000_000, max_seconds=1.0, name="root")
    return root, loops, groups, batches, intervals


def make_batcher(
    name: str,
    batch: Batch,
    stats: Stats,
    rng: random.Random,
    whitelisted: float,
    other: float,
) -> Loop:
    async def body() -> None:
        batch.buffer.append(batch.produced)
        batch.produced += 1
        stats.iterations += 1
        if stats.failing:
            draw = rng.random()
            if draw < whitelisted:
                stats.whitelisted += 1
                raise ConnectionError(name)
            if draw < whitelisted + other:
                stats.other += 1
                raise Injected(name)

    body.__name__ = name
    work = Loop(body, schedule=Every(hours=1), name=name, missed="skip")

    @work.after_loop
    async def flush() -> None:
        pending, batch.buffer = batch.buffer, []
        try:
            await asyncio.sleep(0)  # the write
        except asyncio.CancelledError:
            batch.cut += len(pending)  # lost, and known to be
            if pending:
                batch.next = pending[-1] + 1
            raise
        expected = batch.next
        for item in pending:
            if item != expected:
                batch.out_of_order += 1
            expected = item + 1
        batch.next = expected
        batch.flushed += len(pending)

    @work.error
    async def count(error: BaseException) -> None:
        stats.escalated += 1

    return work


def make_message(kind: str, rng: random.Random, rate: Rate) -> Any:
    if kind == "stop":
        return Stop()
    if kind == "cancel":
        return Cancel()
    if kind == "restart":
        return Restart()
    if kind == "interval":
        return ChangeInterval(seconds=rng.uniform(rate.shortest, rate.longest))
    if kind == "pause":
        return Pause()
    if kind == "resume":
        return Resume()
    if kind == "run_now":
        return RunNow()
    return GetStatus()


async def ask_one(target: Any, message: Any, timeout: float, stats: Stats) -> None:
    began = time.perf_counter()
    try:
        await target.ask(message, timeout=timeout)
    except CLEAR_ERRORS as error:
        outcome = type(error).__name__
    except Exception as error:
        outcome = "unclear"
        stats.unclear.append(f"{type(message).__name__} to {target.path}: {error!r}")
    else:
        outcome = "answered"
    stats.asks[outcome] = stats.asks.get(outcome, 0) + 1
    late = time.perf_counter() - began - timeout
    if late > 0:
        stats.late_asks.append(late)


async def traffic(
    args: argparse.Namespace,
    rate: Rate,
    loops: list[Loop],
    groups: list[Supervisor],
    stats: Stats,
    rng: random.Random,
) -> None:
    """Send ``rate.messages_per_second`` (minus the thread's share) for ``args.seconds``."""
    per_second = rate.messages_per_second * (1 - args.threadsafe_share)
    asks: set[asyncio.Task[None]] = set()
    resumes: list[tuple[float, Loop]] = []
    began = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) - began < args.seconds:
        due = int((now - began) * per_second) - sent
        for _ in range(due):
            sent += 1
            if rng.random() < 0.005:
                target: Any = rng.choice(groups)
                kind = rng.choice(SUPERVISOR_MESSAGES)
            else:
                target = rng.choice(loops)
                kind = rng.choice(LOOP_MESSAGES)
                if kind == "pause":
                    resumes.append((now + rng.uniform(0.5, 3.0), target))
            send(target, make_message(kind, rng, rate), rng, stats, asks, args.ask_share)
        while resumes and resumes[0][0] <= now:
            send(resumes.pop(0)[1], Resume(), rng, stats, asks, args.ask_share)
        resumes.sort(key=lambda pair: pair[0])
        await asyncio.sleep(0.01)
    for _, target in resumes:
        send(target, Resume(), rng, stats, asks, args.ask_share)
    if asks:
        await asyncio.wait(asks)


def send(
    target: Any,
    message: Any,
    rng: random.Random,
    stats: Stats,
    asks: set[asyncio.Task[None]],
    ask_share: float,
) -> None:
    if rng.random() < ask_share:
        stats.sent["ask"] += 1
        task = asyncio.create_task(ask_one(target, message, rng.choice(ASK_TIMEOUTS), stats))
        asks.add(task)
        task.add_done_callback(asks.discard)
    else:
        stats.sent["tell"] += 1
        target.tell(message)


def thread_traffic(
    args: argparse.Namespace,
    rate: Rate,
    loops: list[Loop],
    stats: Stats,
    done: threading.Event,
) -> None:
    """``tell_threadsafe`` from another thread, the thread's share of the rate."""
    rng = random.Random(args.seed + 1)
    pause = 1.0 / max(1.0, rate.messages_per_second * args.threadsafe_share)
    sent = 0
    while not done.wait(pause):
        target = rng.choice(loops)
        kind = rng.choice(LOOP_MESSAGES)
        target.tell_threadsafe(make_message(kind, rng, rate))
        sent += 1
        if kind == "pause":
            target.tell_threadsafe(Resume())
            sent += 1
    stats.sent["threadsafe"] = sent


async def watch_lag(stats: Stats) -> None:
    """Sample the event loop's lag: how late a 10 ms sleep wakes."""
    while True:
        began = time.perf_counter()
        await asyncio.sleep(0.01)
        stats.lags.append(time.perf_counter() - began - 0.01)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[str]]:
    rate = RATES[args.rate]
    stats = Stats()
    rng = random.Random(args.seed)
    tree, loops, groups, batches, intervals = build(args, rate, stats, rng)
    dead_before = dead_letters.count
    started = asyncio.get_running_loop().create_future()
    began = time.perf_counter()
    serving = asyncio.create_task(
        serve(tree, shutdown_timeout=args.budget, on_started=lambda root: started.set_result(None))
    )
    await asyncio.wait((started, serving), return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        raise SystemExit(f"the tree did not start: serve returned {serving.result()!r}")
    start_s = time.perf_counter() - began
    watcher = asyncio.create_task(watch_lag(stats))
    if args.start == "idle":
        for work, interval in zip(loops, intervals, strict=True):
            work.change_interval(seconds=interval)  # the load begins
    stats.failing = True
    done = threading.Event()
    thread = threading.Thread(
        target=thread_traffic, args=(args, rate, loops, stats, done), daemon=True
    )
    thread.start()
    traffic_began = time.perf_counter()
    await traffic(args, rate, loops, groups, stats, rng)
    stats.failing = False
    done.set()
    await asyncio.to_thread(thread.join)
    traffic_s = time.perf_counter() - traffic_began
    restarts = sum(work.status().restarts for work in loops)

    # What was asked to end stays down (a decision the supervisor respects):
    # bring it back, as an operator would; a loop that *failed* is left to
    # its supervisor, which must have restarted it.
    not_restarted: list[str] = []
    for group in groups:
        if not group.is_running():
            try:
                await tree.restart_child(group.name)
            except ChildStartFailed as error:
                not_restarted.append(f"{group.path}: {error.__cause__!r}")
    for work in loops:
        parent = work.parent
        running = parent is not None and parent.is_running()
        if running and work.status().state.value in ("stopped", "cancelled"):
            work.tell(Restart())
    settle_began = time.perf_counter()
    while time.perf_counter() - settle_began < args.settle and not all(  # noqa: ASYNC110
        actor.is_running() for actor in (*groups, *loops)
    ):
        await asyncio.sleep(0.05)
    settle_s = time.perf_counter() - settle_began
    down: dict[str, int] = {}
    for work in loops:
        if not work.is_running():
            state = work.status().state.value
            down[state] = down.get(state, 0) + 1
    loops_down = sum(down.values())
    groups_down = sum(not group.is_running() for group in groups)
    paused = sum(work.status().state.value == "paused" for work in loops)

    shutdown_began = time.perf_counter()
    os.kill(os.getpid(), signal.SIGINT)
    finished, _ = await asyncio.wait((serving,), timeout=args.budget + args.hang_limit)
    shutdown_s = time.perf_counter() - shutdown_began
    exit_status = serving.result() if finished else None
    watcher.cancel()
    await asyncio.wait((watcher,))
    await asyncio.sleep(0)
    left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    tasks_left = len(left)
    dead = dead_letters.count - dead_before

    produced = sum(batch.produced for batch in batches)
    flushed = sum(batch.flushed for batch in batches)
    cut = sum(batch.cut for batch in batches)
    unequal = sum(batch.produced != batch.flushed for batch in batches)
    out_of_order = sum(batch.out_of_order for batch in batches)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    lags = stats.lags
    worst_lag = max(lags, default=0.0)

    violations: list[str] = []
    if stats.unclear:
        violations.append(
            f"{len(stats.unclear)} asks failed with an unclear error, e.g. {stats.unclear[0]}"
        )
    too_late = [late for late in stats.late_asks if late > worst_lag + 0.05]
    if too_late:
        violations.append(
            f"{len(too_late)} asks answered later than their timeout + the worst lag "
            f"(worst {max(too_late):.3f} s late)"
        )
    if unequal:
        violations.append(
            f"{unequal} batchers flushed fewer items than they produced "
            f"({produced - flushed:,} items; {cut:,} of them in flushes cut by cancellation, "
            f"{produced - flushed - cut:,} lost without a trace)"
        )
    if out_of_order:
        violations.append(f"{out_of_order} items flushed out of order or twice")
    if loops_down or groups_down:
        violations.append(
            f"{loops_down} loops ({', '.join(f'{k} {v}' for k, v in sorted(down.items()))}) "
            f"and {groups_down} supervisors not running {args.settle:.0f} s after the "
            "failures stopped and what was stopped on purpose was restarted"
        )
    if not_restarted:
        violations.append(
            f"{len(not_restarted)} supervisors failed to restart, e.g. {not_restarted[0]}"
        )
    if not finished:
        limit = args.budget + args.hang_limit
        violations.append(f"the shutdown had not ended {limit:.0f} s after SIGINT")
    elif shutdown_s > args.budget + 2.0:
        violations.append(
            f"the shutdown took {shutdown_s:.2f} s (budget {args.budget:.1f} s + 2 s)"
        )
    if tasks_left:
        names = ", ".join(sorted(task.get_name() for task in left)[:5])
        violations.append(f"{tasks_left} tasks left after the shutdown, e.g. {names}")
        for task in left:
            task.cancel()
        await asyncio.wait(left)

    asked = sum(stats.sent.values())
    rows = [
        (f"start the tree ({args.start})", f"{start_s:.2f} s"),
        ("traffic phase", f"{traffic_s:.1f} s"),
        ("iterations", f"{stats.iterations:,} ({stats.iterations / traffic_s:,.0f}/s)"),
        ("failures: whitelisted / other", f"{stats.whitelisted:,} / {stats.other:,}"),
        ("error handler calls (escalated)", f"{stats.escalated:,}"),
        ("restarts (loops)", f"{restarts:,}"),
        (
            "messages sent: tell / ask / tell_threadsafe",
            f"{stats.sent['tell']:,} / {stats.sent['ask']:,} / {stats.sent['threadsafe']:,} "
            f"({asked / traffic_s:,.0f}/s)",
        ),
        ("asks by outcome", ", ".join(f"{k} {v:,}" for k, v in sorted(stats.asks.items()))),
        (
            "asks past their timeout",
            f"{len(stats.late_asks):,} "
            f"(worst {max(stats.late_asks, default=0.0) * 1000:.0f} ms late)",
        ),
        ("dead letters", f"{dead:,}"),
        ("items produced / flushed", f"{produced:,} / {flushed:,} (cut {cut:,})"),
        ("all running again after", f"{settle_s:.2f} s ({paused} loops paused)"),
        (
            "shutdown (SIGINT → serve returned)",
            f"{shutdown_s:.2f} s, budget {args.budget:.1f} s, "
            f"{'clean' if exit_status == 0 else 'forced' if exit_status == 1 else 'did not end'}",
        ),
        ("tasks left", f"{tasks_left}"),
        ("peak RSS", f"{rss / 2**20:,.0f} MiB"),
        (
            "event-loop lag p50 / p99 / max",
            f"{percentile(lags, 0.5) * 1000:.1f} / {percentile(lags, 0.99) * 1000:.1f} / "
            f"{worst_lag * 1000:.1f} ms ({len(lags):,} samples)",
        ),
    ]
    return rows, violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", choices=sorted(RATES), default="sustainable")
    parser.add_argument("--supervisors", type=int, default=100)
    parser.add_argument("--loops", type=int, default=100, help="loops per supervisor")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the traffic")
    parser.add_argument("--whitelisted", type=float, default=0.01, help="failing share, retried")
    parser.add_argument("--other", type=float, default=0.005, help="failing share, restarted")
    parser.add_argument("--ask-share", type=float, default=0.4, help="share of asks in the traffic")
    parser.add_argument("--threadsafe-share", type=float, default=0.2, help="share sent by thread")
    parser.add_argument("--budget", type=float, default=10.0, help="graceful shutdown, seconds")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to run again")
    parser.add_argument("--hang-limit", type=float, default=120.0, help="give up on shutdown")
    parser.add_argument("--start", choices=("idle", "loaded"), default="idle")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="10 × 10 loops, 3 s of traffic")
    args = parser.parse_args(argv)
    if args.quick:
        args.supervisors, args.loops, args.seconds = 10, 10, 3.0
        args.budget, args.settle, args.hang_limit = 2.0, 10.0, 20.0
    logging.getLogger("supervised_loops").setLevel(logging.CRITICAL)
    rate = RATES[args.rate]
    load = os.getloadavg()
    rows, violations = asyncio.run(run(args))
    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"tree: 1 root, {args.supervisors} supervisors × {args.loops} batchers; rate "
        f"{args.rate}: intervals {rate.shortest}–{rate.longest} s, "
        f"{rate.messages_per_second:.0f} messages/s; failing {args.whitelisted:.1%} "
        f"whitelisted + {args.other:.1%} other; {args.seconds:.0f} s of traffic"
    )
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    print(f"violations: {len(violations)}")
    for violation in violations:
        print(f"  - {violation}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
