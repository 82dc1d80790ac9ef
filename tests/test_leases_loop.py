"""``loop(lease=...)`` in virtual time: the body runs only where the lease is held.

Two loops sharing a lease name in one process stand for two replicas (the
in-memory backend is shared by the event loop).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from supervised_loops import GetStatus, Supervisor, loop
from supervised_loops.leases import (
    Lease,
    LeaseAcquired,
    LeaseLost,
    LeaseNotHeld,
    LeaseSettings,
    MemoryBackend,
)
from supervised_loops.testing import VirtualClock, virtual_time

SETTINGS = LeaseSettings(ttl=3.0, renew_deadline=2.0, retry_period=0.5)


def replica(
    name: str, runs: list[tuple[str, int, float]], *, seconds: float = 1.0, **lease: Any
) -> Any:
    lease.setdefault("settings", SETTINGS)

    @loop(seconds=seconds, name=name, lease=Lease(name="report", **lease))
    async def body() -> None:
        keeper = body.lease
        assert keeper is not None
        runs.append((name, keeper.fence or 0, asyncio.get_running_loop().time()))

    return body


@virtual_time()
async def test_only_the_holder_runs_its_body(clock: VirtualClock) -> None:
    runs: list[tuple[str, int, float]] = []
    a, b = replica("a", runs), replica("b", runs)
    a.start()
    b.start()
    await clock.sleep(10.2)
    assert {name for name, *_ in runs} == {"a"}
    assert len(runs) == 11  # 0, 1, ..., 10
    assert a.lease is not None
    assert a.lease.state == "held"
    assert b.lease is not None
    assert b.lease.state == "standby"
    # A standby tick is skipped by the gate; the schedule still counts it.
    assert b.current_loop >= 10
    a.cancel()
    b.cancel()
    await clock.sleep(1)


@virtual_time()
async def test_a_graceful_stop_finishes_the_iteration_then_hands_over(clock: VirtualClock) -> None:
    runs: list[tuple[str, int, float]] = []
    finished: list[str] = []

    @loop(seconds=1.0, lease=Lease(name="report", settings=SETTINGS))
    async def slow() -> None:
        runs.append(("a", 1, asyncio.get_running_loop().time()))
        await asyncio.sleep(0.5)
        finished.append("a")

    b = replica("b", runs)
    slow.start()
    await clock.sleep(0.1)
    b.start()
    await clock.sleep(2.2)  # a is inside its third iteration
    slow.stop()
    await clock.sleep(0.4)
    assert finished == ["a", "a", "a"]  # the iteration in flight completed
    await clock.sleep(2.0)
    b_runs = [(fence, at) for name, fence, at in runs if name == "b"]
    assert b_runs[0][0] == 2
    assert b_runs[0][1] <= 2.5 + 1.0  # the next tick of b after the release
    b.cancel()
    await clock.sleep(1)


@virtual_time()
async def test_a_lost_lease_cancels_the_iteration_and_is_not_a_failure(
    clock: VirtualClock,
) -> None:
    backend = MemoryBackend()
    progress: list[str] = []

    # Ticks at 0, 0.9, 1.8: never at the same instant as a renewal (every
    # 1.0 s), whose order against a tick would be the event loop's choice.
    @loop(seconds=0.9, lease=Lease(name="report", backend=backend, settings=SETTINGS))
    async def work() -> None:
        progress.append("begin")
        await asyncio.sleep(0.8)
        progress.append("write")

    tree = Supervisor(work, name="app")
    events = tree.events()
    await tree.start()
    await clock.sleep(0.1)
    # Someone else takes the lease from under it (an operator, a split brain).
    grant = work.lease.grant if work.lease else None
    assert grant is not None
    await backend.release(grant)
    assert await backend.acquire("report", "intruder", SETTINGS) is not None
    await clock.sleep(1.0)  # the renewal at 1.0 is refused mid-iteration
    assert progress == ["begin", "write", "begin"]  # the second never wrote
    status = await work.ask(GetStatus())
    assert status.state.value == "sleeping"  # still scheduled, waiting for its next tick
    assert (status.failures, status.restarts) == (0, 0)
    seen: list[Any] = []
    while True:
        event = await asyncio.wait_for(events.__anext__(), 1)
        seen.append(event)
        if isinstance(event, LeaseLost):
            break
    acquired = [e for e in seen if isinstance(e, LeaseAcquired)]
    assert [(e.path, e.lease, e.fence) for e in acquired] == [("app/work", "report", 1)]
    assert (seen[-1].reason, seen[-1].fence) == ("refused", 1)
    events.close()
    await tree.stop()


@virtual_time()
async def test_on_lost_finish_lets_the_iteration_complete(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    progress: list[str] = []

    @loop(  # ticks never at a renewal's instant (see above)
        seconds=0.9,
        lease=Lease(name="report", backend=backend, settings=SETTINGS, on_lost="finish"),
    )
    async def work() -> None:
        progress.append("begin")
        await asyncio.sleep(0.8)
        progress.append("write")

    work.start()
    await clock.sleep(0.1)
    assert work.lease is not None
    grant = work.lease.grant
    assert grant is not None
    await backend.release(grant)
    assert await backend.acquire("report", "intruder", SETTINGS) is not None
    await clock.sleep(2.0)
    assert progress == ["begin", "write", "begin", "write"]
    assert work.lease.state == "standby"
    work.cancel()
    await clock.sleep(1)


@virtual_time()
async def test_the_body_sees_its_lease_and_ensure_raises_once_lost(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    seen: list[Any] = []

    @loop(seconds=1.0, lease=Lease(name="report", backend=backend, settings=SETTINGS))
    async def work() -> None:
        keeper = work.lease
        assert keeper is not None
        grant = await keeper.ensure(verify=True)
        seen.append((keeper.fence, keeper.holder == grant.holder, keeper.expires_in()))

    work.start()
    await clock.sleep(0.1)
    assert seen == [(1, True, pytest.approx(2.0))]
    assert work.lease is not None
    grant = work.lease.grant
    assert grant is not None
    await backend.release(grant)
    assert await backend.acquire("report", "intruder", SETTINGS) is not None
    with pytest.raises(LeaseNotHeld):
        await work.lease.ensure(verify=True)
    await clock.sleep(1.0)  # the next iteration waits in standby and is skipped
    assert len(seen) == 1
    assert not work.failed()
    work.cancel()
    await clock.sleep(1)


@virtual_time()
async def test_a_loss_noticed_by_the_body_itself_ends_the_iteration_quietly(
    clock: VirtualClock,
) -> None:
    backend = MemoryBackend()
    progress: list[str] = []

    @loop(seconds=1.0, lease=Lease(name="report", backend=backend, settings=SETTINGS))
    async def work() -> None:
        keeper = work.lease
        assert keeper is not None
        progress.append("begin")
        await asyncio.sleep(0.2)
        await keeper.ensure(verify=True)  # raises LeaseNotHeld the second time
        progress.append("write")

    work.start()
    await clock.sleep(1.1)
    assert work.lease is not None
    grant = work.lease.grant
    assert grant is not None
    await backend.release(grant)
    assert await backend.acquire("report", "intruder", SETTINGS) is not None
    await clock.sleep(0.2)
    assert progress == ["begin", "write", "begin"]
    assert not work.failed()
    assert work.is_running()
    work.cancel()
    await clock.sleep(1)


@virtual_time()
async def test_before_and_after_loop_run_on_every_replica_only_the_body_is_gated(
    clock: VirtualClock,
) -> None:
    hooks: list[str] = []
    runs: list[tuple[str, int, float]] = []
    a, b = replica("a", runs), replica("b", runs)
    for name, each in (("a", a), ("b", b)):

        async def before(name: str = name) -> None:
            hooks.append(f"before {name}")

        async def after(name: str = name) -> None:
            hooks.append(f"after {name}")

        each.before_loop(before)
        each.after_loop(after)
    a.start()
    b.start()
    await clock.sleep(2.1)
    b.stop()
    await clock.sleep(1)
    a.stop()
    await clock.sleep(1)
    assert sorted(hooks) == ["after a", "after b", "before a", "before b"]
    assert {name for name, *_ in runs} == {"a"}


@virtual_time()
async def test_stopping_a_standby_loop_does_not_wait_for_the_lease(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    assert await backend.acquire("report", "elsewhere", LeaseSettings(ttl=300)) is not None
    ran: list[int] = []

    @loop(seconds=0, lease=Lease(name="report", backend=backend, settings=SETTINGS))
    async def busy() -> None:
        ran.append(1)

    task = busy.start()
    await clock.sleep(5)
    assert ran == []
    started = clock.monotonic()
    busy.stop()
    await task
    assert clock.monotonic() - started <= SETTINGS.retry_period
    await clock.sleep(1)
    assert busy.lease is not None
    assert busy.lease.state == "stopped"


def test_bad_lease_arguments_are_refused_where_they_are_written() -> None:
    async def body() -> None:
        pass

    with pytest.raises(TypeError, match=r"^'lease' must be a Lease, a lease name, True or None"):
        loop(seconds=1, lease=3)(body)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^'lease' needs overlap=False \(got overlap=True\)$"):
        loop(seconds=1, lease=True, overlap=True)(body)
    with pytest.raises(ValueError, match=r"^'on_lost' must be 'cancel' or 'finish' \(got 'x'\)$"):
        Lease(on_lost="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^'name' must be a non-empty string or None"):
        Lease(name="")
    with pytest.raises(TypeError, match=r"^'settings' must be a LeaseSettings \(got 15\)$"):
        Lease(settings=15)  # type: ignore[arg-type]


@virtual_time()
async def test_the_lease_name_defaults_to_the_tree_path(clock: VirtualClock) -> None:
    async def nothing() -> None:
        pass

    work = loop(seconds=1, name="work", lease=True)(nothing)
    tree = Supervisor(work, name="app")
    await tree.start()
    await clock.sleep(0.1)
    assert work.lease is not None
    assert work.lease.name == "app/work"
    assert MemoryBackend.shared().holder_of("app/work") is not None
    await tree.stop()
    await clock.sleep(0.1)
    assert MemoryBackend.shared().holder_of("app/work") is None  # released on stop


@virtual_time()
async def test_calling_the_loop_directly_bypasses_the_lease() -> None:
    async def double(x: int) -> int:
        return 2 * x

    work = loop(seconds=1, lease=True)(double)
    assert await work(21) == 42


@virtual_time()
async def test_before_loop_runs_before_the_lease_is_asked_for(clock: VirtualClock) -> None:
    # The hooks belong to the replica's run, not to the lease: before_loop
    # runs first (and cannot lose a lease it has not asked for yet), then the
    # first due iteration asks for the lease and waits for it in standby.
    backend = MemoryBackend()
    journal: list[str] = []
    held = await backend.acquire("report", "elsewhere", LeaseSettings(ttl=300))
    assert held is not None

    @loop(seconds=1.0, lease=Lease(name="report", backend=backend, settings=SETTINGS))
    async def work() -> None:
        journal.append(f"body fence {work.lease.fence if work.lease else None}")

    @work.before_loop
    async def prepare() -> None:
        journal.append(f"before, lease {work.lease}")
        await asyncio.sleep(2.0)

    work.start()
    await clock.sleep(5.0)
    assert journal == ["before, lease None"]
    assert work.lease is not None
    assert work.lease.state == "standby"
    await backend.release(held)
    await clock.sleep(1.0)
    assert journal[1:] == ["body fence 2"]
    assert not work.failed()
    work.cancel()
    await clock.sleep(1)


@virtual_time()
async def test_a_lease_lost_during_after_loop_lets_the_hook_finish(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    journal: list[str] = []
    lost: list[str] = []

    @loop(seconds=1.0, lease=Lease(name="report", backend=backend, settings=SETTINGS))
    async def work() -> None:
        journal.append("body")

    @work.after_loop
    async def flush() -> None:
        journal.append("after begins")
        keeper = work.lease
        assert keeper is not None
        grant = keeper.grant
        assert grant is not None
        await backend.release(grant)
        assert await backend.acquire("report", "intruder", SETTINGS) is not None
        await asyncio.sleep(2.0)  # the renewal at 1.0 is refused meanwhile
        lost.append(keeper.state)
        journal.append("after ends")

    work.start()
    await clock.sleep(0.5)
    work.stop()
    await clock.sleep(3.0)
    assert journal == ["body", "after begins", "after ends"]
    assert lost == ["standby"]  # the lease was lost while the hook ran, and it finished
    assert not work.failed()
