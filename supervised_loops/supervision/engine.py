"""The engine of a Supervisor: the task that starts, serves and shuts down.

`SupervisorEngine` puts the layers together (see
`_supervisor_core` for the design): it launches the
supervisor's task, starts the children in order, serves the queue of exits,
verbs and timers until told to stop or failing, then shuts the children down
in reverse order and reports its own end to its parent.
`supervised_loops.Supervisor` is its only subclass and public face.

May import: the lower ``supervision`` modules and what they may import.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ActorStopped, ChildStartFailed
from ..events import ActorStarted
from ..messages import Exit, ExitKind, State
from .core import ExitReport, QueueItem, Started, SupervisorRun, TimerFired, VerbCall
from .restarts import SupervisorRestarts

logger = logging.getLogger("supervised_loops")


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
                await self._call_hook("before_start", self.before_start)
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
        await self._call_hook("after_stop", self.after_stop)
        self._end_run()
        failure = run.error
        if failure is not None:
            run.state = State.FAILED
            self._note(failure)
            raise failure
        if run.cancelling:
            run.state = State.CANCELLED
            raise asyncio.CancelledError
        run.state = State.STOPPED

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
            if await self._start(record, restart=False) is Started.ENDED:
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
