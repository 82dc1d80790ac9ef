"""Signals before the tree runs: held from the first moment of ``run``.

`StartupSignals` replaces the SIGINT/SIGTERM handlers while ``run`` loads
its target and its event loop comes up, until `serve` installs its own. A
first signal is only recorded (the command then starts nothing and exits 0:
nothing ran, so nothing was cut short); a second one while the target is
still loading raises `ForcedStop` out of whatever code is running, since
an import that hangs must still be stoppable.
"""

from __future__ import annotations

import signal
import types
from collections.abc import Callable
from typing import Any

__all__ = ["STOP_SIGNALS", "ForcedStop", "StartupSignals"]

#: The signals that stop a service.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ForcedStop(BaseException):
    """A second stop signal arrived while the target was loading.

    A BaseException, so that an ``except Exception`` in the user's module
    does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"second {signal.Signals(signum).name}")
        self.signum = signum


class StartupSignals:
    """Hold SIGINT/SIGTERM, recording them in `received`.

    Args:
        received: signals already received (by the console script, before
            the library was imported); this list is appended to.
    """

    def __init__(self, received: list[int] | None = None) -> None:
        self.received: list[int] = received if received is not None else []
        self.forcing = True
        self._previous: dict[int, Callable[[int, types.FrameType | None], Any] | int | None] = {}

    def install(self) -> None:
        """Take the handlers over (main thread only)."""
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self) -> None:
        """Put back the handlers found by `install`."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def default(self) -> None:
        """Hand the signals back to Python's defaults (for commands that do not serve)."""
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self._previous.clear()

    def _on_signal(self, signum: int, _frame: types.FrameType | None) -> None:
        self.received.append(signum)
        if self.forcing and len(self.received) >= 2:
            self.forcing = False
            raise ForcedStop(signum)
