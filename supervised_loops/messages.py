"""The messages actors exchange, and the records they answer with.

Everything that changes a running Loop or Supervisor from outside is one of
these immutable values, delivered through the actor's mailbox:

    printer.tell(Stop())                      # fire and forget, never blocks
    ack = await printer.ask(ChangeInterval(seconds=30))
    status = await printer.ask(GetStatus())

*Control* messages (all the classes below that derive from
`ControlMessage`) travel in their own lane: they are handled before any
user message, are never refused because the mailbox is full, and coalesce
(the last ``ChangeInterval`` wins, ``Cancel`` overrides ``Stop``, duplicate
``Stop``/``Cancel``/``RunNow`` merge). Asking a control message returns an
`Ack` once the message has taken effect. Any other value is a *user*
message, handled in order by ``handle_message`` in the actor's own task.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from . import _validate
from ._interval import schedule_from
from .schedule import Schedule

__all__ = [
    "Ack",
    "ActorStatus",
    "Cancel",
    "ChangeInterval",
    "ControlMessage",
    "Exit",
    "ExitKind",
    "GetStatus",
    "Pause",
    "Restart",
    "Resume",
    "RunNow",
    "State",
    "Stop",
]


class ControlMessage:
    """Base class of the control messages; never instantiated directly."""

    __slots__ = ()


@attrs.frozen
class Stop(ControlMessage):
    """Finish the current iteration (if any), start no new one, run ``after_loop``.

    A loop that is sleeping or waiting to retry wakes and ends at once. Asked,
    the reply comes when the run has ended and ``after_loop`` is done.
    """


@attrs.frozen
class Cancel(ControlMessage):
    """Preempt whatever runs (body, sleep, ``before_loop``) and end the run.

    ``after_loop`` still runs, with ``is_being_cancelled()`` true. Asked, the
    reply comes when ``after_loop`` is done.
    """


def _args_tuple(value: Sequence[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else _validate.arguments("args", value)


def _kwargs_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else _validate.keyword_arguments("kwargs", value)


@attrs.frozen
class Restart(ControlMessage):
    """Cancel the run, wait for ``after_loop``, then start again.

    ``args``/``kwargs`` of ``None`` reuse the arguments of the last start. A
    Restart sent to a loop that is not running starts it. Restarts sent
    before the new run begins merge into it (the latest arguments win; a
    Pause sent in between is undone), unless a Stop or Cancel came between
    them: then the last Restart starts yet another run. Asked, the reply
    comes when the new run has begun.

    Raises:
        TypeError: ``args`` is not a sequence (a str is refused: write
            ``args=("abc",)``), or ``kwargs`` is not a mapping with str keys.
    """

    args: tuple[Any, ...] | None = attrs.field(default=None, converter=_args_tuple)
    kwargs: Mapping[str, Any] | None = attrs.field(default=None, converter=_kwargs_mapping)


@attrs.frozen(init=False)
class ChangeInterval(ControlMessage):
    """Replace the schedule.

    Takes the arguments of ``Loop.change_interval``, or a ready ``schedule``,
    and at least one of them must be given: ``ChangeInterval()`` is refused
    rather than guessed at (``Loop.change_interval()`` with no arguments
    keeps discord.ext.tasks' meaning, an interval of 0, by sending
    ``ChangeInterval(seconds=0)``). The arguments are validated here, when
    the message is created, so a bad interval raises in the caller and
    nothing is sent. While the loop sleeps
    the wake-up time is recomputed at once from the last iteration; during an
    iteration the new schedule applies from the next sleep on. Asked, the
    reply carries the new ``next_iteration``.

    Raises:
        TypeError: no argument given; otherwise as ``loop()`` does.
        ValueError: as ``loop()`` does for the same arguments.
    """

    schedule: Schedule

    def __init__(
        self,
        *,
        seconds: float | None = None,
        minutes: float | None = None,
        hours: float | None = None,
        time: dt.time | Sequence[dt.time] | None = None,
        schedule: Schedule | None = None,
    ) -> None:
        if all(part is None for part in (seconds, minutes, hours, time, schedule)):
            raise TypeError(
                "one of 'seconds', 'minutes', 'hours', 'time' or 'schedule' must be"
                " given (got none; seconds=0 runs back to back)"
            )
        built = schedule_from(
            seconds=seconds, minutes=minutes, hours=hours, time=time, schedule=schedule
        )
        self.__attrs_init__(schedule=built)


@attrs.frozen
class Pause(ControlMessage):
    """Let no iteration become due until `Resume`; the current one finishes."""


@attrs.frozen
class Resume(ControlMessage):
    """End a pause: the next iteration is due at the next grid point after now.

    Ticks missed while paused are skipped, never caught up in a burst.
    """


@attrs.frozen
class RunNow(ControlMessage):
    """Run one extra iteration as soon as the current one (if any) ends.

    The schedule's grid does not move. The extra run counts as an iteration
    (``current_loop`` advances, ``count`` includes it). It runs even while
    paused, since it is an explicit request. During a retry wait the pending
    retry runs now instead. Asked, the reply comes when the iteration run for
    it has finished; a RunNow asked while that iteration runs asks for one
    more. Sent to a run that is stopping, it is refused at once: a dead
    letter, and ``ActorStopped`` for an asker.
    """


@attrs.frozen
class GetStatus(ControlMessage):
    """Ask for an `ActorStatus` snapshot; answered in every state."""


class State(enum.StrEnum):
    """What an actor is doing."""

    IDLE = "idle"  #: never started
    STARTING = "starting"  #: running its setup (``before_loop``)
    RUNNING = "running"  #: running an iteration (or a worker's body)
    SLEEPING = "sleeping"  #: waiting for the next due iteration
    RETRYING = "retrying"  #: waiting to retry after a transient error
    PAUSED = "paused"  #: paused by a message
    STOPPING = "stopping"  #: ending: finishing the iteration or running after_loop
    STOPPED = "stopped"  #: ended normally (stopped, or count reached)
    CANCELLED = "cancelled"  #: ended by cancellation
    FAILED = "failed"  #: ended by an escalated error
    QUARANTINED = "quarantined"  #: parked by its supervisor after repeated failures


@attrs.frozen
class ActorStatus:
    """A frozen snapshot of one actor, and of its children for a supervisor.

    Attributes:
        name: the actor's name.
        path: its path in the tree (``"app/pair/a"``), or its name when standalone.
        kind: ``"loop"``, ``"supervisor"`` or ``"worker"``.
        state: what it is doing.
        current_loop: iterations completed in the current run (0 for non-loops).
        next_iteration: when the next iteration is due (aware UTC), or None.
        failures: errors raised by the actor over its lifetime, retried ones included.
        restarts: how many times it was restarted.
        last_error: ``"TypeName: message"`` of the last error, or None.
        schedule: a text form of the schedule in force (loops), else None.
        children: the statuses of a supervisor's children, in start order.
        lease: for an actor with a lease, its state in words
            (``"held fence 3 by host:pid:ab12cd34"``, ``"standby"``), else None.
    """

    name: str
    path: str
    kind: str
    state: State
    current_loop: int = 0
    next_iteration: dt.datetime | None = None
    failures: int = 0
    restarts: int = 0
    last_error: str | None = None
    schedule: str | None = None
    children: tuple[ActorStatus, ...] = ()
    lease: str | None = None


@attrs.frozen
class Ack:
    """The reply to an asked control message, sent once it has taken effect.

    Attributes:
        message: the message acknowledged.
        iteration: the actor's ``current_loop`` when the message took effect.
        next_iteration: when the next iteration is due after it (aware UTC),
            or None when the actor is not scheduled.
    """

    message: ControlMessage
    iteration: int
    next_iteration: dt.datetime | None


class ExitKind(enum.StrEnum):
    """How a run of an actor ended."""

    NORMAL = "normal"  #: stopped, or reached its count, or the body returned
    CANCELLED = "cancelled"  #: cancelled
    FAILED = "failed"  #: an escalated error


@attrs.frozen
class Exit:
    """How a run ended, as reported to the actor's parent.

    Attributes:
        kind: normal, cancelled or failed.
        error: the escalated error when ``kind`` is failed, else None.
        requested: the run ended because a ``Stop``, ``Cancel`` or
            cancellation asked it to, not on its own (a count reached, a
            body that returned, an error). A supervisor leaves a child that
            was asked to stop down, whatever its restart type: the request
            is a decision to respect, not an exit to repair.
    """

    kind: ExitKind
    error: BaseException | None = None
    requested: bool = False
