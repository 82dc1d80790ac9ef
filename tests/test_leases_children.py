"""Workers and supervised children with a lease, and how status shows a lease (virtual time)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from supervised_loops import Actor, GetStatus, Supervisor, child, loop, worker
from supervised_loops.leases import Lease, LeaseLost, LeaseNotHeld, LeaseSettings, MemoryBackend
from supervised_loops.render import render_status
from supervised_loops.testing import VirtualClock, virtual_time


class Probe(Actor):
    """An actor that is neither a loop nor a worker."""


SETTINGS = LeaseSettings(ttl=3.0, renew_deadline=2.0, retry_period=0.5)


async def take_over(backend: MemoryBackend, name: str) -> None:
    """Someone else takes the lease from under its holder."""
    holder = backend.holder_of(name)
    assert holder is not None
    backend._entries.pop(name)
    assert await backend.acquire(name, "intruder", SETTINGS) is not None


@virtual_time()
async def test_a_worker_runs_only_where_the_lease_is_held(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    started: list[str] = []

    async def consume(name: str) -> None:
        started.append(name)
        await asyncio.sleep(3600)

    lease = Lease(name="consumer", backend=backend, settings=SETTINGS)
    a = worker(consume, "a", name="a", lease=lease)
    b = worker(consume, "b", name="b", lease=lease)
    tree = Supervisor(a, b, name="app")
    await tree.start()
    await clock.sleep(5)
    assert started == ["a"]
    assert a.lease is not None
    assert a.lease.state == "held"
    assert b.lease is not None
    assert b.lease.state == "standby"
    await a.ask(GetStatus())
    tree_status = await tree.ask(GetStatus())
    leases = [c.lease for c in tree_status.children]
    assert leases == ["held fence 1 by " + a.lease.holder, "standby"]
    await tree.stop()


@virtual_time()
async def test_a_worker_that_loses_its_lease_is_cancelled_and_waits_again(
    clock: VirtualClock,
) -> None:
    backend = MemoryBackend()
    journal: list[str] = []

    async def consume() -> None:
        journal.append("start")
        try:
            await asyncio.sleep(3600)
        finally:
            journal.append("finally")

    busy = worker(consume, lease=Lease(name="consumer", backend=backend, settings=SETTINGS))
    tree = Supervisor(busy, name="app")
    events = tree.events()
    await tree.start()
    await clock.sleep(0.5)
    await take_over(backend, "consumer")
    await clock.sleep(1.0)  # the renewal at 1.0 is refused
    assert journal == ["start", "finally"]
    status = await busy.ask(GetStatus())
    assert (status.state.value, status.failures, status.restarts) == ("running", 0, 0)
    assert status.lease == "standby"
    lost = None
    while lost is None:
        event = await asyncio.wait_for(events.__anext__(), 1)
        lost = event if isinstance(event, LeaseLost) else None
    assert (lost.path, lost.reason, lost.fence) == ("app/consume", "refused", 1)
    backend._entries.pop("consumer")  # the intruder goes away
    await clock.sleep(1.0)
    assert journal == ["start", "finally", "start"]
    assert busy.lease is not None
    assert busy.lease.fence == 3
    events.close()
    await tree.stop()
    assert journal[-1] == "finally"
    # The release is sent as the run's task ends (the tree's stop() returns a
    # cycle sooner, its end reported from its last step): two steps later.
    await clock.sleep(0)
    await clock.sleep(0)
    assert backend.holder_of("consumer") is None


@virtual_time()
async def test_child_gives_a_loop_a_lease_named_after_its_path(clock: VirtualClock) -> None:
    ran: list[float] = []

    async def tick() -> None:
        ran.append(asyncio.get_running_loop().time())

    plain = loop(seconds=1, name="tick")(tick)
    tree = Supervisor(child(plain, lease=Lease(settings=SETTINGS)), name="app")
    await tree.start()
    await clock.sleep(2.5)
    assert len(ran) == 3
    assert plain.lease is not None
    assert plain.lease.name == "app/tick"
    assert MemoryBackend.shared().holder_of("app/tick") is not None
    await tree.stop()


def test_child_refuses_a_lease_it_cannot_apply() -> None:
    async def tick() -> None:
        pass

    with pytest.raises(TypeError, match=r"^'lease' needs a loop, worker or supervisor child"):
        child(Probe("probe"), lease=True)
    with pytest.raises(TypeError, match=r"^'lease' on supervisor 'sub' needs loops and workers"):
        child(Supervisor(Probe("probe"), name="sub"), lease=True)
    leased = loop(seconds=1, lease=True)(tick)
    with pytest.raises(ValueError, match=r"^loop 'tick' already has a lease$"):
        child(leased, lease=True)
    overlapping = loop(seconds=1, overlap=True)(tick)
    with pytest.raises(ValueError, match=r"^'lease' needs overlap=False \(loop 'tick' overlaps\)$"):
        child(overlapping, lease=True)
    with pytest.raises(TypeError, match=r"^'lease' must be a Lease, a lease name, True or None"):
        child(loop(seconds=1)(tick), lease=2.5)


@virtual_time()
async def test_the_tree_shows_holder_fence_and_standby(clock: VirtualClock) -> None:
    async def tick() -> None:
        pass

    lease = Lease(name="report", settings=SETTINGS, holder="host-a:1:cafe")
    a = loop(seconds=1, name="a", lease=lease)(tick)
    b = loop(seconds=1, name="b", lease=Lease(name="report", settings=SETTINGS))(tick)
    tree = Supervisor(a, b, name="app")
    await tree.start()
    await clock.sleep(1.2)
    text = render_status(await tree.ask(GetStatus()), now=clock.wall() + dt.timedelta(0))
    lines = text.splitlines()
    assert "lease held fence 1 by host-a:1:cafe" in lines[1]
    assert "lease standby" in lines[2]
    assert "lease" not in lines[0]
    await tree.stop()


def sub_tree(name: str, journal: list[str], backend: MemoryBackend) -> Supervisor:
    async def tick(label: str) -> None:
        journal.append(label)
        await asyncio.sleep(0.6)
        journal.append(label + " done")

    first = loop(seconds=1, name="first")(tick)
    second = loop(seconds=1, name="second")(tick)
    return Supervisor(
        child(first, args=(f"{name}/first",)),
        child(second, args=(f"{name}/second",)),
        name=name,
    )


@virtual_time()
async def test_a_sub_supervisor_shares_one_lease_among_everything_below_it(
    clock: VirtualClock,
) -> None:
    backend = MemoryBackend()
    journal: list[str] = []
    lease = Lease(name="pipeline", backend=backend, settings=SETTINGS)
    a, b = sub_tree("a", journal, backend), sub_tree("b", journal, backend)
    tree = Supervisor(child(a, lease=lease), child(b, lease=lease), name="app")
    events = tree.events()
    await tree.start()
    await clock.sleep(2.0)
    assert {entry.split()[0] for entry in journal} == {"a/first", "a/second"}
    await clock.sleep(0)
    status = await tree.ask(GetStatus())
    assert [c.lease for c in status.children] == [
        f"held fence 1 by {a._lease_gate.keeper.holder}",
        "standby",
    ]
    await clock.sleep(0.3)  # both bodies of the tick at 2.0 are running
    assert sorted(journal[-2:]) == ["a/first", "a/second"]
    journal.clear()
    await take_over(backend, "pipeline")
    keeper = a._lease_gate.keeper
    with pytest.raises(LeaseNotHeld):
        await keeper.ensure(verify=True)  # the loss, noticed now
    await clock.sleep(0.5)
    assert journal == []  # both bodies were cut: neither reached "done"
    sub_status = await a.ask(GetStatus())
    assert [(c.failures, c.restarts) for c in sub_status.children] == [(0, 0), (0, 0)]
    lost = []
    while not lost:
        event = await asyncio.wait_for(events.__anext__(), 1)
        lost = [event] if isinstance(event, LeaseLost) else []
    assert (lost[0].path, lost[0].lease) == ("app/a", "pipeline")
    backend._entries.pop("pipeline")
    await clock.sleep(2.0)
    runners = {entry.split("/")[0] for entry in journal}
    assert len(runners) == 1  # exactly one sub-tree took it over
    events.close()
    await tree.stop()
    await clock.sleep(0)
    assert backend.holder_of("pipeline") is None
