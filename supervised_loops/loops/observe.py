"""Calls into the installed instrumentation, made safe (see `supervised_loops.instrument`).

The iteration paths test ``instrument.installed is None`` themselves (one
attribute read, no allocation) and come here only when something is
installed. An exception raised by the instrumentation is logged once and the
instrumentation is uninstalled: a broken exporter never breaks the loops it
observes.

May import: ``instrument`` (a leaf) and the standard library.
"""

from __future__ import annotations

import logging

from .. import instrument
from ..instrument import Instrumentation, IterationStart, Outcome, SkipReason, Trigger

__all__ = ["iteration_ended", "iteration_skipped", "iteration_started"]

logger = logging.getLogger("supervised_loops")


def _broken(instrumentation: Instrumentation, error: Exception) -> None:
    logger.error("instrumentation %r raised; it is uninstalled", instrumentation, exc_info=error)
    if instrument.installed is instrumentation:
        instrument.install(None)


def iteration_started(
    instrumentation: Instrumentation,
    path: str,
    name: str,
    iteration: int,
    scheduled: float,
    started: float,
    trigger: Trigger,
    attempt: int,
) -> tuple[IterationStart, object] | None:
    """Tell ``instrumentation`` an iteration starts; None if it raised (it is uninstalled)."""
    # Positional: a named tuple is built fastest so (this runs per iteration).
    start = IterationStart(path, name, iteration, scheduled, started, trigger, attempt)
    try:
        token = instrumentation.iteration_started(start)
    except Exception as error:
        _broken(instrumentation, error)
        return None
    return start, token


def iteration_ended(
    instrumentation: Instrumentation,
    begun: tuple[IterationStart, object] | None,
    outcome: Outcome,
    error: BaseException | None,
    ended: float,
) -> None:
    """Tell ``instrumentation`` how the iteration it saw start has ended."""
    if begun is None or instrument.installed is not instrumentation:
        return  # it broke at the start, or was replaced meanwhile
    start, token = begun
    try:
        instrumentation.iteration_ended(start, token, outcome, error, ended)
    except Exception as failure:
        _broken(instrumentation, failure)


def iteration_skipped(path: str, name: str, reason: SkipReason) -> None:
    """Tell the installed instrumentation, if any, that a due iteration did not run."""
    instrumentation = instrument.installed
    if instrumentation is None:
        return
    try:
        instrumentation.iteration_skipped(path, name, reason)
    except Exception as error:
        _broken(instrumentation, error)
