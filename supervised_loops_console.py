"""The ``supervised-loops`` console script's entry point.

It holds SIGINT and SIGTERM before anything else is imported: importing the
library takes a noticeable moment, and a Ctrl-C or a process manager's
SIGTERM in that moment must end the program in order (see the exit statuses
in ``docs/cli.md``), not with a KeyboardInterrupt traceback. The signals held
here are handed to the command, which decides what they mean.
"""

from __future__ import annotations

# The C module: importing `signal` itself builds enums for a few
# milliseconds, a window in which a Ctrl-C would still be a traceback.
import _signal
from typing import Any

_held: list[int] = []


def _hold(signum: int, _frame: Any) -> None:
    _held.append(signum)


def main() -> int:
    """Hold the stop signals, then run the console command with them."""
    for signum in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(signum, _hold)
    try:
        from supervised_loops.service.cli import main as command

        return command(held_signals=_held)
    finally:
        # The exit status is decided: a stop signal now has nothing left to
        # stop. Ignored (not merely held), they stay ignored while the
        # interpreter shuts down, which otherwise restores the default
        # actions and could still be killed by one.
        for signum in (_signal.SIGINT, _signal.SIGTERM):
            _signal.signal(signum, _signal.SIG_IGN)
