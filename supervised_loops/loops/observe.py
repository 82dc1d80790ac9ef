"""Calls into the installed instrumentation, made safe (see `supervised_loops.instrument`).

The iteration paths test ``instrument.installed is None`` themselves (one
attribute read, no allocation) and come here only when something is
installed; the end of a successful iteration, the hottest call, is made
inline by the iteration paths with `broken` as its handler. An exception
raised by the instrumentation is logged once and the instrumentation is
uninstalled: a broken exporter never breaks the loops it observes.

An iteration's end goes to the instrumentation that was installed when it
began (the one that saw its start), even if another was installed meanwhile;
not if it raised at the start (`BROKEN` is then the token).

May import: ``instrument`` (a leaf) and the standard library.
"""

from __future__ import annotations

import logging
from typing import Final

from .. import instrument
from ..instrument import Instrumentation, Outcome, SkipReason, Trigger

__all__ = ["BROKEN", "broken", "iteration_ended", "iteration_skipped", "iteration_started"]

logger = logging.getLogger("supervised_loops")

BROKEN: Final = object()
"""The token of an iteration whose instrumentation raised at its start: no end is sent."""


def broken(instrumentation: Instrumentation, error: Exception) -> None:
    """``instrumentation`` raised ``error``: uninstall it (if in force) and log it (once)."""
    detached = instrument.installed is instrumentation
    if detached:
        instrument.install(None)
    instrument.log_broken(instrumentation, error, detached=detached, logger=logger)


def iteration_started(
    instrumentation: Instrumentation,
    path: str,
    name: str,
    iteration: int,
    trigger: Trigger,
    attempt: int,
    scheduled: float,
    started: float,
) -> object:
    """Tell ``instrumentation`` an iteration starts; its token, or `BROKEN` if it raised."""
    try:
        return instrumentation.iteration_started(
            path, name, iteration, trigger, attempt, scheduled, started
        )
    except Exception as error:
        broken(instrumentation, error)
        return BROKEN


def iteration_ended(
    instrumentation: Instrumentation,
    path: str,
    name: str,
    iteration: int,
    trigger: Trigger,
    attempt: int,
    scheduled: float,
    started: float,
    ended: float,
    outcome: Outcome,
    error: BaseException | None,
    token: object,
) -> None:
    """Tell ``instrumentation`` how the iteration it saw begin has ended."""
    if token is BROKEN:
        return  # it raised at the start, and was uninstalled
    try:
        instrumentation.iteration_ended(
            path,
            name,
            iteration,
            trigger,
            attempt,
            scheduled,
            started,
            ended,
            outcome,
            error,
            token,
        )
    except Exception as failure:
        broken(instrumentation, failure)


def iteration_skipped(path: str, name: str, reason: SkipReason) -> None:
    """Tell the installed instrumentation, if any, that a due iteration did not run."""
    instrumentation = instrument.installed
    if instrumentation is None:
        return
    try:
        instrumentation.iteration_skipped(path, name, reason)
    except Exception as error:
        broken(instrumentation, error)
