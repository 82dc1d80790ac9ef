"""What a supervisor does with an exit, as pure functions tested as tables (no event loop).

The wiring (that the engine applies the answer) is tested in the supervisor
tests and tests/test_exit_grid.py.
"""

from __future__ import annotations

import itertools

import pytest

from supervised_loops import Directive, Exit, ExitKind, RestartType, Strategy
from supervised_loops.supervision.intensity import RestartWindow
from supervised_loops.supervision.policy import (
    ExitPlan,
    plan_exit,
    plan_restart,
    restart_group,
    restart_type_directive,
)

BOOM = RuntimeError("boom")
EXITS = {
    "returned": Exit(ExitKind.NORMAL),
    "stopped": Exit(ExitKind.NORMAL, requested=True),
    "cancelled": Exit(ExitKind.CANCELLED, requested=True),
    "failed": Exit(ExitKind.FAILED, BOOM),
    "failed after a stop": Exit(ExitKind.FAILED, BOOM, requested=True),
}

# restart type -> exit -> directive (OTP's table; a request is respected)
TABLE = {
    RestartType.PERMANENT: {
        "returned": Directive.RESTART,
        "stopped": Directive.STOP,
        "cancelled": Directive.STOP,
        "failed": Directive.RESTART,
        "failed after a stop": Directive.RESTART,
    },
    RestartType.TRANSIENT: {
        "returned": Directive.STOP,
        "stopped": Directive.STOP,
        "cancelled": Directive.STOP,
        "failed": Directive.RESTART,
        "failed after a stop": Directive.RESTART,
    },
    RestartType.TEMPORARY: dict.fromkeys(EXITS, Directive.STOP),
}


@pytest.mark.parametrize(
    ("restart", "exit_name"),
    list(itertools.product(RestartType, EXITS)),
    ids=[f"{r.value}-{e}" for r, e in itertools.product(RestartType, EXITS)],
)
def test_restart_type_directive(restart: RestartType, exit_name: str) -> None:
    assert restart_type_directive(restart, EXITS[exit_name]) is TABLE[restart][exit_name]


@pytest.mark.parametrize(
    ("strategy", "index", "active", "group"),
    [
        (Strategy.ONE_FOR_ONE, 1, [True, True, True], (1,)),
        (Strategy.ONE_FOR_ALL, 1, [True, True, True], (0, 1, 2)),
        (Strategy.REST_FOR_ONE, 1, [True, True, True], (1, 2)),
        (Strategy.REST_FOR_ONE, 0, [True, False, True], (0, 2)),
        (Strategy.ONE_FOR_ALL, 2, [False, True, False], (1, 2)),
        (Strategy.ONE_FOR_ALL, 0, [False, False], (0,)),
    ],
)
def test_restart_group(
    strategy: Strategy, index: int, active: list[bool], group: tuple[int, ...]
) -> None:
    assert restart_group(strategy, index, active) == group


def test_the_restart_beyond_the_intensity_is_refused_and_forgotten_after_the_window() -> None:
    window = RestartWindow(2, 5.0)
    plans = [
        plan_exit(
            strategy=Strategy.ONE_FOR_ONE,
            restart=RestartType.PERMANENT,
            exit=EXITS["failed"],
            intensity=window,
            now=now,
            index=0,
            active=[True],
        )
        for now in (0.0, 1.0, 2.0)
    ]
    assert plans == [
        ExitPlan(Directive.RESTART, (0,)),
        ExitPlan(Directive.RESTART, (0,)),
        ExitPlan(Directive.ESCALATE, exceeded=True),
    ]
    later = plan_restart(
        strategy=Strategy.ONE_FOR_ONE,
        intensity=RestartWindow(2, 5.0),
        budget=None,
        on_probation=False,
        now=100.0,
        index=0,
        active=[True],
    )
    assert later == ExitPlan(Directive.RESTART, (0,))


def test_a_stay_down_answer_never_counts_against_the_intensity() -> None:
    window = RestartWindow(0, 5.0)  # no restart allowed at all
    plan = plan_exit(
        strategy=Strategy.ONE_FOR_ALL,
        restart=RestartType.TRANSIENT,
        exit=EXITS["returned"],
        intensity=window,
        now=0.0,
        index=0,
        active=[True, True],
    )
    assert plan == ExitPlan(Directive.STOP)
    assert window.count(0.0) == 0


@pytest.mark.parametrize("decided", list(Directive))
def test_the_supervisors_own_decision_wins_over_the_restart_type(decided: Directive) -> None:
    plan = plan_exit(
        strategy=Strategy.ONE_FOR_ONE,
        restart=RestartType.TEMPORARY,
        exit=EXITS["failed"],
        intensity=RestartWindow(3, 5.0),
        now=0.0,
        index=0,
        active=[True],
        decided=decided,
    )
    expected = ExitPlan(decided, (0,)) if decided is Directive.RESTART else ExitPlan(decided)
    assert plan == expected


def test_a_child_with_a_quarantine_budget_spends_it_instead_of_the_intensity() -> None:
    intensity = RestartWindow(0, 5.0)
    budget = RestartWindow(1, 10.0)

    def plan(now: float, on_probation: bool = False) -> ExitPlan:
        return plan_restart(
            strategy=Strategy.ONE_FOR_ONE,
            intensity=intensity,
            budget=budget,
            on_probation=on_probation,
            now=now,
            index=0,
            active=[True],
        )

    assert plan(0.0) == ExitPlan(Directive.RESTART, (0,))
    assert plan(1.0) == ExitPlan(Directive.QUARANTINE)  # budget spent: parked
    assert intensity.count(1.0) == 0  # the supervisor's intensity untouched
    budget.clear()
    assert plan(2.0, on_probation=True) == ExitPlan(Directive.QUARANTINE)  # a failed probe
