"""What the web dashboard costs the loops it watches, side by side in one run.

    python bench/bench_dashboard.py                 # 10 000 loops, 3 rounds
    python bench/bench_dashboard.py --quick         # 1 000 loops, 2 rounds

Two conditions, interleaved round by round (the order alternates), each in
a fresh event loop with the same tree: ``loops / 100`` supervisors of 100
loops each, every loop every ``--interval`` seconds with a body that only
counts.

* **closed**: the tree alone.
* **open**: the tree with its dashboard serving, and one headless chromium
  (Debian's, through chromium-driver) showing the page, connected to its
  live stream.

Measured over a window of ``--seconds`` after a warm-up: the process's CPU
time per iteration (the service's own cost; the browser is another process,
though on a small machine it competes for the same cores and caches) and
iterations per second. The figure of merit is the ratio open / closed of CPU
per iteration (of the medians, and the median of each round's ratio); the
target is at most 1.10 at 10 000 loops.

``--hook-cost`` splits the cost of the open dashboard: the same tree with
nothing in the instrumentation hook, with an instrumentation that does
nothing (the loop engine's side of the hook), and with the dashboard's
history (no server, no browser). The
history's memory for that many loops is measured too (tracemalloc).

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


async def measure(args: argparse.Namespace, dashboard_open: bool, driver: Any) -> dict[str, float]:
    counter = [0]
    tree = make_tree(args.loops, args.interval, counter)
    dashboard = Dashboard(tree, "127.0.0.1:0") if dashboard_open else None
    if dashboard is not None:
        await dashboard.start()
    await tree.start()
    try:
        if dashboard is not None:
            await asyncio.to_thread(open_page, driver, dashboard.url)
        await asyncio.sleep(args.warmup)
        gc.collect()
        counted, cpu, wall = counter[0], time.process_time(), time.perf_counter()
        await asyncio.sleep(args.seconds)
        counted = counter[0] - counted
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
    finally:
        if dashboard is not None:
            await asyncio.to_thread(driver.get, "about:blank")
        await tree.stop()
        if dashboard is not None:
            await dashboard.close()
    return {"cpu_us": cpu / counted * 1e6, "rate": counted / wall}


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
    previous = instrument.install(chosen)  # type: ignore[arg-type]
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
    args = parser.parse_args()
    if args.quick:
        args.loops, args.rounds, args.seconds, args.warmup = 1_000, 2, 4.0, 2.0
    if args.hook_cost:
        hook_cost(args)
        return
    print(
        f"# {args.loops} loops every {args.interval} s; {args.rounds} rounds of {args.seconds} s;"
        f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    results: dict[str, list[dict[str, float]]] = {"closed": [], "open": []}
    driver = browser()
    try:
        for round_index in range(args.rounds):
            order = ["closed", "open"] if round_index % 2 == 0 else ["open", "closed"]
            for name in order:
                figures = asyncio.run(measure(args, name == "open", driver))
                results[name].append(figures)
                print(
                    f"round {round_index + 1} {name:>6}: {figures['cpu_us']:.2f} µs CPU/iteration,"
                    f" {figures['rate']:.0f} iterations/s",
                    flush=True,
                )
    finally:
        driver.quit()
    closed = statistics.median(r["cpu_us"] for r in results["closed"])
    opened = statistics.median(r["cpu_us"] for r in results["open"])
    print()
    print("| condition | CPU per iteration (median) | iterations/s (median) |")
    print("|---|---|---|")
    for name, value in (("closed", closed), ("open + 1 browser", opened)):
        rate = statistics.median(
            r["rate"] for r in results["open" if name != "closed" else "closed"]
        )
        print(f"| {name} | {value:.2f} µs | {rate:.0f} |")
    paired = statistics.median(
        o["cpu_us"] / c["cpu_us"] for o, c in zip(results["open"], results["closed"], strict=True)
    )
    print(
        f"\nratio open / closed: {opened / closed:.3f} of the medians,"
        f" {paired:.3f} median of the rounds' ratios (target <= 1.10)"
    )
    print(
        f"history memory: {history_memory(args.loops) / 1024:.2f} KiB per loop"
        f" (full ring and a traceback each, {args.loops} loops)"
    )


if __name__ == "__main__":
    main()
