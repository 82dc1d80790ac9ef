"""Instructions and cache misses per iteration, counted (not timed), dashboard open or closed.

    python bench/cachegrind_dashboard.py            # closed, open, status-first; 10 000 loops

CPU time at ten thousand loops is mostly memory access, and it moves with
where the loops' objects lie in memory: timings of fresh trees differ by
±20 % whatever is measured. This runs the same tree under valgrind's
cachegrind, in virtual time (so the iterations are the same in every run),
and reports per iteration the instructions executed and the simulated
misses of an 8 MiB last-level cache: deterministic figures that tell the
work done from the luck of the layout.

Each condition runs twice, for 2 and 6 virtual seconds; the difference,
divided by the iterations in between, leaves out the start and the end.
Conditions: ``closed`` (the tree alone), ``open`` (its dashboard serving,
started before the tree as ``serve`` does; nobody connected),
``status-first`` (closed, with one ``status()`` of the tree before its
start: no work per iteration, more long-lived objects) and ``gc-off``
(closed, with the cyclic garbage collector disabled: what its collections
cost the iterations).

Needs ``apt-get install valgrind`` and the ``dashboard`` extra. Takes a few
minutes (valgrind runs the interpreter about 50 times slower).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import subprocess
import sys
import tempfile

from supervised_loops import Supervisor, loop
from supervised_loops.testing import VirtualClock

CONDITIONS = ("closed", "open", "status-first", "gc-off")


def run_child(condition: str, loops: int, seconds: float) -> None:
    """The measured program: a tree of ``loops`` loops for ``seconds`` of virtual time."""
    counter = [0]

    def make(name: str) -> object:
        @loop(seconds=0.5, name=name)
        async def body() -> None:
            counter[0] += 1

        return body

    async def main() -> None:
        groups = [
            Supervisor(*[make(f"l{j}") for j in range(100)], name=f"s{i}")  # type: ignore[arg-type]
            for i in range(loops // 100)
        ]
        tree = Supervisor(*groups, name="bench", max_restarts=0)
        if condition == "status-first":
            tree.status()
        if condition == "gc-off":
            gc.disable()
        if condition == "open":
            from supervised_loops.service.dashboard import Dashboard

            await Dashboard(tree, "127.0.0.1:0").start()
        await tree.start()
        await asyncio.sleep(seconds)
        print(f"iterations {counter[0]}", file=sys.stderr, flush=True)
        os._exit(0)  # the totals are what was counted up to here

    VirtualClock().run(main())


def counted(condition: str, loops: int, seconds: float) -> tuple[int, int, int]:
    """(instructions, last-level misses, iterations) of one run under cachegrind."""
    with tempfile.TemporaryDirectory() as directory:
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=yes",
            "--LL=8388608,16,64",
            f"--cachegrind-out-file={directory}/out",
            sys.executable,
            __file__,
            "--child",
            condition,
            "--loops",
            str(loops),
            "--seconds",
            str(seconds),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    text = done.stderr

    def total(label: str) -> int:
        found = re.search(label + r":\s+([\d,]+)", text)
        assert found is not None, text[-2000:]
        return int(found.group(1).replace(",", ""))

    iterations = re.search(r"^iterations (\d+)$", text, re.M)
    assert iterations is not None, text[-2000:]
    return total(r"I\s+refs"), total(r"LL misses"), int(iterations.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--child", choices=CONDITIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.loops, args.seconds)
        return
    print(f"# {args.loops} loops every 0.5 s, virtual time; cachegrind, 8 MiB last-level cache")
    print("| condition | instructions per iteration | last-level misses per iteration |")
    print("|---|---|---|")
    base: tuple[float, float] | None = None
    for condition in CONDITIONS:
        short = counted(condition, args.loops, 2.0)
        long = counted(condition, args.loops, args.seconds)
        iterations = long[2] - short[2]
        instructions = (long[0] - short[0]) / iterations
        misses = (long[1] - short[1]) / iterations
        if base is None:
            base = (instructions, misses)
        print(
            f"| {condition} | {instructions:,.0f} ({instructions / base[0]:.3f}×) |"
            f" {misses:.1f} ({misses / base[1]:.2f}×) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
