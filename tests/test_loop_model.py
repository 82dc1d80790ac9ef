"""A model test of Loop control: random message sequences against a tiny model.

Hypothesis draws sequences of ``start()``, every control message (told or
asked, alone or several in one go) and virtual sleeps, and runs each on a
fresh virtual clock against a loop whose ``before_loop``, body and
``after_loop`` each take 1 s. A model with four fields predicts the outcome:

* ``alive``: a run exists that nobody asked to end (``start``/``Restart``
  make one; ``Stop``/``Cancel`` end it);
* ``paused``: ``Pause`` was accepted by the live run (a new run is not paused);
* ``interval``: the schedule in force (``ChangeInterval`` works in every state);
* ``args``: the arguments of the latest start (a bare ``Restart`` reuses them).

Checked after every step: each ``ask`` gets a reply of the right kind, or a
clear error (``ActorNotRunning`` or ``ActorStopped``, only where the model
allows one), within a timeout, so nothing hangs; a ``Resume`` or a
``ChangeInterval`` is acked with a next run time that is not already past; an asked ``Stop`` or
``Cancel`` returns only once the run has ended; ``start()`` raises exactly
when the model has a live run. After the sequence, and a quiet moment for
the last requests to take effect: the loop runs iff ``alive``, is paused iff
``paused``, iterates every ``interval`` seconds exactly, with ``args``.
After a final ``Cancel``: ``after_loop`` ran exactly once in every run ever
started, and no task is left.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from supervised_loops import (
    Ack,
    ActorNotRunning,
    ActorStatus,
    ActorStopped,
    Cancel,
    ChangeInterval,
    Every,
    Loop,
    Pause,
    Restart,
    Resume,
    RunNow,
    State,
    Stop,
)
from supervised_loops.clock import get_clock
from supervised_loops.messages import GetStatus
from supervised_loops.testing import VirtualClock

INTERVALS = (2.0, 5.0, 10.0)
#: Once the latest run is set up, long enough for the last requests to take
#: effect: an iteration in progress, a RunNow's extra one and the regular one
#: it made overdue take 1 s each.
QUIET = 3.5
#: An ask that takes longer than this (virtual seconds) is a hang.
ASK_TIMEOUT = 100.0


@attrs.define
class Model:
    alive: bool = False
    paused: bool = False
    interval: float = 5.0
    args: tuple[Any, ...] = ()


class Subject:
    """The loop under test, recording which task ran each hook."""

    def __init__(self) -> None:
        self.starts: list[tuple[float, tuple[Any, ...]]] = []
        self.after_tasks: list[asyncio.Task[Any]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.loop = Loop(self._body, schedule=Every(seconds=5), name="subject")
        self.loop.before_loop(self._before)
        self.loop.after_loop(self._after)

    async def _before(self) -> None:
        await asyncio.sleep(1)

    async def _body(self, *args: Any) -> None:
        self.starts.append((asyncio.get_running_loop().time(), args))
        await asyncio.sleep(1)

    async def _after(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.after_tasks.append(task)
        await asyncio.sleep(1)

    def note_task(self) -> None:
        """Remember the latest run's task (a run is made by start and Restart)."""
        task = self.loop.get_task()
        if task is not None and task not in self.tasks:
            self.tasks.append(task)


# -- the steps ----------------------------------------------------------------

MESSAGES = [
    Stop(),
    Cancel(),
    Pause(),
    Resume(),
    RunNow(),
    GetStatus(),
    Restart(),
    Restart(("x",)),
    Restart(("z", 3)),
    *(ChangeInterval(seconds=seconds) for seconds in INTERVALS),
]

message_steps = st.tuples(st.sampled_from(["tell", "ask"]), st.sampled_from(MESSAGES))
# Several messages told in one go, before the loop's task can run: where
# coalescing happens (Restart, Stop, Restart; Stop then Cancel; ...).
burst_steps = st.tuples(
    st.just("burst"), st.lists(st.sampled_from(MESSAGES), min_size=2, max_size=4)
)
# Messages make up 3/5 of the steps, so that pairs such as Pause ... Resume
# with no Stop between are common in 25-step sequences.
steps = st.one_of(
    message_steps,
    message_steps,
    burst_steps,
    st.tuples(st.just("sleep"), st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.0])),
    st.tuples(st.just("start"), st.sampled_from([(), ("x",), ("y", 2)])),
)


async def ask(subject: Subject, message: Any) -> Any:
    """Ask; return the reply or the error raised (an AskTimeout fails the test)."""
    try:
        return await subject.loop.ask(message, timeout=ASK_TIMEOUT)
    except (ActorNotRunning, ActorStopped) as error:
        return error


def check_reply(message: Any, reply: Any, model: Model) -> None:
    """The reply an asked message gets, given the model before the message."""
    alive = model.alive
    if isinstance(message, GetStatus):
        assert isinstance(reply, ActorStatus)
    elif isinstance(message, Restart | ChangeInterval):
        assert isinstance(reply, Ack)  # answered in every state
        assert reply.message == message
    elif alive:
        assert isinstance(reply, Ack)
        assert reply.message == message
    elif isinstance(message, RunNow):
        # Refused: the run has ended (not running) or is ending (stopped).
        assert isinstance(reply, ActorNotRunning | ActorStopped)
    else:
        # The ending run may still take it (Stops merge); an ended one cannot.
        assert isinstance(reply, Ack | ActorNotRunning)
    if isinstance(message, Restart):
        assert reply.iteration == 0  # acked when the new run has begun
    # A resume goes to the next grid point and a new interval is planned from
    # the last iteration or from now: never a time already past, which would
    # mean a burst of catch-up runs.
    planned = (isinstance(message, Resume) and model.paused) or (
        isinstance(message, ChangeInterval) and not model.paused
    )
    if alive and planned:
        assert reply.next_iteration is not None
        assert reply.next_iteration >= get_clock().wall()


def apply(model: Model, message: Any) -> None:
    """What a delivered control message does to the model."""
    if isinstance(message, Stop | Cancel):
        model.alive = False
        model.paused = False
    elif isinstance(message, Restart):
        model.alive = True
        model.paused = False
        if message.args is not None:
            model.args = message.args
    elif isinstance(message, ChangeInterval):
        assert isinstance(message.schedule, Every)
        model.interval = message.schedule.interval
    elif isinstance(message, Pause) and model.alive:
        model.paused = True
    elif isinstance(message, Resume) and model.alive:
        model.paused = False


async def play(sequence: list[tuple[str, Any]]) -> None:
    subject = Subject()
    loop = subject.loop
    model = Model()
    for kind, value in sequence:
        if kind == "start":
            try:
                loop.start(*value)
            except RuntimeError:
                assert model.alive
            else:
                assert not model.alive
                model.alive, model.paused, model.args = True, False, value
        elif kind == "sleep":
            await asyncio.sleep(value)
        elif kind == "tell":
            loop.tell(value)
            apply(model, value)
        elif kind == "burst":
            for message in value:
                loop.tell(message)
                apply(model, message)
                subject.note_task()  # a burst may queue several runs
        else:
            reply = await ask(subject, value)
            check_reply(value, reply, model)
            apply(model, value)
            if isinstance(value, Stop | Cancel):
                assert not loop.is_running()  # acked once the run has ended
        subject.note_task()
        assert loop.seconds == model.interval

    # Let the last requests take effect: the queued runs go through their
    # after_loop one after the other, then the latest one sets up; then
    # watch the loop for three intervals.
    async with asyncio.timeout(ASK_TIMEOUT):
        if model.alive:
            assert await loop.wait_ready()
        elif (task := loop.get_task()) is not None:
            await asyncio.wait({task})
    await asyncio.sleep(QUIET)
    assert loop.is_running() == model.alive
    status = loop.status()
    assert status.schedule == f"Every(seconds={model.interval})"
    if model.alive:
        assert (status.state is State.PAUSED) == model.paused
    watched_from = len(subject.starts)
    await asyncio.sleep(3 * model.interval + 0.25)
    seen = subject.starts[watched_from:]
    if model.alive and not model.paused:
        assert len(seen) >= 3
        times = [moment for moment, _ in seen]
        assert {b - a for a, b in itertools.pairwise(times)} == {model.interval}
        assert {args for _, args in seen} == {model.args}
        assert loop.next_iteration is not None
    else:
        assert seen == []
        assert loop.next_iteration is None

    # A final cancel ends everything: after_loop ran once per run, no task is left.
    loop.cancel()
    await asyncio.sleep(QUIET)
    subject.note_task()
    assert not loop.is_running()
    assert all(task.done() for task in subject.tasks)
    assert sorted(map(id, subject.after_tasks)) == sorted(map(id, subject.tasks))
    assert asyncio.all_tasks() == {asyncio.current_task()}


@settings(max_examples=100, deadline=None)
@given(st.lists(steps, max_size=25))
def test_random_control_sequences_match_the_model(sequence: list[tuple[str, Any]]) -> None:
    VirtualClock().run(play(sequence))
