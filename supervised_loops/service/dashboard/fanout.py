"""Several instrumentations behind the one process-wide hook.

`supervised_loops.instrument` holds ONE installed instrumentation, so that
an iteration with nothing installed costs a single attribute read. The
dashboard's history and an exporter (OpenTelemetry, Prometheus) may both
want every iteration: `attach` puts a `Fanout` in the hook that calls
each of them in turn, and `detach` takes one out again, leaving whatever
else was installed exactly as it was.

A member that raises is dropped from the fan-out (and logged), the rule the
loop engine applies to the hook itself: one broken observer never blinds the
others nor breaks the loops.
"""

from __future__ import annotations

import logging

from ... import instrument
from ...instrument import Instrumentation, IterationStart, Outcome, SkipReason

__all__ = ["Fanout", "attach", "detach"]

logger = logging.getLogger("supervised_loops")


class _Tokens:
    """What `Fanout.iteration_started` returns: who saw the start, and their tokens."""

    __slots__ = ("members", "tokens")

    def __init__(self, members: tuple[Instrumentation, ...], tokens: list[object]) -> None:
        self.members = members
        self.tokens = tokens


class Fanout:
    """Calls every member instrumentation, in order, for each iteration."""

    __slots__ = ("members",)

    def __init__(self, *members: Instrumentation) -> None:
        self.members: tuple[Instrumentation, ...] = members

    def _drop(self, member: Instrumentation, error: Exception) -> None:
        logger.error("instrumentation %r raised: removed", member, exc_info=error)
        self.members = tuple(m for m in self.members if m is not member)

    def iteration_started(self, start: IterationStart) -> object:
        members = self.members
        tokens: list[object] = []
        for member in members:
            try:
                tokens.append(member.iteration_started(start))
            except Exception as error:
                self._drop(member, error)
                tokens.append(None)
        return _Tokens(members, tokens)

    def iteration_ended(
        self,
        start: IterationStart,
        token: object,
        outcome: Outcome,
        error: BaseException | None,
        ended: float,
    ) -> None:
        if not isinstance(token, _Tokens):
            return  # begun before this fan-out was installed: nobody here saw it start
        for member, member_token in zip(token.members, token.tokens, strict=True):
            if member not in self.members:
                continue  # dropped since the iteration began
            try:
                member.iteration_ended(start, member_token, outcome, error, ended)
            except Exception as failure:
                self._drop(member, failure)

    def iteration_skipped(self, path: str, name: str, reason: SkipReason) -> None:
        for member in self.members:
            try:
                member.iteration_skipped(path, name, reason)
            except Exception as error:
                self._drop(member, error)


def attach(member: Instrumentation) -> None:
    """Add ``member`` to the process-wide hook, beside whatever is installed.

    Alone, it is installed as it is (no fan-out cost); next to another, both
    go behind a `Fanout`.
    """
    current = instrument.current()
    if current is None:
        instrument.install(member)
    elif isinstance(current, Fanout):
        instrument.install(Fanout(*current.members, member))
    else:
        instrument.install(Fanout(current, member))


def detach(member: Instrumentation) -> None:
    """Remove ``member`` from the hook; the others stay installed. Absent: nothing happens."""
    current = instrument.current()
    if current is member:
        instrument.install(None)
    elif isinstance(current, Fanout) and member in current.members:
        rest = tuple(m for m in current.members if m is not member)
        instrument.install(rest[0] if len(rest) == 1 else Fanout(*rest) if rest else None)
