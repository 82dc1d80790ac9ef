"""The Redis backend (extra ``redis``): leases as keys with a TTL, fences from INCR.

Layout, for a lease named ``N`` under the default prefix::

    supervised_loops:lease:{N}:holder   "<fence>:<holder>", expires after ttl
    supervised_loops:lease:{N}:fence    the last fence handed out, never deleted

Both keys carry the hash tag ``{N}``, so in Redis Cluster they live in one
slot and each Lua script below touches a single node atomically.

* acquire: ``SET holder-key NX PX ttl``; only if that succeeded, ``INCR``
  the fence key and store the fence in the holder key (one script, so no
  other client can see the lease without its fence);
* renew: ``PEXPIRE`` only if the holder key still holds our fence and holder;
* release: ``DEL`` the holder key only if it still holds ours; the fence key
  stays, so the next grant's fence is larger.

What it guarantees: with one Redis primary, one holder at a time while the
holders' clocks run at the same rate (the renew deadline's margin absorbs
drift). It is built to prevent duplicate work, not to be correct across a
Redis failover: a replica promoted before it received the last writes can
grant the lease again, and a Redis restarted without persistence forgets
the fence counter. A store protected by fences must then be protected by a
counter of its own (see the docs page "Running several replicas").
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from .. import _validate
from .grant import Grant
from .settings import LeaseSettings, validate_name

__all__ = ["RedisBackend"]

_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], fence .. ':' .. ARGV[1], 'KEEPTTL')
return fence
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisBackend:
    """Leases in Redis, through redis-py's asyncio client.

    Args:
        client: a ``redis.asyncio.Redis`` (or ``RedisCluster``) client, or a
            URL such as ``"redis://localhost:6379/0"`` from which one is made
            (and closed by `aclose`).
        prefix: the start of every key this backend writes.

    Every method sends one script call; connection errors are raised as
    redis-py raises them (the keeper retries them until the deadline).
    """

    def __init__(self, client: Any, *, prefix: str = "supervised_loops:lease:") -> None:
        if isinstance(client, str):
            self._client = aioredis.Redis.from_url(client)
            self._owns_client = True
        elif hasattr(client, "register_script"):
            self._client = client
            self._owns_client = False
        else:
            _validate.type_error("client", "a redis.asyncio client or a URL", client)
        if not isinstance(prefix, str):
            _validate.type_error("prefix", "a string", prefix)
        self.prefix = prefix
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)

    @property
    def client(self) -> Any:
        """The redis-py client in use."""
        return self._client

    def keys(self, name: str) -> tuple[str, str]:
        """Return the holder key and the fence key of lease ``name``."""
        tagged = f"{self.prefix}{{{name}}}"
        return f"{tagged}:holder", f"{tagged}:fence"

    async def acquire(self, name: str, holder: str, settings: LeaseSettings) -> Grant | None:
        """Grant ``name`` to ``holder`` if its holder key is absent (one round trip).

        Cancelling it may leave a grant nobody knows of; it expires after ttl.
        """
        validate_name("name", name)
        validate_name("holder", holder)
        sent_at = asyncio.get_running_loop().time()
        fence = await self._acquire(
            keys=self.keys(name), args=[holder, _milliseconds(settings.ttl)]
        )
        if fence is None:
            return None
        return Grant(name, holder, int(fence), settings, sent_at)

    async def renew(self, grant: Grant) -> Grant | None:
        """Extend ``grant`` by its ttl if Redis still holds it (one round trip).

        Cancelling it leaves the lease either renewed or not; both are safe.
        """
        sent_at = asyncio.get_running_loop().time()
        renewed = await self._renew(
            keys=self.keys(grant.name)[:1],
            args=[f"{grant.fence}:{grant.holder}", _milliseconds(grant.settings.ttl)],
        )
        return grant.renewed(sent_at) if int(renewed) == 1 else None

    async def release(self, grant: Grant) -> None:
        """Delete the holder key if it still holds ``grant`` (one round trip).

        Cancelling it leaves the lease either released or expiring by itself.
        """
        await self._release(keys=self.keys(grant.name)[:1], args=[f"{grant.fence}:{grant.holder}"])

    async def aclose(self) -> None:
        """Close the client if this backend made it from a URL."""
        if self._owns_client:
            await self._client.aclose()

    def __repr__(self) -> str:
        return f"RedisBackend({self._client!r}, prefix={self.prefix!r})"
