"""``Loop`` and ``loop()``: periodic work as an actor, a drop-in for discord.ext.tasks.

A Loop runs its body on a schedule in one asyncio task. Everything that
steers it from outside is a message (see `supervised_loops.messages`);
the familiar methods (``stop()``, ``cancel()``, ``restart()``,
``change_interval()``) only build and send those messages.

How one run goes:

    start() ─▶ before_loop ─▶ ┌─ wait until due (or a message) ◀──────────┐
                              │  run the body                             │
                              │  ├─ ok: advance the schedule ─────────────┘
                              │  ├─ transient error: retry after a backoff
                              │  └─ other error: error handler, fail
                              └─▶ after_loop ─▶ report the exit to the parent

Underneath: `loops.run` (the run record), `loops.plan` (where the next
iteration falls, pure), `loops.iteration` and `loops.overlap` (the
iterations and retries), `loops.engine` (runs, hooks, escalation),
`loops.control` (the control-message handlers and the methods that send
them), `loops.binding` (per-instance copies) and `loops.options` (checks).
This module is the public face: construction, hooks, exception types and
the discord.ext.tasks methods. A Loop is generic over its body
(``Loop[LF]``), so ``start()`` is typed from the body's parameters.

May import: every other ``loops`` module, ``core`` and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar, overload

from .. import _validate
from .._interval import required_schedule, schedule_from
from ..backoff import (
    DEFAULT_RETRY_EXCEPTIONS,
    ExponentialBackoff,
    RetryRule,
    retry_rule,
    retryable,
)
from ..core.actor import DEFAULT_MAILBOX_SIZE, Actor
from ..core.parent import refuse_orphan_start
from ..leases.gate import Lease, LeaseGate, keeper_of, loop_lease
from ..leases.keeper import LeaseKeeper
from ..messages import (
    Restart,
)
from ..schedule import DailyAt, Every, Schedule
from .binding import bound_for
from .control import LoopControl
from .options import Missed, check_options, overlap_limit
from .run import LoopRun as Run

__all__ = ["Loop", "loop"]

CoroFunction: TypeAlias = Callable[..., Awaitable[Any]]

#: The type of a Loop's body, as in discord.ext.tasks: ``Loop[LF]``.
LF = TypeVar("LF", bound=Callable[..., Coroutine[Any, Any, Any]])
P = ParamSpec("P")
R = TypeVar("R")


def _coroutine_function(name: str, function: Any) -> CoroFunction:
    return _validate.coroutine_function(name, function)


class Loop(LoopControl, Generic[LF]):
    """A periodic background task that is also an actor.

    Create one with the `loop` decorator. All discord.ext.tasks names
    work as documented there; the differences are improvements listed in the
    docs (stop() during a long sleep ends at once, change_interval works in
    every state, hooks are supervised, ...).

    Used as a method decorator in a class, each instance gets its own Loop
    (``self.printer``), with a copy of every customisation made on the class
    attribute (hooks, exception types, schedule) at the time of first access.
    """

    __slots__ = ()

    def __init__(
        self,
        coro: LF,
        *,
        schedule: Schedule,
        count: int | None = None,
        reconnect: bool = True,
        name: str | None = None,
        missed: Missed = "catch_up",
        overlap: bool | int = False,
        wait_first: bool = False,
        max_consecutive_failures: int | None = None,
        backoff: ExponentialBackoff | None = None,
        retry: Iterable[RetryRule] = (),
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
        lease: Lease | str | bool | None = None,
    ) -> None:
        self._coro = _coroutine_function("loop", coro)
        schedule = required_schedule(schedule)  # TypeError for a non-schedule, None too
        rules = check_options(
            count=count,
            reconnect=reconnect,
            name=name,
            missed=missed,
            overlap=overlap,
            wait_first=wait_first,
            max_consecutive_failures=max_consecutive_failures,
            backoff=backoff,
            retry=retry,
            mailbox_size=mailbox_size,
        )
        lease_spec = loop_lease(lease, overlap)
        Actor.__init__(self, coro.__name__ if name is None else name, mailbox_size=mailbox_size)
        if lease_spec is not None:  # the body runs only where the lease is held
            self._coro = LeaseGate(lease_spec, self).wrap(self._coro)
        self._reset_runs()
        self._schedule = schedule
        self._count = count
        self._reconnect = reconnect
        self._missed: Missed = missed
        self._overlap = overlap_limit(overlap)
        self._wait_first = wait_first
        self._max_consecutive_failures = max_consecutive_failures
        self._backoff = backoff  # None: the supervisor's backoff, else the default
        self._retry_rules = rules
        self._exception_types: tuple[type[BaseException], ...] = DEFAULT_RETRY_EXCEPTIONS
        self._before: CoroFunction | None = None
        self._after: CoroFunction | None = None
        self._error: CoroFunction | None = None
        self._attr_name: str | None = None
        # The binding (loops.binding.BINDING): each copy sets its own.
        self._instance = self._instances = self._recent = None

    # -- per-instance binding ---------------------------------------------

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr_name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Loop[LF]: ...

    @overload
    def __get__(
        self: Loop[Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]],
        obj: object,
        objtype: type | None = None,
    ) -> Loop[Callable[P, Coroutine[Any, Any, R]]]: ...

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        """The Loop itself from the class; from an instance, that instance's own copy."""
        return self if obj is None else bound_for(self, obj)

    # -- calling the body directly ------------------------------------------

    async def __call__(
        self: Loop[Callable[P, Coroutine[Any, Any, R]]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Call the body once, outside the schedule (and any lease), and return its result.

        It runs in the caller's task: cancelling the call cancels this body
        call only; the loop's runs are not affected.
        """
        result: R
        body = getattr(self._coro, "__wrapped__", self._coro)
        if self._instance is not None:
            result = await body(self._instance, *args, **kwargs)
        else:
            result = await body(*args, **kwargs)
        return result

    # -- the lease (leases/gate.py) ---------------------------------------------

    def _use_gate(self, gate: LeaseGate) -> None:
        self._coro = gate.wrap(self._coro, what=f"loop {self.name!r}", overlap=self._overlap)

    @property
    def lease(self) -> LeaseKeeper | None:
        """The lease keeper (fence, holder, state, expires_in(), ensure()), or None."""
        return keeper_of(self._coro)

    # -- hooks ----------------------------------------------------------------

    def before_loop(self, coro: CoroFunction) -> CoroFunction:
        """Register a coroutine to run before the first iteration of each run.

        The next sibling in a supervision tree starts only once it returns
        (this is the Loop's readiness). An exception it raises is a failure
        of the loop: the error handler runs and ``failed()`` becomes true.

        Raises:
            TypeError: ``coro`` is not a coroutine function.
        """
        self._before = _coroutine_function("before_loop", coro)
        return coro

    def after_loop(self, coro: CoroFunction) -> CoroFunction:
        """Register a coroutine to run once at the end of each run, whatever ended it.

        Check ``is_being_cancelled()`` inside it to tell cancellation apart.

        Raises:
            TypeError: ``coro`` is not a coroutine function.
        """
        self._after = _coroutine_function("after_loop", coro)
        return coro

    def error(self, coro: CoroFunction) -> CoroFunction:
        """Register a coroutine called with the error that ends the loop.

        It receives the exception alone (``self`` first in a class), as in
        discord.ext.tasks; the start arguments are not passed. The default
        logs the error with its traceback on the ``supervised_loops`` logger.

        Raises:
            TypeError: ``coro`` is not a coroutine function.
        """
        self._error = _coroutine_function("error", coro)
        return coro

    # -- exception types --------------------------------------------------------

    def add_exception_type(self, *exceptions: type[BaseException]) -> None:
        """Add exception classes that are retried with backoff (``reconnect=True``).

        Raises:
            TypeError: an argument is not an exception class.
            ValueError: an argument is KeyboardInterrupt, SystemExit,
                GeneratorExit or CancelledError, which are never retried.
        """
        for index, exception in enumerate(exceptions):
            retryable(f"exceptions[{index}]", exception)
        self._exception_types = (*self._exception_types, *exceptions)

    def remove_exception_type(self, *exceptions: type[BaseException]) -> bool:
        """Stop retrying the given exception classes.

        Returns:
            True if every class given was in the list and is now removed.
        """
        before = len(self._exception_types)
        self._exception_types = tuple(e for e in self._exception_types if e not in exceptions)
        return len(self._exception_types) == before - len(exceptions)

    def clear_exception_types(self) -> None:
        """Retry no exception class (rules given with ``retry=`` still apply)."""
        self._exception_types = ()

    def add_retry_rule(self, rule: RetryRule) -> None:
        """Add a retry rule (class plus predicate, own backoff); rules match in order.

        Raises:
            TypeError: ``rule`` is not a RetryRule.
        """
        retry_rule("rule", rule)
        self._retry_rules = (*self._retry_rules, rule)

    # -- discord.ext.tasks control methods ------------------------------------

    def start(
        self: Loop[Callable[P, Coroutine[Any, Any, Any]]], *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Task[None]:
        """Start the loop in the running event loop; return its task.

        After ``stop()`` or ``cancel()`` a new start is accepted at once: the
        new run begins as soon as the previous one has ended.

        Raises:
            RuntimeError: the loop is already running (and not ending), or
                no event loop is running.
            ActorNotRunning: its supervisor is stopped (it would run outside its tree).
            TypeError: the loop is a method's, taken from the class instead
                of an instance (``MyCog.printer`` rather than ``cog.printer``).
        """
        self._refuse_unbound_method()
        if self._parent is not None:  # a standalone loop has no supervisor to be stopped
            refuse_orphan_start(self, "start()")
        run = self._run
        if run is not None and not run.task.done() and not run.ending_or_replaced():
            raise RuntimeError(
                f"loop {self.path!r} is already running; "
                "stop() or cancel() it first, or call restart()"
            )
        new: Run = self._launch(args, kwargs, restart=False)
        return new.task

    def _start_supervised(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool
    ) -> int:
        self._refuse_unbound_method()
        run: Run = self._launch(args, kwargs, restart=restart)
        return run.run_id

    def _refuse_unbound_method(self) -> None:
        # A loop defined in a class body and taken from the class has no instance
        # to pass as `self`: say so now, not as a TypeError once it runs.
        if self._attr_name is None or self._instance is not None:
            return
        parameters = list(inspect.signature(self._coro).parameters)
        if parameters[:1] == ["self"]:
            raise TypeError(
                f"loop {self._attr_name!r} is a method's: start or supervise an "
                f"instance's loop (instance.{self._attr_name}), not the class attribute"
            )

    async def wait_ready(self) -> bool:
        """Wait until the latest run has finished ``before_loop``.

        This is the Loop's readiness: a supervisor starts the next sibling
        only after it. Cancelling the wait does not affect the loop.

        Returns:
            True once the run has finished ``before_loop`` (also if it has
            ended since), False if it ended before that.

        Raises:
            RuntimeError: the loop was never started.
        """
        return await super().wait_ready()

    def restart(
        self: Loop[Callable[P, Coroutine[Any, Any, Any]]], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Send `Restart` with these arguments.

        With no arguments the last ones are reused. A loop that is not
        running is started.
        """
        self.tell(Restart(args or None, kwargs or None))

    # -- discord.ext.tasks queries --------------------------------------------

    def failed(self) -> bool:
        """Whether the latest run ended (or is ending) with an escalated error."""
        run = self._view()
        return run is not None and run.failed

    def is_being_cancelled(self) -> bool:
        """Whether the run is being cancelled (true inside ``after_loop`` after a cancel)."""
        run = self._view()
        return run is not None and run.cancelling and not run.task.done()

    @property
    def schedule(self) -> Schedule:
        """The schedule in force."""
        return self._schedule

    @property
    def seconds(self) -> float | None:
        """Seconds part of a relative interval; None for other schedules."""
        schedule = self._schedule
        return schedule.seconds if isinstance(schedule, Every) else None

    @property
    def minutes(self) -> float | None:
        """Minutes part of a relative interval; None for other schedules."""
        schedule = self._schedule
        return schedule.minutes if isinstance(schedule, Every) else None

    @property
    def hours(self) -> float | None:
        """Hours part of a relative interval; None for other schedules."""
        schedule = self._schedule
        return schedule.hours if isinstance(schedule, Every) else None

    @property
    def time(self) -> list[dt.time] | None:
        """The times of day of a ``time=`` loop; None for other schedules."""
        schedule = self._schedule
        return list(schedule.times) if isinstance(schedule, DailyAt) else None

    @property
    def coro(self) -> LF:
        """The decorated coroutine function (unbound, as discord.ext.tasks has it)."""
        coro: LF = self._coro  # type: ignore[assignment]  # set from an LF in __init__
        return coro

    @property
    def reconnect(self) -> bool:
        """Whether whitelisted (transient) errors are retried with backoff."""
        return self._reconnect

    @property
    def count(self) -> int | None:
        """Iterations per run, or None to run until stopped."""
        return self._count

    @property
    def current_loop(self) -> int:
        """Iterations completed in the current (or last) run."""
        run = self._view()
        return 0 if run is None else run.current_loop

    @property
    def next_iteration(self) -> dt.datetime | None:
        """When the next iteration is due (aware UTC); None when not scheduled."""
        run = self._run
        return None if run is None else self._next_iteration_of(run)


def loop(
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    time: dt.time | Sequence[dt.time] | None = None,
    schedule: Schedule | None = None,
    count: int | None = None,
    reconnect: bool = True,
    name: str | None = None,
    missed: Missed = "catch_up",
    overlap: bool | int = False,
    wait_first: bool = False,
    max_consecutive_failures: int | None = None,
    backoff: ExponentialBackoff | None = None,
    retry: Iterable[RetryRule] = (),
    mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    lease: Lease | str | bool | None = None,
) -> Callable[[LF], Loop[LF]]:
    """Decorate a coroutine function into a `Loop`.

    The discord.ext.tasks arguments mean what they mean there; all durations
    are start-to-start, on an absolute grid (the n-th iteration is due at
    ``first + n × interval``; no drift).

    Args:
        seconds, minutes, hours: the interval (added up; 0 runs back to back).
        time: time(s) of day instead of an interval (naive = UTC).
        schedule: any schedule object (``Every``, ``DailyAt``, ``Cron``, ...)
            instead of the two above.
        count: iterations per run; None runs until stopped.
        reconnect: retry whitelisted (transient) errors with backoff.
        name: the loop's name (default: the function's ``__name__``).
        missed: after an overrun, ``"catch_up"`` runs the missed grid points
            back to back (discord.ext.tasks' behaviour); ``"skip"`` runs once
            at once and re-anchors the grid on that run.
        overlap: ``True`` lets iterations run concurrently when one overruns
            its interval; an int caps how many run at once. ``False`` (the
            default) runs one at a time.
        wait_first: make the first iteration due one interval after the start.
        max_consecutive_failures: give up retrying after this many
            consecutive transient failures and escalate the last one.
        backoff: the backoff policy for the whitelisted exception types
            (default: the supervisor's backoff for its children, else
            discord.ext.tasks' ``ExponentialBackoff()``).
        retry: extra `RetryRule` objects,
            matched in order before the whitelist.
        mailbox_size: bound of the user-message lane.
        lease: run the body only on the replica that holds this lease (a
            `Lease`, a lease name, or True for the defaults: the loop's path
            on the in-process backend); see the docs page "Running several
            replicas". Needs ``overlap=False``.

    Raises:
        TypeError: the decorated object is not a coroutine function; ``time``
            mixed with a relative interval; a bad ``time`` element.
        ValueError: a negative or non-finite interval; ``count`` <= 0; an
            empty ``time`` sequence; a bad option value.
    """
    built = schedule_from(
        seconds=seconds, minutes=minutes, hours=hours, time=time, schedule=schedule
    )
    rules = check_options(
        count=count,
        reconnect=reconnect,
        name=name,
        missed=missed,
        overlap=overlap,
        wait_first=wait_first,
        max_consecutive_failures=max_consecutive_failures,
        backoff=backoff,
        retry=retry,
        mailbox_size=mailbox_size,
    )
    loop_lease(lease, overlap)  # a bad lease fails here, where it is written

    def decorator(coro: LF) -> Loop[LF]:
        return Loop(
            coro,
            schedule=built,
            count=count,
            reconnect=reconnect,
            name=name,
            missed=missed,
            overlap=overlap,
            wait_first=wait_first,
            max_consecutive_failures=max_consecutive_failures,
            backoff=backoff,
            retry=rules,
            mailbox_size=mailbox_size,
            lease=lease,
        )

    return decorator
