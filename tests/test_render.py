"""Text rendering of status trees: exact text for exact snapshots."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from supervised_loops import ActorStatus, State, loop
from supervised_loops.render import format_relative, render_status
from supervised_loops.testing import virtual_time

NOW = dt.datetime(2026, 3, 8, 12, 0, tzinfo=dt.UTC)


def later(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def a_loop(name: str, path: str, state: State, **fields: object) -> ActorStatus:
    return ActorStatus(name=name, path=path, kind="loop", state=state, **fields)  # type: ignore[arg-type]


TREE = ActorStatus(
    name="app",
    path="app",
    kind="supervisor",
    state=State.RUNNING,
    children=(
        a_loop(
            "poller",
            "app/poller",
            State.SLEEPING,
            current_loop=12,
            next_iteration=later(4.2),
            failures=1,
            last_error="OSError: connection reset",
        ),
        ActorStatus(
            name="pair",
            path="app/pair",
            kind="supervisor",
            state=State.RUNNING,
            restarts=2,
            children=(
                a_loop("a", "app/pair/a", State.RETRYING, current_loop=5, next_iteration=later(65)),
                a_loop(
                    "b",
                    "app/pair/b",
                    State.FAILED,
                    failures=3,
                    restarts=2,
                    last_error="ValueError: bad input",
                ),
            ),
        ),
        a_loop("flusher", "app/flusher", State.RUNNING, current_loop=3, next_iteration=later(0)),
    ),
)


def test_a_tree_renders_one_aligned_line_per_actor_with_box_drawing() -> None:
    assert render_status(TREE, now=NOW).splitlines() == [
        "app          running                   failures 0  restarts 0",
        "├── poller   sleeping  #12  in 4.2s    failures 1  restarts 0"
        "  last error: OSError: connection reset",
        "├── pair     running                   failures 0  restarts 2",
        "│   ├── a    retrying  #5   in 1m 05s  failures 0  restarts 0",
        "│   └── b    failed    #0   -          failures 3  restarts 2"
        "  last error: ValueError: bad input",
        "└── flusher  running   #3   due now    failures 0  restarts 0",
    ]


def test_a_lone_loop_renders_on_one_line_without_empty_columns() -> None:
    status = a_loop("tick", "tick", State.STOPPED, current_loop=7)

    assert render_status(status, now=NOW) == "tick  stopped  #7  -  failures 0  restarts 0"


def test_a_supervisor_without_loops_drops_the_iteration_and_next_columns() -> None:
    status = ActorStatus(
        name="root",
        path="root",
        kind="supervisor",
        state=State.STOPPING,
        children=(ActorStatus(name="w", path="root/w", kind="worker", state=State.RUNNING),),
    )

    assert render_status(status, now=NOW) == "\n".join(
        [
            "root   stopping  failures 0  restarts 0",
            "└── w  running   failures 0  restarts 0",
        ]
    )


def test_the_last_error_is_cut_to_width_and_kept_on_one_line() -> None:
    status = a_loop(
        "job",
        "job",
        State.FAILED,
        failures=1,
        last_error="RuntimeError: first line\n  second line that goes on and on",
    )

    assert render_status(status, now=NOW, error_width=30) == (
        "job  failed  #0  -  failures 1  restarts 0  last error: RuntimeError: first line seco…"
    )


def test_a_deep_last_child_is_indented_with_spaces_not_bars() -> None:
    leaf = a_loop("leaf", "r/m/leaf", State.SLEEPING, next_iteration=later(30))
    middle = ActorStatus(
        name="m", path="r/m", kind="supervisor", state=State.RUNNING, children=(leaf,)
    )
    root = ActorStatus(
        name="r", path="r", kind="supervisor", state=State.RUNNING, children=(middle,)
    )

    assert render_status(root, now=NOW).splitlines() == [
        "r             running                 failures 0  restarts 0",
        "└── m         running                 failures 0  restarts 0",
        "    └── leaf  sleeping  #0  in 30.0s  failures 0  restarts 0",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5.0, "due now"),
        (0.0, "due now"),
        (0.04, "due now"),
        (0.05, "in 0.1s"),
        (4.2, "in 4.2s"),
        (59.94, "in 59.9s"),
        (59.96, "in 1m 00s"),
        (65.0, "in 1m 05s"),
        (3599.9, "in 59m 59s"),
        (3600.0, "in 1h 00m"),
        (3 * 3600 + 7 * 60 + 59, "in 3h 07m"),
        (86_400.0, "in 1d 00h"),
        (2 * 86_400 + 4 * 3600 + 1, "in 2d 04h"),
    ],
)
def test_relative_times_are_short_and_round_down_past_a_minute(seconds: float, text: str) -> None:
    assert format_relative(later(seconds), NOW) == text


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^'error_width' must be > 0 \(got 0\)$"):
        render_status(TREE, now=NOW, error_width=0)
    with pytest.raises(ValueError, match=r"^'now' must be an aware datetime"):
        render_status(TREE, now=dt.datetime(2026, 1, 1))


@virtual_time(start=NOW)
async def test_without_now_the_running_loops_virtual_wall_clock_is_used() -> None:
    @loop(minutes=2)
    async def every_two_minutes() -> None:
        pass

    every_two_minutes.start()
    try:
        await asyncio.sleep(1)  # the first iteration ran at 0 s; the next is due at 120 s
        assert render_status(every_two_minutes.status()) == (
            "every_two_minutes  sleeping  #1  in 1m 59s  failures 0  restarts 0"
        )
    finally:
        every_two_minutes.cancel()
