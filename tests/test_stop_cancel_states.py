"""Stop and Cancel in every state of an overlapping loop and of a worker.

A plain Loop's grid of messages × states is tests/test_loop_control.py; this
completes it for the kinds with a run machinery of their own before it was
shared: iterations that overlap (several bodies, retries waiting in their own
iterations) and workers. The answers are those of docs/messages.md: Stop lets
what runs finish and ends at once otherwise (a pending retry is abandoned);
Cancel preempts everything but an after_loop already begun (it runs to its
end); both are acknowledged once the run has ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from supervised_loops import (
    Ack,
    ActorNotRunning,
    Cancel,
    ExponentialBackoff,
    Pause,
    State,
    Stop,
    current_worker,
    loop,
    worker,
)
from supervised_loops.testing import virtual_time

STATES = ["before_loop", "one body running", "two bodies running", "sleeping", "retry wait",
          "paused", "after_loop"]  # fmt: skip

# state -> (Stop: seconds until the run has ended, bodies called in all; same for Cancel)
EXPECTED: dict[str, dict[str, tuple[float, int]]] = {
    "before_loop": {"stop": (1.5, 0), "cancel": (0.0, 0)},
    "one body running": {"stop": (4.5, 1), "cancel": (0.0, 1)},
    "two bodies running": {"stop": (5.5, 2), "cancel": (0.0, 2)},
    "sleeping": {"stop": (0.0, 1), "cancel": (0.0, 1)},
    "retry wait": {"stop": (0.0, 1), "cancel": (0.0, 1)},
    "paused": {"stop": (0.0, 1), "cancel": (0.0, 1)},
    # after_loop, once begun, runs to its end: a Cancel does not cut it.
    "after_loop": {"stop": (3.0, 1), "cancel": (3.0, 1)},
}


def now() -> float:
    return asyncio.get_running_loop().time()


async def _overlapping_in(state: str) -> tuple[Any, list[str]]:
    """An overlapping loop brought into ``state``; returns it and its journal."""
    journal: list[str] = []
    slow = state in ("one body running", "two bodies running")

    interval = 1 if state == "two bodies running" else 10
    backoff = ExponentialBackoff(base=50, jitter=False)

    @loop(seconds=interval, overlap=True, backoff=backoff)
    async def crawl() -> None:
        journal.append("body")
        if state == "retry wait":
            raise OSError("transient")
        if slow:
            await asyncio.sleep(6)

    @crawl.before_loop
    async def before() -> None:
        if state == "before_loop":
            await asyncio.sleep(3)

    @crawl.after_loop
    async def after() -> None:
        journal.append("cancelled" if crawl.is_being_cancelled() else "after")
        if state == "after_loop":
            await asyncio.sleep(4)

    crawl.start()
    await asyncio.sleep(1.5)
    if state == "paused":
        await crawl.ask(Pause())
    if state == "after_loop":
        crawl.stop()
        await asyncio.sleep(1)  # after_loop runs until 4 s after the Stop
    return crawl, journal


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("message", ["stop", "cancel"])
@virtual_time()
async def test_an_overlapping_loop_answers_stop_and_cancel_in_every_state(
    state: str, message: str
) -> None:
    crawl, journal = await _overlapping_in(state)
    assert crawl.is_running()
    began = now()
    sent = Stop() if message == "stop" else Cancel()
    ack = await crawl.ask(sent, timeout=60)
    assert ack == Ack(sent, crawl.current_loop, None)
    assert not crawl.is_running()
    seconds, bodies = EXPECTED[state][message]
    assert now() - began == pytest.approx(seconds)
    assert journal.count("body") == bodies
    # after_loop runs once, and tells a cancellation apart.
    assert journal[-1] in ("after", "cancelled")
    assert journal.count("after") + journal.count("cancelled") == 1
    if message == "stop":
        assert crawl.status().state is State.STOPPED
    else:  # a Cancel overrides the Stop (an after_loop in progress still ends)
        assert crawl.status().state is State.CANCELLED
        assert journal[-1] == ("after" if state == "after_loop" else "cancelled")


WORKER_STATES = ["not ready yet", "running", "retry wait", "cooperatively stopping"]


async def _worker_in(state: str) -> tuple[Any, list[str]]:
    journal: list[str] = []

    async def serve() -> None:
        me = current_worker()
        journal.append("call")
        try:
            if state == "not ready yet":
                await asyncio.sleep(3)
                me.set_ready()
            if state == "retry wait":
                raise OSError("transient")
            if state == "cooperatively stopping":
                await me.until_stopping()
                journal.append("stopping")
                await asyncio.sleep(2)  # finishing its work
                return
            await asyncio.sleep(3600)
        finally:
            journal.append("end")

    w = worker(
        serve,
        signals_ready=state == "not ready yet",
        cooperative_stop=state == "cooperatively stopping",
        backoff=ExponentialBackoff(base=50, jitter=False),
    )
    w.start()
    await asyncio.sleep(1)
    if state == "cooperatively stopping":
        w.stop()
        await asyncio.sleep(0.5)
    return w, journal


# state -> message -> (seconds until ended, final state, calls of the coroutine)
WORKER_EXPECTED: dict[str, dict[str, tuple[float, State, int]]] = {
    "not ready yet": {"stop": (0.0, State.STOPPED, 1), "cancel": (0.0, State.CANCELLED, 1)},
    "running": {"stop": (0.0, State.STOPPED, 1), "cancel": (0.0, State.CANCELLED, 1)},
    "retry wait": {"stop": (0.0, State.STOPPED, 1), "cancel": (0.0, State.CANCELLED, 1)},
    "cooperatively stopping": {
        "stop": (1.5, State.STOPPED, 1),  # merged with the first: it finishes its work
        "cancel": (0.0, State.CANCELLED, 1),  # preempts the work being finished
    },
}


@pytest.mark.parametrize("state", WORKER_STATES)
@pytest.mark.parametrize("message", ["stop", "cancel"])
@virtual_time()
async def test_a_worker_answers_stop_and_cancel_in_every_state(state: str, message: str) -> None:
    w, journal = await _worker_in(state)
    assert w.is_running()
    began = now()
    sent = Stop() if message == "stop" else Cancel()
    ack = await w.ask(sent, timeout=60)
    assert ack == Ack(sent, 0, None)
    seconds, final, calls = WORKER_EXPECTED[state][message]
    assert now() - began == pytest.approx(seconds)
    assert w.status().state is final
    assert journal.count("call") == calls
    assert journal[-1] == "end"
    assert await w.wait_ready() is (state != "not ready yet")


@pytest.mark.parametrize("message", [Stop(), Cancel()])
@virtual_time()
async def test_stop_and_cancel_to_a_worker_that_is_not_running_are_refused(message: Any) -> None:
    async def idle() -> None:
        await asyncio.sleep(1)

    w = worker(idle)
    with pytest.raises(ActorNotRunning):
        await w.ask(message)
    await w.start()
    with pytest.raises(ActorNotRunning):
        await w.ask(message)
