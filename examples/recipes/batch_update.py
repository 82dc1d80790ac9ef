"""Recipe: add an exception type to retry during reconnects, for a batch update.

The docs' cog adds ``asyncpg.PostgresConnectionError`` with
``add_exception_type`` so that a database outage is retried with backoff
instead of ending the loop. Here a stand-in pool over an in-memory SQLite
database raises :class:`PoolConnectionError` (not an ``OSError``, like the
asyncpg one, so it is *not* retried by default) for its first two
``acquire()`` calls. The iteration is retried until it succeeds;
``current_loop`` does not advance meanwhile, and no reading is lost, since
the batch is taken only once a connection is held.

The docs use ``minutes=5.0``; half a second and a 0.1 s backoff keep the
script short. Run it with ``python examples/recipes/batch_update.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

from supervised_loops import ExponentialBackoff, loop

#: Seconds between batch updates (5 minutes in the discord.ext.tasks docs).
INTERVAL = 0.5
#: Retry after 0.1 s, then 0.2 s, ... (the default starts at up to 2 s, with jitter).
RETRY_BACKOFF = ExponentialBackoff(base=0.05, jitter=False)


class PoolConnectionError(Exception):
    """The stand-in for ``asyncpg.PostgresConnectionError``."""


class Pool:
    """A stand-in for an asyncpg pool, over one SQLite connection.

    Args:
        db: the connection ``acquire()`` hands out.
        outages: how many ``acquire()`` calls fail before the "server" is back.
    """

    def __init__(self, db: sqlite3.Connection, *, outages: int = 0) -> None:
        self.db = db
        self.outages = outages
        self.failed_acquires = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[sqlite3.Connection]:
        await asyncio.sleep(0)  # a round trip to the server
        if self.outages:
            self.outages -= 1
            self.failed_acquires += 1
            raise PoolConnectionError("could not connect to server")
        yield self.db


class Bot:
    """A stand-in for the bot: it only carries the pool."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool


class MyCog:
    """Collects readings in memory and writes them to the database in batches."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.data: list[tuple[str, float]] = []
        self.batch_update.add_exception_type(PoolConnectionError)
        self.batch_update.start()

    def cog_unload(self) -> None:
        self.batch_update.cancel()

    def record(self, name: str, value: float) -> None:
        """Queue a reading for the next batch update."""
        self.data.append((name, value))

    @loop(seconds=INTERVAL, backoff=RETRY_BACKOFF)
    async def batch_update(self) -> None:
        async with self.bot.pool.acquire() as con:
            # Take the batch only once connected: a failed acquire() keeps it queued.
            batch, self.data = self.data, []
            con.executemany("INSERT INTO readings (name, value) VALUES (?, ?)", batch)
            con.commit()
            print(f"batch update {self.batch_update.current_loop}: {len(batch)} rows")


def open_database() -> sqlite3.Connection:
    """An in-memory database with the ``readings`` table."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, name TEXT, value REAL)")
    return db


async def main() -> list[tuple[str, float]]:
    """Record readings through a two-attempt outage; return what the database holds."""
    db = open_database()
    try:
        pool = Pool(db, outages=2)
        cog = MyCog(Bot(pool))
        for index in range(3):
            cog.record("temperature", 20.0 + index)
        await asyncio.sleep(0.7 * INTERVAL)  # fails at 0, retried at 0.1 and 0.3 s
        cog.record("humidity", 41.5)
        cog.record("humidity", 42.0)
        await asyncio.sleep(0.6 * INTERVAL)  # the next update, at 0.5 s, writes these
        cog.cog_unload()
        task = cog.batch_update.get_task()
        assert task is not None
        await asyncio.wait({task})
        rows: list[tuple[str, float]] = db.execute(
            "SELECT name, value FROM readings ORDER BY id"
        ).fetchall()
        print(f"{len(rows)} rows saved; {pool.failed_acquires} connection errors retried")
        return rows
    finally:
        db.close()


if __name__ == "__main__":
    asyncio.run(main())
