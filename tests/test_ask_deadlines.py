"""Ask timeouts share one heap and one timer per event loop: the contract still holds.

Every pending ask fails with `AskTimeout` at its own deadline, whatever the
order in which asks with different timeouts were made; an ask answered in
time is never failed later; the bookkeeping of answered asks does not grow
without bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from supervised_loops import AskTimeout, Every, Loop
from supervised_loops.core import deadlines
from supervised_loops.testing import virtual_time


class Silent(Loop):
    """Holds every user message unanswered until told; answers them in order."""

    async def handle_message(self, message: Any) -> Any:
        await asyncio.sleep(message)
        return message


def _silent() -> Silent:
    async def body() -> None:
        pass

    return Silent(body, schedule=Every(hours=1), name="silent")


@virtual_time()
async def test_each_ask_times_out_at_its_own_deadline_whatever_the_order() -> None:
    event_loop = asyncio.get_running_loop()
    work = _silent()
    work.start()
    began = event_loop.time()
    failed_at: dict[float, float] = {}

    async def ask(timeout: float) -> None:
        with pytest.raises(AskTimeout):
            await work.ask(1000.0, timeout=timeout)  # handled in 1000 s: always too late
        failed_at[timeout] = event_loop.time() - began

    await asyncio.gather(*(ask(t) for t in (5.0, 1.0, 3.0, 0.5, 30.0)))
    assert failed_at == {0.5: 0.5, 1.0: 1.0, 3.0: 3.0, 5.0: 5.0, 30.0: 30.0}
    work.cancel()


@virtual_time()
async def test_an_ask_answered_in_time_is_not_failed_when_its_deadline_passes() -> None:
    work = _silent()
    work.start()
    assert await work.ask(1.0, timeout=2.0) == 1.0
    await asyncio.sleep(5)  # past the deadline: nothing is set on the answered reply
    assert await work.ask(0.5, timeout=1.0) == 0.5
    work.cancel()


@virtual_time()
async def test_answered_asks_do_not_accumulate() -> None:
    work = _silent()
    work.start()
    for _ in range(5000):
        assert await work.ask(0.0, timeout=3600.0) == 0.0
    book = deadlines._by_loop[asyncio.get_running_loop()]
    assert len(book._heap) <= 2 * deadlines._COMPACT_AT_LEAST
    work.cancel()


def test_each_event_loop_keeps_its_own_deadlines_one_after_the_other() -> None:
    # The deadlines of the loop asked last are found without a lookup: a
    # later event loop must get its own, and its asks still time out on time.
    failed_at: list[float] = []

    @virtual_time()
    async def one_loop(timeout: float) -> None:
        event_loop = asyncio.get_running_loop()
        work = _silent()
        work.start()
        began = event_loop.time()
        with pytest.raises(AskTimeout):
            await work.ask(1000.0, timeout=timeout)
        failed_at.append(event_loop.time() - began)
        work.cancel()

    one_loop(2.0)
    one_loop(0.5)
    one_loop(3.0)
    assert failed_at == [2.0, 0.5, 3.0]
