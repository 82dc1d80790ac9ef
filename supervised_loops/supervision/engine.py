"""The engine of a Supervisor: the task that starts, serves and shuts down.

`SupervisorEngine` puts the layers together (see `supervision.core` for
the design): it launches the supervisor's run (through `core.runnable`, as
every actor's), starts the children in order, serves the queue of exits,
verbs and timers until told to stop or failing, then shuts the children down
in reverse order; the run's exit report goes to its parent. It also takes
the control messages (``Stop``, ``Cancel``, ``Restart``, ``GetStatus``;
the loop-only ones are refused with a reason for an operator) and builds the
status. `supervised_loops.Supervisor` is its only subclass and public face.

May import: the lower ``supervision`` modules and what they may import.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ..core.actor import Actor, Reply
from ..core.runnable import acknowledge_when_ready
from ..errors import ActorStopped, ChildStartFailed, UnhandledMessage
from ..events import ActorStarted, describe
from ..leases.gate import LeaseGate
from ..messages import (
    ActorStatus,
    Cancel,
    ChangeInterval,
    ControlMessage,
    Exit,
    ExitKind,
    GetStatus,
    Pause,
    Restart,
    Resume,
    RunNow,
    State,
    Stop,
)
from .restarts import SupervisorRestarts
from .run import ExitReport, QueueItem, Started, SupervisorRun, TimerFired, VerbCall

logger = logging.getLogger("supervised_loops")


#: Library control messages that only mean something to a Loop (or a worker),
#: with the reason a supervisor gives an operator who sends one.
_LOOP_ONLY: dict[type, str] = {
    ChangeInterval: "a supervisor has no schedule; change the interval of one of its loops",
    RunNow: "a supervisor has no iterations; send run-now to one of its loops",
    Pause: "a supervisor is not paused as a whole; pause its loops one by one, "
    "or stop it (its children stop with it) and restart it later",
    Resume: "a supervisor is not paused as a whole; resume its loops one by one",
}


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A verb whose caller stopped waiting: its error must not be reported by
    # asyncio as "never retrieved"; the caller chose not to see it.
    if not future.cancelled():
        future.exception()


class SupervisorEngine(SupervisorRestarts):
    """Runs a Supervisor (internal base class of `Supervisor`)."""

    def _launch_tree(self, *, restart: bool) -> asyncio.Task[None]:
        """Adopt the declared children and start a run (sync; readiness via ``wait_ready``).

        Raises:
            RuntimeError: it is already running, or no event loop runs.
            TypeError, ValueError: a bad declaration of children.
        """
        if self.is_running():
            raise RuntimeError(f"supervisor {self.path!r} is already running; stop() it first")
        asyncio.get_running_loop()  # no event loop: fail before touching the children
        self._adopt_declared()  # may raise: a bad declaration fails the start at once
        if restart:
            self._restart_count += 1
        run: SupervisorRun = self._launch((), {}, restart=restart)
        if self._starts_children_at_launch():
            self._start_at_launch(run)
        return run.task

    def _start_supervised(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool
    ) -> int:
        self._launch_tree(restart=restart)
        return self._latest_run_id()

    async def _runner(self, run: SupervisorRun) -> None:
        run.began = True
        self._emit(ActorStarted)
        try:
            if not self._halted():
                await self._call_hook("before_start", self._hooks.before_start)
            if not self._halted():
                await self._start_initial()
            if not self._halted():
                run.state = State.RUNNING
                self._set_ready(run, True)
                await self._serve()
        except asyncio.CancelledError:  # a safety net: every await absorbs its own
            self._take_cancel()
        self._set_ready(run, False)
        run.state = State.STOPPING
        await self._shutdown_children()
        await self._call_hook("after_stop", self._hooks.after_stop)
        self._end_run()
        # The end is reported from this last step (its parent acts on it in
        # the next cycle), unless a Restart message waits for the task to be
        # done: its new run must exist before the parent hears of this end.
        failure = run.error
        if failure is not None:
            self._note(failure)
        raised = self._end_in_task(run, failure, report=not run.restart_after)
        if raised is not None:
            raise raised

    async def _start_initial(self) -> None:
        """Start the children in order, each once the previous one is ready.

        A child that fails before it is ready fails the start (as in OTP): the
        children already started are stopped, and the supervisor fails with
        `ChildStartFailed`.
        """
        launched = self._rec.launched  # started in the launching call (_start_at_launch)
        for index, record in enumerate(list(self._children)):
            if self._halted():
                return
            if record._removed or index < launched - 1:
                continue
            if index == launched - 1:  # started, maybe not ready: wait for it
                started = await self._await_ready(record)
            else:
                started = await self._start(record, restart=False)
            if started is Started.ENDED:
                exit = await self._exit_of(record)
                if exit is not None and exit.kind is ExitKind.FAILED:
                    await self._consume_exit(record)
                    assert exit.error is not None
                    error = ChildStartFailed(self.path, record.name)
                    error.__cause__ = exit.error
                    self._fail(error, f"could not start child {record.name!r}")
                    return

    # -- serving -------------------------------------------------------------------------------

    async def _serve(self) -> None:
        queue = self._rec.queue
        while not self._halted():
            if queue:
                await self._process(queue.popleft())
            elif self._inbox:
                await self._drain()
            else:
                await self._idle()

    async def _process(self, item: QueueItem) -> None:
        if isinstance(item, ExitReport):
            await self._child_exited(item.record, item.run_id, item.exit)
        elif isinstance(item, VerbCall):
            future = item.future
            try:
                result = await item.function()
            except (KeyboardInterrupt, SystemExit):
                raise
            except asyncio.CancelledError:
                # Never kept as the verb's result: a cancellation of our task
                # becomes a Cancel of the supervisor, as at every other await.
                self._take_cancel()
                if not future.done():
                    future.set_exception(ActorStopped(self.path, "a supervisor verb"))
            except BaseException as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)
        else:
            assert isinstance(item, TimerFired)
            await self._timer_fired(item.record, item.kind)

    async def _command(self, function: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``function`` in the supervisor's task, after what is queued before it."""
        if asyncio.current_task() is self.get_task():
            return await function()  # from a hook: queueing would wait for ourselves
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._rec.queue.append(VerbCall(function, future))
        self._wake()
        return await asyncio.shield(future)

    def _use_gate(self, gate: LeaseGate) -> None:
        """Share ``gate`` among every loop and worker below (``child(sup, lease=...)``).

        One keeper, held while any of them runs; a loss cuts all their
        bodies at once. Children added later with ``start_child`` do not
        share it.

        Raises:
            TypeError: an actor below is neither a loop, a worker nor a supervisor.
            ValueError: this supervisor, or an actor below, already has a lease.
        """
        if getattr(self, "_lease_gate", None) is not None:
            raise ValueError(f"supervisor {self.name!r} already has a lease")
        members = list(self._lease_members())
        for member in members:
            member._use_gate(gate)
        self._lease_gate = gate

    def _lease_members(self) -> Iterator[Any]:
        for record in self._children:
            actor = record.actor
            if isinstance(actor, SupervisorEngine):
                yield from actor._lease_members()
            elif hasattr(actor, "_use_gate"):
                yield actor
            else:
                raise TypeError(
                    f"'lease' on supervisor {self.name!r} needs loops and workers below it "
                    f"(got {actor!r})"
                )

    def status(self) -> ActorStatus:
        """A frozen snapshot of the supervisor and, recursively, its children."""
        state = self._own_state()
        error = self._last_error
        gate: LeaseGate | None = getattr(self, "_lease_gate", None)  # child(sup, lease=...)
        return ActorStatus(
            name=self._name,
            path=self.path,
            kind="supervisor",
            state=state,
            failures=self._failure_count,
            restarts=self._restart_count,
            last_error=None if error is None else describe(error),
            children=tuple(record._status() for record in self._children),
            lease=None if gate is None else gate.describe(),
        )

    # -- control messages (in the sender's call) -------------------------------------------

    def _on_control(self, message: ControlMessage, reply: Reply) -> None:
        if isinstance(message, GetStatus):
            if reply is not None and not reply.done():
                reply.set_result(self.status())
        elif isinstance(message, Stop | Cancel):
            if not self.is_running():
                self._dead_letter(message, reply, "not running")
                return
            run = self._rec
            if reply is not None:
                run.add_end_ack(message, reply)
            if isinstance(message, Cancel):
                self._cancel_subtree()  # the whole subtree, in this call
            else:
                run.stop = True
                self._wake()
        elif isinstance(message, Restart):
            self._control_restart(message, reply)
        elif type(message) in _LOOP_ONLY:
            self._refuse(message, reply, _LOOP_ONLY[type(message)])
        else:
            self._deliver_user(message, reply)  # a subclass's own control message

    def _deliver_user(self, message: Any, reply: Reply) -> None:
        if type(self).handle_message is Actor.handle_message:
            # Queued, it would only fail the supervisor later: refuse it now.
            self._refuse(message, reply, "no handle_message")
            return
        super()._deliver_user(message, reply)

    def _refuse(self, message: Any, reply: Reply, reason: str) -> None:
        self._dead_letter(message, None, reason)
        if reply is not None and not reply.done():
            library = type(message) in _LOOP_ONLY or isinstance(message, Restart)
            error = UnhandledMessage(self.path, message, reason if library else None)
            reply.set_exception(error)

    def _control_restart(self, message: Restart, reply: Reply) -> None:
        """Restart: stop (the ordered shutdown of the children), then start again.

        A stopped supervisor starts at once. A running root is refused
        (whoever started it waits for the end of that run: ``run()`` would
        take the restart for the end of the service). The ask is answered, like a
        Loop's or a worker's Restart, once the new run is ready (its
        children started): ``Ack(message, 0, None)``; with `ActorStopped`
        if it ends first, or with the error of a start that cannot be made.
        """
        if message.args or message.kwargs:
            self._refuse(message, reply, "a supervisor takes no start arguments")
            return
        if self._refuse_orphan(message, reply):
            return
        if self.is_running() and self._parent is None:
            # Whoever started the root waits for its run to end (run() ends
            # the service then): a restart in place would look like the end.
            self._refuse(
                message,
                reply,
                "the root of a tree is not restarted in place; "
                "restart its children, or the service",
            )
            return
        if self.is_running():
            run = self._rec
            if not run.stop:
                run.stop = True
                self._wake()
            # Reported from the done callback registered at launch, so the
            # parent hears of the end after this callback has started the new
            # run: it takes the new run as the child's own, as for a Loop.
            run.restart_after = True
            run.task.add_done_callback(lambda _task: self._start_again(message, reply))
            return
        self._start_again(message, reply)

    def _start_again(self, message: Restart, reply: Reply) -> None:
        if not self.is_running():  # else started meanwhile (by its own supervisor): answer that
            if self._refuse_orphan(message, reply):
                return
            try:
                self._launch_tree(restart=True)
            except (RuntimeError, TypeError, ValueError) as error:
                self._dead_letter(message, None, str(error))
                if reply is not None and not reply.done():
                    reply.set_exception(error)
                return
        ready = self._ready_future()
        if reply is not None and ready is not None:
            acknowledge_when_ready(ready, message, reply, self.path)

    # -- ending --------------------------------------------------------------------------------

    def _end_run(self) -> None:
        for record in self._children:
            record._cancel_timer()
        queue = self._rec.queue
        while queue:
            item = queue.popleft()
            if isinstance(item, VerbCall) and not item.future.done():
                item.future.set_exception(ActorStopped(self.path, "a supervisor verb"))
        self._discard_inbox()

    def _run_ended(self, run: SupervisorRun, exit: Exit) -> None:
        """After the task has ended: the end future for `wait`."""
        if exit.kind is ExitKind.FAILED:
            assert exit.error is not None
            self._note(exit.error)  # counted once: the runner noted the same error
            run.state = State.FAILED
        if not run.ended_exit.done():
            run.ended_exit.set_result(exit)
