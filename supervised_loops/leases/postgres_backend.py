"""The PostgreSQL backend (extra ``postgres``): leases as rows, expiry on the database's clock.

One table (default ``supervised_loops_leases``), created on first use::

    name text primary key, holder text, fence bigint, expires_at timestamptz

* acquire: ``INSERT … ON CONFLICT (name) DO UPDATE … WHERE expires_at <=
  now() RETURNING fence``: a new name starts at fence 1, an expired row is
  taken over with ``fence + 1``, a live row (anyone's, ours included) is
  left alone and nothing is returned. Two concurrent acquires of an expired
  row serialise on the row lock; the second sees the first's fresh expiry
  and gets nothing.
* renew: ``UPDATE … WHERE name, holder and fence match AND expires_at >
  now()``: a grant that expired is never revived, even if nobody took it.
* release: the same match, setting ``expires_at = now()``. The row is never
  deleted, so fences keep increasing across releases.

Only the database's ``now()`` is compared with ``expires_at``: one clock, so
skew between the replicas' hosts cannot make two of them holders.

Why asyncpg: it is asyncio-native with its own pool (psycopg 3 needs the
separate psycopg_pool package for that), and it is the PostgreSQL driver
this project's optional extras name. Each call is one statement in its own
implicit transaction, with no session state (no ``SET``, no temporary
table, no session lock), so it works behind PgBouncer in transaction
pooling mode. The pool this backend makes passes
``statement_cache_size=0``, which keeps asyncpg from reusing named prepared
statements across transactions (what breaks behind such a pooler); pass
the same to a pool of your own there.

``mode="advisory"`` uses ``pg_try_advisory_lock`` on a connection held for
as long as the lease instead. It needs a session, so not behind a
transaction pooler; it has no fencing (every fence is 0); and a holder that
is paused (SIGSTOP, a frozen VM) keeps its connection and so its lock
forever: nobody takes over until the connection dies. It suits one database
without a pooler where holders are killed rather than paused.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

import asyncpg

from .. import _validate
from .grant import Grant
from .settings import LeaseSettings, validate_name

__all__ = ["PostgresBackend"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?")


class PostgresBackend:
    """Leases in a PostgreSQL table, through asyncpg.

    Args:
        dsn_or_pool: a connection string (a pool of up to ``max_size``
            connections is made on first use, closed by `aclose`) or an
            ``asyncpg.Pool`` of your own.
        table: the lease table (``name`` or ``schema.name``), created on
            first use if missing.
        mode: ``"lease"`` (rows, fencing; the default) or ``"advisory"``
            (session advisory locks; see the module notes for its limits).
        max_size: the size of the pool made from a DSN.
        connect_kwargs: passed to ``asyncpg.create_pool`` / ``asyncpg.connect``
            (``server_settings``, ``ssl``, ...).

    Raises:
        TypeError, ValueError: a bad argument.
    """

    def __init__(
        self,
        dsn_or_pool: str | asyncpg.Pool,
        *,
        table: str = "supervised_loops_leases",
        mode: Literal["lease", "advisory"] = "lease",
        max_size: int = 4,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(dsn_or_pool, str | asyncpg.Pool):
            _validate.type_error("dsn_or_pool", "a DSN string or an asyncpg.Pool", dsn_or_pool)
        if not isinstance(table, str) or not _IDENTIFIER.fullmatch(table):
            _validate.value_error("table", "a plain SQL identifier", table)
        if mode not in ("lease", "advisory"):
            _validate.value_error("mode", "'lease' or 'advisory'", mode)
        self._dsn = dsn_or_pool if isinstance(dsn_or_pool, str) else None
        self._pool: asyncpg.Pool | None = None if isinstance(dsn_or_pool, str) else dsn_or_pool
        self._owns_pool = isinstance(dsn_or_pool, str)
        self.table = table
        self.mode = mode
        self._max_size = max_size
        self._connect_kwargs = dict(connect_kwargs or {})
        self._ready = False
        self._setup_lock: asyncio.Lock | None = None
        # advisory mode: the session holding each grant's lock.
        self._sessions: dict[tuple[str, str], asyncpg.Connection] = {}

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None and self._ready:
            return self._pool
        if self._setup_lock is None:
            self._setup_lock = asyncio.Lock()
        async with self._setup_lock:
            if self._pool is None:
                kwargs = {"statement_cache_size": 0, **self._connect_kwargs}
                self._pool = await asyncpg.create_pool(
                    self._dsn, min_size=0, max_size=self._max_size, **kwargs
                )
            if not self._ready and self.mode == "lease":
                await self._create_table(self._pool)
            self._ready = True
        return self._pool

    async def _create_table(self, pool: asyncpg.Pool) -> None:
        statement = (
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            " name text PRIMARY KEY,"
            " holder text NOT NULL,"
            " fence bigint NOT NULL,"
            " expires_at timestamptz NOT NULL)"
        )
        try:
            await pool.execute(statement)
        except (asyncpg.UniqueViolationError, asyncpg.DuplicateTableError):
            pass  # another replica created it at the same moment

    async def acquire(self, name: str, holder: str, settings: LeaseSettings) -> Grant | None:
        """Grant ``name`` to ``holder`` if no live row exists (one statement).

        Cancelling it may leave a grant nobody knows of; it expires after ttl.
        """
        validate_name("name", name)
        validate_name("holder", holder)
        pool = await self._get_pool()
        sent_at = asyncio.get_running_loop().time()
        if self.mode == "advisory":
            return await self._acquire_advisory(name, holder, settings, sent_at)
        fence = await pool.fetchval(
            f"INSERT INTO {self.table} AS lease (name, holder, fence, expires_at)"
            " VALUES ($1, $2, 1, now() + make_interval(secs => $3))"
            " ON CONFLICT (name) DO UPDATE"
            " SET holder = EXCLUDED.holder, fence = lease.fence + 1,"
            " expires_at = EXCLUDED.expires_at"
            " WHERE lease.expires_at <= now()"
            " RETURNING fence",
            name,
            holder,
            settings.ttl,
        )
        return None if fence is None else Grant(name, holder, int(fence), settings, sent_at)

    async def renew(self, grant: Grant) -> Grant | None:
        """Extend ``grant`` by its ttl if its row is still ours and live (one statement).

        Cancelling it leaves the lease either renewed or not; both are safe.
        """
        pool = await self._get_pool()
        sent_at = asyncio.get_running_loop().time()
        if self.mode == "advisory":
            return await self._renew_advisory(grant, sent_at)
        fence = await pool.fetchval(
            f"UPDATE {self.table} SET expires_at = now() + make_interval(secs => $4)"
            " WHERE name = $1 AND holder = $2 AND fence = $3 AND expires_at > now()"
            " RETURNING fence",
            grant.name,
            grant.holder,
            grant.fence,
            grant.settings.ttl,
        )
        return None if fence is None else grant.renewed(sent_at)

    async def release(self, grant: Grant) -> None:
        """Expire ``grant``'s row now if it is still ours (one statement; the row stays).

        Cancelling it leaves the lease either released or expiring by itself.
        """
        pool = await self._get_pool()
        if self.mode == "advisory":
            await self._release_advisory(grant)
            return
        await pool.execute(
            f"UPDATE {self.table} SET expires_at = now()"
            " WHERE name = $1 AND holder = $2 AND fence = $3 AND expires_at > now()",
            grant.name,
            grant.holder,
            grant.fence,
        )

    # -- advisory mode ----------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        if self._dsn is not None:
            return await asyncpg.connect(self._dsn, **self._connect_kwargs)
        assert self._pool is not None
        # A connection taken out of the user's pool for as long as the lock.
        connection: asyncpg.Connection = await self._pool.acquire()
        return connection

    async def _disconnect(self, connection: asyncpg.Connection) -> None:
        if self._dsn is not None:
            await connection.close()
        else:
            assert self._pool is not None
            await self._pool.release(connection)

    async def _acquire_advisory(
        self, name: str, holder: str, settings: LeaseSettings, sent_at: float
    ) -> Grant | None:
        if (name, holder) in self._sessions:
            return None  # this process already holds it under this holder id
        connection = await self._connect()
        try:
            locked = await connection.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", name
            )
        except BaseException:
            await self._disconnect(connection)
            raise
        if not locked:
            await self._disconnect(connection)
            return None
        self._sessions[(name, holder)] = connection
        return Grant(name, holder, 0, settings, sent_at)

    async def _renew_advisory(self, grant: Grant, sent_at: float) -> Grant | None:
        connection = self._sessions.get((grant.name, grant.holder))
        if connection is None or connection.is_closed():
            self._sessions.pop((grant.name, grant.holder), None)
            return None  # the session, and so the lock, is gone
        await connection.fetchval("SELECT 1")
        return grant.renewed(sent_at)

    async def _release_advisory(self, grant: Grant) -> None:
        connection = self._sessions.pop((grant.name, grant.holder), None)
        if connection is None:
            return
        try:
            if not connection.is_closed():
                await connection.fetchval(
                    "SELECT pg_advisory_unlock(hashtextextended($1, 0))", grant.name
                )
        finally:
            await self._disconnect(connection)

    async def aclose(self) -> None:
        """Close the advisory sessions, and the pool if this backend made it."""
        for connection in list(self._sessions.values()):
            await self._disconnect(connection)
        self._sessions.clear()
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None
            self._ready = False

    def __repr__(self) -> str:
        return f"PostgresBackend(table={self.table!r}, mode={self.mode!r})"
