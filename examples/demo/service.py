"""The demo service: a small, realistic tree on embedded defaults (SQLite, no servers).

::

    demo                      Supervisor (one_for_one)
    ├── ingest                Supervisor (rest_for_one): the writer starts first, stops last
    │   ├── writer            every 3 s, flushes the buffer to SQLite; flushes again on shutdown
    │   └── poller            every 0.5 s, reads a flaky source; ConnectionError is retried;
    │                         flushes when it ends (if the writer was stopped by hand first)
    ├── report                daily at 18:00 UTC (or on `ctl run-now demo/report`)
    └── heartbeat             every 1 s, records that the service is alive

Run it with ``supervised-loops run --dashboard 127.0.0.1:8080
examples/demo/service.py:make_tree`` (the web dashboard at that address) and
steer it from a second shell, e.g. ``supervised-loops ctl stop demo/ingest/poller``.
Ctrl-C stops it in order; every reading polled is in the database afterwards
(``SELECT count(*), max(seq) FROM readings`` gives the same number twice).

The database path comes from ``$DEMO_DB`` (default ``demo.sqlite3``); it is
opened, and its path logged, when the first loop needs it, so building the
tree (``supervised-loops tree``) creates no file.
Timestamps come from the event loop's clock (:func:`supervised_loops.clock.get_clock`),
not ``datetime.now()``, so the demo runs in virtual time in its tests.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import sqlite3
import weakref

from supervised_loops import Supervisor, child, loop
from supervised_loops.clock import get_clock

logger = logging.getLogger("demo")

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (seq INTEGER PRIMARY KEY, taken_at TEXT, value REAL);
CREATE TABLE IF NOT EXISTS reports (day TEXT, readings INTEGER, mean REAL);
CREATE TABLE IF NOT EXISTS heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT);
"""


class FlakySource:
    """A sensor on an unreliable link: one read in ``failure_rate`` raises ConnectionError."""

    def __init__(self, failure_rate: float = 0.2, seed: int | None = None) -> None:
        self.failure_rate = failure_rate
        self._random = random.Random(seed)

    async def read(self) -> float:
        if self._random.random() < self.failure_rate:
            raise ConnectionError("source unavailable")
        return round(20 + self._random.gauss(0, 2), 2)


class Database:
    """The SQLite connection, opened on first use and closed with `close`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(self.path)
            self._connection.executescript(SCHEMA)
            logger.info("database: %s", os.path.abspath(self.path))
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


class Ingest:
    """Polls the source into a buffer; the writer moves the buffer to SQLite."""

    def __init__(self, database: Database, source: FlakySource) -> None:
        self.database = database
        self.source = source
        self.buffer: list[tuple[int, str, float]] = []
        self.seq: int | None = None  # read from the database on the first poll

    @loop(seconds=0.5)
    async def poller(self) -> None:
        value = await self.source.read()  # ConnectionError: retried with backoff
        if self.seq is None:
            query = "SELECT coalesce(max(seq), 0) FROM readings"
            self.seq = self.database.connection.execute(query).fetchone()[0]
        self.seq += 1
        self.buffer.append((self.seq, get_clock().wall().isoformat(), value))

    @loop(seconds=3)
    async def writer(self) -> None:
        self.flush()

    @writer.after_loop
    async def _flush_on_exit(self) -> None:
        self.flush()  # stopped or cancelled: nothing polled is lost

    @poller.after_loop
    async def _flush_what_was_polled(self) -> None:
        self.flush()  # in case the writer was stopped by hand before it

    def flush(self) -> None:
        if self.buffer:
            batch, self.buffer = self.buffer, []
            db = self.database.connection
            with db:
                db.executemany("INSERT INTO readings VALUES (?, ?, ?)", batch)
            noun = "reading" if len(batch) == 1 else "readings"
            logger.info("flushed %d %s (up to #%d)", len(batch), noun, batch[-1][0])


def make_tree(db_path: str | None = None, *, seed: int | None = None) -> Supervisor:
    """Build the demo tree on the SQLite database at ``db_path``."""
    database = Database(db_path or os.environ.get("DEMO_DB", "demo.sqlite3"))
    ingest = Ingest(database, FlakySource(seed=seed))

    @loop(time=dt.time(18, 0))
    async def report() -> None:
        day = get_clock().wall().date().isoformat()  # the UTC day
        db = database.connection
        count, mean = db.execute("SELECT count(*), avg(value) FROM readings").fetchone()
        with db:
            db.execute("INSERT INTO reports VALUES (?, ?, ?)", (day, count, mean))
        logger.info("report: %d readings, mean %.2f", count, mean or 0.0)

    @loop(seconds=1)
    async def heartbeat() -> None:
        db = database.connection
        with db:
            db.execute(
                "INSERT OR REPLACE INTO heartbeat VALUES (1, ?)",
                (get_clock().wall().isoformat(),),
            )

    tree = Supervisor(
        Supervisor(
            child(ingest.writer, shutdown=10.0),
            child(ingest.poller),
            strategy="rest_for_one",
            name="ingest",
        ),
        child(report),
        child(heartbeat),
        strategy="one_for_one",
        max_restarts=5,
        max_seconds=60.0,
        name="demo",
    )
    # The loops share the connection and may be restarted by hand, so no
    # after_loop may close it: it is closed when the tree is let go of (or
    # at exit), never left for the garbage collector to complain about.
    weakref.finalize(tree, database.close)
    return tree
