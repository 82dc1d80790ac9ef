"""How a Loop takes its control messages.

Each control message has a handler here, called synchronously by ``tell``
(see `supervised_loops.actor`): it records the request on the current
run (a flag, a new schedule, a reply to send when the request has taken
effect) and wakes the runner, which acts on it at its next step. Requests to
a loop that is not running are dead letters, except ``ChangeInterval``
(the new schedule is kept for the next start), ``Restart`` (it starts the
loop) and ``GetStatus`` (always answered).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ..core.actor import Reply
from ..errors import ActorStopped
from ..messages import (
    Ack,
    Cancel,
    ChangeInterval,
    ControlMessage,
    GetStatus,
    Pause,
    Restart,
    Resume,
    RunNow,
    Stop,
)
from .engine import LoopEngine
from .plan import Run


class LoopControl(LoopEngine):
    """The control-message handlers of a Loop (internal base of ``Loop``)."""

    __slots__ = ()

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
            run.acks_end.append((message, reply))
        if not run.stop:
            run.stop = True
            run.attend()

    def _control_cancel(self, message: Cancel, reply: Reply) -> None:
        run = self._active_run(message, reply)
        if run is None:
            return
        if reply is not None:
            run.acks_end.append((message, reply))
        self._cancel_run(run)

    def _control_restart(self, message: Restart, reply: Reply) -> None:
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
            try:
                run = self._launch(tuple(args), dict(kwargs), restart=True)
            except RuntimeError:  # no running event loop to start in
                self._dead_letter(message, reply, "no running event loop")
                return
        if reply is not None:
            run.acks_begin.append((message, reply))

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
            run.acks_plan.append((message, reply))
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
            run.acks_plan.append((message, reply))
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
            run.acks_run_now.append((message, reply))
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

    def _wake(self) -> None:
        run = self._run
        if run is not None:
            run.attend()


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
