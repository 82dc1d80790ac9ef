"""How a Loop takes its control messages.

Each control message has a handler here, called synchronously by ``tell``
(see `supervised_loops.core.actor`): it records the request on the current
run (a flag, a new schedule, a reply to send when the request has taken
effect) and wakes the runner, which acts on it at its next step. Requests to
a loop that is not running are dead letters, except ``ChangeInterval``
(the new schedule is kept for the next start), ``Restart`` (it starts the
loop, unless its supervisor is not running or is shutting down: the loop
would run outside the tree) and ``GetStatus`` (always answered). The discord.ext.tasks methods
that only send one of these messages (``stop()``, ``pause()``, ...) and the
status snapshot are here too.

May import: the lower ``loops`` modules, ``core`` and the pure top-level modules.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ..core.actor import Reply
from ..errors import ActorStopped
from ..events import describe
from ..leases.gate import describe_lease
from ..messages import (
    Ack,
    ActorStatus,
    Cancel,
    ChangeInterval,
    ControlMessage,
    GetStatus,
    Pause,
    Restart,
    Resume,
    RunNow,
    State,
    Stop,
)
from ..schedule import Cron, DailyAt, Every, Schedule
from .engine import LoopEngine
from .run import LoopRun as Run


class LoopControl(LoopEngine):
    """The control-message handlers of a Loop (internal base of ``Loop``)."""

    # The latest status() and what it was made of (see status).
    __slots__ = ("_shown_status",)

    _shown_status: tuple[tuple[Any, ...], ActorStatus] | None

    def _reset_runs(self) -> None:
        super()._reset_runs()
        self._shown_status = None

    _control_handlers: ClassVar[dict[type, Callable[[LoopControl, Any, Reply], None]]]

    def _on_control(self, message: ControlMessage, reply: Reply) -> None:
        handler = self._control_handlers.get(type(message))
        if handler is None:
            # A control message of a subclass's own: handled like user traffic.
            self._deliver_user(message, reply)
            return
        handler(self, message, reply)

    def _control_stop(self, message: Stop, reply: Reply) -> None:
        run = self._active_run(message, reply)
        if run is None:
            return
        if reply is not None:
            run.add_end_ack(message, reply)
        if not run.stop:
            run.stop = True
            run.attend()

    def _control_cancel(self, message: Cancel, reply: Reply) -> None:
        run = self._active_run(message, reply)
        if run is None:
            return
        if reply is not None:
            run.add_end_ack(message, reply)
        self._cancel_run(run)

    def _control_restart(self, message: Restart, reply: Reply) -> None:
        if self._refuse_orphan(message, reply):
            return
        run = self._run
        args = message.args
        kwargs = message.kwargs
        if (
            run is not None
            and not run.task.done()
            and not run.began
            and run.restart
            and not run.stop
        ):
            # A restart that has not begun yet absorbs this one (the latest
            # arguments win). Not one already told to stop or cancel: this
            # Restart must start again after it. A Pause sent in between is
            # undone, since a restart starts unpaused.
            run.paused = False
            if args is not None:
                run.args = args
            if kwargs is not None:
                run.kwargs = dict(kwargs)
        else:
            if args is None:
                args = run.args if run is not None else ()
            if kwargs is None:
                kwargs = run.kwargs if run is not None else {}
            if run is not None and not run.task.done():
                self._cancel_run(run)  # the new run begins once this one has ended
            try:
                run = self._launch(tuple(args), dict(kwargs), restart=True)
            except RuntimeError:  # no running event loop to start in
                self._dead_letter(message, reply, "no running event loop")
                return
        if reply is not None:
            run.add_ack("begin", message, reply)

    def _control_change_interval(self, message: ChangeInterval, reply: Reply) -> None:
        self._schedule = message.schedule
        run = self._run
        if run is None or run.task.done():
            if reply is not None and not reply.done():
                reply.set_result(
                    Ack(message, (0 if self._run is None else self._run.current_loop), None)
                )
            return
        run.rescheduled = True
        if reply is not None:
            run.add_ack("plan", message, reply)
        run.attend()

    def _control_pause(self, message: Pause, reply: Reply) -> None:
        run = self._active_run(message, reply)
        if run is None:
            return
        run.paused = True
        run.attend()
        if reply is not None and not reply.done():
            reply.set_result(Ack(message, run.current_loop, None))

    def _control_resume(self, message: Resume, reply: Reply) -> None:
        run = self._active_run(message, reply)
        if run is None:
            return
        if not run.paused:
            if reply is not None and not reply.done():
                reply.set_result(Ack(message, run.current_loop, self._next_iteration_of(run)))
            return
        run.paused = False
        run.resumed = True
        if reply is not None:
            run.add_ack("plan", message, reply)
        run.attend()

    def _control_run_now(self, message: RunNow, reply: Reply) -> None:
        run = self._active_run(message, reply)
        if run is None:
            return
        if run.stop:
            # The run is ending and will start no iteration: refuse now, as a
            # dead letter, rather than drop a told RunNow without a trace.
            self._dead_letter(message, None, "stopping")
            if reply is not None and not reply.done():
                reply.set_exception(ActorStopped(self.path, message))
            return
        run.run_now = True
        if reply is not None:
            run.add_ack("run_now", message, reply)
        run.attend()

    def _control_get_status(self, message: GetStatus, reply: Reply) -> None:
        if reply is not None and not reply.done():
            reply.set_result(self.status())

    def _active_run(self, message: ControlMessage, reply: Reply) -> Run | None:
        run = self._run
        if run is None or run.task.done():
            self._dead_letter(message, reply, "not running")
            return None
        return run

    # -- the discord.ext.tasks methods that send a control message ---------------

    def stop(self) -> None:
        """Send `Stop`: end after the current iteration."""
        self._control_stop(_STOP, None)  # what tell(Stop()) does, minus the dispatch

    def cancel(self) -> None:
        """Send `Cancel`: end now, after_loop still runs."""
        # What tell(Cancel()) does, minus the dispatch: mass cancels are common.
        run = self._run
        if run is None or run.task.done():
            self._dead_letter(_CANCEL, None, "not running")
        else:
            self._cancel_run(run)

    def change_interval(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        time: dt.time | Sequence[dt.time] | None = None,
    ) -> None:
        """Send `ChangeInterval`; works in every state.

        Raises:
            TypeError, ValueError: as ``loop()`` does; raised here, nothing is sent.
        """
        self.tell(ChangeInterval(seconds=seconds, minutes=minutes, hours=hours, time=time))

    def pause(self) -> None:
        """Send `Pause`."""
        self.tell(Pause())

    def resume(self) -> None:
        """Send `Resume`."""
        self.tell(Resume())

    def run_now(self) -> None:
        """Send `RunNow`."""
        self.tell(RunNow())

    # -- status ----------------------------------------------------------------

    def status(self) -> ActorStatus:
        """Return a frozen snapshot of the loop.

        Asked again while nothing it shows has changed, it returns the same
        snapshot: building the frozen record is most of what a status costs,
        and a dashboard or a health check asks for it over and over.
        """
        run = self._run
        if run is None:
            state, current, upcoming = _IDLE, 0, None
        else:
            state = _visible_state(run)
            current = run.current_loop
            upcoming = self._next_iteration_of(run)
        error = self._last_error
        schedule = self._schedule
        lease = describe_lease(self._coro)
        path = self.path
        # Everything the snapshot is made of (the error and the schedule by
        # identity first: their text is only made for a new one).
        key = (
            path,
            state,
            current,
            upcoming,
            self._failure_count,
            self._restart_count,
            error,
            schedule,
            lease,
        )
        shown = self._shown_status
        if shown is not None and shown[0] == key:
            return shown[1]
        status = ActorStatus(
            name=self._name,
            path=path,
            kind="loop",
            state=state,
            current_loop=current,
            next_iteration=upcoming,
            failures=self._failure_count,
            restarts=self._restart_count,
            last_error=None if error is None else describe(error),
            schedule=_schedule_text(schedule),
            lease=lease,
        )
        self._shown_status = (key, status)
        return status

    def _wake(self) -> None:
        run = self._run
        if run is not None:
            run.attend()


_IDLE = State.IDLE

# Messages are immutable, so the methods can send shared instances.
_STOP = Stop()
_CANCEL = Cancel()


def _schedule_text(schedule: Schedule) -> str:
    """The text form of a schedule in a status.

    The library's schedules are immutable and hashable: their text is made
    once (it is most of what ``status()`` costs otherwise). Any other
    schedule object is asked every time.
    """
    if isinstance(schedule, Every | DailyAt | Cron):
        return _own_schedule_text(schedule)
    return str(schedule)


@functools.lru_cache(maxsize=1024)
def _own_schedule_text(schedule: Every | DailyAt | Cron) -> str:
    return str(schedule)


def _visible_state(run: Run) -> State:
    # Requests take effect at the runner's next step; the status shows them at once.
    state = run.state
    if run.task.done() and not run.began:
        return State.CANCELLED  # its task was cancelled before its first step
    if run.task.done() or run.ended:
        return state
    if run.stop and state is not State.STARTING:
        return State.STOPPING
    if run.paused and (
        state in (State.SLEEPING, State.RETRYING)
        or (state is State.STARTING and run.readiness)  # ready, first step still to come
    ):
        return State.PAUSED
    return state


LoopControl._control_handlers = {
    Stop: LoopControl._control_stop,
    Cancel: LoopControl._control_cancel,
    Restart: LoopControl._control_restart,
    ChangeInterval: LoopControl._control_change_interval,
    Pause: LoopControl._control_pause,
    Resume: LoopControl._control_resume,
    RunNow: LoopControl._control_run_now,
    GetStatus: LoopControl._control_get_status,
}
