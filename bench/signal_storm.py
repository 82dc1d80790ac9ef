"""Signal ``supervised-loops run`` at random moments and check how it ends.

Each round starts the batcher of ``bench/storm_service.py`` as a real
process, sends SIGINT or SIGTERM at a random moment 0-2 s after the spawn
(through the interpreter's start, the imports, the loading of the target,
the binding of the socket, the start of the tree and its steady run), and
in one round out of five a second signal shortly after. It checks:

* the exit status is one docs/cli.md lists: 0 after a clean stop (or a stop
  before anything started), 1 only when a second signal forced the stop;
  a signal in the first milliseconds, before the interpreter runs the
  command's first line, meets Python's own default handling (killed by the
  signal, or a KeyboardInterrupt raised inside the interpreter's start-up):
  such rounds, recognised by a moment under `INTERPRETER_START` and no
  frame of the library in the output, are counted apart;
* nothing on stderr or stdout looks like a traceback;
* after a clean exit, every number the poller journaled is in the store.

    python bench/signal_storm.py --rounds 30 [--seed N]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs

HERE = Path(__file__).resolve().parent
TARGET = HERE / "storm_service.py"
SCRIPT = Path(sys.executable).with_name("supervised-loops")

#: Seconds after the spawn within which a signal may still find the
#: interpreter starting, before the command could install its handlers.
INTERPRETER_START = 0.1


@attrs.frozen
class Round:
    delay: float
    signals: tuple[str, ...]
    status: int
    output: str
    polled: int
    stored: int
    lost: int

    @property
    def before_the_command(self) -> bool:
        """Whether the signal met the interpreter's start, before the command's first line."""
        return (
            self.delay < INTERPRETER_START
            and self.status != 0
            and "/supervised_loops/" not in self.output
        )

    def problems(self) -> list[str]:
        if self.before_the_command:
            return []
        found = []
        allowed = {0, 1} if len(self.signals) > 1 else {0}
        if self.status not in allowed:
            found.append(f"exit status {self.status}")
        if "Traceback" in self.output or "KeyboardInterrupt" in self.output:
            found.append("a traceback in the output")
        if self.status == 0 and self.lost:
            found.append(f"{self.lost} readings lost")
        return found


def _numbers(path: Path) -> set[int]:
    return {int(line) for line in path.read_text().split()} if path.exists() else set()


def run_round(rng: random.Random) -> Round:
    """One spawn, one or two signals, one verdict."""
    directory = Path(tempfile.mkdtemp(prefix="storm-", dir="/tmp"))
    try:
        first = rng.choice((signal.SIGINT, signal.SIGTERM))
        second = rng.choice((signal.SIGINT, signal.SIGTERM)) if rng.random() < 0.2 else None
        delay = rng.uniform(0.0, 2.0)
        env = dict(os.environ, STORM_DIR=str(directory))
        with (directory / "output").open("w") as output:
            process = subprocess.Popen(
                [
                    str(SCRIPT),
                    "run",
                    f"{TARGET}:make_tree",
                    "--no-live",
                    "--socket",
                    str(directory / "s" / "storm.sock"),
                    "--shutdown-timeout",
                    "10",
                ],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            time.sleep(delay)
            process.send_signal(first)
            sent = [first.name]
            if second is not None:
                time.sleep(rng.uniform(0.0, 0.3))
                if process.poll() is None:
                    process.send_signal(second)
                    sent.append(second.name)
            status = process.wait(timeout=60)
        polled = _numbers(directory / "polled")
        stored = _numbers(directory / "stored")
        return Round(
            delay=delay,
            signals=tuple(sent),
            status=status,
            output=(directory / "output").read_text(),
            polled=len(polled),
            stored=len(stored),
            lost=len(polled - stored),
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    statuses: collections.Counter[int] = collections.Counter()
    failures = early = 0
    started = time.perf_counter()
    for index in range(args.rounds):
        result = run_round(rng)
        statuses[result.status] += 1
        problems = result.problems()
        failures += bool(problems)
        early += result.before_the_command
        verdict = "; ".join(problems) or (
            "ok (met the interpreter's start)" if result.before_the_command else "ok"
        )
        print(
            f"round {index + 1:3d}: signal at {result.delay:5.3f} s {'+'.join(result.signals):15s}"
            f" exit {result.status:3d}  polled {result.polled:3d} stored {result.stored:3d}"
            f"  {verdict}"
        )
        if problems:
            print(result.output)
    took = time.perf_counter() - started
    print(f"seed {seed}: {args.rounds} rounds in {took:.1f} s; exit statuses {dict(statuses)};")
    print(f"rounds whose signal met the interpreter's start: {early}")
    print(f"rounds with a problem: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
