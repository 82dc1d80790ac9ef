"""Leases: run a loop or a child on exactly one replica at a time.

A lease is a named, time-limited grant held by one holder. Backends:

* `MemoryBackend` (default): one event loop, virtual-time friendly;
* `RedisBackend` (extra ``redis``): ``pip install "supervised-loops[redis]"``;
* `PostgresBackend` (extra ``postgres``): ``pip install "supervised-loops[postgres]"``.

The Redis and PostgreSQL backends are imported only when first named here,
so the rest of the library never imports redis-py or asyncpg. See the docs
page "Running several replicas" for the guarantees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backend import LeaseBackend as LeaseBackend
from .errors import LeaseNotHeld as LeaseNotHeld
from .events import LeaseAcquired as LeaseAcquired
from .events import LeaseLost as LeaseLost
from .gate import Lease as Lease
from .grant import Grant as Grant
from .keeper import KeeperState as KeeperState
from .keeper import LeaseKeeper as LeaseKeeper
from .keeper import LossReason as LossReason
from .memory import MemoryBackend as MemoryBackend
from .settings import LeaseSettings as LeaseSettings
from .settings import default_holder_id as default_holder_id

if TYPE_CHECKING:
    from .postgres_backend import PostgresBackend as PostgresBackend
    from .redis_backend import RedisBackend as RedisBackend

__all__ = [
    "Grant",
    "KeeperState",
    "Lease",
    "LeaseAcquired",
    "LeaseBackend",
    "LeaseKeeper",
    "LeaseLost",
    "LeaseNotHeld",
    "LeaseSettings",
    "LossReason",
    "MemoryBackend",
    "PostgresBackend",
    "RedisBackend",
    "default_holder_id",
]

for _value in (
    Grant,
    Lease,
    LeaseAcquired,
    LeaseLost,
    LeaseKeeper,
    LeaseNotHeld,
    LeaseSettings,
    MemoryBackend,
    default_holder_id,
):
    _value.__module__ = __name__
del _value


def __getattr__(name: str) -> Any:
    # The optional backends load their driver on first use only.
    if name == "RedisBackend":
        from .redis_backend import RedisBackend

        RedisBackend.__module__ = __name__
        return RedisBackend
    if name == "PostgresBackend":
        from .postgres_backend import PostgresBackend

        PostgresBackend.__module__ = __name__
        return PostgresBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
