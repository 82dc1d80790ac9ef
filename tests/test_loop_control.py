"""Every control message in every state of a Loop, in virtual time.

The rules are in docs/messages.md and docs/loops.md, "Control in every state".

One probe loop is driven into each state, a message is asked (or told), and
the test checks what those pages say: what happens to the run, what the
``Ack`` carries (``iteration``, ``next_iteration``), and *when* it arrives.
Where they are silent, the choice documented in the message docstrings
(``supervised_loops.messages``) is what is tested.

The probe's timeline, in virtual seconds from its start (all exact):

* ``before_loop`` runs from 0 to 3;
* iteration 0 runs from 3 to 5 (``current_loop`` becomes 1 at 5); the grid
  is 3, 13, 23, ... (interval 10 s, start to start);
* ``after_loop`` takes 4 s;
* with ``fail_first``, iteration 0 raises ``OSError("boom")`` at 5 and is
  retried 2 s later, at 7 (``ExponentialBackoff(jitter=False)``: the first
  window is 2 s).

The states and the moment each test acts in them:

=============== ============================================================
never started   t=0, ``start()`` never called
before_loop     t=1
iterating       t=4 (iteration 0 runs until 5)
retrying        t=6 (``fail_first``; the retry is due at 7)
sleeping        t=8 (the next iteration is due at 13)
paused          t=8, after ``Pause`` was acked at 8
stopping        t=9, ``stop()`` told at 8: ``after_loop`` runs from 8 to 12
stopped         t=12, after ``Stop`` asked at 8 was acked
=============== ============================================================
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from supervised_loops import (
    Ack,
    ActorNotRunning,
    ActorStatus,
    ActorStopped,
    Cancel,
    ChangeInterval,
    Every,
    ExponentialBackoff,
    GetStatus,
    Loop,
    Pause,
    Restart,
    Resume,
    RunNow,
    State,
    Stop,
    dead_letters,
    loop,
)
from supervised_loops.testing import VirtualClock, virtual_time

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

NEVER = "never started"
BEFORE = "before_loop"
ITERATING = "iterating"
RETRYING = "retrying"
SLEEPING = "sleeping"
PAUSED = "paused"
STOPPING = "stopping"
STOPPED = "stopped"


def at(seconds: float) -> dt.datetime:
    """The virtual wall time ``seconds`` after the start of a test."""
    return START + dt.timedelta(seconds=seconds)


def now() -> float:
    """Virtual seconds since the start of the test."""
    return asyncio.get_running_loop().time()


def in_virtual_time(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario()`` on a fresh virtual clock starting at START."""
    VirtualClock(START).run(scenario())


class Probe:
    """A loop that logs what it does, with the timeline of the module docstring.

    ``log`` holds ``(virtual seconds, what)`` pairs: ``"before"``,
    ``"before done"``, ``"body a"`` (the body started with args ``("a",)``),
    ``"body done"``, ``"after"`` / ``"after cancelled"`` (``after_loop``
    began, with ``is_being_cancelled()`` false / true) and ``"after done"``.
    A step cut short by a cancellation has no ``done`` entry.
    """

    def __init__(self, *, fail_first: bool = False) -> None:
        self.log: list[tuple[float, str]] = []
        self.fail_first = fail_first
        self.calls = 0
        self.loop = Loop(
            self._body,
            schedule=Every(seconds=10),
            backoff=ExponentialBackoff(jitter=False),
            name="probe",
        )
        self.loop.before_loop(self._before)
        self.loop.after_loop(self._after)

    async def _before(self) -> None:
        self.log.append((now(), "before"))
        await asyncio.sleep(3)
        self.log.append((now(), "before done"))

    async def _body(self, *args: str) -> None:
        self.calls += 1
        self.log.append((now(), " ".join(("body", *args))))
        await asyncio.sleep(2)
        if self.fail_first and self.calls == 1:
            raise OSError("boom")
        self.log.append((now(), "body done"))

    async def _after(self) -> None:
        self.log.append((now(), "after cancelled" if self.loop.is_being_cancelled() else "after"))
        await asyncio.sleep(4)
        self.log.append((now(), "after done"))

    def starts(self) -> list[float]:
        """When each body call began."""
        return [t for t, what in self.log if what.startswith("body") and what != "body done"]

    def status(self) -> ActorStatus:
        return self.loop.status()


#: The log of the first run up to the end of iteration 0.
FIRST = [(0.0, "before"), (3.0, "before done"), (3.0, "body a"), (5.0, "body done")]
#: The log of the first run up to the failure of iteration 0 (fail_first).
FAILED_FIRST = [(0.0, "before"), (3.0, "before done"), (3.0, "body a")]


async def reach(state: str) -> Probe:
    """Start a probe and bring it into ``state`` (see the module docstring)."""
    probe = Probe(fail_first=state == RETRYING)
    if state == NEVER:
        return probe
    probe.loop.start("a")
    moments = {BEFORE: 1, ITERATING: 4, RETRYING: 6, SLEEPING: 8, PAUSED: 8, STOPPING: 8}
    await asyncio.sleep(moments.get(state, 8))
    if state == PAUSED:
        assert await probe.loop.ask(Pause()) == Ack(Pause(), 1, None)
    elif state == STOPPING:
        probe.loop.stop()
        await asyncio.sleep(1)
    elif state == STOPPED:
        assert await probe.loop.ask(Stop()) == Ack(Stop(), 1, None)
    expected = {
        NEVER: State.IDLE,
        BEFORE: State.STARTING,
        ITERATING: State.RUNNING,
        RETRYING: State.RETRYING,
        SLEEPING: State.SLEEPING,
        PAUSED: State.PAUSED,
        STOPPING: State.STOPPING,
        STOPPED: State.STOPPED,
    }[state]
    assert probe.status().state is expected
    return probe


async def ask_at(probe: Probe, message: Any) -> tuple[Any, float]:
    """Ask ``message``; return the reply and the virtual time it arrived."""
    reply = await probe.loop.ask(message)
    return reply, now()


# --------------------------------------------------------------------------
# Messages that need a run: refused, as dead letters, when there is none.

NEEDS_A_RUN = [Stop(), Cancel(), Pause(), Resume(), RunNow()]


@pytest.mark.parametrize("state", [NEVER, STOPPED])
@pytest.mark.parametrize("message", NEEDS_A_RUN, ids=repr)
def test_message_needing_a_run_asked_when_not_running_raises_actor_not_running(
    message: Any, state: str
) -> None:
    async def scenario() -> None:
        probe = await reach(state)
        log = list(probe.log)
        with pytest.raises(ActorNotRunning) as caught:
            await probe.loop.ask(message)
        assert str(caught.value) == f"actor 'probe' is not running; {message!r} was not delivered"
        assert dead_letters.count == 1
        assert dead_letters.recent[-1].reason == "not running"
        await asyncio.sleep(30)
        assert probe.log == log  # nothing ran
        assert not probe.loop.is_running()

    in_virtual_time(scenario)


@pytest.mark.parametrize("state", [NEVER, STOPPED])
@pytest.mark.parametrize("message", NEEDS_A_RUN, ids=repr)
def test_message_needing_a_run_told_when_not_running_is_a_dead_letter(
    message: Any, state: str
) -> None:
    async def scenario() -> None:
        probe = await reach(state)
        probe.loop.tell(message)
        assert dead_letters.count == 1
        letter = dead_letters.recent[-1]
        assert (letter.path, letter.message, letter.reason) == (
            "probe",
            repr(message),
            "not running",
        )
        assert not probe.loop.is_running()

    in_virtual_time(scenario)


# --------------------------------------------------------------------------
# Stop


@virtual_time(start=START)
async def test_stop_during_before_loop_lets_it_finish_then_runs_no_iteration() -> None:
    probe = await reach(BEFORE)
    ack, when = await ask_at(probe, Stop())
    assert (ack, when) == (Ack(Stop(), 0, None), 7.0)
    assert probe.log == [(0.0, "before"), (3.0, "before done"), (3.0, "after"), (7.0, "after done")]
    assert probe.status().state is State.STOPPED


@virtual_time(start=START)
async def test_stop_mid_iteration_finishes_the_iteration_then_ends() -> None:
    probe = await reach(ITERATING)
    ack, when = await ask_at(probe, Stop())
    assert (ack, when) == (Ack(Stop(), 1, None), 9.0)
    assert probe.log == [*FIRST, (5.0, "after"), (9.0, "after done")]


@virtual_time(start=START)
async def test_stop_while_sleeping_ends_at_once_without_another_iteration() -> None:
    probe = await reach(SLEEPING)
    ack, when = await ask_at(probe, Stop())
    # after_loop begins at 8, not at the 13 the sleep was heading for.
    assert (ack, when) == (Ack(Stop(), 1, None), 12.0)
    assert probe.log == [*FIRST, (8.0, "after"), (12.0, "after done")]
    assert probe.status().state is State.STOPPED


@virtual_time(start=START)
async def test_stop_method_during_a_day_long_sleep_ends_at_once() -> None:
    ran: list[float] = []

    @loop(hours=24)
    async def daily() -> None:
        ran.append(now())

    daily.start()
    await asyncio.sleep(3600)
    daily.stop()
    await daily.get_task()  # type: ignore[misc]
    assert now() == 3600.0
    assert ran == [0.0]


@virtual_time(start=START)
async def test_stop_during_a_retry_wait_abandons_the_retry_and_keeps_the_error() -> None:
    probe = await reach(RETRYING)
    ack, when = await ask_at(probe, Stop())
    assert (ack, when) == (Ack(Stop(), 0, None), 10.0)
    assert probe.log == [*FAILED_FIRST, (6.0, "after"), (10.0, "after done")]
    status = probe.status()
    assert (status.state, status.last_error, status.failures) == (
        State.STOPPED,
        "OSError: boom",
        1,
    )
    assert not probe.loop.failed()  # a transient error abandoned by a stop is no failure
    await asyncio.sleep(30)
    assert probe.calls == 1  # the retry due at 7 never ran


@virtual_time(start=START)
async def test_stop_while_paused_ends_at_once() -> None:
    probe = await reach(PAUSED)
    ack, when = await ask_at(probe, Stop())
    assert (ack, when) == (Ack(Stop(), 1, None), 12.0)
    assert probe.log == [*FIRST, (8.0, "after"), (12.0, "after done")]


@virtual_time(start=START)
async def test_stop_while_stopping_merges_and_is_acked_when_after_loop_is_done() -> None:
    probe = await reach(STOPPING)
    ack, when = await ask_at(probe, Stop())
    assert (ack, when) == (Ack(Stop(), 1, None), 12.0)
    assert probe.log == [*FIRST, (8.0, "after"), (12.0, "after done")]  # after_loop once


# --------------------------------------------------------------------------
# Cancel


@virtual_time(start=START)
async def test_cancel_during_before_loop_preempts_it_and_runs_after_loop_cancelled() -> None:
    probe = await reach(BEFORE)
    ack, when = await ask_at(probe, Cancel())
    assert (ack, when) == (Ack(Cancel(), 0, None), 5.0)
    assert probe.log == [(0.0, "before"), (1.0, "after cancelled"), (5.0, "after done")]
    assert probe.status().state is State.CANCELLED
    assert probe.loop.get_task().cancelled()  # type: ignore[union-attr]
    assert not probe.loop.is_being_cancelled()  # only true while the run ends


@virtual_time(start=START)
async def test_cancel_mid_iteration_preempts_the_body() -> None:
    probe = await reach(ITERATING)
    ack, when = await ask_at(probe, Cancel())
    assert (ack, when) == (Ack(Cancel(), 0, None), 8.0)
    assert probe.log == [*FIRST[:3], (4.0, "after cancelled"), (8.0, "after done")]
    assert probe.loop.current_loop == 0  # the preempted iteration does not count


@virtual_time(start=START)
async def test_cancel_while_sleeping_preempts_the_sleep() -> None:
    probe = await reach(SLEEPING)
    ack, when = await ask_at(probe, Cancel())
    assert (ack, when) == (Ack(Cancel(), 1, None), 12.0)
    assert probe.log == [*FIRST, (8.0, "after cancelled"), (12.0, "after done")]
    assert probe.status().state is State.CANCELLED


@virtual_time(start=START)
async def test_cancel_during_a_retry_wait_abandons_the_retry_and_keeps_the_error() -> None:
    probe = await reach(RETRYING)
    ack, when = await ask_at(probe, Cancel())
    assert (ack, when) == (Ack(Cancel(), 0, None), 10.0)
    assert probe.log == [*FAILED_FIRST, (6.0, "after cancelled"), (10.0, "after done")]
    assert probe.status().last_error == "OSError: boom"
    assert probe.status().state is State.CANCELLED


@virtual_time(start=START)
async def test_cancel_while_paused_ends_at_once() -> None:
    probe = await reach(PAUSED)
    ack, when = await ask_at(probe, Cancel())
    assert (ack, when) == (Ack(Cancel(), 1, None), 12.0)
    assert probe.log == [*FIRST, (8.0, "after cancelled"), (12.0, "after done")]


@virtual_time(start=START)
async def test_cancel_while_stopping_lets_after_loop_finish() -> None:
    # Once after_loop has begun it runs to its end (its write is not lost):
    # the Cancel is answered when the run has ended, and it ends cancelled.
    # Only a supervisor's hard limit or a forced shutdown cuts it.
    probe = await reach(STOPPING)
    ack, when = await ask_at(probe, Cancel())
    assert (ack, when) == (Ack(Cancel(), 1, None), 12.0)
    assert probe.log == [*FIRST, (8.0, "after"), (12.0, "after done")]
    assert probe.status().state is State.CANCELLED
    assert not probe.loop.is_running()


# --------------------------------------------------------------------------
# Restart


async def check_restart(
    probe: Probe, message: Restart, *, begins: float, first_log: list[tuple[float, str]], body: str
) -> None:
    """Ask ``message``; check the ack, when it came, and the new run's first iteration.

    ``first_log`` is the old run's log up to the new run's begin; the new run
    then runs before_loop for 3 s and its first iteration with ``body``.
    """
    restarts = probe.status().restarts
    ack, when = await ask_at(probe, message)
    # Answered once the new run has planned its first iteration (after its
    # before_loop), with the time that iteration is due.
    assert (ack, when) == (Ack(message, 0, at(begins + 3)), begins + 3)
    assert probe.loop.current_loop == 0
    assert probe.status().restarts == restarts + 1
    await asyncio.sleep(3)
    assert probe.log == [
        *first_log,
        (begins, "before"),
        (begins + 3, "before done"),
        (begins + 3, body),
        (begins + 5, "body done"),
    ]
    assert probe.loop.current_loop == 1
    await asyncio.sleep(10)
    assert probe.starts()[-1] == begins + 13  # the new run's grid
    probe.loop.cancel()


@virtual_time(start=START)
async def test_restart_before_start_starts_the_loop_with_the_new_args() -> None:
    probe = await reach(NEVER)
    await check_restart(probe, Restart(("b",)), begins=0.0, first_log=[], body="body b")


@virtual_time(start=START)
async def test_restart_without_args_before_start_starts_with_no_args() -> None:
    probe = await reach(NEVER)
    await check_restart(probe, Restart(), begins=0.0, first_log=[], body="body")


@virtual_time(start=START)
async def test_restart_during_before_loop_cancels_it_waits_for_after_loop_and_starts_again() -> (
    None
):
    probe = await reach(BEFORE)
    old = [(0.0, "before"), (1.0, "after cancelled"), (5.0, "after done")]
    await check_restart(probe, Restart(("b",)), begins=5.0, first_log=old, body="body b")


@virtual_time(start=START)
async def test_restart_mid_iteration_cancels_the_body_and_starts_again_from_zero() -> None:
    probe = await reach(ITERATING)
    old = [*FIRST[:3], (4.0, "after cancelled"), (8.0, "after done")]
    await check_restart(probe, Restart(("b",)), begins=8.0, first_log=old, body="body b")


@virtual_time(start=START)
async def test_restart_while_sleeping_cancels_the_sleep_and_starts_again() -> None:
    probe = await reach(SLEEPING)
    old = [*FIRST, (8.0, "after cancelled"), (12.0, "after done")]
    await check_restart(probe, Restart(("b",)), begins=12.0, first_log=old, body="body b")


@virtual_time(start=START)
async def test_restart_during_a_retry_wait_abandons_the_retry_and_starts_again() -> None:
    probe = await reach(RETRYING)
    old = [*FAILED_FIRST, (6.0, "after cancelled"), (10.0, "after done")]
    await check_restart(probe, Restart(("b",)), begins=10.0, first_log=old, body="body b")


@virtual_time(start=START)
async def test_restart_while_paused_starts_a_run_that_is_not_paused() -> None:
    probe = await reach(PAUSED)
    old = [*FIRST, (8.0, "after cancelled"), (12.0, "after done")]
    await check_restart(probe, Restart(("b",)), begins=12.0, first_log=old, body="body b")
    assert probe.status().state is not State.PAUSED


@virtual_time(start=START)
async def test_restart_while_stopping_lets_after_loop_finish_then_starts_again() -> None:
    # An after_loop already running is not cut short: the new run begins
    # once it has ended.
    probe = await reach(STOPPING)
    old = [*FIRST, (8.0, "after"), (12.0, "after done")]
    await check_restart(probe, Restart(("b",)), begins=12.0, first_log=old, body="body b")


@virtual_time(start=START)
async def test_restart_when_stopped_starts_again_with_the_new_args() -> None:
    probe = await reach(STOPPED)
    old = [*FIRST, (8.0, "after"), (12.0, "after done")]
    await check_restart(probe, Restart(("b",)), begins=12.0, first_log=old, body="body b")


@pytest.mark.parametrize(
    ("state", "begins", "old"),
    [
        (BEFORE, 5.0, [(0.0, "before"), (1.0, "after cancelled"), (5.0, "after done")]),
        (ITERATING, 8.0, [*FIRST[:3], (4.0, "after cancelled"), (8.0, "after done")]),
        (SLEEPING, 12.0, [*FIRST, (8.0, "after cancelled"), (12.0, "after done")]),
        (RETRYING, 10.0, [*FAILED_FIRST, (6.0, "after cancelled"), (10.0, "after done")]),
        (PAUSED, 12.0, [*FIRST, (8.0, "after cancelled"), (12.0, "after done")]),
        (STOPPING, 12.0, [*FIRST, (8.0, "after"), (12.0, "after done")]),
        (STOPPED, 12.0, [*FIRST, (8.0, "after"), (12.0, "after done")]),
    ],
)
def test_restart_without_args_reuses_the_last_start_arguments(
    state: str, begins: float, old: list[tuple[float, str]]
) -> None:
    async def scenario() -> None:
        probe = await reach(state)
        await check_restart(probe, Restart(), begins=begins, first_log=old, body="body a")

    in_virtual_time(scenario)


@virtual_time(start=START)
async def test_restarts_sent_before_the_new_run_begins_merge_and_the_latest_args_win() -> None:
    probe = await reach(SLEEPING)
    first = asyncio.ensure_future(probe.loop.ask(Restart(("b",))))
    second = asyncio.ensure_future(probe.loop.ask(Restart(("c",))))
    assert await first == Ack(Restart(("b",)), 0, at(15.0))
    assert await second == Ack(Restart(("c",)), 0, at(15.0))
    assert now() == 15.0
    await asyncio.sleep(1)
    assert probe.log[-5:] == [
        (8.0, "after cancelled"),
        (12.0, "after done"),
        (12.0, "before"),
        (15.0, "before done"),
        (15.0, "body c"),
    ]
    assert probe.status().restarts == 1  # one new run, not two
    probe.loop.cancel()


@virtual_time(start=START)
async def test_restart_after_a_stop_of_a_pending_restart_starts_again() -> None:
    # Restart, Stop, Restart sent in one go: the last word is "start again".
    probe = await reach(NEVER)
    probe.loop.tell(Restart(("b",)))
    probe.loop.stop()
    ack = await probe.loop.ask(Restart(("c",)))
    assert ack == Ack(Restart(("c",)), 0, at(7.0))
    assert now() == 7.0
    await asyncio.sleep(1)
    assert probe.loop.is_running()
    assert probe.log == [
        # The stopped run never got to before_loop; the Restart cancels it.
        (0.0, "after cancelled"),
        (4.0, "after done"),
        (4.0, "before"),
        (7.0, "before done"),
        (7.0, "body c"),
    ]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_restart_after_a_pause_of_a_pending_restart_starts_unpaused() -> None:
    probe = await reach(SLEEPING)
    probe.loop.restart("b")
    probe.loop.pause()
    probe.loop.restart("c")
    await asyncio.sleep(10)  # the new run begins at 12 and iterates at 15
    assert probe.status().state is State.SLEEPING
    assert probe.starts() == [3.0, 15.0]
    assert probe.log[-2] == (15.0, "body c")
    probe.loop.cancel()


@virtual_time(start=START)
async def test_restart_method_with_kwargs_passes_them_to_the_new_run() -> None:
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    @loop(seconds=10)
    async def job(*args: Any, **kwargs: Any) -> None:
        seen.append((args, kwargs))

    job.start(1, key="old")
    await asyncio.sleep(5)
    job.restart(2, key="new")
    await asyncio.sleep(1)
    job.restart()  # reuses (2,), {"key": "new"}
    await asyncio.sleep(1)
    assert seen == [((1,), {"key": "old"}), ((2,), {"key": "new"}), ((2,), {"key": "new"})]
    assert job.status().restarts == 2
    await job.ask(Stop())


# --------------------------------------------------------------------------
# ChangeInterval


@virtual_time(start=START)
async def test_change_interval_before_start_is_acked_at_once_and_used_by_the_first_run() -> None:
    probe = await reach(NEVER)
    ack, when = await ask_at(probe, ChangeInterval(seconds=6))
    assert (ack, when) == (Ack(ChangeInterval(seconds=6), 0, None), 0.0)
    assert probe.loop.seconds == 6
    probe.loop.start("a")
    await asyncio.sleep(16)
    assert probe.starts() == [3.0, 9.0, 15.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_during_before_loop_is_acked_when_the_first_run_is_planned() -> None:
    probe = await reach(BEFORE)
    ack, when = await ask_at(probe, ChangeInterval(seconds=6))
    assert (ack, when) == (Ack(ChangeInterval(seconds=6), 0, at(3)), 3.0)
    await asyncio.sleep(13)
    assert probe.starts() == [3.0, 9.0, 15.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_during_an_iteration_applies_from_the_next_sleep() -> None:
    probe = await reach(ITERATING)
    ack, when = await ask_at(probe, ChangeInterval(seconds=6))
    # Acked when the iteration (3 to 5) ends and the next is planned: 3 + 6.
    assert (ack, when) == (Ack(ChangeInterval(seconds=6), 1, at(9)), 5.0)
    await asyncio.sleep(11)
    assert probe.starts() == [3.0, 9.0, 15.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_while_sleeping_retimes_the_wake_up_at_once_from_the_last_iteration() -> (  # noqa: E501
    None
):
    probe = await reach(SLEEPING)  # last iteration began at 3; due at 13
    ack, when = await ask_at(probe, ChangeInterval(seconds=6))
    assert (ack, when) == (Ack(ChangeInterval(seconds=6), 1, at(9)), 8.0)
    assert probe.status().next_iteration == at(9)
    await asyncio.sleep(14)
    assert probe.starts() == [3.0, 9.0, 15.0, 21.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_while_sleeping_to_one_already_elapsed_runs_at_once() -> None:
    probe = await reach(SLEEPING)
    # 3 + 4 = 7 has passed: the next run is due now, and the new grid starts here
    # (no catching up of points of a grid that did not exist).
    ack, when = await ask_at(probe, ChangeInterval(seconds=4))
    assert (ack, when) == (Ack(ChangeInterval(seconds=4), 1, at(8)), 8.0)
    await asyncio.sleep(9)
    assert probe.starts() == [3.0, 8.0, 12.0, 16.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_to_a_longer_one_while_sleeping_postpones_the_wake_up() -> None:
    probe = await reach(SLEEPING)
    ack, when = await ask_at(probe, ChangeInterval(minutes=1))
    assert (ack, when) == (Ack(ChangeInterval(minutes=1), 1, at(63)), 8.0)
    await asyncio.sleep(60)
    assert probe.starts() == [3.0, 63.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_during_a_retry_wait_keeps_the_pending_retry() -> None:
    probe = await reach(RETRYING)  # the retry is due at 7
    ack, when = await ask_at(probe, ChangeInterval(seconds=6))
    assert (ack, when) == (Ack(ChangeInterval(seconds=6), 0, at(7)), 6.0)
    await asyncio.sleep(13)
    # The retry runs at 7 as planned. No iteration has succeeded yet, so the
    # first tick of the new grid (3 + 0 x 6) has passed: the grid is anchored
    # at the change, 6, and the regular runs follow at 12 and 18.
    assert probe.starts() == [3.0, 7.0, 12.0, 18.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_while_paused_is_acked_at_once_and_used_on_resume() -> None:
    probe = await reach(PAUSED)
    ack, when = await ask_at(probe, ChangeInterval(seconds=6))
    assert (ack, when) == (Ack(ChangeInterval(seconds=6), 1, None), 8.0)
    await asyncio.sleep(12)
    assert probe.starts() == [3.0]
    # Resumed at 20: the new grid from the last iteration is 3, 9, 15, 21, ...
    assert await probe.loop.ask(Resume()) == Ack(Resume(), 1, at(21))
    await asyncio.sleep(8)
    assert probe.starts() == [3.0, 21.0, 27.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_while_stopping_is_acked_when_the_run_ends_and_kept() -> None:
    probe = await reach(STOPPING)
    ack, when = await ask_at(probe, ChangeInterval(seconds=6))
    assert (ack, when) == (Ack(ChangeInterval(seconds=6), 1, None), 12.0)
    assert probe.loop.seconds == 6
    probe.loop.start("a")
    await asyncio.sleep(10)
    assert probe.starts() == [3.0, 15.0, 21.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_when_stopped_is_acked_at_once_and_used_by_the_next_start() -> None:
    probe = await reach(STOPPED)
    ack, when = await ask_at(probe, ChangeInterval(seconds=6))
    assert (ack, when) == (Ack(ChangeInterval(seconds=6), 1, None), 12.0)
    probe.loop.start("a")
    await asyncio.sleep(10)
    assert probe.starts() == [3.0, 15.0, 21.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_change_interval_method_raises_in_the_caller_and_sends_nothing() -> None:
    probe = await reach(SLEEPING)
    with pytest.raises(ValueError):
        probe.loop.change_interval(seconds=-1)
    assert probe.loop.seconds == 10
    await asyncio.sleep(6)
    assert probe.starts() == [3.0, 13.0]
    probe.loop.cancel()


# --------------------------------------------------------------------------
# Pause


@virtual_time(start=START)
async def test_pause_during_before_loop_is_acked_at_once_and_no_iteration_runs() -> None:
    probe = await reach(BEFORE)
    ack, when = await ask_at(probe, Pause())
    assert (ack, when) == (Ack(Pause(), 0, None), 1.0)
    await asyncio.sleep(100)
    assert probe.log == [(0.0, "before"), (3.0, "before done")]
    assert probe.status().state is State.PAUSED
    assert probe.loop.next_iteration is None
    probe.loop.cancel()


@virtual_time(start=START)
async def test_pause_mid_iteration_is_acked_at_once_and_the_iteration_finishes() -> None:
    probe = await reach(ITERATING)
    ack, when = await ask_at(probe, Pause())
    assert (ack, when) == (Ack(Pause(), 0, None), 4.0)
    await asyncio.sleep(100)
    assert probe.log == FIRST
    assert probe.status().state is State.PAUSED
    probe.loop.cancel()


@virtual_time(start=START)
async def test_pause_while_sleeping_means_no_iteration_while_paused() -> None:
    probe = await reach(SLEEPING)
    ack, when = await ask_at(probe, Pause())
    assert (ack, when) == (Ack(Pause(), 1, None), 8.0)
    await asyncio.sleep(100)
    assert probe.log == FIRST
    status = probe.status()
    assert (status.state, status.next_iteration) == (State.PAUSED, None)
    probe.loop.cancel()


@virtual_time(start=START)
async def test_pause_during_a_retry_wait_holds_the_retry() -> None:
    probe = await reach(RETRYING)
    ack, when = await ask_at(probe, Pause())
    assert (ack, when) == (Ack(Pause(), 0, None), 6.0)
    await asyncio.sleep(100)
    assert probe.calls == 1  # the retry due at 7 did not run
    assert probe.status().state is State.PAUSED
    probe.loop.cancel()


@virtual_time(start=START)
async def test_pause_while_paused_is_acked_at_once_again() -> None:
    probe = await reach(PAUSED)
    ack, when = await ask_at(probe, Pause())
    assert (ack, when) == (Ack(Pause(), 1, None), 8.0)
    assert probe.status().state is State.PAUSED
    probe.loop.cancel()


@virtual_time(start=START)
async def test_pause_while_stopping_is_acked_and_changes_nothing() -> None:
    probe = await reach(STOPPING)
    ack, when = await ask_at(probe, Pause())
    assert (ack, when) == (Ack(Pause(), 1, None), 9.0)
    await probe.loop.get_task()  # type: ignore[misc]
    assert probe.log == [*FIRST, (8.0, "after"), (12.0, "after done")]
    assert probe.status().state is State.STOPPED


# --------------------------------------------------------------------------
# Resume


@pytest.mark.parametrize(
    ("state", "iteration", "upcoming"),
    [
        (BEFORE, 0, None),  # not planned yet
        (ITERATING, 0, at(13)),
        (SLEEPING, 1, at(13)),
        (RETRYING, 0, at(7)),  # the pending retry
        (STOPPING, 1, None),
    ],
)
def test_resume_when_not_paused_is_acked_at_once_and_changes_nothing(
    state: str, iteration: int, upcoming: dt.datetime | None
) -> None:
    async def scenario() -> None:
        probe = await reach(state)
        before = probe.status()
        ack, when = await ask_at(probe, Resume())
        assert (ack, when) == (Ack(Resume(), iteration, upcoming), before_time[state])
        assert probe.status() == before
        probe.loop.cancel()

    before_time = {BEFORE: 1.0, ITERATING: 4.0, SLEEPING: 8.0, RETRYING: 6.0, STOPPING: 9.0}
    in_virtual_time(scenario)


@virtual_time(start=START)
async def test_resume_makes_the_next_iteration_due_at_the_next_grid_point_without_a_burst() -> None:
    probe = await reach(PAUSED)  # paused at 8; ticks 13, 23 are missed
    await asyncio.sleep(23)
    ack, when = await ask_at(probe, Resume())
    assert (ack, when) == (Ack(Resume(), 1, at(33)), 31.0)
    assert probe.status().state is State.SLEEPING
    await asyncio.sleep(13)
    assert probe.starts() == [3.0, 33.0, 43.0]  # no catch-up of 13 and 23


@virtual_time(start=START)
async def test_resume_on_a_grid_point_runs_at_once() -> None:
    probe = await reach(PAUSED)
    await asyncio.sleep(15)  # now 23, a grid point
    ack, when = await ask_at(probe, Resume())
    assert (ack, when) == (Ack(Resume(), 1, at(23)), 23.0)
    await asyncio.sleep(1)
    assert probe.starts() == [3.0, 23.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_resume_after_a_pause_during_a_retry_runs_at_the_next_grid_point() -> None:
    probe = await reach(RETRYING)
    await probe.loop.ask(Pause())
    await asyncio.sleep(10)
    ack, when = await ask_at(probe, Resume())
    # The held retry is not run in a burst at 16: the next grid point is 23.
    assert (ack, when) == (Ack(Resume(), 0, at(23)), 16.0)
    await asyncio.sleep(10)
    assert probe.starts() == [3.0, 23.0]
    assert probe.loop.current_loop == 1
    probe.loop.cancel()


@virtual_time(start=START)
async def test_resume_after_a_pause_during_before_loop_runs_the_first_iteration_on_the_grid() -> (
    None
):
    probe = await reach(BEFORE)
    await probe.loop.ask(Pause())
    await asyncio.sleep(19)
    ack, when = await ask_at(probe, Resume())
    assert (ack, when) == (Ack(Resume(), 0, at(23)), 20.0)
    await asyncio.sleep(4)
    assert probe.starts() == [23.0]
    probe.loop.cancel()


# --------------------------------------------------------------------------
# RunNow


@virtual_time(start=START)
async def test_run_now_during_before_loop_adds_one_iteration_before_the_first_regular_one() -> None:
    probe = await reach(BEFORE)
    ack, when = await ask_at(probe, RunNow())
    # The extra run goes first (3 to 5); the regular one due at 3 follows at
    # once (overdue, hence the past next_iteration), then the grid: 13, 23.
    assert (ack, when) == (Ack(RunNow(), 1, at(3)), 5.0)
    await asyncio.sleep(9)
    assert probe.starts() == [3.0, 5.0, 13.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_run_now_mid_iteration_runs_one_more_as_soon_as_it_ends() -> None:
    probe = await reach(ITERATING)
    ack, when = await ask_at(probe, RunNow())
    assert (ack, when) == (Ack(RunNow(), 2, at(13)), 7.0)
    await asyncio.sleep(7)
    assert probe.starts() == [3.0, 5.0, 13.0]
    probe.loop.cancel()


@virtual_time(start=START)
async def test_run_now_while_sleeping_runs_one_extra_iteration_without_shifting_the_grid() -> None:
    probe = await reach(SLEEPING)
    ack, when = await ask_at(probe, RunNow())
    assert (ack, when) == (Ack(RunNow(), 2, at(13)), 10.0)
    await asyncio.sleep(16)
    assert probe.starts() == [3.0, 8.0, 13.0, 23.0]
    assert probe.loop.current_loop == 4  # the extra run counts


@virtual_time(start=START)
async def test_run_now_during_a_retry_wait_runs_the_retry_now_and_is_acked_after_it() -> None:
    probe = await reach(RETRYING)
    ack, when = await ask_at(probe, RunNow())
    assert (ack, when) == (Ack(RunNow(), 1, at(13)), 8.0)
    await asyncio.sleep(6)
    assert probe.starts() == [3.0, 6.0, 13.0]  # the retry ran at 6 instead of 7
    probe.loop.cancel()


@virtual_time(start=START)
async def test_run_now_while_paused_runs_once_and_stays_paused() -> None:
    probe = await reach(PAUSED)
    ack, when = await ask_at(probe, RunNow())
    assert (ack, when) == (Ack(RunNow(), 2, None), 10.0)
    await asyncio.sleep(50)
    assert probe.starts() == [3.0, 8.0]
    assert probe.status().state is State.PAUSED
    probe.loop.cancel()


@virtual_time(start=START)
async def test_run_now_while_stopping_is_refused_at_once_as_a_dead_letter() -> None:
    probe = await reach(STOPPING)
    with pytest.raises(ActorStopped):
        await probe.loop.ask(RunNow())
    assert now() == 9.0
    probe.loop.run_now()  # told: not silently lost either
    assert [(d.message, d.reason) for d in dead_letters.recent] == [
        ("RunNow()", "stopping"),
        ("RunNow()", "stopping"),
    ]
    await probe.loop.get_task()  # type: ignore[misc]
    assert probe.starts() == [3.0]


@virtual_time(start=START)
async def test_run_now_asked_during_an_extra_iteration_waits_for_its_own_iteration() -> None:
    probe = await reach(SLEEPING)
    first = asyncio.ensure_future(probe.loop.ask(RunNow()))
    await asyncio.sleep(1)  # the extra iteration runs from 8 to 10
    second = asyncio.ensure_future(probe.loop.ask(RunNow()))
    assert await first == Ack(RunNow(), 2, at(13))
    assert now() == 10.0
    assert await second == Ack(RunNow(), 3, at(13))
    assert now() == 12.0
    assert probe.starts() == [3.0, 8.0, 10.0]
    probe.loop.cancel()


# --------------------------------------------------------------------------
# GetStatus


@pytest.mark.parametrize(
    ("state", "fields"),
    [
        (NEVER, {"state": State.IDLE}),
        (BEFORE, {"state": State.STARTING}),
        (ITERATING, {"state": State.RUNNING, "next_iteration": at(13)}),
        (
            RETRYING,
            {
                "state": State.RETRYING,
                "next_iteration": at(7),
                "failures": 1,
                "last_error": "OSError: boom",
            },
        ),
        (SLEEPING, {"state": State.SLEEPING, "current_loop": 1, "next_iteration": at(13)}),
        (PAUSED, {"state": State.PAUSED, "current_loop": 1}),
        (STOPPING, {"state": State.STOPPING, "current_loop": 1}),
        (STOPPED, {"state": State.STOPPED, "current_loop": 1}),
    ],
)
def test_get_status_is_answered_at_once_in_every_state(state: str, fields: dict[str, Any]) -> None:
    async def scenario() -> None:
        probe = await reach(state)
        moment = now()
        status = await probe.loop.ask(GetStatus())
        assert now() == moment
        assert status == ActorStatus(
            name="probe", path="probe", kind="loop", schedule="Every(seconds=10.0)", **fields
        )
        assert status == probe.status()
        if probe.loop.is_running():
            probe.loop.cancel()

    in_virtual_time(scenario)


@virtual_time()
async def test_stop_during_an_iteration_that_then_fails_transiently_ends_normally() -> None:
    # The retry the error would get is abandoned, as a Stop during a retry
    # wait abandons it: no error handler, not failed(), the error in status.
    calls: list[float] = []
    handled: list[BaseException] = []
    after: list[bool] = []

    @loop(seconds=10)
    async def job() -> None:
        calls.append(asyncio.get_running_loop().time())
        await asyncio.sleep(1)
        raise OSError("link down")

    @job.error
    async def on_error(error: BaseException) -> None:
        handled.append(error)

    @job.after_loop
    async def done() -> None:
        after.append(job.is_being_cancelled())

    task = job.start()
    await asyncio.sleep(0.5)
    ack = await job.ask(Stop())
    assert ack == Ack(Stop(), 0, None)
    assert asyncio.get_running_loop().time() == 1.0
    assert calls == [0.0]
    assert handled == []
    assert after == [False]
    assert not job.failed()
    assert task.done()
    assert not task.cancelled()
    assert task.exception() is None
    status = job.status()
    assert status.state is State.STOPPED
    assert status.last_error == "OSError: link down"
    assert status.failures == 1


@virtual_time()
async def test_cancel_swallowed_by_the_body_still_ends_the_run_when_the_body_returns() -> None:
    # A body may lose a cancellation (Python 3.11's wait_for can, in a race):
    # the Cancel must still end the run once the body returns, not be forgotten.
    starts: list[float] = []
    after: list[tuple[float, bool]] = []

    @loop(seconds=10)
    async def job() -> None:
        starts.append(asyncio.get_running_loop().time())
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(1)  # swallowed: the body goes on, then returns

    @job.after_loop
    async def done() -> None:
        after.append((asyncio.get_running_loop().time(), job.is_being_cancelled()))

    task = job.start()
    await asyncio.sleep(2)
    job.cancel()
    await asyncio.sleep(30)
    assert starts == [0.0]
    assert after == [(3.0, True)]
    assert task.cancelled()
    assert job.status().state is State.CANCELLED
    assert job.current_loop == 1
