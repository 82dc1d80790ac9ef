"""What a child's exit means, as pure functions: no event loop, no actor.

Given the supervisor's strategy, the child's restart type, how its run
ended, the restart-intensity window and the moment, `plan_exit` answers
what to do (a `Directive`) and, for a restart, which children go with it
(the restart group, in start order). The engine (`supervision.restarts`)
carries the answer out; keeping the decision here is what lets it be tested
as a table.

OTP's rules: a permanent child is always restarted; a transient one only
after a failure; a temporary one never. A child that was *asked* to stop (a
``Stop`` or ``Cancel`` sent to it) stays down whatever its type: restarting
it would undo the request. A restart that would be one too many within the
window is refused: the supervisor fails (``exceeded``).

May import: ``supervision.specs``, ``supervision.intensity`` and the pure
top-level modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ..messages import Exit, ExitKind
from .intensity import RestartWindow
from .specs import Directive, RestartType, Strategy

__all__ = [
    "ExitPlan",
    "plan_exit",
    "plan_restart",
    "restart_group",
    "restart_type_directive",
]


@attrs.frozen
class ExitPlan:
    """The answer to an exit.

    Attributes:
        directive: what to do with the child.
        group: for ``RESTART``, the indexes of the children to restart, in
            start order (stopped latest first, then started in this order);
            empty otherwise.
        exceeded: the restart was refused: it would exceed the intensity.
    """

    directive: Directive
    group: tuple[int, ...] = ()
    exceeded: bool = False


def restart_type_directive(restart: RestartType, exit: Exit) -> Directive:
    """The restart type's answer to an exit (OTP's rules; a request is respected)."""
    if exit.requested and exit.kind is not ExitKind.FAILED:
        return Directive.STOP
    if restart is RestartType.PERMANENT:
        return Directive.RESTART
    if restart is RestartType.TRANSIENT and exit.kind is ExitKind.FAILED:
        return Directive.RESTART
    return Directive.STOP


def restart_group(strategy: Strategy, index: int, active: Sequence[bool]) -> tuple[int, ...]:
    """The children restarted with child ``index``, in start order.

    ``active[i]`` says whether child ``i`` is running or waiting for a
    delayed restart: the others (parked, down for good) stay as they are.
    The child itself is always in the group.
    """
    if strategy is Strategy.ONE_FOR_ONE:
        return (index,)
    start = 0 if strategy is Strategy.ONE_FOR_ALL else index
    return tuple(i for i in range(start, len(active)) if i == index or active[i])


def plan_restart(
    *,
    strategy: Strategy,
    intensity: RestartWindow,
    budget: RestartWindow | None,
    on_probation: bool,
    now: float,
    index: int,
    active: Sequence[bool],
) -> ExitPlan:
    """Carry out a ``RESTART`` of child ``index`` now, or say why not.

    A child with a quarantine budget (``budget``) spends that instead of the
    supervisor's intensity, and is quarantined when it is spent or when it
    fails while still on probation. Any other child counts against the
    supervisor's ``intensity``; one restart too many is refused
    (``exceeded``). The windows given are updated: the restart is recorded.
    """
    if budget is not None:
        if on_probation or budget.add(now):
            return ExitPlan(Directive.QUARANTINE)
    elif intensity.add(now):
        return ExitPlan(Directive.ESCALATE, exceeded=True)
    return ExitPlan(Directive.RESTART, restart_group(strategy, index, active))


def plan_exit(
    *,
    strategy: Strategy,
    restart: RestartType,
    exit: Exit,
    intensity: RestartWindow,
    budget: RestartWindow | None = None,
    on_probation: bool = False,
    now: float,
    index: int,
    active: Sequence[bool],
    decided: Directive | None = None,
) -> ExitPlan:
    """What to do with child ``index`` whose run ended as ``exit``.

    Args:
        strategy: the supervisor's strategy.
        restart: the child's restart type.
        exit: how its run ended.
        intensity: the supervisor's restart window.
        budget: the child's quarantine budget, if it has a quarantine policy.
        on_probation: the child is a quarantine probe still on probation.
        now: the moment, in the windows' seconds.
        index: the child's position among its siblings.
        active: per sibling, whether a strategy may take it along.
        decided: the supervisor's own directive for a failure (its
            ``decide`` hook), None for the restart type's answer.

    Returns:
        The directive; for ``RESTART`` the group (see `plan_restart`, which
        may turn it into ``QUARANTINE`` or an exceeded ``ESCALATE``).
    """
    directive = decided if decided is not None else restart_type_directive(restart, exit)
    if directive is not Directive.RESTART:
        return ExitPlan(directive)
    return plan_restart(
        strategy=strategy,
        intensity=intensity,
        budget=budget,
        on_probation=on_probation,
        now=now,
        index=index,
        active=active,
    )
