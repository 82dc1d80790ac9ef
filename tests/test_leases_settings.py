"""Lease settings, grants and the in-memory backend: values and rules, in virtual time."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from supervised_loops.leases import (
    Grant,
    Lease,
    LeaseBackend,
    LeaseKeeper,
    LeaseSettings,
    MemoryBackend,
    PostgresBackend,
    RedisBackend,
    default_holder_id,
)
from supervised_loops.testing import VirtualClock, virtual_time


def test_defaults_follow_kubernetes_leader_election_proportions() -> None:
    settings = LeaseSettings()
    assert (settings.ttl, settings.renew_deadline, settings.retry_period) == (15.0, 10.0, 2.0)
    assert settings.renew_interval == 5.0


def test_derived_defaults_scale_with_the_ttl() -> None:
    settings = LeaseSettings(ttl=1.5)
    assert settings.renew_deadline == pytest.approx(1.0)
    assert settings.retry_period == pytest.approx(0.2)
    assert settings.renew_interval == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ttl": "15"}, TypeError, "'ttl' must be a number (got '15')"),
        ({"ttl": 0}, ValueError, "'ttl' must be > 0 (got 0)"),
        ({"ttl": float("inf")}, ValueError, "'ttl' must be finite (got inf)"),
        ({"ttl": True}, TypeError, "'ttl' must be a number (got True)"),
        (
            {"ttl": 10, "renew_deadline": None},
            TypeError,
            "'renew_deadline' must be a number (got None)",
        ),
        ({"ttl": 10, "retry_period": -1}, ValueError, "'retry_period' must be > 0 (got -1)"),
        (
            {"ttl": 10, "renew_deadline": 10},
            ValueError,
            "'renew_deadline' must be < ttl (10.0) (got 10.0)",
        ),
        (
            {"ttl": 9, "renew_deadline": 3},
            ValueError,
            "'renew_deadline' must be > ttl / 3 (3.0), the renewal interval (got 3.0)",
        ),
        (
            {"ttl": 15, "renew_deadline": 6, "retry_period": 5},
            ValueError,
            "'retry_period' must be < renew_deadline / 1.2 (5.0) (got 5.0)",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_value(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        LeaseSettings(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_grant_deadline_counts_from_the_moment_the_request_was_sent() -> None:
    settings = LeaseSettings(ttl=3)
    grant = Grant("report", "me", 7, settings, sent_at=100.0)
    assert grant.valid_until == 102.0
    renewed = grant.renewed(101.0)
    assert (renewed.fence, renewed.holder, renewed.valid_until) == (7, "me", 103.0)


def test_default_holder_ids_are_host_pid_random_and_unique() -> None:
    first, second = default_holder_id(), default_holder_id()
    host, pid, token = first.rsplit(":", 2)
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert len(token) == 8
    assert first != second


def test_memory_backend_is_a_lease_backend() -> None:
    assert isinstance(MemoryBackend(), LeaseBackend)


@virtual_time()
async def test_memory_fences_increase_across_release_and_expiry(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    settings = LeaseSettings(ttl=3)
    first = await backend.acquire("job", "a", settings)
    assert first is not None
    assert first.fence == 1
    assert await backend.acquire("job", "b", settings) is None
    await backend.release(first)
    second = await backend.acquire("job", "b", settings)
    assert second is not None
    assert second.fence == 2
    await clock.sleep(3)  # expires without a release
    third = await backend.acquire("job", "c", settings)
    assert third is not None
    assert (third.fence, third.holder) == (3, "c")


@virtual_time()
async def test_memory_refuses_the_same_holder_id_twice() -> None:
    backend = MemoryBackend()
    settings = LeaseSettings(ttl=3)
    assert await backend.acquire("job", "same", settings) is not None
    assert await backend.acquire("job", "same", settings) is None


@virtual_time()
async def test_memory_never_revives_an_expired_grant(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    grant = await backend.acquire("job", "a", LeaseSettings(ttl=3))
    assert grant is not None
    await clock.sleep(3)
    assert await backend.renew(grant) is None
    assert backend.holder_of("job") is None


@virtual_time()
async def test_memory_renew_extends_from_its_own_time(clock: VirtualClock) -> None:
    backend = MemoryBackend()
    grant = await backend.acquire("job", "a", LeaseSettings(ttl=3))
    assert grant is not None
    await clock.sleep(2)
    renewed = await backend.renew(grant)
    assert renewed is not None
    assert renewed.sent_at == 2.0
    await clock.sleep(2.5)  # 4.5 s after the acquire, 2.5 s after the renewal
    assert backend.holder_of("job") == ("a", 1)


@virtual_time()
async def test_memory_release_of_a_stale_grant_leaves_the_new_holder_alone(
    clock: VirtualClock,
) -> None:
    backend = MemoryBackend()
    settings = LeaseSettings(ttl=3)
    old = await backend.acquire("job", "a", settings)
    assert old is not None
    await clock.sleep(3)
    new = await backend.acquire("job", "b", settings)
    assert new is not None
    await backend.release(old)
    assert backend.holder_of("job") == ("b", 2)


def test_memory_shared_store_is_one_per_event_loop() -> None:
    async def shared_twice() -> tuple[MemoryBackend, MemoryBackend]:
        return MemoryBackend.shared(), MemoryBackend.shared()

    first = asyncio.run(shared_twice())
    second = asyncio.run(shared_twice())
    assert first[0] is first[1]
    assert second[0] is not first[0]


def test_memory_backend_rejects_bad_names() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=r"^'name' must be a non-empty string \(got ''\)$"):
            await MemoryBackend().acquire("", "a", LeaseSettings())
        with pytest.raises(TypeError, match=r"^'holder' must be a string \(got 3\)$"):
            await MemoryBackend().acquire("x", 3, LeaseSettings())  # type: ignore[arg-type]

    asyncio.run(main())


def test_the_core_imports_neither_redis_nor_asyncpg() -> None:
    code = (
        "import sys, supervised_loops, supervised_loops.leases, supervised_loops.testing,"
        " supervised_loops.service.cli;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'asyncpg'));"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


BAD_LEASE_ARGUMENTS = [
    pytest.param(
        lambda: Lease(on_lost=5),
        TypeError,
        "'on_lost' must be 'cancel' or 'finish' (got 5)",
        id="on_lost-not-a-str",
    ),
    pytest.param(
        lambda: Lease(name=5),
        TypeError,
        "'name' must be a non-empty string or None (got 5)",
        id="name-not-a-str",
    ),
    pytest.param(
        lambda: Lease(name=10**5000),
        TypeError,
        "'name' must be a non-empty string or None (got <int of more than 4300 digits>)",
        id="name-past-the-digit-limit",
    ),
    pytest.param(
        lambda: LeaseKeeper(["job"] * 1000),
        TypeError,
        "'name' must be a string (got ['job', 'job', ",
        id="keeper-name-long-list",
    ),
    pytest.param(
        lambda: PostgresBackend("postgresql://x", table="t;" * 1000),
        ValueError,
        "'table' must be a plain SQL identifier (got 't;t;",
        id="table-long",
    ),
    pytest.param(
        lambda: RedisBackend(10**5000),
        TypeError,
        "'client' must be a redis.asyncio client or a URL (got <int of more than 4300 digits>)",
        id="redis-client-huge-int",
    ),
]


@pytest.mark.parametrize(("make", "error", "message"), BAD_LEASE_ARGUMENTS)
def test_lease_arguments_are_refused_in_the_one_shape_with_a_bounded_value(
    make: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        make()
    text = str(caught.value)
    assert text.startswith(message)
    assert len(text) < 300  # the value is cut short, the message stays readable
