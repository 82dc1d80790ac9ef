"""The engine of a Supervisor: the task that starts, serves and shuts down.

`SupervisorEngine` puts the layers together (see
`_supervisor_core` for the design): it launches the
supervisor's task, starts the children in order, serves the queue of exits,
verbs and timers until told to stop or failing, then shuts the children down
in reverse order and reports its own end to its parent.
`supervised_loops.Supervisor` is its only subclass and public face.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ActorStopped, ChildStartFailed
from ..events import ActorStarted
from ..messages import Ack, Exit, ExitKind, State
from .core import _Item
from .policy import SupervisorPolicy

logger = logging.getLogger("supervised_loops")


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A verb whose caller stopped waiting: its error must not be reported by
    # asyncio as "never retrieved"; the caller chose not to see it.
    if not future.cancelled():
        future.exception()


class SupervisorEngine(SupervisorPolicy):
    """Runs a Supervisor (internal base class of `Supervisor`)."""

    def _launch(self, *, restart: bool) -> asyncio.Task[None]:
        task = self._task
        if task is not None and not task.done():
            raise RuntimeError(f"supervisor {self.path!r} is already running; stop() it first")
        event_loop = asyncio.get_running_loop()
        self._adopt_declared()  # may raise: a bad declaration fails the start at once
        self._event_loop = event_loop
        self._new_run()
        if restart:
            self._restart_count += 1
        self._state = State.STARTING
        self._ready = event_loop.create_future()
        self._ended = event_loop.create_future()
        task = event_loop.create_task(self._runner(), name=f"supervisor:{self.path}")
        self._task = task
        task.add_done_callback(self._finished)
        return task

    def _start_supervised(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool
    ) -> None:
        self._launch(restart=restart)

    async def _runner(self) -> None:
        self._emit(ActorStarted)
        try:
            if not self._halted():
                await self._call_hook("before_start", self.before_start)
            if not self._halted():
                await self._start_initial()
            if not self._halted():
                self._state = State.RUNNING
                self._set_ready(True)
                await self._serve()
        except asyncio.CancelledError:  # a safety net: every await absorbs its own
            self._absorb_cancel()
        self._set_ready(False)
        self._state = State.STOPPING
        await self._shutdown_children()
        await self._call_hook("after_stop", self.after_stop)
        self._end_run()
        failure = self._failure
        if failure is not None:
            self._state = State.FAILED
            raise failure
        if self._cancelling:
            self._state = State.CANCELLED
            raise asyncio.CancelledError
        self._state = State.STOPPED

    def _set_ready(self, ready: bool) -> None:
        future = self._ready
        if future is not None and not future.done():
            future.set_result(ready)
            if self._parent is not None:
                self._parent._on_child_ready(self)

    async def _start_initial(self) -> None:
        """Start the children in order, each once the previous one is ready.

        A child that fails before it is ready fails the start (as in OTP): the
        children already started are stopped, and the supervisor fails with
        `ChildStartFailed`.
        """
        for record in list(self._children):
            if self._halted():
                return
            if record._removed:
                continue
            if await self._start(record, restart=False) is False:
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
        queue = self._queue
        while not self._halted():
            if queue:
                await self._process(queue.popleft())
            elif self._inbox:
                await self._drain()
            else:
                await self._idle()

    async def _process(self, item: _Item) -> None:
        kind = item[0]
        if kind == "exit":
            await self._child_exited(item[1], item[2], item[3])
        elif kind == "call":
            function, future = item[1], item[2]
            try:
                result = await function()
            except (KeyboardInterrupt, SystemExit):
                raise
            except asyncio.CancelledError:
                # Never kept as the verb's result: a cancellation of our task
                # becomes a Cancel of the supervisor, as at every other await.
                self._absorb_cancel()
                if not future.done():
                    future.set_exception(ActorStopped(self.path, "a supervisor verb"))
            except BaseException as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)
        else:
            await self._timer_fired(item[1], item[2])

    async def _command(self, function: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``function`` in the supervisor's task, after what is queued before it."""
        if asyncio.current_task() is self._task:
            return await function()  # from a hook: queueing would wait for ourselves
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._queue.append(("call", function, future))
        self._wake()
        return await asyncio.shield(future)

    # -- ending --------------------------------------------------------------------------------

    def _end_run(self) -> None:
        for record in self._children:
            record._cancel_timer()
        while self._queue:
            item = self._queue.popleft()
            if item[0] == "call" and not item[2].done():
                item[2].set_exception(ActorStopped(self.path, "a supervisor verb"))
        self._discard_inbox()

    def _finished(self, task: asyncio.Task[None]) -> None:
        """After the task has ended: answer, tell the subscribers and the parent."""
        if task.cancelled():
            exit = Exit(ExitKind.CANCELLED, requested=True)
            if self._state is not State.CANCELLED:
                self._state = State.CANCELLED  # cancelled before its first step
        else:
            error = task.exception()  # also marks it retrieved: it was logged already
            if error is None:
                exit = Exit(ExitKind.NORMAL, requested=self._stop_requested)
            else:
                exit = Exit(ExitKind.FAILED, error)
            if error is not None:
                self._failure_count += 1
                self._last_error = error
                self._state = State.FAILED
        self._set_ready(False)
        for message, future in self._acks_end:
            if not future.done():
                future.set_result(Ack(message, 0, None))
        self._acks_end.clear()
        ended = self._ended
        if ended is not None and not ended.done():
            ended.set_result(exit)
        self._report_exit(exit)
