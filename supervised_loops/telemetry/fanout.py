"""Several instrumentations at once through the single slot of `instrument`.

`supervised_loops.instrument` holds one `Instrumentation` for the whole
process, which keeps the hot path to one attribute read. A service that
exports both OpenTelemetry and Prometheus needs two: `attach` puts a
`Fanout` in the slot when a second one arrives, and `detach` takes it
apart again. A member that raises is logged and dropped, so one broken
exporter never silences the others, nor the loops.

An iteration's end goes to the members that were attached when it began:
the engine sends it to the `Fanout` that was installed then (see
`supervised_loops.instrument`), and a `Fanout` never changes its members
(attaching or detaching installs a new one).
"""

from __future__ import annotations

import logging
from typing import Final

from .. import instrument
from ..instrument import Instrumentation, Outcome, SkipReason, Trigger

__all__ = ["Fanout", "attach", "detach", "members"]

logger = logging.getLogger("supervised_loops.telemetry")

_RAISED: Final = object()
"""A member's token when it raised at the start: it is not told the end."""


class Fanout:
    """Calls each member in turn; `iteration_started` returns their tokens.

    It observes starts when any member does (and calls only those members
    at a start); the others are told the end alone, with None as the token.
    """

    __slots__ = ("__weakref__", "_starters", "members", "observes_starts")

    def __init__(self, members: tuple[Instrumentation, ...]) -> None:
        self.members = members
        self._starters = tuple(member.observes_starts for member in members)
        self.observes_starts = any(self._starters)

    def iteration_started(
        self,
        path: str,
        name: str,
        iteration: int,
        trigger: Trigger,
        attempt: int,
        scheduled: float,
        started: float,
    ) -> object:
        tokens: list[object] = []
        for member, starts in zip(self.members, self._starters, strict=True):
            if not starts:
                tokens.append(None)
                continue
            try:
                tokens.append(
                    member.iteration_started(
                        path, name, iteration, trigger, attempt, scheduled, started
                    )
                )
            except Exception as error:
                tokens.append(_RAISED)
                _drop(member, error)
        return tokens

    def iteration_ended(
        self,
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
        members = self.members
        tokens = token if isinstance(token, list) else (None,) * len(members)
        for member, own in zip(members, tokens, strict=True):
            if own is _RAISED:
                continue
            try:
                member.iteration_ended(
                    path, name, iteration, trigger, attempt, scheduled, started, ended, outcome,
                    error, own,
                )  # fmt: skip
            except Exception as failure:
                _drop(member, failure)

    def iteration_skipped(self, path: str, name: str, reason: SkipReason) -> None:
        for member in self.members:
            try:
                member.iteration_skipped(path, name, reason)
            except Exception as failure:
                _drop(member, failure)


def _drop(member: Instrumentation, error: Exception) -> None:
    """Detach ``member``, which raised; logged when detached, not again for its late ends."""
    detached = any(present is member for present in members())
    if detached:
        detach(member)
    instrument.log_broken(member, error, detached=detached, logger=logger)


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
