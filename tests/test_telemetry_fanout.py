"""Several instrumentations through the one slot: each hears of every iteration it saw begin."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from supervised_loops import instrument, loop
from supervised_loops.telemetry.fanout import Fanout, attach, detach, members
from supervised_loops.testing import virtual_time


class Member:
    """Notes the calls it gets: ``("started", iteration)`` and ``("ended", iteration, token)``."""

    def __init__(self, label: str, *, starts: bool, raises_at_start: bool = False) -> None:
        self.label = label
        self.observes_starts = starts
        self.raises_at_start = raises_at_start
        self.calls: list[tuple[Any, ...]] = []

    def iteration_started(self, *begun: Any) -> object:
        if self.raises_at_start:
            raise RuntimeError(f"{self.label} down")
        self.calls.append(("started", begun[2]))
        return f"{self.label}-{begun[2]}"

    def iteration_ended(self, *values: Any) -> None:
        self.calls.append(("ended", values[2], values[-1]))

    def iteration_skipped(self, path: str, name: str, reason: str) -> None:
        self.calls.append(("skipped", reason))

    def __repr__(self) -> str:
        return f"<Member {self.label}>"


@pytest.fixture(autouse=True)
def empty_slot() -> Iterator[None]:
    previous = instrument.install(None)
    try:
        yield
    finally:
        instrument.install(previous)


async def two_iterations(between: Any = None) -> None:
    """A loop of two iterations (at 0 s and 10 s, 1 s each); ``between()`` at 0.5 s."""

    @loop(seconds=10, count=2)
    async def poll() -> None:
        await asyncio.sleep(1)

    task = poll.start()
    await asyncio.sleep(0.5)
    if between is not None:
        between()
    await asyncio.wait((task,))


@virtual_time()
async def test_members_that_observe_ends_only_make_a_fanout_that_does_too() -> None:
    history, metrics = Member("h", starts=False), Member("m", starts=False)
    attach(history)
    attach(metrics)
    fanout = instrument.current()
    assert isinstance(fanout, Fanout)
    assert fanout.observes_starts is False
    await two_iterations()
    for member in (history, metrics):
        assert member.calls == [("ended", 0, None), ("ended", 1, None)]


@virtual_time()
async def test_a_member_that_observes_starts_gets_its_token_back_the_others_none() -> None:
    tracer, history = Member("t", starts=True), Member("h", starts=False)
    attach(tracer)
    attach(history)
    assert instrument.current().observes_starts is True  # type: ignore[union-attr]
    await two_iterations()
    assert tracer.calls == [
        ("started", 0),
        ("ended", 0, "t-0"),
        ("started", 1),
        ("ended", 1, "t-1"),
    ]
    assert history.calls == [("ended", 0, None), ("ended", 1, None)]


@virtual_time()
async def test_a_member_raising_at_a_start_is_dropped_logged_once_and_not_told_that_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, history = Member("b", starts=True, raises_at_start=True), Member("h", starts=False)
    attach(broken)
    attach(history)
    with caplog.at_level(logging.ERROR, logger="supervised_loops.telemetry"):
        await two_iterations()
    assert broken.calls == []
    assert history.calls == [("ended", 0, None), ("ended", 1, None)]
    assert members() == (history,)
    assert [r.message for r in caplog.records] == [
        "instrumentation <Member b> raised; it is uninstalled"
    ]


@virtual_time()
async def test_a_member_attached_mid_iteration_hears_of_the_next_one_not_that_ones_end() -> None:
    tracer, history = Member("t", starts=True), Member("h", starts=False)
    attach(tracer)
    await two_iterations(between=lambda: attach(history))
    assert tracer.calls == [
        ("started", 0),
        ("ended", 0, "t-0"),
        ("started", 1),
        ("ended", 1, "t-1"),
    ]
    assert history.calls == [("ended", 1, None)]


@virtual_time()
async def test_a_member_detached_mid_iteration_still_gets_that_iterations_end() -> None:
    tracer, history = Member("t", starts=True), Member("h", starts=False)
    attach(tracer)
    attach(history)
    await two_iterations(between=lambda: detach(tracer))
    assert tracer.calls == [("started", 0), ("ended", 0, "t-0")]  # its span is ended
    assert history.calls == [("ended", 0, None), ("ended", 1, None)]
