"""``Supervisor``: an OTP-style supervisor for Loops, workers and other supervisors.

A supervisor starts its children in order, each once the previous one is
ready; restarts them by their restart type and its strategy; fails (and so
escalates to its own parent) when it restarts too often; and shuts them down
in reverse order, each in three phases (Stop, Cancel, give up). The engine is
`supervision.engine` and the modules below it; this module is the face users
see and subclass (declare children and settings on the class, override the
hooks; their call order is in ``docs/subclassing.md``).

May import: every other ``supervision`` module, ``core`` and the pure
top-level modules.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .. import _validate
from ..backoff import ExponentialBackoff
from ..core.actor import DEFAULT_ASK_TIMEOUT, DEFAULT_MAILBOX_SIZE, Actor, dead_letters
from ..core.parent import refuse_orphan_start
from ..errors import (
    ActorNotRunning,
    ChildNotFound,
)
from ..events import DeadLetter
from ..messages import (
    Cancel,
    Exit,
    ExitKind,
    Stop,
)
from . import verbs
from .child import Child
from .core import _as_spec
from .engine import SupervisorEngine
from .hooks import default_hook
from .specs import (
    AutoShutdown,
    ChildCounts,
    ChildInfo,
    ChildSpec,
    Directive,
    Quarantine,
    Strategy,
    child,
)

__all__ = ["Child", "Supervisor", "child"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Supervisor(SupervisorEngine):
    """Supervises children: Loops, workers, other supervisors, any actor.

    Settings (class attributes, or the constructor's keyword arguments,
    which win; validated at construction, then readable on the instance
    as the values in force, e.g. ``tree.strategy``; changing them later has
    no effect):

    * ``strategy`` — ``"one_for_one"`` (default), ``"one_for_all"`` or
      ``"rest_for_one"``; see `Strategy`.
    * ``max_restarts``, ``max_seconds`` — the restart intensity: more than
      ``max_restarts`` restarts (default 3) within ``max_seconds`` seconds
      (default 5.0), counted across all children, and the supervisor stops
      its children and fails with `RestartIntensityExceeded`.
      ``restart_child`` and quarantine probes do not count.
    * ``auto_shutdown`` — ``"never"`` (default), ``"any_significant"`` or
      ``"all_significant"``: end normally when significant children end.
    * ``backoff`` — the retry backoff of children that have none of their
      own (default None: discord.ext.tasks' ``ExponentialBackoff()``).
    * ``quarantine`` — a `Quarantine` policy for
      every child that has none in its spec (default None: no quarantine).

    Children: the constructor's positional arguments (a `ChildSpec`
    from `child`, or a bare actor with every default), or a subclass's
    `children` (a method, or a class-level list).

    Args:
        *children: the children, in start order.
        name: the supervisor's name (default: the class name in snake case,
            ``"supervisor"`` for this class).
        mailbox_size: bound of the user-message lane.

    Raises:
        TypeError, ValueError: a bad setting or child; the message names it.
    """

    # Declared defaults; each instance holds the validated value in force.
    strategy: Strategy | str = Strategy.ONE_FOR_ONE
    max_restarts: int = 3
    max_seconds: float = 5.0
    auto_shutdown: AutoShutdown | str = AutoShutdown.NEVER
    backoff: ExponentialBackoff | None = None
    quarantine: Quarantine | None = None

    def __init__(
        self,
        *children: ChildSpec | Actor,
        strategy: Strategy | str | None = None,
        max_restarts: int | None = None,
        max_seconds: float | None = None,
        auto_shutdown: AutoShutdown | str | None = None,
        backoff: ExponentialBackoff | None = None,
        quarantine: Quarantine | None = None,
        name: str | None = None,
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    ) -> None:
        cls = type(self)
        Actor.__init__(
            self, _snake(cls.__name__) if name is None else name, mailbox_size=mailbox_size
        )
        self._strategy = Strategy.parse("strategy", cls.strategy if strategy is None else strategy)
        self._max_restarts = _validate.non_negative_int(
            "max_restarts", cls.max_restarts if max_restarts is None else max_restarts
        )
        self._max_seconds = _validate.seconds(
            "max_seconds", cls.max_seconds if max_seconds is None else max_seconds, allow_zero=False
        )
        self._auto_shutdown = AutoShutdown.parse(
            "auto_shutdown", cls.auto_shutdown if auto_shutdown is None else auto_shutdown
        )
        self._backoff_default = _validate.optional_instance(
            "backoff",
            cls.backoff if backoff is None else backoff,
            ExponentialBackoff,
            "an ExponentialBackoff",
        )
        self._quarantine_default = _validate.optional_instance(
            "quarantine",
            cls.quarantine if quarantine is None else quarantine,
            Quarantine,
            "a Quarantine",
        )
        # The values in force, readable as attributes (``tree.strategy``).
        self.strategy = self._strategy
        self.max_restarts = self._max_restarts
        self.max_seconds = self._max_seconds
        self.auto_shutdown = self._auto_shutdown
        self.backoff = self._backoff_default
        self.quarantine = self._quarantine_default
        self._given = tuple(_as_spec(item) for item in children)
        self._reset_engine(hooks=self)  # the hooks below are the machinery's
        if self._given:
            # Adopt at once: paths, lookup and status work before the start,
            # and a bad tree fails here, where it is written.
            self._adopt_declared()

    # -- hooks: override these in a subclass ----------------------------------------

    def children(self) -> Iterable[ChildSpec | Actor]:
        """Declare the children, in start order; called at each (re)start.

        The default returns the children given to the constructor. Override
        it (or set a class-level list named ``children``) to declare them on
        the class; per-instance Loops defined with ``@loop`` in the class are
        reached as ``self.poller``. A supervisor restarted by its parent
        starts again from this declaration (as OTP's ``init``): children
        added with `start_child` are not restarted with it.
        """
        return self._given

    def _declared(self) -> Iterable[ChildSpec | Actor]:
        source: Any = self.children
        declared: Iterable[ChildSpec | Actor] = source() if callable(source) else source
        return declared

    @default_hook
    async def before_start(self) -> None:
        """Called in the supervisor's task before the first child starts (default: nothing).

        An error it raises fails the start; a Cancel of the supervisor (or
        of ``start()``) cancels it where it awaits.
        """

    async def after_stop(self) -> None:
        """Called in the supervisor's task once every child has stopped (default: nothing).

        Called whatever ended the supervisor (stop, cancel, failure). An
        error it raises fails the supervisor (unless it is failing already).
        A Cancel that arrives while it awaits cancels it there.
        """

    def should_retry(self, child: Child, error: BaseException, attempt: int) -> bool | None:
        """Whether a child's failed iteration is retried in place, with backoff.

        Called synchronously *in the child's task* (Loops and workers) when
        its body raises, before it retries or escalates: keep it quick and
        non-blocking. ``attempt`` counts consecutive failures from 1.
        Return True to retry (even an error the child would escalate), False
        to escalate (even a whitelisted error), None for the child's own
        answer (its whitelist and ``max_consecutive_failures``); the default
        returns None.
        """
        return None

    def backoff_for(self, child: Child) -> ExponentialBackoff | None:
        """The retry backoff of a child that has none of its own.

        Used for a Loop's or worker's retries and for a ``RETRY`` directive.
        The default: the spec's ``backoff``, else the supervisor's; None
        means discord.ext.tasks' default ``ExponentialBackoff()``.
        """
        return child.spec.backoff or self._backoff_default

    @default_hook
    async def on_child_failure(self, child: Child, error: BaseException) -> None:
        """React to a child's run ending with an escalated error (default: nothing).

        Called in the supervisor's task after the child's own error handler,
        for every failure, including one during a shutdown the supervisor is
        making. Alert, count, change ``child.set_args(...)`` for its restart.
        A Cancel of the supervisor while it awaits cancels it there.
        """

    @default_hook
    async def on_child_exit(self, child: Child, exit: Exit) -> None:
        """React to a child's run ending by itself (default: nothing).

        Called after `on_child_failure`, for every exit the supervisor
        did not cause (normal, cancelled or failed), before `decide`.
        """

    @default_hook
    def decide(self, child: Child, error: BaseException) -> Directive | str | None:
        """Decide what a child's failure means: a `Directive`.

        Called in the supervisor's task after `on_child_exit`, for a
        failure the supervisor did not cause. ``RESTART`` restarts with the
        strategy (counting intensity), ``RETRY`` restarts after the child's
        backoff delay, ``STOP`` leaves it down, ``ESCALATE`` fails the
        supervisor with this very error, ``QUARANTINE`` parks it. None means
        the restart type's answer, which is what the default returns:
        ``RESTART`` for permanent and transient children, ``STOP`` for
        temporary ones. Normal and cancelled exits always follow the
        restart type.
        """
        return self._policy(child, Exit(ExitKind.FAILED, error))

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the supervisor and its children; return once every child is ready.

        Children start in order, each once the previous one is ready. If the
        start fails (a child fails before it is ready, ``before_start``
        raises), the children already started are stopped in reverse order
        and the error is raised here. Cancelling ``start()`` cancels the
        tree (shut down at once, in order) and propagates.

        Raises:
            RuntimeError: it is already running, or no event loop runs.
            ActorNotRunning: it is the child of a supervisor that is stopped
                (it would run outside its tree; restart that supervisor).
            ChildStartFailed: a child failed before it was ready (cause: its error).
            Exception: whatever failed the supervisor while it started.
        """
        refuse_orphan_start(self, "start()")
        task = self._launch_tree(restart=False)
        try:
            ready = await self.wait_ready()
        except asyncio.CancelledError:
            self.tell(Cancel())
            raise
        if not ready:
            await asyncio.wait((task,))
            run = self._run
            assert run is not None
            exit = run.ended_exit.result()
            if exit.kind is ExitKind.FAILED:
                assert exit.error is not None
                raise exit.error

    async def wait_ready(self) -> bool:
        """Wait until every child has started and is ready; False if it ended first.

        Cancelling the wait does not affect the supervisor.

        Raises:
            RuntimeError: it was never started.
        """
        return await super().wait_ready()

    async def stop(self) -> None:
        """Stop the tree in order and return once all of it has ended.

        Sends ``Stop``: children stop latest first, each given its
        ``shutdown`` grace, then cancelled, then left behind as unkillable
        after its ``cancel_timeout``. Does nothing if it is not running. Does
        not raise the tree's failure (see `wait`). Cancelling ``stop()``
        stops the waiting only; the shutdown goes on. Called from one of the
        supervisor's own hooks, it returns at once and the shutdown begins
        when the hook returns.
        """
        task = self.get_task()
        if task is None or task.done():
            return
        self.tell(Stop())
        if asyncio.current_task() is task:
            return  # called from a hook: the shutdown follows once the hook returns
        await asyncio.wait((task,))

    async def wait(self) -> None:
        """Wait until the supervisor ends; raise its error if it failed.

        The error is what it escalates: a `RestartIntensityExceeded`
        (the child's error in ``__cause__``), `ChildStartFailed`, an
        error a hook raised, or a child's own error it escalated. Returns
        None after a stop, an auto-shutdown or a cancellation. Cancelling
        the wait does not affect the supervisor.

        Raises:
            RuntimeError: it was never started, or it is called from the
                supervisor's own task (a hook), which would wait forever.
        """
        run = self._run
        if run is None:
            raise RuntimeError(f"supervisor {self.path!r} was never started")
        ended = run.ended_exit
        if asyncio.current_task() is run.task and not ended.done():
            raise RuntimeError(
                f"supervisor {self.path!r} cannot wait for its own end from its own task"
            )
        exit = await asyncio.shield(ended)
        if exit.kind is ExitKind.FAILED:
            assert exit.error is not None
            raise exit.error

    async def __aenter__(self) -> Supervisor:
        """Start the tree (see `start`; cancelling it cancels the tree)."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the tree (see `stop`); raise its failure if the body did not raise one."""
        await self.stop()
        if exc is None:
            await self.wait()

    def failed(self) -> bool:
        """Whether the latest run failed (or is failing)."""
        run = self._run
        return run is not None and run.failed

    # -- the OTP verbs ---------------------------------------------------------------------
    # Each verb runs in the supervisor's own task, after whatever was queued
    # before it (exits being handled, earlier verbs), so verbs never race each
    # other or a restart; their errors are raised when they run. A verb still
    # queued when the supervisor stops raises ActorStopped.

    def _require_running(self, verb: str) -> None:
        if not self.is_running() or self._halted():
            raise ActorNotRunning(self.path, verb)

    async def start_child(self, spec: ChildSpec | Actor) -> Actor:
        """Add a child at the end and start it; return once it is ready.

        Cancelling the call does not cancel the start.

        Returns:
            The child actor.

        Raises:
            ValueError: the name is taken, or the actor is supervised elsewhere.
            ActorNotRunning: the supervisor is not running.
            ActorStopped: the supervisor stopped before the child was ready.
            ChildStartFailed: the child failed before it was ready; it is not kept.
        """
        spec = _as_spec(spec)
        self._require_running("start_child()")
        result: Actor = await self._command(functools.partial(verbs.start_child, self, spec))
        return result

    async def terminate_child(self, name: str) -> None:
        """Stop a child (three phases) and keep it down; its spec stays (OTP).

        A temporary child is removed. The supervisor's strategy does not
        restart it; `restart_child` does. Cancelling the call does not
        cancel the termination.

        Raises:
            ChildNotFound: no child has this name.
        """
        if not self.is_running():
            verbs.find(self, name)._keep_down()
            return
        await self._command(functools.partial(verbs.terminate_child, self, name))

    async def restart_child(self, name: str) -> Actor:
        """Start a child again by hand (stopping it first if it runs); return once ready.

        Also ends a quarantine at once. It does not count towards the restart
        intensity (as in OTP). Cancelling the call does not cancel the restart.

        Raises:
            ChildNotFound: no child has this name.
            ActorNotRunning: the supervisor is not running.
            ActorStopped: the supervisor stopped before the child was ready.
            RuntimeError: the child was reported unkillable and still runs.
            ChildStartFailed: it failed before it was ready; it stays down.
        """
        self._require_running("restart_child()")
        result: Actor = await self._command(functools.partial(verbs.restart_child, self, name))
        return result

    async def delete_child(self, name: str) -> None:
        """Forget a child that is not running (OTP); the actor is released.

        Raises:
            ChildNotFound: no child has this name.
            RuntimeError: the child is running; ``terminate_child`` it first.

        Cancelling the call does not cancel the deletion.
        """
        if not self.is_running():
            await verbs.delete_child(self, name)
            return
        await self._command(functools.partial(verbs.delete_child, self, name))

    def which_children(self) -> list[ChildInfo]:
        """The children in start order, as `ChildInfo` snapshots."""
        return [record._info() for record in self._children]

    def count_children(self) -> ChildCounts:
        """How many children: specs, active, supervisors, workers (OTP's counts)."""
        supervisors = sum(1 for record in self._children if isinstance(record.actor, Supervisor))
        return ChildCounts(
            specs=len(self._children),
            active=sum(1 for record in self._children if record.actor.is_running()),
            supervisors=supervisors,
            workers=len(self._children) - supervisors,
        )

    def child(self, name: str) -> Child:
        """The record of the child named ``name`` (what hooks receive).

        Raises:
            ChildNotFound: no child has this name.
        """
        return verbs.find(self, name)

    # -- paths ------------------------------------------------------------------------------

    def lookup(self, path: str) -> Actor:
        """Find an actor by its path relative to this supervisor (``"pair/a"``).

        ``""`` is the supervisor itself.

        Raises:
            TypeError: ``path`` is not a string.
            ChildNotFound: nothing has this path.
        """
        _validate.text("path", path)
        return verbs.lookup(self, path)

    def tell_at(self, path: str, message: Any) -> None:
        """Tell ``message`` to the actor at ``path``; an unknown path makes a dead letter."""
        try:
            actor = self.lookup(path)
        except ChildNotFound:
            letter = DeadLetter(
                path=f"{self.path}/{path}",
                at=self._now(),
                message=repr(message),
                reason="no such actor",
            )
            dead_letters._record(letter)
            self._publish(letter)
            return
        actor.tell(message)

    async def ask_at(
        self, path: str, message: Any, *, timeout: float | None = DEFAULT_ASK_TIMEOUT
    ) -> Any:
        """Ask ``message`` of the actor at ``path`` (see `Actor.ask`).

        Cancelling it abandons the reply; the message stays delivered.

        Raises:
            ChildNotFound: nothing has this path.
        """
        return await self.lookup(path).ask(message, timeout=timeout)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r} {self._state_now().value}>"
