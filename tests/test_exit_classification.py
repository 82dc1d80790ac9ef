"""How a run's end becomes the `Exit` its parent receives: one pure function, as a table.

``classify_exit`` is the only place that decides it, for every actor kind;
the wiring (that each kind feeds it the truth) is tested by tests/test_exit_grid.py.
"""

from __future__ import annotations

import asyncio

import pytest

from supervised_loops import Exit, ExitKind
from supervised_loops.core.exit import classify_exit

BOOM = RuntimeError("boom")
STRAY = asyncio.CancelledError("raised by a library")
INTERRUPT = KeyboardInterrupt()

CASES = [
    # escalated, task error, task cancelled, stop asked, cancel asked -> exit
    ("returned by itself", None, None, False, False, False, Exit(ExitKind.NORMAL)),
    ("count reached", None, None, False, False, False, Exit(ExitKind.NORMAL)),
    ("stopped", None, None, False, True, False, Exit(ExitKind.NORMAL, requested=True)),
    ("cancelled", None, None, True, True, True, Exit(ExitKind.CANCELLED, requested=True)),
    (
        "cancelled from outside, never asked",
        None,
        None,
        True,
        False,
        False,
        Exit(ExitKind.CANCELLED, requested=True),
    ),
    (
        "cancellation swallowed, returned",
        None,
        None,
        False,
        True,
        True,
        Exit(ExitKind.NORMAL, requested=True),
    ),
    ("escalated error", BOOM, BOOM, False, False, False, Exit(ExitKind.FAILED, BOOM)),
    ("escalated error after a stop", BOOM, BOOM, False, True, False, Exit(ExitKind.FAILED, BOOM)),
    (
        "unrequested CancelledError escalated (task looks cancelled)",
        STRAY,
        None,
        True,
        False,
        False,
        Exit(ExitKind.FAILED, STRAY),
    ),
    (
        "KeyboardInterrupt through the task",
        None,
        INTERRUPT,
        False,
        False,
        False,
        Exit(ExitKind.FAILED, INTERRUPT),
    ),
    (
        "error in the after hook of a cancelled run",
        BOOM,
        None,
        True,
        True,
        True,
        Exit(ExitKind.FAILED, BOOM),
    ),
]


@pytest.mark.parametrize(
    ("escalated", "task_error", "cancelled", "stop", "cancel", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_classify_exit(
    escalated: BaseException | None,
    task_error: BaseException | None,
    cancelled: bool,
    stop: bool,
    cancel: bool,
    expected: Exit,
) -> None:
    exit = classify_exit(
        escalated=escalated,
        task_error=task_error,
        task_cancelled=cancelled,
        stop_requested=stop,
        cancel_requested=cancel,
    )
    assert exit == expected
    assert exit.error is expected.error
