"""The lease keeper in virtual time: every state transition, on the event loop's clock."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from supervised_loops.leases import (
    Grant,
    LeaseKeeper,
    LeaseNotHeld,
    LeaseSettings,
    MemoryBackend,
)
from supervised_loops.testing import VirtualClock, virtual_time

SETTINGS = LeaseSettings(ttl=3.0, renew_deadline=2.0, retry_period=0.5)


class ScriptedBackend:
    """A MemoryBackend seen through a network that tests can break or slow down."""

    def __init__(self, inner: MemoryBackend) -> None:
        self.inner = inner
        self.down = False
        self.delay = 0.0
        self.hang = False
        self.calls: list[tuple[str, float]] = []

    async def _call(self, verb: str, request: Callable[[], Awaitable[Any]]) -> Any:
        loop = asyncio.get_running_loop()
        self.calls.append((verb, loop.time()))
        if self.hang:
            await loop.create_future()  # never answers
        if self.down:
            raise ConnectionError("backend unreachable")
        if self.delay:
            # The request reaches the server only after the delay, as over a
            # slow network; the grant's sent_at stays the moment it was sent.
            sent_at = loop.time()
            await asyncio.sleep(self.delay)
            result = await request()
            return result.renewed(sent_at) if isinstance(result, Grant) else result
        return await request()

    async def acquire(self, name: str, holder: str, settings: LeaseSettings) -> Grant | None:
        return await self._call("acquire", lambda: self.inner.acquire(name, holder, settings))  # type: ignore[no-any-return]

    async def renew(self, grant: Grant) -> Grant | None:
        return await self._call("renew", lambda: self.inner.renew(grant))  # type: ignore[no-any-return]

    async def release(self, grant: Grant) -> None:
        await self._call("release", lambda: self.inner.release(grant))

    def times(self, verb: str) -> list[float]:
        return [at for name, at in self.calls if name == verb]


def keeper(backend: Any, holder: str, **kwargs: Any) -> LeaseKeeper:
    return LeaseKeeper(
        "job", backend, holder=holder, settings=SETTINGS, rng=random.Random(1), **kwargs
    )


@virtual_time()
async def test_a_started_keeper_goes_from_standby_to_held_with_fence_one() -> None:
    first = keeper(MemoryBackend(), "a")
    assert first.state == "stopped"
    first.start()
    assert first.state == "standby"
    grant = await first.wait_held()
    assert (first.state, grant.fence, first.fence, grant.holder) == ("held", 1, 1, "a")
    assert first.expires_in() == pytest.approx(SETTINGS.renew_deadline)
    await first.stop()
    assert first.state == "stopped"


@virtual_time()
async def test_a_second_keeper_stays_in_standby_and_its_ensure_raises(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    async with keeper(backend, "a") as first, keeper(backend, "b") as second:
        await first.wait_held()
        await clock.sleep(10)
        assert (first.state, second.state) == ("held", "standby")
        assert second.fence is None
        assert second.expires_in() == 0.0
        assert not second.is_held
        with pytest.raises(LeaseNotHeld, match=r"^lease 'job' is not held \(standby\)$"):
            await second.ensure()


@virtual_time()
async def test_renewal_every_third_of_the_ttl_keeps_the_same_fence(clock: VirtualClock) -> None:
    backend = ScriptedBackend(MemoryBackend())
    async with keeper(backend, "a") as first:
        await first.wait_held()
        await clock.sleep(10.5)
        assert backend.times("renew") == pytest.approx([1.0 * n for n in range(1, 11)])
        assert first.fence == 1
        assert first.lost_count == 0
        assert first.expires_in() == pytest.approx(1.5)  # renewed at 10.0, deadline +2


@virtual_time()
async def test_standby_retries_are_jittered_within_the_retry_period() -> None:
    backend = ScriptedBackend(MemoryBackend())
    holder = keeper(backend.inner, "a")
    holder.start()
    await holder.wait_held()
    waiting = keeper(backend, "b")
    waiting.start()
    await asyncio.sleep(20)
    attempts = backend.times("acquire")
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(gaps) > 30
    assert all(0.75 * SETTINGS.retry_period <= gap <= SETTINGS.retry_period for gap in gaps)
    assert len({round(gap, 6) for gap in gaps}) > 10  # really jittered
    await waiting.stop()
    await holder.stop()


@virtual_time()
async def test_graceful_stop_releases_and_a_standby_takes_over_within_a_retry(
    clock: VirtualClock,
) -> None:
    backend = MemoryBackend()
    first, second = keeper(backend, "a"), keeper(backend, "b")
    lost: list[str] = []
    first.start()
    await first.wait_held()
    second.start()
    await clock.sleep(5)
    stopped_at = clock.monotonic()
    await first.stop()
    assert backend.holder_of("job") is None
    grant = await second.wait_held()
    assert grant.fence == 2
    assert clock.monotonic() - stopped_at <= SETTINGS.retry_period
    assert lost == []
    assert first.lost_count == 0
    await second.stop()


@virtual_time()
async def test_a_dead_holder_is_replaced_within_ttl_plus_one_retry(clock: VirtualClock) -> None:
    # The holder's network dies: from the backend's side it is a killed process.
    shared = MemoryBackend()
    holder_net = ScriptedBackend(shared)
    events: list[tuple[str, str, float]] = []
    first = keeper(
        holder_net, "a", on_lost=lambda r: events.append(("a lost", r, clock.monotonic()))
    )
    second = keeper(
        shared,
        "b",
        on_acquired=lambda g: events.append(("b held", str(g.fence), clock.monotonic())),
    )
    first.start()
    await first.wait_held()
    second.start()
    await clock.sleep(4.2)  # last good renewal sent at 4.0
    holder_net.down = True
    await second.wait_held()
    (a_lost, b_held) = events
    assert a_lost == ("a lost", "unreachable", pytest.approx(6.0))  # 4.0 + renew deadline
    assert b_held[:2] == ("b held", "2")
    assert 7.0 <= b_held[2] <= 7.0 + SETTINGS.retry_period  # expiry at 4.0 + ttl
    assert first.state == "standby"
    assert first.fence is None
    await first.stop()
    await second.stop()


@virtual_time()
async def test_renewal_refused_means_lost_then_standby_then_held_again(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    reasons: list[str] = []
    first = keeper(backend, "a", on_lost=reasons.append)
    first.start()
    grant = await first.wait_held()
    await backend.release(grant)  # an operator cleared it; someone else grabs it
    intruder = await backend.acquire("job", "intruder", SETTINGS)
    assert intruder is not None
    await clock.sleep(1.1)  # the renewal at 1.0 is refused
    assert (reasons, first.state, first.lost_count) == (["refused"], "standby", 1)
    with pytest.raises(LeaseNotHeld, match=r"\(refused\)$"):
        await first.ensure()
    await backend.release(intruder)
    regained = await first.wait_held()
    assert regained.fence == 3
    assert first.acquired_count == 2
    await first.stop()


@virtual_time()
async def test_a_renewal_that_never_answers_loses_the_lease_at_the_deadline(
    clock: VirtualClock,
) -> None:
    backend = ScriptedBackend(MemoryBackend())
    lost_at: list[float] = []
    first = keeper(backend, "a", on_lost=lambda _: lost_at.append(clock.monotonic()))
    first.start()
    await first.wait_held()
    backend.hang = True
    await clock.sleep(5)
    assert lost_at == [pytest.approx(SETTINGS.renew_deadline)]  # acquired at 0, never renewed
    assert first.state == "standby"
    await first.stop()


@virtual_time()
async def test_unreachable_past_the_deadline_is_lost_then_regained_after_recovery(
    clock: VirtualClock,
) -> None:
    backend = ScriptedBackend(MemoryBackend())
    lost: list[tuple[str, float]] = []
    first = keeper(backend, "a", on_lost=lambda reason: lost.append((reason, clock.monotonic())))
    first.start()
    await first.wait_held()
    backend.down = True  # renewals at 1.0 and 1.5 fail; the deadline is 2.0
    await clock.sleep(2.1)
    assert backend.times("renew") == [pytest.approx(1.0), pytest.approx(1.5)]
    assert lost == [("unreachable", pytest.approx(2.0))]
    assert first.state == "standby"
    backend.down = False
    grant = await first.wait_held()
    # The server kept the old grant until 0.0 + ttl: the new one comes after it.
    assert grant.fence == 2
    assert 3.0 <= clock.monotonic() <= 3.0 + SETTINGS.retry_period
    await first.stop()


@virtual_time()
async def test_a_renewal_answered_just_in_time_keeps_the_lease(clock: VirtualClock) -> None:
    backend = ScriptedBackend(MemoryBackend())
    first = keeper(backend, "a")
    first.start()
    await first.wait_held()
    backend.down = True
    await clock.sleep(1.2)  # the renewal at 1.0 failed; next try at 1.5
    backend.down = False
    await clock.sleep(1.0)
    assert first.lost_count == 0
    assert first.fence == 1
    assert backend.times("renew")[:2] == [pytest.approx(1.0), pytest.approx(1.5)]
    assert first.expires_in() == pytest.approx(1.5 + 2.0 - 2.2)
    await first.stop()


@virtual_time()
async def test_renewal_racing_a_stop_finishes_then_releases(clock: VirtualClock) -> None:
    backend = ScriptedBackend(MemoryBackend())
    reasons: list[str] = []
    first = keeper(backend, "a", on_lost=reasons.append)
    first.start()
    await first.wait_held()
    backend.delay = 0.4
    await clock.sleep(1.1)  # the renewal sent at 1.0 is in flight until 1.4
    await first.stop()
    assert clock.monotonic() == pytest.approx(1.4 + 0.4)  # renewal, then release
    assert [verb for verb, _ in backend.calls] == ["acquire", "renew", "release"]
    assert backend.inner.holder_of("job") is None
    assert reasons == []
    assert first.state == "stopped"
    successor = await backend.inner.acquire("job", "b", SETTINGS)
    assert successor is not None
    assert successor.fence == 2


@virtual_time()
async def test_stop_racing_an_acquire_releases_what_it_got(clock: VirtualClock) -> None:
    backend = ScriptedBackend(MemoryBackend())
    backend.delay = 0.3
    first = keeper(backend, "a")
    first.start()
    await clock.sleep(0.1)
    await first.stop()
    assert [verb for verb, _ in backend.calls] == ["acquire", "release"]
    assert backend.inner.holder_of("job") is None
    assert first.acquired_count == 0


@virtual_time()
async def test_stop_in_standby_ends_the_keeper_and_wakes_waiters(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    assert await backend.acquire("job", "other", SETTINGS) is not None
    first = keeper(backend, "a")
    first.start()
    waiter = asyncio.ensure_future(first.wait_held())
    await clock.sleep(1)
    await first.stop()
    with pytest.raises(RuntimeError, match=r"^lease keeper 'job' stopped$"):
        await waiter
    assert first.state == "stopped"
    await first.stop()  # a second stop does nothing


@virtual_time()
async def test_a_cancelled_stop_still_releases(clock: VirtualClock) -> None:
    backend = ScriptedBackend(MemoryBackend())
    first = keeper(backend, "a")
    first.start()
    await first.wait_held()
    backend.delay = 0.5
    stopping = asyncio.ensure_future(first.stop())
    await clock.sleep(0.1)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await clock.sleep(1)
    assert backend.inner.holder_of("job") is None


@virtual_time()
async def test_an_unreachable_backend_keeps_standby_until_it_recovers(clock: VirtualClock) -> None:
    backend = ScriptedBackend(MemoryBackend())
    backend.down = True
    first = keeper(backend, "a")
    first.start()
    await clock.sleep(5)
    assert first.state == "standby"
    assert len(backend.times("acquire")) >= 5
    backend.down = False
    grant = await first.wait_held()
    assert grant.fence == 1
    assert clock.monotonic() <= 5 + SETTINGS.retry_period
    await first.stop()


@virtual_time()
async def test_an_acquire_unanswered_within_the_renew_deadline_is_abandoned(
    clock: VirtualClock,
) -> None:
    backend = ScriptedBackend(MemoryBackend())
    backend.delay = 2.5  # longer than the renew deadline (2.0)
    first = keeper(backend, "a")
    first.start()
    await clock.sleep(2.1)
    assert first.state == "standby"
    assert first.acquired_count == 0
    backend.delay = 0.0
    grant = await first.wait_held()
    assert grant.fence == 1
    assert clock.monotonic() <= 2.0 + SETTINGS.retry_period
    await first.stop()


@virtual_time()
async def test_duplicate_holder_ids_never_both_hold(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    async with keeper(backend, "same") as first, keeper(backend, "same") as second:
        await clock.sleep(10)
        assert sorted([first.state, second.state]) == ["held", "standby"]


@virtual_time()
async def test_ensure_verify_detects_a_takeover_the_timer_has_not_seen(
    clock: VirtualClock,
) -> None:
    backend = MemoryBackend()
    reasons: list[str] = []
    first = keeper(backend, "a", on_lost=reasons.append)
    first.start()
    grant = await first.wait_held()
    assert await first.ensure(verify=True) is first.grant
    await backend.release(grant)
    assert await backend.acquire("job", "b", SETTINGS) is not None
    assert (await first.ensure()).fence == 1  # the local check cannot know yet
    with pytest.raises(LeaseNotHeld, match=r"\(refused\)$"):
        await first.ensure(verify=True)
    assert reasons == ["refused"]
    assert first.state == "standby"
    await first.stop()


@virtual_time()
async def test_a_paused_process_cancels_its_work_before_the_next_write(clock: VirtualClock) -> None:
    # A pause (SIGSTOP, a frozen VM) is time passing while the event loop
    # runs nothing. On resume, the overdue deadline timer must cancel the
    # work before the work's own overdue timer lets it write.
    backend = MemoryBackend()
    writes: list[int] = []
    work: asyncio.Task[None] | None = None

    def cancel_work(_: str) -> None:
        assert work is not None
        work.cancel()

    first = keeper(backend, "a", on_lost=cancel_work)
    first.start()
    grant = await first.wait_held()

    async def body() -> None:
        await asyncio.sleep(0.8)
        writes.append(grant.fence)

    work = asyncio.ensure_future(body())
    await clock.sleep(0.5)
    clock._jump(10.0)  # the process is frozen for 10 s: no callback runs
    with pytest.raises(asyncio.CancelledError):
        await work
    assert writes == []
    assert first.lost_count == 1
    # Back in standby, or already holding a new grant (nobody else wanted
    # it): which one at this instant depends on the event loop's order of
    # same-time callbacks (3.11 and 3.12 differ). Never the old grant.
    if first.state == "held":
        assert first.grant is not None
        assert first.grant.fence == grant.fence + 1
    else:
        assert first.state == "standby"
    await first.stop()


@virtual_time()
async def test_a_raising_callback_goes_to_the_loop_exception_handler(clock: VirtualClock) -> None:
    seen: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: seen.append(context))

    def broken(_: Grant) -> None:
        raise ValueError("boom")

    first = keeper(MemoryBackend(), "a", on_acquired=broken)
    first.start()
    await first.wait_held()
    assert first.state == "held"
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], ValueError)
    await first.stop()


@virtual_time()
async def test_misuse_is_refused_at_the_call() -> None:
    with pytest.raises(TypeError, match=r"^'settings' must be a LeaseSettings \(got 3\)$"):
        LeaseKeeper("job", settings=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^'backend' must be a LeaseBackend \(got 'redis'\)$"):
        LeaseKeeper("job", "redis")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^'name' must be a non-empty string \(got ''\)$"):
        LeaseKeeper("")
    first = LeaseKeeper("job", holder="a", settings=SETTINGS)
    with pytest.raises(RuntimeError, match=r"^lease keeper 'job' is not started$"):
        await first.wait_held()
    first.start()
    with pytest.raises(RuntimeError, match=r"^lease keeper 'job' is already started$"):
        first.start()
    await first.stop()


@virtual_time()
async def test_keepers_without_a_backend_share_the_loops_memory_store(clock: VirtualClock) -> None:
    async with (
        LeaseKeeper("job", settings=SETTINGS) as first,
        LeaseKeeper("job", settings=SETTINGS) as second,
    ):
        await clock.sleep(3)
        assert sorted([first.state, second.state]) == ["held", "standby"]
        assert first.backend is second.backend is MemoryBackend.shared()
