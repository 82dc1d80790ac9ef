"""Several instrumentations at once through the single slot of `instrument`.

`supervised_loops.instrument` holds one `Instrumentation` for the whole
process, which keeps the hot path to one attribute read. A service that
exports both OpenTelemetry and Prometheus needs two: `attach` puts a
`Fanout` in the slot when a second one arrives, and `detach` takes it
apart again. A member that raises is logged and dropped, so one broken
exporter never silences the others, nor the loops.
"""

from __future__ import annotations

import logging

from .. import instrument
from ..instrument import Instrumentation, IterationStart, Outcome, SkipReason

__all__ = ["Fanout", "attach", "detach", "members"]

logger = logging.getLogger("supervised_loops.telemetry")


class Fanout:
    """Calls each member in turn; `iteration_started` returns their tokens."""

    __slots__ = ("members",)

    def __init__(self, members: tuple[Instrumentation, ...]) -> None:
        self.members = members

    def iteration_started(self, start: IterationStart) -> object:
        tokens: list[object] = []
        for member in self.members:
            try:
                tokens.append(member.iteration_started(start))
            except Exception:
                tokens.append(None)
                _drop(member)
        return tokens

    def iteration_ended(
        self,
        start: IterationStart,
        token: object,
        outcome: Outcome,
        error: BaseException | None,
        ended: float,
    ) -> None:
        tokens = token if isinstance(token, list) else [None] * len(self.members)
        for member, own in zip(self.members, tokens, strict=False):
            try:
                member.iteration_ended(start, own, outcome, error, ended)
            except Exception:
                _drop(member)

    def iteration_skipped(self, path: str, name: str, reason: SkipReason) -> None:
        for member in self.members:
            try:
                member.iteration_skipped(path, name, reason)
            except Exception:
                _drop(member)


def _drop(member: Instrumentation) -> None:
    logger.exception("instrumentation %r raised: it is uninstalled", member)
    detach(member)


def members() -> tuple[Instrumentation, ...]:
    """The instrumentations in force, in the order they were attached."""
    current = instrument.current()
    if current is None:
        return ()
    if isinstance(current, Fanout):
        return current.members
    return (current,)


def attach(instrumentation: Instrumentation) -> None:
    """Add ``instrumentation`` to those in force (no-op if it already is)."""
    present = members()
    if any(member is instrumentation for member in present):
        return
    _put((*present, instrumentation))


def detach(instrumentation: Instrumentation) -> None:
    """Remove ``instrumentation`` from those in force (no-op if it is not)."""
    present = members()
    _put(tuple(member for member in present if member is not instrumentation))


def _put(chosen: tuple[Instrumentation, ...]) -> None:
    if not chosen:
        instrument.install(None)
    elif len(chosen) == 1:
        instrument.install(chosen[0])
    else:
        instrument.install(Fanout(chosen))
