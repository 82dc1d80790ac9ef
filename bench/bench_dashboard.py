"""What the web dashboard costs the loops it watches, side by side in one run.

    python bench/bench_dashboard.py                 # 10 000 loops, 5 rounds
    python bench/bench_dashboard.py --quick         # 1 000 loops, 2 rounds
    python bench/bench_dashboard.py --hook-cost     # nothing / a no-op / the history in the hook
    python bench/bench_dashboard.py --toggle        # closed / history / open on one running tree
    python bench/bench_dashboard.py --record-cost   # the history's method alone, hot and cold

Three conditions, interleaved round by round (the order rotates), each in
a fresh event loop with the same tree: ``loops / 100`` supervisors of 100
loops each, every loop every ``--interval`` seconds with a body that only
counts.

* **closed**: the tree alone.
* **open, no browser**: the tree with its dashboard serving (history in
  the instrumentation hook, lifecycle events collected), nobody connected.
* **open + browser**: the same, with one headless chromium (Debian's,
  through chromium-driver) showing the page, connected to its live stream.

Measured over a window of ``--seconds`` after a warm-up: the process's CPU
time per iteration (the service's own cost) and iterations per second; and
the CPU time the browser's processes used meanwhile, as a share of one core
(read from /proc). The browser is another process, but on a small machine
it runs on the same cores as the service, and the service's code runs
slower beside it (caches, scheduling): the middle condition shows what the
dashboard costs the service by itself, the last one what a browser on the
same machine adds. The figure of merit is the ratio open / closed of CPU
per iteration (the median of each round's ratio); the target is at most
1.10 at 10 000 loops.

``--hook-cost`` splits the cost of the open dashboard: the same tree with
nothing in the instrumentation hook, with an instrumentation that does
nothing (the loop engine's side of the hook), and with the dashboard's
history (no server, no browser). The
history's memory for that many loops is measured too (tracemalloc).

``--toggle`` keeps one tree running and measures it in turns, window by
window: closed, with the history alone in the hook, and with the dashboard
open (no browser): the same run objects throughout, so what differs is only
what the dashboard does.

Needs the ``dashboard`` and ``test`` extras and ``apt-get install chromium
chromium-driver``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
import tracemalloc
from typing import Any

from supervised_loops import Supervisor, instrument, loop
from supervised_loops.service.dashboard import Dashboard, History


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


def open_page(driver: Any, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: (
            d.find_element(By.ID, "link").text == "live"
            and d.find_elements(By.CSS_SELECTOR, '#tree [data-path="bench/s0"]')
        )
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


async def measure(args: argparse.Namespace, condition: str, driver: Any) -> dict[str, float]:
    counter = [0]
    tree = make_tree(args.loops, args.interval, counter)
    dashboard = Dashboard(tree, "127.0.0.1:0") if condition != "closed" else None
    connected = condition == "browser"
    if dashboard is not None:
        await dashboard.start()
    await tree.start()
    try:
        if dashboard is not None and connected:
            await asyncio.to_thread(open_page, driver, dashboard.url)
        await asyncio.sleep(args.warmup)
        gc.collect()
        counted, cpu, wall = counter[0], time.process_time(), time.perf_counter()
        browser = browser_cpu(driver)
        await asyncio.sleep(args.seconds)
        browser = browser_cpu(driver) - browser
        counted = counter[0] - counted
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
    finally:
        if connected:
            await asyncio.to_thread(driver.get, "about:blank")
        await tree.stop()
        if dashboard is not None:
            await dashboard.close()
    return {"cpu_us": cpu / counted * 1e6, "rate": counted / wall, "browser": browser / wall}


class NoOp:
    """An instrumentation that does nothing: what the engine's side of the hook costs.

    Like the history, it observes ends only (one call per iteration).
    """

    observes_starts = False

    def iteration_started(self, *args: object) -> object:
        return None

    def iteration_ended(self, *args: object) -> None:
        pass

    def iteration_skipped(self, *args: object) -> None:
        pass


async def measure_hook(args: argparse.Namespace, kind: str) -> float:
    """CPU per iteration with nothing, a no-op, or the dashboard's history in the hook."""
    counter = [0]
    tree = make_tree(args.loops, args.interval, counter)
    chosen = {"off": None, "no-op": NoOp(), "history": History()}[kind]
    previous = instrument.install(chosen)
    try:
        await tree.start()
        await asyncio.sleep(args.warmup)
        gc.collect()
        counted, cpu = counter[0], time.process_time()
        await asyncio.sleep(args.seconds)
        return (time.process_time() - cpu) / (counter[0] - counted) * 1e6
    finally:
        await tree.stop()
        instrument.install(previous)


def hook_cost(args: argparse.Namespace) -> None:
    kinds = ["off", "no-op", "history"]
    results: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_index in range(args.rounds):
        for kind in kinds if round_index % 2 == 0 else kinds[::-1]:
            results[kind].append(asyncio.run(measure_hook(args, kind)))
            print(f"round {round_index + 1} {kind:>7}: {results[kind][-1]:.2f} µs", flush=True)
    off = statistics.median(results["off"])
    print()
    print("| in the instrumentation hook | CPU per iteration (median) | vs nothing |")
    print("|---|---|---|")
    for kind in kinds:
        value = statistics.median(results[kind])
        print(f"| {kind} | {value:.2f} µs | {value / off:.2f}× |")


async def toggled(args: argparse.Namespace) -> dict[str, list[float]]:
    """CPU per iteration in windows of one running tree: closed, history only, open.

    The same tree and the same run objects in every window, the conditions
    rotating window by window: what the dashboard adds to a service already
    running, free of the differences between two fresh trees (where their
    objects landed in memory) and of slow drifts of the machine's load.
    """
    counter = [0]
    tree = make_tree(args.loops, args.interval, counter)
    await tree.start()
    results: dict[str, list[float]] = {"closed": [], "history": [], "open": []}
    kinds = list(results)
    try:
        await asyncio.sleep(args.warmup)
        for window in range(args.windows):
            shift = window % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                dashboard = Dashboard(tree, "127.0.0.1:0") if kind == "open" else None
                previous = instrument.install(History()) if kind == "history" else None
                if dashboard is not None:
                    await dashboard.start()
                await asyncio.sleep(0.5)  # settle: the dashboard's start is not measured
                counted, cpu = counter[0], time.process_time()
                await asyncio.sleep(args.window)
                cpu = time.process_time() - cpu
                results[kind].append(cpu / (counter[0] - counted) * 1e6)
                if kind == "history":
                    instrument.install(previous)
                if dashboard is not None:
                    await dashboard.close()
    finally:
        await tree.stop()
    return results


def toggle(args: argparse.Namespace) -> None:
    results = asyncio.run(toggled(args))
    print(f"# {args.loops} loops, {args.windows} windows of {args.window} s per condition")
    print("| in the running tree | CPU per iteration | vs closed (median of windows) |")
    print("|---|---|---|")
    for kind, values in results.items():
        ratios = [v / c for v, c in zip(values, results["closed"], strict=True)]
        print(
            f"| {kind} | {statistics.median(values):.2f} µs | {statistics.median(ratios):.2f}"
            f" ({min(ratios):.2f}–{max(ratios):.2f}) |"
        )


def record_cost(args: argparse.Namespace) -> None:
    """The history's method alone: one loop over and over, many in turns, and with cold caches.

    What recording an iteration costs in Python, and what it costs when each
    loop's history has left the CPU caches since its last iteration (as with
    ``--loops`` loops taking turns, the engine's own data in between: here
    16 MiB are written between batches of 100 records).
    """
    history = History()
    paths = [f"bench/s{index // 100}/l{index % 100}" for index in range(args.loops)]
    record = history.iteration_ended
    flush = bytearray(16 * 1024 * 1024)

    def timed(order: list[str], *, cold: bool) -> float:
        spent, count = 0.0, 0
        for start in range(0, len(order), 100):
            if cold:
                flush[::64] = bytes(len(flush[::64]))  # a write to every cache line
            began = time.process_time()
            for path in order[start : start + 100]:
                record(path, "l", 1, "schedule", 1, 1.0, 1.5, 2.0, "ok", None, None)
            spent += time.process_time() - began
            count += min(100, len(order) - start)
        return spent / count * 1e9

    cases = {
        "one loop, over and over": [paths[0]] * len(paths),
        f"{args.loops} loops in turns": paths,
    }
    timed(paths, cold=False)  # every loop's history made
    print("| recording an iteration in the history | ns, median of the rounds |")
    print("|---|---|")
    for name, order in cases.items():
        hot = statistics.median(timed(order, cold=False) for _ in range(args.rounds))
        print(f"| {name} | {hot:.0f} |")
    cold = statistics.median(timed(paths, cold=True) for _ in range(args.rounds))
    print(f"| {args.loops} loops in turns, caches flushed between batches of 100 | {cold:.0f} |")


def history_memory(loops: int) -> float:
    """Bytes of history per loop once every loop has a full ring and a traceback."""
    from supervised_loops.service.dashboard.history import ITERATIONS_KEPT

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    history = History()
    try:
        raise ConnectionError("source unavailable")
    except ConnectionError as error:
        failure = error
    for index in range(loops):
        begun = (f"bench/s{index // 100}/l{index % 100}", "l", 1, "schedule", 1, 0.0, 0.001)
        for _ in range(ITERATIONS_KEPT):
            history.iteration_ended(*begun, 0.002, "ok", None, None)  # type: ignore[arg-type]
        history.iteration_ended(*begun, 0.002, "retried", failure, None)  # type: ignore[arg-type]
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del history
    return used / loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between iterations")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured window per round")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 000 loops, 2 rounds, 4 s windows")
    parser.add_argument(
        "--hook-cost",
        action="store_true",
        help="instead: nothing / a no-op / the history in the instrumentation hook, no browser",
    )
    parser.add_argument(
        "--toggle",
        action="store_true",
        help="instead: closed / history / open (no browser) in turns on one running tree",
    )
    parser.add_argument(
        "--record-cost",
        action="store_true",
        help="instead: the history's method alone, hot and with cold caches",
    )
    parser.add_argument("--windows", type=int, default=8, help="--toggle: windows per condition")
    parser.add_argument("--window", type=float, default=2.0, help="--toggle: seconds per window")
    args = parser.parse_args()
    if args.quick:
        args.loops, args.rounds, args.seconds, args.warmup = 1_000, 2, 4.0, 2.0
    if args.hook_cost:
        hook_cost(args)
        return
    if args.toggle:
        toggle(args)
        return
    if args.record_cost:
        record_cost(args)
        return
    print(
        f"# {args.loops} loops every {args.interval} s; {args.rounds} rounds of {args.seconds} s;"
        f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    conditions = ["closed", "open", "browser"]
    names = {"closed": "closed", "open": "open, no browser", "browser": "open + 1 browser"}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in conditions}
    driver = browser()
    try:
        for round_index in range(args.rounds):
            shift = round_index % len(conditions)
            for name in conditions[shift:] + conditions[:shift]:
                figures = asyncio.run(measure(args, name, driver))
                results[name].append(figures)
                print(
                    f"round {round_index + 1} {names[name]:>16}: {figures['cpu_us']:.2f} µs"
                    f" CPU/iteration, {figures['rate']:.0f} iterations/s,"
                    f" browser {figures['browser'] * 100:.0f} % of a core",
                    flush=True,
                )
    finally:
        driver.quit()
    print()
    print("| condition | CPU per iteration | range | vs closed (median of rounds) | browser CPU |")
    print("|---|---|---|---|---|")
    for name in conditions:
        values = [r["cpu_us"] for r in results[name]]
        ratios = [
            r["cpu_us"] / c["cpu_us"] for r, c in zip(results[name], results["closed"], strict=True)
        ]
        share = statistics.median(r["browser"] for r in results[name])
        print(
            f"| {names[name]} | {statistics.median(values):.2f} µs |"
            f" {min(values):.2f}–{max(values):.2f} | {statistics.median(ratios):.2f}"
            f" ({min(ratios):.2f}–{max(ratios):.2f}) | {share * 100:.0f} % of a core |"
        )
    print(
        f"history memory: {history_memory(args.loops) / 1024:.2f} KiB per loop"
        f" (full ring and a traceback each, {args.loops} loops)"
    )


if __name__ == "__main__":
    main()
