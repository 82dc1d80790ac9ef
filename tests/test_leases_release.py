"""A stop that returns has given the lease back.

``await loop.ask(Stop())``, ``await worker.ask(Stop())`` and a supervisor's
``stop()`` return only once the lease is released (or the release failed
and was logged), so a standby replica may take over the moment they return;
a dead backend delays them by the lease's own timeouts at most. In virtual
time with the in-memory backend, then once against real Redis and
PostgreSQL servers (``tests/leases_servers.sh``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from test_leases_keeper import ScriptedBackend
from test_leases_replicas import server_url

from supervised_loops import Stop, Supervisor, child, loop, worker
from supervised_loops.leases import Lease, LeaseSettings, MemoryBackend
from supervised_loops.testing import VirtualClock, virtual_time

SETTINGS = LeaseSettings(ttl=3.0, renew_deadline=2.0, retry_period=0.5)


async def nothing() -> None:
    pass


def leased_loop(backend: Any, name: str = "report") -> Any:
    return loop(
        seconds=1, name="report", lease=Lease(name=name, backend=backend, settings=SETTINGS)
    )(nothing)


async def forever() -> None:
    await asyncio.Event().wait()


def kinds(backend: Any) -> dict[str, tuple[Any, Any, Callable[[], Awaitable[Any]]]]:
    """Each kind of leased actor: what is started, what holds the lease, the stop awaited."""
    lease = Lease(name="report", backend=backend, settings=SETTINGS)
    standalone = leased_loop(backend)
    lone_worker = worker(forever, lease=lease)
    in_tree = leased_loop(backend)
    loop_tree = Supervisor(in_tree, name="app")
    tree_worker = worker(forever, lease=lease)
    worker_tree = Supervisor(tree_worker, name="app")
    member = loop(seconds=1, name="a")(nothing)
    sub_tree = Supervisor(
        child(Supervisor(member, worker(forever), name="ingest"), lease=lease), name="app"
    )
    return {
        "loop": (standalone, standalone, lambda: standalone.ask(Stop())),
        "worker": (lone_worker, lone_worker, lambda: lone_worker.ask(Stop())),
        "loop-in-tree": (loop_tree, in_tree, loop_tree.stop),
        "worker-in-tree": (worker_tree, tree_worker, worker_tree.stop),
        "sub-supervisor": (sub_tree, member, sub_tree.stop),
    }


async def start(actor: Any) -> None:
    started = actor.start()
    if started is not None and asyncio.iscoroutine(started):
        await started


KINDS = ["loop", "worker", "loop-in-tree", "worker-in-tree", "sub-supervisor"]


@pytest.mark.parametrize("kind", KINDS)
@virtual_time()
async def test_a_stop_that_returns_has_released_the_lease(clock: VirtualClock, kind: str) -> None:
    backend = MemoryBackend()
    actor, holder, stop = kinds(backend)[kind]
    await start(actor)
    await clock.sleep(0.5)
    assert backend.holder_of("report") is not None
    await stop()
    # Not one step later: a standby may take over the moment the stop returns.
    assert holder.lease.state == "stopped"
    assert backend.holder_of("report") is None
    taken = await backend.acquire("report", "standby", SETTINGS)
    assert taken is not None
    assert taken.fence == 2


@pytest.mark.parametrize("kind", KINDS)
@virtual_time()
async def test_a_release_that_never_answers_delays_the_stop_by_the_renew_deadline_only(
    clock: VirtualClock, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = ScriptedBackend(MemoryBackend())
    actor, holder, stop = kinds(backend)[kind]
    await start(actor)
    await clock.sleep(0.5)
    backend.hang = True  # the backend died while the lease was held
    stopped_at = clock.monotonic()
    await stop()
    assert clock.monotonic() - stopped_at == pytest.approx(SETTINGS.renew_deadline)
    assert backend.times("release") == [pytest.approx(stopped_at)]
    failed = [r.getMessage() for r in caplog.records if "release failed" in r.getMessage()]
    assert failed == ["lease 'report': release failed: TimeoutError()"]
    assert not actor.is_running()
    assert holder.lease.state == "stopped"


@virtual_time()
async def test_a_stop_during_a_renewal_that_never_answers_is_bounded_too(
    clock: VirtualClock,
) -> None:
    backend = ScriptedBackend(MemoryBackend())
    body = leased_loop(backend)
    body.start()
    await clock.sleep(0.5)
    backend.hang = True
    await clock.sleep(0.6)  # the renewal sent at 1.0 hangs
    assert backend.times("renew") == [pytest.approx(1.0)]
    await body.ask(Stop())
    # The renewal is given until the grant's deadline (0 + 2.0); the grant
    # is then lost, so nothing is left to release.
    assert clock.monotonic() == pytest.approx(SETTINGS.renew_deadline)
    assert backend.times("release") == []
    assert not body.is_running()


@virtual_time()
async def test_a_release_that_fails_is_logged_and_the_stop_returns_at_once(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    backend = ScriptedBackend(MemoryBackend())
    body = leased_loop(backend)
    body.start()
    await clock.sleep(0.5)
    backend.down = True
    stopped_at = clock.monotonic()
    await body.ask(Stop())
    assert clock.monotonic() == stopped_at
    failed = [r.getMessage() for r in caplog.records if "release failed" in r.getMessage()]
    assert failed == ["lease 'report': release failed: ConnectionError('backend unreachable')"]


@virtual_time()
async def test_a_cancel_does_not_cut_a_release_in_progress(clock: VirtualClock) -> None:
    backend = ScriptedBackend(MemoryBackend())
    body = leased_loop(backend)
    body.start()
    await clock.sleep(0.5)
    backend.delay = 0.3  # a slow network: the release takes 0.3 s
    stopping = asyncio.ensure_future(body.ask(Stop()))
    await clock.sleep(0.1)
    assert backend.times("release") == [pytest.approx(0.5)]
    body.cancel()  # the release is clean-up: it runs to its end
    await stopping
    assert clock.monotonic() == pytest.approx(0.8)
    assert backend.inner.holder_of("report") is None


@virtual_time()
async def test_a_restart_hands_the_lease_to_the_new_run_with_the_next_fence(
    clock: VirtualClock,
) -> None:
    backend = MemoryBackend()
    body = leased_loop(backend)
    body.start()
    await clock.sleep(0.5)
    assert backend.holder_of("report") is not None
    first = backend.holder_of("report")
    assert first is not None
    body.restart()
    await clock.sleep(0.1)
    again = backend.holder_of("report")
    assert again is not None
    assert again[1] == first[1] + 1
    await body.ask(Stop())
    assert backend.holder_of("report") is None


# -- real servers -----------------------------------------------------------------


def real_backend(kind: str) -> Any:
    url = server_url(kind)
    if kind == "redis":
        from supervised_loops.leases import RedisBackend

        return RedisBackend(url)
    from supervised_loops.leases import PostgresBackend

    return PostgresBackend(url)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["redis", "postgres"])
async def test_on_a_real_server_a_standby_gets_the_lease_the_moment_stop_returns(
    kind: str,
) -> None:
    ours, theirs = real_backend(kind), real_backend(kind)
    name = f"release-on-stop-{kind}-{id(ours)}"
    settings = LeaseSettings(ttl=30.0)  # expiry cannot be what frees it
    body = loop(seconds=1, name="report", lease=Lease(name=name, backend=ours, settings=settings))(
        nothing
    )
    tree = Supervisor(body, name="app")
    try:
        await tree.start()
        assert body.lease is not None
        held = await asyncio.wait_for(body.lease.wait_held(), 10)
        assert await theirs.acquire(name, "standby", settings) is None
        await tree.stop()
        assert body.lease.state == "stopped"  # released, not about to be
        taken = await theirs.acquire(name, "standby", settings)
        assert taken is not None
        assert taken.fence == held.fence + 1
        await theirs.release(taken)
    finally:
        await tree.stop()
        await ours.aclose()
        await theirs.aclose()


@virtual_time()
async def test_a_supervisors_hard_limit_cuts_a_release_that_hangs_and_says_so(
    clock: VirtualClock,
) -> None:
    from supervised_loops.events import CutShort

    backend = ScriptedBackend(MemoryBackend())
    body = leased_loop(backend)
    tree = Supervisor(child(body, shutdown=0.5, cancel_timeout=0.5), name="app")
    events = tree.events()
    await tree.start()
    await clock.sleep(0.5)
    backend.hang = True
    stopped_at = clock.monotonic()
    await tree.stop()
    # The grace (0.5 s) and the hard limit (0.5 s), not the renew deadline (2 s).
    assert clock.monotonic() - stopped_at == pytest.approx(1.0)
    events.close()
    cut = [event async for event in events if isinstance(event, CutShort)]
    assert [(event.path, event.waited) for event in cut] == [("app/report", pytest.approx(1.0))]
    await clock.sleep(SETTINGS.renew_deadline)  # the release goes on, and gives up, by itself
