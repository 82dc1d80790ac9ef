"""The lease keeper: one object that gets a lease, keeps it, and says when it is gone.

States and transitions (all on the event loop's clock)::

    stopped --start()--> standby --acquired--> held
    held --refused / deadline passed / unreachable past the deadline--> standby
    standby, held --stop()--> stopped   (a held grant is released first)

In ``standby`` the keeper asks for the lease every ``retry_period`` (jittered
down to 75 % of it, never above, so a dead holder is replaced at most
``ttl + retry_period`` after its last renewal). In ``held`` it renews every
``ttl / 3``; a renewal that fails is retried every ``retry_period`` until the
grant's local deadline (``sent_at + renew_deadline``).

The deadline is also a timer of its own: when it passes, the keeper drops the
grant and calls ``on_lost`` from that timer callback, even if a renewal is
still waiting for an answer. After a process is paused (SIGSTOP, a laptop
lid, a long GC) the overdue deadline timer runs in the first pass of the
event loop, before any task woken in that same pass takes its next step, so
an owner that cancels its work from ``on_lost`` stops it before it writes
again. The fence is the backstop for writes that were already under way.

Renewal runs in one background task and never touches the owner's hot path:
reading `LeaseKeeper.fence` or `LeaseKeeper.expires_in` costs an attribute
read and a clock read.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any, Literal

from .. import _validate
from .backend import LeaseBackend
from .errors import LeaseNotHeld
from .grant import Grant
from .memory import MemoryBackend
from .settings import LeaseSettings, default_holder_id, validate_name

__all__ = ["KeeperState", "LeaseKeeper", "LossReason"]

logger = logging.getLogger("supervised_loops.leases")

KeeperState = Literal["stopped", "standby", "held"]
LossReason = Literal["refused", "deadline passed", "unreachable"]

#: Standby attempts are spread over [JITTER_FLOOR × retry_period, retry_period].
JITTER_FLOOR = 0.75


class LeaseKeeper:
    """Acquire, renew and release one named lease in the background.

    Args:
        name: the lease's name (non-empty string).
        backend: where the lease lives; default `MemoryBackend.shared`.
        holder: this keeper's holder id; default ``hostname:pid:random``.
        settings: the timing; default ``LeaseSettings()`` (ttl 15 s).
        on_acquired: called with the grant each time the lease is acquired.
        on_lost: called with the reason each time a held lease is lost (not
            when it is released by `stop`). It runs synchronously, possibly
            from a timer callback: it should only flag or cancel work.
        rng: the source of jitter (tests pass a seeded ``random.Random``).

    Raises:
        TypeError, ValueError: a bad name, holder or settings object.
    """

    def __init__(
        self,
        name: str,
        backend: LeaseBackend | None = None,
        *,
        holder: str | None = None,
        settings: LeaseSettings | None = None,
        on_acquired: Callable[[Grant], object] | None = None,
        on_lost: Callable[[LossReason], object] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = validate_name("name", name)
        self.holder = default_holder_id() if holder is None else validate_name("holder", holder)
        if settings is None:
            settings = LeaseSettings()
        elif not isinstance(settings, LeaseSettings):
            _validate.type_error("settings", "a LeaseSettings", settings)
        if backend is not None and not isinstance(backend, LeaseBackend):
            _validate.type_error("backend", "a LeaseBackend", backend)
        self.settings = settings
        self._backend = backend
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._rng = rng or random.Random()
        self._state: KeeperState = "stopped"
        self._grant: Grant | None = None
        self._last_loss: str = "standby"
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wakeup: asyncio.Future[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._held_event: asyncio.Event | None = None
        # True while the latest renewal attempt raised: a deadline that
        # passes then is reported as "unreachable", not "deadline passed".
        self._renew_failing = False
        self.acquired_count = 0
        self.lost_count = 0

    # -- what the owner and the body read ---------------------------------------

    @property
    def state(self) -> KeeperState:
        """``"stopped"``, ``"standby"`` (running, not holding) or ``"held"``."""
        return self._state

    @property
    def grant(self) -> Grant | None:
        """The current grant, or None when not held."""
        return self._grant

    @property
    def fence(self) -> int | None:
        """The current grant's fencing token, or None when not held."""
        grant = self._grant
        return None if grant is None else grant.fence

    @property
    def backend(self) -> LeaseBackend | None:
        """The backend (None until started when the shared default is used)."""
        return self._backend

    def expires_in(self) -> float:
        """Seconds until the current grant's local deadline; 0.0 when not held."""
        grant = self._grant
        if grant is None:
            return 0.0
        return max(0.0, grant.valid_until - asyncio.get_running_loop().time())

    def describe(self) -> str:
        """The state in words, for status lines: ``"held fence 3 by <holder>"``, ``"standby"``."""
        grant = self._grant
        if grant is not None:
            return f"held fence {grant.fence} by {grant.holder}"
        return self._state

    @property
    def is_held(self) -> bool:
        """True while a grant is held and its local deadline has not passed."""
        return self.expires_in() > 0.0

    async def ensure(self, *, verify: bool = False) -> Grant:
        """Return the current grant, or raise `LeaseNotHeld`.

        The local check reads the clock only. With ``verify=True`` the grant
        is also renewed with the backend, which proves that nobody took the
        lease in between (and extends it); an unreachable backend then
        raises its own error. Cancelling it abandons the check; the lease is
        not affected.

        Raises:
            LeaseNotHeld: not held, or its local deadline has passed, or the
                backend refused the renewal (the lease is then lost).
        """
        grant = self._grant
        if grant is None or asyncio.get_running_loop().time() >= grant.valid_until:
            reason = self._last_loss if grant is None else "deadline passed"
            raise LeaseNotHeld(self.name, reason)
        if verify:
            assert self._backend is not None
            renewed = await self._backend.renew(grant)
            if renewed is None:
                self._lose(grant, "refused")
                raise LeaseNotHeld(self.name, "refused")
            self._adopt(grant, renewed)
        return self._grant or grant

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Begin trying to acquire the lease (from standby) in a background task.

        Raises:
            RuntimeError: already started, or no event loop is running.
        """
        if self._task is not None:
            raise RuntimeError(f"lease keeper {self.name!r} is already started")
        loop = asyncio.get_running_loop()
        if self._backend is None:
            self._backend = MemoryBackend.shared()
        self._stopping = False
        self._held_event = asyncio.Event()
        self._state = "standby"
        self._last_loss = "standby"
        self._task = loop.create_task(self._run(), name=f"lease keeper {self.name}")

    async def wait_held(self) -> Grant:
        """Wait until the lease is held and return its grant.

        Cancelling it only stops the wait.

        Raises:
            RuntimeError: the keeper is not started, or it stopped while waiting.
        """
        while True:
            if self._task is None or self._held_event is None:
                raise RuntimeError(f"lease keeper {self.name!r} is not started")
            grant = self._grant
            if grant is not None:
                return grant
            if self._task.done():
                raise RuntimeError(f"lease keeper {self.name!r} stopped")
            await self._held_event.wait()

    async def stop(self) -> None:
        """Stop keeping the lease; release it if held, so a standby takes over at once.

        A renewal or acquisition already sent is allowed to finish (each is
        bounded by the grant's deadline) so the release uses the latest
        grant instead of orphaning one. ``on_lost`` is not called. Stopping
        a stopped keeper does nothing. If the caller is cancelled, the stop
        and release go on in the background.
        """
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wake()
        try:
            await asyncio.shield(task)
        finally:
            if task.done():
                self._task = None
                self._state = "stopped"

    async def __aenter__(self) -> LeaseKeeper:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- the background task ------------------------------------------------------

    async def _run(self) -> None:
        backend = self._backend
        assert backend is not None
        try:
            while not self._stopping:
                grant = await self._acquire(backend)
                if grant is None:
                    break
                self._take(grant)
                await self._hold(backend)
        finally:
            grant = self._grant
            self._clear_grant()
            if grant is not None:
                await self._release(backend, grant)
            self._state = "stopped"
            if self._held_event is not None:
                self._held_event.set()  # wake wait_held() so it sees the stop

    async def _acquire(self, backend: LeaseBackend) -> Grant | None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        while not self._stopping:
            try:
                grant = await asyncio.wait_for(
                    backend.acquire(self.name, self.holder, settings), settings.renew_deadline
                )
            except Exception as error:  # the backend is unreachable: stay standby, retry
                logger.warning("lease %r: acquire failed: %r", self.name, error)
                grant = None
            if grant is not None:
                if self._stopping:
                    await self._release(backend, grant)
                    return None
                if loop.time() < grant.valid_until:
                    return grant
                # The answer came too late to be trusted: let it go.
                await self._release(backend, grant)
            delay = settings.retry_period * (JITTER_FLOOR + (1 - JITTER_FLOOR) * self._rng.random())
            await self._sleep(loop.time() + delay)
        return None

    async def _hold(self, backend: LeaseBackend) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        while True:
            grant = self._grant
            if grant is None or self._stopping:
                return
            await self._sleep(grant.sent_at + settings.renew_interval)
            # Renew until it succeeds, is refused, or the deadline passes.
            while True:
                grant = self._grant
                if grant is None or self._stopping:
                    return
                remaining = grant.valid_until - loop.time()
                if remaining <= 0:
                    self._lose(grant, "deadline passed")
                    return
                try:
                    renewed = await asyncio.wait_for(backend.renew(grant), remaining)
                except Exception as error:
                    self._renew_failing = True
                    logger.warning("lease %r: renew failed: %r", self.name, error)
                    if loop.time() >= grant.valid_until:
                        self._lose(grant, "unreachable")
                        return
                    await self._sleep(min(loop.time() + settings.retry_period, grant.valid_until))
                    continue
                self._renew_failing = False
                if renewed is None:
                    self._lose(grant, "refused")
                    return
                if self._grant is not grant:
                    # Lost by the deadline timer while the answer was on its
                    # way: the lease is ours again on the server, give it back.
                    await self._release(backend, renewed)
                    return
                self._adopt(grant, renewed)
                break

    async def _release(self, backend: LeaseBackend, grant: Grant) -> None:
        try:
            await asyncio.wait_for(backend.release(grant), self.settings.renew_deadline)
        except Exception as error:
            # Not fatal: the grant expires by itself within its ttl.
            logger.warning("lease %r: release failed: %r", self.name, error)

    async def _sleep(self, until: float) -> None:
        """Sleep until ``until`` on the loop clock, or until `_wake` (stop, loss)."""
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup = loop.create_future()
        handle = loop.call_at(until, _resolve, wakeup)
        try:
            await wakeup
        finally:
            handle.cancel()
            self._wakeup = None

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            _resolve(wakeup)

    # -- transitions ----------------------------------------------------------------

    def _take(self, grant: Grant) -> None:
        self._grant = grant
        self._renew_failing = False
        self._state = "held"
        self.acquired_count += 1
        self._arm_deadline(grant)
        assert self._held_event is not None
        self._held_event.set()
        if self._on_acquired is not None:
            self._notify(self._on_acquired, grant)

    def _adopt(self, old: Grant, renewed: Grant) -> None:
        # Keep whichever answer was sent last: ensure(verify=True) and the
        # background renewal may both be in flight.
        if self._grant is old or (
            self._grant is not None
            and self._grant.fence == renewed.fence
            and renewed.sent_at > self._grant.sent_at
        ):
            self._grant = renewed
            self._arm_deadline(renewed)

    def _arm_deadline(self, grant: Grant) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_at(grant.valid_until, self._deadline_passed, grant)

    def _deadline_passed(self, grant: Grant) -> None:
        if self._grant is not None and self._grant.fence == grant.fence:
            self._lose(self._grant, "unreachable" if self._renew_failing else "deadline passed")

    def _clear_grant(self) -> None:
        self._grant = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._held_event is not None:
            self._held_event.clear()

    def _lose(self, grant: Grant, reason: LossReason) -> None:
        if self._grant is None or self._grant.fence != grant.fence:
            return
        self._clear_grant()
        self._state = "standby"
        self._last_loss = reason
        self.lost_count += 1
        logger.info("lease %r lost (%s), fence %d", self.name, reason, grant.fence)
        self._wake()
        if self._on_lost is not None:
            self._notify(self._on_lost, reason)

    def _notify(self, callback: Callable[[Any], object], argument: object) -> None:
        try:
            callback(argument)
        except Exception as error:
            asyncio.get_running_loop().call_exception_handler(
                {
                    "message": f"lease {self.name!r}: callback {callback!r} raised",
                    "exception": error,
                }
            )

    def __repr__(self) -> str:
        return (
            f"LeaseKeeper({self.name!r}, holder={self.holder!r}, state={self._state!r}, "
            f"fence={self.fence!r})"
        )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
