"""Recipe: do something during cancellation (flush a batch in ``after_loop``).

``after_loop`` runs once at the end of every run, whatever ended it; inside
it, ``is_being_cancelled()`` tells a cancellation apart from a stop or a
``count`` that was reached. The docs' cog uses it to insert what is left of
its batch when it is cancelled, so nothing collected is lost on unload.

Here the "database" is an in-memory SQLite table and ``do_bulk`` first
awaits a short round trip, so a cancel can land in the middle of an
iteration: the batch is still intact then, and ``after_loop`` writes it.

The docs use ``seconds=10.0``; half a second keeps the script short. Run it
with ``python examples/recipes/flush_on_cancel.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3

from supervised_loops import loop

#: Seconds between bulk inserts (10.0 in the discord.ext.tasks docs).
INTERVAL = 0.5
#: Seconds of the round trip before each bulk insert.
LATENCY = 0.02
#: Seconds between two events of the stand-in producer.
EVENT_PERIOD = 0.15


class Bot:
    """A stand-in for the bot: it only carries the database."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db


class MyCog:
    """Buffers events and bulk-inserts them every ``INTERVAL`` seconds."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._batch: list[str] = []
        self.lock = asyncio.Lock()
        self.bulker.start()

    def cog_unload(self) -> None:
        self.bulker.cancel()

    def add(self, event: str) -> None:
        """Buffer an event for the next bulk insert."""
        self._batch.append(event)

    async def do_bulk(self) -> None:
        """Insert the buffered events; the buffer is taken after the round trip."""
        await asyncio.sleep(LATENCY)
        batch, self._batch = self._batch, []
        if batch:
            self.bot.db.executemany("INSERT INTO events (event) VALUES (?)", [(e,) for e in batch])
            self.bot.db.commit()
            print(f"inserted {len(batch)} events")

    @loop(seconds=INTERVAL)
    async def bulker(self) -> None:
        async with self.lock:
            await self.do_bulk()

    @bulker.after_loop
    async def on_bulker_cancel(self) -> None:
        if self.bulker.is_being_cancelled() and len(self._batch) != 0:
            # We were cancelled with data left: insert it into the database.
            print(f"cancelled with {len(self._batch)} events pending: flushing")
            await self.do_bulk()


def open_database() -> sqlite3.Connection:
    """An in-memory database with the ``events`` table."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, event TEXT)")
    return db


async def produce(cog: MyCog, count: int) -> None:
    """Add ``count`` events, one every ``EVENT_PERIOD`` seconds."""
    for index in range(count):
        await asyncio.sleep(EVENT_PERIOD)
        cog.add(f"event {index}")


async def main() -> list[str]:
    """Buffer six events, unload in the middle of an insert; return the saved events."""
    db = open_database()
    try:
        cog = MyCog(Bot(db))
        await produce(cog, 6)  # events at 0.15 ... 0.90 s; inserts at 0 and 0.5 s
        await asyncio.sleep(2 * INTERVAL + LATENCY / 2 - 6 * EVENT_PERIOD)
        cog.cog_unload()  # at 1.01 s: the insert that began at 1.0 s is interrupted
        task = cog.bulker.get_task()
        assert task is not None
        await asyncio.wait({task})
        saved = [event for (event,) in db.execute("SELECT event FROM events ORDER BY id")]
        print(f"{len(saved)} events saved, {len(cog._batch)} lost")
        return saved
    finally:
        db.close()


if __name__ == "__main__":
    asyncio.run(main())
