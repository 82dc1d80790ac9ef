"""What the web dashboard costs the loops it watches, side by side in one run.

    python bench/bench_dashboard.py                 # 10 000 loops, 5 rounds
    python bench/bench_dashboard.py --quick         # 1 000 loops, 2 rounds
    python bench/bench_dashboard.py --record-all    # what a ring on every loop would cost
    python bench/bench_dashboard.py --record-cost   # a ring's method alone, hot and cold

Five conditions, interleaved round by round (the order rotates), each in
a fresh process (a fresh heap: the first tree built in a process runs
measurably faster than later ones) with the same tree: ``loops / 100`` supervisors of 100
loops each, every loop every ``--interval`` seconds with a body that only
counts.

* **closed**: the tree alone.
* **open, no browser**: the tree with its dashboard serving (lifecycle
  events collected), nobody connected.
* **open + 1 live stream, 100 loops shown**: the same, with a client in
  another process reading the live stream of the view a browser has with
  one supervisor unfolded (its hundred loops recorded, their charts sent
  every second): what serving a browser costs the service, without the
  browser's own work on the same two cores.
* **open + 1 browser**: the same, with one headless chromium (Debian's,
  through chromium-driver) showing the page as it opens: the root and its
  hundred supervisors, folded (no loop row in view).
* **open + 1 browser, 100 loops shown**: the same browser with one
  supervisor unfolded: its hundred loops are in view, so they are recorded
  (each has a ring of its recent iterations) and their charts are sent and
  drawn. The browser is another process, but on a small machine it runs on
  the same cores and caches as the service, which runs slower beside it.

Measured over a window of ``--seconds`` after a warm-up: the process's CPU
time per iteration (the service's own cost) and iterations per second; and
the CPU time the browser's processes used meanwhile, as a share of one core
(read from /proc). The figure of merit is the ratio to closed of CPU per
iteration (the median of each round's ratio); the target is at most 1.10 at
10 000 loops.

``--record-all`` keeps one tree running and switches, every second, between
no ring at all, a ring on every loop (what recording all loops would cost:
the dashboard does not, see ``supervised_loops/service/dashboard/watch.py``),
and an instrumentation that does nothing in the hook (what the hook's
machinery costs the engine). Switching every second on one tree puts every
condition under the same load and the same memory layout: the ratios are
steadier than between fresh trees.

Needs the ``dashboard`` and ``test`` extras and ``apt-get install chromium
chromium-driver``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from supervised_loops import Loop, Supervisor, instrument, loop
from supervised_loops.loops import recent
from supervised_loops.service.dashboard import Dashboard


def make_tree(loops: int, interval: float, counter: list[int]) -> Supervisor:
    per = min(100, loops)  # supervisors of 100 loops: folded on the page, as a big tree is

    def make(name: str) -> Any:
        @loop(seconds=interval, name=name)
        async def body() -> None:
            counter[0] += 1

        return body

    groups = [
        Supervisor(*[make(f"l{j}") for j in range(per)], name=f"s{i}") for i in range(loops // per)
    ]
    return Supervisor(*groups, name="bench", max_restarts=0)


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def open_page(driver: Any, url: str, *, unfold: bool) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    first = '#tree [data-path="bench/s0"]'
    WebDriverWait(driver, 30).until(
        lambda d: (
            d.find_element(By.ID, "link").text == "live" and d.find_elements(By.CSS_SELECTOR, first)
        )
    )
    if unfold:
        driver.find_element(By.CSS_SELECTOR, f"{first} .fold").click()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '#tree [data-path="bench/s0/l99"] canvas')
        )


def browser_cpu(driver: Any) -> float:
    """CPU seconds used so far by the browser's processes (chromedriver and below; Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry))
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, stack = 0.0, [driver.service.process.pid]
    while stack:
        pid = stack.pop()
        total += used.get(pid, 0.0)
        stack.extend(children.get(pid, ()))
    return total


def every_loop(tree: Supervisor) -> list[Loop[Any]]:
    stack: list[Any] = [tree]
    found: list[Loop[Any]] = []
    while stack:
        actor = stack.pop()
        if isinstance(actor, Supervisor):
            stack.extend(actor.lookup(info.name) for info in actor.which_children())
        else:
            found.append(actor)
    return found


def rings(tree: Supervisor) -> int:
    """How many loops of ``tree`` have a ring now."""
    return sum(recent.of(each) is not None for each in every_loop(tree))


#: A client in its own process that reads the live stream as the page does
#: (the view with one supervisor unfolded), and nothing else: what serving a
#: browser costs the service, without a browser's rendering on the same cores.
STREAM_READER = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "api/events?open=bench/s0") as stream:
    print("connected", flush=True)
    while stream.readline():
        pass
"""


async def child(args: argparse.Namespace) -> None:
    """A round in this (fresh) process: one tree, every condition in turn on it.

    Driven by the parent over stdin and stdout: for each condition (the
    order given), opens the dashboard unless closed and prints ``open URL``;
    waits for a line (the parent connects a browser or a stream meanwhile);
    settles, measures, prints the figures as JSON; waits for a line (the
    parent disconnects) and closes the dashboard.
    """
    counter = [0]
    tree = make_tree(args.loops, args.interval, counter)
    await tree.start()
    try:
        await asyncio.sleep(args.warmup)
        for condition in args.child.split(","):
            dashboard = Dashboard(tree, "127.0.0.1:0") if condition != "closed" else None
            if dashboard is not None:
                await dashboard.start()
            print("open", dashboard.url if dashboard is not None else "-", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            await asyncio.sleep(args.settle)
            gc.collect()
            counted, cpu, wall = counter[0], time.process_time(), time.perf_counter()
            await asyncio.sleep(args.seconds)
            counted = counter[0] - counted
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - wall
            figures = {"cpu_us": cpu / counted * 1e6, "rate": counted / wall, "rings": rings(tree)}
            print(json.dumps(figures), flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            if dashboard is not None:
                await dashboard.close()
    finally:
        await tree.stop()


def measure(args: argparse.Namespace, conditions: list[str], driver: Any) -> list[dict[str, float]]:
    """One round: a fresh process with one tree, ``conditions`` measured on it in this order."""
    settings = ["--loops", str(args.loops), "--interval", str(args.interval)]
    settings += ["--warmup", str(args.warmup), "--seconds", str(args.seconds)]
    settings += ["--settle", str(args.settle)]
    command = [sys.executable, __file__, "--child", ",".join(conditions), *settings]
    found: list[dict[str, float]] = []
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as run:
        assert run.stdin is not None
        assert run.stdout is not None
        for condition in conditions:
            url = run.stdout.readline().split()[1]
            reader = None
            if condition in ("browser", "unfolded"):
                open_page(driver, url, unfold=condition == "unfolded")
            elif condition == "stream":
                reader = subprocess.Popen(
                    [sys.executable, "-c", STREAM_READER, url], stdout=subprocess.PIPE
                )
                assert reader.stdout is not None
                reader.stdout.readline()
            run.stdin.write("go\n")
            run.stdin.flush()
            browser, began = browser_cpu(driver), time.perf_counter()
            figures: dict[str, float] = json.loads(run.stdout.readline())
            figures["browser"] = (browser_cpu(driver) - browser) / (time.perf_counter() - began)
            found.append(figures)
            if reader is not None:
                reader.kill()
                reader.wait()
            if condition in ("browser", "unfolded"):
                driver.get("about:blank")
            run.stdin.write("next\n")
            run.stdin.flush()
    return found


class NoOp:
    """An instrumentation that does nothing: what the hook's machinery costs the engine."""

    observes_starts = False

    def iteration_started(self, *args: object) -> object:
        return None

    def iteration_ended(self, *args: object) -> None:
        pass

    def iteration_skipped(self, *args: object) -> None:
        pass


async def switched(args: argparse.Namespace) -> dict[str, tuple[float, int]]:
    """CPU and iterations per condition, switching every second on one running tree."""
    counter = [0]
    tree = make_tree(args.loops, args.interval, counter)
    await tree.start()
    loops = every_loop(tree)
    made = {id(each): recent.RecentIterations() for each in loops}
    kinds = ["nothing", "every loop recorded", "no-op instrumentation"]
    totals = dict.fromkeys(kinds, (0.0, 0))
    try:
        await asyncio.sleep(args.warmup)
        ends = time.monotonic() + args.seconds * len(kinds) * args.rounds
        turn = 0
        while time.monotonic() < ends:
            kind = kinds[turn % len(kinds)]
            turn += 1
            for each in loops:
                each._recent = made[id(each)] if kind == "every loop recorded" else None
            instrument.install(NoOp() if kind == "no-op instrumentation" else None)
            counted, cpu = counter[0], time.process_time()
            await asyncio.sleep(1.0)
            spent, done = totals[kind]
            totals[kind] = (spent + time.process_time() - cpu, done + counter[0] - counted)
    finally:
        instrument.install(None)
        for each in loops:
            each._recent = None
        await tree.stop()
    return totals


def record_all(args: argparse.Namespace) -> None:
    totals = asyncio.run(switched(args))
    print(
        f"# {args.loops} loops every {args.interval} s; conditions switched every second,"
        f" {args.seconds * args.rounds:.0f} s each; load average {os.getloadavg()[0]:.2f}"
    )
    print("| on one running tree | CPU per iteration | vs nothing |")
    print("|---|---|---|")
    base = totals["nothing"][0] / totals["nothing"][1]
    for kind, (spent, done) in totals.items():
        print(f"| {kind} | {spent / done * 1e6:.2f} µs | {spent / done / base:.2f}× |")


def record_cost(args: argparse.Namespace) -> None:
    """A ring's method alone: one loop over and over, many in turns, and with cold caches.

    What recording an iteration costs in Python, and what it costs when each
    loop's ring has left the CPU caches since its last iteration (as with
    ``--loops`` loops taking turns, the engine's own data in between: here
    16 MiB are written between batches of 100 records).
    """
    made = [recent.RecentIterations() for _ in range(args.loops)]
    flush = bytearray(16 * 1024 * 1024)

    def timed(order: list[recent.RecentIterations], *, cold: bool) -> float:
        spent, count = 0.0, 0
        for start in range(0, len(order), 100):
            if cold:
                flush[::64] = bytes(len(flush[::64]))  # a write to every cache line
            began = time.process_time()
            for ring in order[start : start + 100]:
                ring.add(1.5, 2.0, 1.0, 0.0)
            spent += time.process_time() - began
            count += min(100, len(order) - start)
        return spent / count * 1e9

    cases = {"one loop, over and over": [made[0]] * len(made), f"{args.loops} loops in turns": made}
    print("| recording an iteration in a ring | ns, median of the rounds |")
    print("|---|---|")
    for name, order in cases.items():
        hot = statistics.median(timed(order, cold=False) for _ in range(args.rounds))
        print(f"| {name} | {hot:.0f} |")
    cold = statistics.median(timed(made, cold=True) for _ in range(args.rounds))
    print(f"| {args.loops} loops in turns, caches flushed between batches of 100 | {cold:.0f} |")


def ring_memory(loops: int) -> float:
    """Bytes per loop of full rings, each with a traceback."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    try:
        raise ConnectionError("source unavailable")
    except ConnectionError as error:
        failure = error
    made = []
    for _ in range(loops):
        ring = recent.RecentIterations()
        for _ in range(recent.ITERATIONS_KEPT):
            ring.add(0.0, 0.002, 0.0, 0.0)
        ring.add_outcome(0.0, 0.002, 0.0, "retried", failure, 1)
        made.append(ring)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between iterations")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds between opening and measuring"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 000 loops, 2 rounds, 4 s windows")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one condition, for measure()
    parser.add_argument(
        "--record-all",
        action="store_true",
        help="instead: nothing / a ring on every loop / a no-op hook, switched every second",
    )
    parser.add_argument(
        "--record-cost",
        action="store_true",
        help="instead: a ring's method alone, hot and with cold caches",
    )
    args = parser.parse_args()
    if args.quick:
        args.loops, args.rounds, args.seconds, args.warmup = 1_000, 2, 3.0, 2.0
    if args.child:
        asyncio.run(child(args))
        return
    if args.record_all:
        record_all(args)
        return
    if args.record_cost:
        record_cost(args)
        return
    print(
        f"# {args.loops} loops every {args.interval} s; {args.rounds} rounds of {args.seconds} s;"
        f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    conditions = ["closed", "open", "stream", "browser", "unfolded"]
    names = {
        "closed": "closed",
        "open": "open, no browser",
        "stream": "open + 1 live stream, 100 loops shown",
        "browser": "open + 1 browser",
        "unfolded": "open + 1 browser, 100 loops shown",
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in conditions}
    driver = browser()
    try:
        for round_index in range(args.rounds):
            shift = round_index % len(conditions)
            order = conditions[shift:] + conditions[:shift]
            for name, figures in zip(order, measure(args, order, driver), strict=True):
                results[name].append(figures)
                print(
                    f"round {round_index + 1} {names[name]:>37}: {figures['cpu_us']:.2f} µs"
                    f" CPU/iteration, {figures['rate']:.0f} iterations/s,"
                    f" {figures['rings']:.0f} loops recorded,"
                    f" browser {figures['browser'] * 100:.0f} % of a core",
                    flush=True,
                )
    finally:
        driver.quit()
    print()
    print(
        "| condition | CPU per iteration | range | vs closed (median of rounds)"
        " | loops recorded | browser CPU |"
    )
    print("|---|---|---|---|---|---|")
    for name in conditions:
        values = [r["cpu_us"] for r in results[name]]
        ratios = [
            r["cpu_us"] / c["cpu_us"] for r, c in zip(results[name], results["closed"], strict=True)
        ]
        share = statistics.median(r["browser"] for r in results[name])
        recorded = statistics.median(r["rings"] for r in results[name])
        print(
            f"| {names[name]} | {statistics.median(values):.2f} µs |"
            f" {min(values):.2f}–{max(values):.2f} | {statistics.median(ratios):.2f}"
            f" ({min(ratios):.2f}–{max(ratios):.2f}) | {recorded:.0f} |"
            f" {share * 100:.0f} % of a core |"
        )
    print(
        f"ring memory: {ring_memory(args.loops) / 1024:.2f} KiB per recorded loop"
        f" (full ring and a traceback each, {args.loops} loops)"
    )


if __name__ == "__main__":
    main()
