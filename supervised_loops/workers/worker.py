"""Workers: a plain long-running coroutine as a supervised actor.

A Loop runs a body on a schedule; a worker runs one coroutine that lives as
long as it likes (a queue consumer, a websocket reader, a server):

    async def consume(url: str) -> None:
        async with connect(url) as connection:
            current_worker().set_ready()         # with signals_ready=True
            async for message in connection:
                handle(message)

    tree = Supervisor(child(worker(consume, "amqp://...", signals_ready=True)))

Semantics, mirroring a Loop where it makes sense:

* **Exit.** The coroutine returning is a normal exit; raising is a failure,
  except for whitelisted errors (``OSError``, ``TimeoutError`` by default),
  which are *retried*: the coroutine is called again after an exponential
  backoff, in the same run (``reconnect=True``), exactly as a Loop retries an
  iteration; one raised after a ``Stop`` is not retried and the run ends
  normally, as a Loop's does. The supervisor's ``should_retry`` hook has
  the last word, and its ``backoff_for`` supplies the backoff when the
  worker has none. A failure is logged once, with its traceback and the
  worker's path.
* **Readiness.** By default a worker is ready as soon as it starts. With
  ``signals_ready=True`` it is ready when the coroutine calls
  ``current_worker().set_ready()`` (after connecting, say), and the next
  sibling waits for that. A successful ``set_ready()`` after a retry also
  counts as a success for the backoff (the exponent resets).
* **Stop.** A plain coroutine has no "end of iteration" at which to stop, so
  ``Stop`` cancels it at once (its ``finally`` blocks run) and the run ends
  *normally*. With ``cooperative_stop=True``, ``Stop`` instead sets
  ``current_worker().stopping`` (and wakes ``await until_stopping()``): the
  coroutine is expected to return by itself, and the supervisor cancels it
  after the child's ``shutdown`` grace if it does not. ``Cancel`` cancels;
  the run ends cancelled. What a plain worker runs after its ``Stop``
  (``finally`` blocks) is its clean-up: like ``after_loop`` it runs to its
  end; only a hard shutdown limit or a forced shutdown cuts it (``CutShort``).
* **Messages.** A worker takes the control messages ``Stop``, ``Cancel``,
  ``Restart`` (stop, then start again, with new arguments if given) and
  ``GetStatus``; other messages are refused as dead letters: give the
  coroutine its own channel (an ``asyncio.Queue``) for data.

A cancellation the worker did not ask for (a ``CancelledError`` raised by a
library inside the coroutine) is a failure, not a quiet exit.

Why workers are a subpackage beside ``loops`` and not in ``supervision``: a
worker is an actor kind, like a Loop, that runs with or without a
supervisor; it needs the runnable base (`core.runnable`) and nothing of
supervision, and supervision needs nothing of it (it supervises any
runnable actor). Its run record and context are `workers.run`'s.

May import: ``workers.run``, ``core`` and the pure top-level modules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, Literal

from .. import _validate
from ..backoff import (
    DEFAULT_RETRY_EXCEPTIONS,
    ExponentialBackoff,
    RetryRule,
    retry_delay,
    retry_rule,
    retryable,
)
from ..core.actor import DEFAULT_MAILBOX_SIZE, Reply
from ..core.parent import refuse_orphan_start
from ..core.runnable import Runnable, acknowledge_when_ready
from ..errors import UnhandledMessage
from ..events import ActorStarted, IterationFailed, RetryScheduled, describe
from ..leases.gate import Lease, LeaseGate, describe_lease, gate_of, keeper_of, lease_option
from ..leases.keeper import LeaseKeeper
from ..messages import (
    ActorStatus,
    Cancel,
    ControlMessage,
    Exit,
    GetStatus,
    Restart,
    State,
    Stop,
)
from .run import WorkerRun, _current, _current_run, _fire

__all__ = ["Worker", "current_worker", "worker"]

logger = logging.getLogger("supervised_loops")

_ANY_ERROR_RULE = RetryRule(Exception)


def current_worker() -> Worker:
    """The worker whose coroutine is running (to signal readiness, watch for stop).

    Raises:
        RuntimeError: called outside a worker's coroutine.
    """
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("current_worker() must be called inside a worker's coroutine") from None


class Worker(Runnable):
    """A long-running coroutine as an actor; build one with `worker`.

    Args:
        function: the coroutine function.
        *args, **kwargs: its arguments (a start with arguments replaces them).
        name: the worker's name (default: the function's ``__name__``).
        signals_ready: readiness waits for ``current_worker().set_ready()``.
        cooperative_stop: ``Stop`` sets ``stopping`` instead of cancelling.
        reconnect: retry whitelisted errors with backoff.
        backoff: the retry backoff (default: the supervisor's, else
            discord.ext.tasks' ``ExponentialBackoff()``).
        retry: extra `RetryRule` objects, matched
            before the whitelist.
        exception_types: the whitelist (default ``(OSError, TimeoutError)``).
        lease: run only on the replica holding this lease (a ``Lease``, a
            name or True); see the docs page "Running several replicas".

    Raises:
        TypeError, ValueError: a bad argument, named in the message.
    """

    def __init__(
        self,
        function: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | None = None,
        signals_ready: bool = False,
        cooperative_stop: bool = False,
        reconnect: bool = True,
        backoff: ExponentialBackoff | None = None,
        retry: Iterable[RetryRule] = (),
        exception_types: Iterable[type[BaseException]] = DEFAULT_RETRY_EXCEPTIONS,
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
        lease: Lease | str | bool | None = None,
        **kwargs: Any,
    ) -> None:
        _validate.coroutine_function("function", function)
        _validate.boolean("signals_ready", signals_ready)
        _validate.boolean("cooperative_stop", cooperative_stop)
        _validate.boolean("reconnect", reconnect)
        _validate.optional_instance("backoff", backoff, ExponentialBackoff, "an ExponentialBackoff")
        rules = _validate.items("retry", retry, retry_rule)
        types = _validate.items("exception_types", exception_types, retryable)
        Runnable.__init__(
            self, function.__name__ if name is None else name, mailbox_size=mailbox_size
        )
        spec = lease_option(lease)  # with a lease, it runs only where the lease is held
        self._function = function if spec is None else LeaseGate(spec, self).wrap_worker(function)
        self._args = args
        self._kwargs = kwargs
        self._signals_ready = signals_ready
        self._cooperative_stop = cooperative_stop
        self._reconnect = reconnect
        self._backoff = backoff
        self._rules = rules
        self._whitelist = RetryRule(types) if types else None
        self._reset_runs()

    # -- starting and stopping ------------------------------------------------

    _kind: ClassVar[str] = "worker"
    _run: WorkerRun | None

    def start(self, *args: Any, **kwargs: Any) -> asyncio.Task[None]:
        """Start the worker in the running event loop; return its task.

        Arguments given replace the ones given at construction (for this run
        and the following ones). A new start is accepted once the previous
        run is ending.

        Raises:
            RuntimeError: it is already running (and not ending), or no event loop runs.
            ActorNotRunning: its supervisor is stopped (it would run outside its tree).
        """
        refuse_orphan_start(self, "start()")
        run = self._run
        if run is not None and not run.task.done() and not run.ending_or_replaced():
            raise RuntimeError(f"worker {self.path!r} is already running; stop() it first")
        new: WorkerRun = self._launch(args, kwargs, restart=False)
        return new.task

    def _new_record(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool
    ) -> WorkerRun:
        return WorkerRun(args, kwargs, restart=restart)

    def _launch(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, restart: bool) -> Any:
        # Arguments given replace the worker's own, for this run and the next.
        if args or kwargs:
            self._args, self._kwargs = tuple(args), dict(kwargs)
        return super()._launch(self._args, dict(self._kwargs), restart=restart)

    def stop(self) -> None:
        """Send `Stop`."""
        self.tell(Stop())

    def cancel(self) -> None:
        """Send `Cancel`."""
        self.tell(Cancel())

    # -- inside the coroutine -------------------------------------------------------

    def set_ready(self) -> None:
        """Signal readiness (with ``signals_ready=True``); later calls do nothing.

        Also counts as a success for the retry backoff.
        """
        run = self._own_run()
        if run is None:
            return
        if run.tracker is not None:
            run.tracker.success()
            run.consecutive = 0
        self._set_ready(run, True)
        if run.state is State.STARTING:
            run.state = State.RUNNING

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked (a cooperative worker returns when it sees this)."""
        run = self._own_run()
        return run is not None and run.stop

    def _own_run(self) -> WorkerRun | None:
        """The caller's run when called from this worker's coroutine, else the latest."""
        if _current.get(None) is self:
            return _current_run.get(None) or self._run
        return self._run

    async def until_stopping(self) -> None:
        """Wait until a stop is asked; returns at once if it already was.

        Cancelling the wait is safe.
        """
        run = self._own_run()
        if run is None or run.stop:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        run.stop_waiters.append(waiter)
        try:
            await waiter
        finally:
            run.stop_waiters.remove(waiter)

    # -- the run ---------------------------------------------------------------------

    async def _runner(self, run: WorkerRun) -> None:
        run.began = True
        error: BaseException | None = None
        try:
            await self._await_previous(run)
            _current.set(self)  # the task runs in its own copy of the context
            _current_run.set(run)
            if run.restart:
                self._restart_count += 1
            self._emit(ActorStarted)
            if not self._signals_ready:
                self.set_ready()
            while not run.stop:
                try:
                    await self._function(*run.args, **run.kwargs)
                    break
                except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    answer = self._answer_failure(run, exc)
                    if answer == "escalate":
                        raise
                    if answer == "abandon":
                        break  # stopping: the retry is abandoned, the run ends normally
                    await self._back_off(run, exc)  # a stop meanwhile abandons the retry
        except asyncio.CancelledError as cancelled:
            if not self._absorb_cancel(run):
                error = cancelled  # raised inside the coroutine, not asked for: a failure
        except (KeyboardInterrupt, SystemExit) as fatal:
            run.error = fatal
            raise
        except BaseException as exc:
            error = exc
        if (gate := gate_of(self._function)) is not None:  # lease back before the end report
            late = await gate.leave(self, run)
            error = late if error is None else error
        run.ended = True
        self._set_ready(run, False)
        if error is not None:
            run.error = error
            self._note(error)
            logger.error("worker %r failed", self.path, exc_info=error)
        raised = self._end_in_task(run, error)  # reported from this last step: one cycle sooner
        if raised is not None:
            raise raised

    def _answer_failure(
        self, run: WorkerRun, error: BaseException
    ) -> Literal["retry", "abandon", "escalate"]:
        """What follows ``error``: a retry, the end of a stopping run, or an escalation.

        The whitelist answers, then the supervisor's ``should_retry``. As for a
        Loop, an error that would be retried but comes after a Stop is not
        escalated: the retry is abandoned and the run ends normally (the
        error stays in the status).
        """
        self._note(error)
        rule = self._rule_for(error) if self._reconnect else None
        if run.stop:
            answer: Literal["retry", "abandon", "escalate"] = (
                "escalate" if rule is None else "abandon"
            )
        else:
            retried = self._should_retry(error, run.consecutive + 1, rule is not None)
            answer = "retry" if retried else "escalate"
        self._emit(IterationFailed, iteration=0, error=describe(error), retried=answer == "retry")
        if answer == "abandon":
            logger.info("worker %r: %s; stopping, not retried", self.path, describe(error))
        if answer != "escalate":
            self._retried()  # the same object raised again is a new failure
        return answer

    async def _back_off(self, run: WorkerRun, error: BaseException) -> None:
        """Wait out the backoff delay before calling the coroutine again."""
        rule = self._rule_for(error) or _ANY_ERROR_RULE
        run.consecutive += 1
        tracker = run.tracker
        if tracker is None:
            policy = rule.backoff or self._backoff_or_parents(self._backoff)
            tracker = run.tracker = policy.tracker()
        event_loop = asyncio.get_running_loop()
        delay = retry_delay(rule, tracker, error, now=event_loop.time(), next_tick=None)
        logger.info(
            "worker %r: %s; retry %d in %.3f s", self.path, describe(error), tracker.attempt, delay
        )
        self._emit(RetryScheduled, iteration=0, attempt=tracker.attempt, delay=delay)
        run.state = State.RETRYING
        waiter: asyncio.Future[None] = event_loop.create_future()
        run.waiter = waiter
        handle = event_loop.call_later(delay, _fire, waiter)
        try:
            await waiter
        finally:
            run.waiter = None
            handle.cancel()
        run.state = State.RUNNING

    def _rule_for(self, error: BaseException) -> RetryRule | None:
        for rule in self._rules:
            if rule.matches(error):
                return rule
        whitelist = self._whitelist
        if whitelist is not None and whitelist.matches(error):
            return whitelist
        return None

    def _run_ended(self, run: WorkerRun, exit: Exit) -> None:
        run.wake()  # until_stopping() waiters of a run that ended without a Stop

    # -- queries -----------------------------------------------------------------------

    def failed(self) -> bool:
        """Whether the latest run ended (or is ending) with an escalated error."""
        run = self._run
        return run is not None and run.failed

    def _use_gate(self, gate: LeaseGate) -> None:
        self._function = gate.wrap_worker(self._function, what=f"worker {self.name!r}")

    @property
    def lease(self) -> LeaseKeeper | None:
        """This worker's lease keeper (``worker(..., lease=...)``), None without one or before."""
        return keeper_of(self._function)

    def status(self) -> ActorStatus:
        """A frozen snapshot of the worker."""
        run = self._run
        state = State.IDLE if run is None else run.state
        if run is not None and run.stop and not run.task.done() and state is not State.STARTING:
            state = State.STOPPING
        error = self._last_error
        return ActorStatus(
            name=self._name,
            path=self.path,
            kind="worker",
            state=state,
            failures=self._failure_count,
            restarts=self._restart_count,
            last_error=None if error is None else describe(error),
            lease=describe_lease(self._function),
        )

    # -- messages ------------------------------------------------------------------------

    def _on_control(self, message: ControlMessage, reply: Reply) -> None:
        if isinstance(message, GetStatus):
            if reply is not None and not reply.done():
                reply.set_result(self.status())
            return
        if isinstance(message, Restart):
            self._control_restart(message, reply)
            return
        if not isinstance(message, Stop | Cancel):
            self._refuse(message, reply)
            return
        run = self._run
        if run is None or run.task.done():
            self._dead_letter(message, reply, "not running")
            return
        if reply is not None:
            run.add_end_ack(message, reply)
        cancel = isinstance(message, Cancel)
        # A cooperative worker's first Cancel cancels even after its Stop; a
        # plain worker's Stop has cancelled the coroutine, and what runs now
        # is its clean-up: it runs to its end, as after_loop (run.finishing).
        first_cancel = cancel and not run.cancelling and run.finishing is None
        if cancel:
            run.cancelling = True
        elif run.stop:
            return  # duplicate Stops merge
        run.stop = True
        run.wake()
        if not run.began:
            return
        if first_cancel or (not cancel and not self._cooperative_stop and not run.cancel_sent):
            run.finishing = None if cancel else run.task.get_loop().time()
            run.cancel_sent = True
            run.task.cancel()

    def _control_restart(self, message: Restart, reply: Reply) -> None:
        if self._refuse_orphan(message, reply):
            return
        run = self._run
        if run is not None and not run.task.done():
            # Restart cancels like Cancel (but not a clean-up in progress).
            first_cancel = not run.cancelling
            run.cancelling = True
            run.stop = True
            run.wake()
            if run.began and run.finishing is None and (first_cancel or not run.cancel_sent):
                run.cancel_sent = True
                run.task.cancel()
        args = () if message.args is None else message.args
        kwargs = {} if message.kwargs is None else dict(message.kwargs)
        try:
            self._launch(args, kwargs, restart=True)
        except RuntimeError:  # no running event loop
            self._dead_letter(message, reply, "no running event loop")
            return
        if reply is not None and (ready := self._ready_future()) is not None:
            acknowledge_when_ready(ready, message, reply, self.path)

    def _deliver_user(self, message: Any, reply: Reply) -> None:
        self._refuse(message, reply)

    def _refuse(self, message: Any, reply: Reply) -> None:
        self._dead_letter(message, None, "a worker takes no such message")
        if reply is not None and not reply.done():
            reply.set_exception(UnhandledMessage(self.path, message))


def worker(
    function: Callable[..., Awaitable[Any]],
    *args: Any,
    name: str | None = None,
    signals_ready: bool = False,
    cooperative_stop: bool = False,
    reconnect: bool = True,
    backoff: ExponentialBackoff | None = None,
    retry: Iterable[RetryRule] = (),
    lease: Lease | str | bool | None = None,
    **kwargs: Any,
) -> Worker:
    """Wrap ``function(*args, **kwargs)`` as a `Worker` (see there).

    Keyword arguments that are not options of ``worker`` go to the
    function; wrap it in ``functools.partial`` if one of its own parameters
    has an option's name.
    """
    return Worker(
        function,
        *args,
        name=name,
        signals_ready=signals_ready,
        cooperative_stop=cooperative_stop,
        reconnect=reconnect,
        backoff=backoff,
        retry=retry,
        lease=lease,
        **kwargs,
    )
