"""The in-memory backend: leases between the actors of one event loop.

It is the default backend, for a single process (where a lease still gives
"one instance of this loop at a time" across a tree) and for tests: expiry
is measured on the event loop's ``time()``, so virtual time drives it like
everything else.
"""

from __future__ import annotations

import asyncio
import weakref

import attrs

from .grant import Grant
from .settings import LeaseSettings, validate_name

__all__ = ["MemoryBackend"]


@attrs.define
class _Entry:
    holder: str
    fence: int
    expires_at: float


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MemoryBackend] = (
    weakref.WeakKeyDictionary()
)


class MemoryBackend:
    """Leases kept in a dict, expiring on the event loop's clock.

    ``MemoryBackend()`` is a private store; `MemoryBackend.shared` returns
    the one store of the running event loop, which is what keepers use when
    given no backend, so every lease of a process meets in one place.
    """

    __slots__ = ("__weakref__", "_entries", "_fences")

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        # Kept apart from the entries so a release never resets a fence.
        self._fences: dict[str, int] = {}

    @classmethod
    def shared(cls) -> MemoryBackend:
        """Return the store shared by everything on the running event loop.

        Raises:
            RuntimeError: no event loop is running.
        """
        loop = asyncio.get_running_loop()
        backend = _SHARED.get(loop)
        if backend is None:
            backend = _SHARED[loop] = cls()
        return backend

    def holder_of(self, name: str) -> tuple[str, int] | None:
        """Return ``(holder, fence)`` of the live grant of ``name``, or None."""
        entry = self._live(name, asyncio.get_running_loop().time())
        return None if entry is None else (entry.holder, entry.fence)

    def _live(self, name: str, now: float) -> _Entry | None:
        entry = self._entries.get(name)
        if entry is None or entry.expires_at <= now:
            return None
        return entry

    async def acquire(self, name: str, holder: str, settings: LeaseSettings) -> Grant | None:
        """Grant ``name`` to ``holder`` unless a live grant exists. Never waits."""
        validate_name("name", name)
        validate_name("holder", holder)
        now = asyncio.get_running_loop().time()
        if self._live(name, now) is not None:
            return None
        fence = self._fences.get(name, 0) + 1
        self._fences[name] = fence
        self._entries[name] = _Entry(holder, fence, now + settings.ttl)
        return Grant(name, holder, fence, settings, now)

    async def renew(self, grant: Grant) -> Grant | None:
        """Extend ``grant`` by its ttl if it is still live and current. Never waits."""
        now = asyncio.get_running_loop().time()
        entry = self._live(grant.name, now)
        if entry is None or entry.fence != grant.fence or entry.holder != grant.holder:
            return None
        entry.expires_at = now + grant.settings.ttl
        return grant.renewed(now)

    async def release(self, grant: Grant) -> None:
        """End ``grant`` if it is still current. Never waits."""
        entry = self._entries.get(grant.name)
        if entry is not None and entry.fence == grant.fence and entry.holder == grant.holder:
            del self._entries[grant.name]

    def __repr__(self) -> str:
        return f"MemoryBackend({len(self._entries)} leases)"
