"""A report loop that runs on one replica at a time, its writes protected by fences.

Start several copies against one Redis (or PostgreSQL) and one store:

    python examples/replicas/fenced_report.py --redis redis://127.0.0.1:6379/0 --db /tmp/store.db
    python examples/replicas/fenced_report.py --postgres postgresql://u@host/db --db /tmp/store.db

One copy holds the lease ``fenced-report`` and writes a row every half
second; the others wait in standby. Kill the holder (``kill -9``) and
another copy takes over within ``ttl + retry_period`` (3.4 s here) with a
larger fence. Pause it (``kill -STOP``, later ``kill -CONT``) and it steps
down on resume; any write it still had in flight carries its old fence, and
the store refuses it.

The store is the part that makes it safe: it remembers the largest fence it
has accepted and rejects smaller ones, in the same transaction as the write.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from typing import Any

from supervised_loops import loop, run
from supervised_loops.leases import Lease, LeaseSettings


class StaleFence(Exception):
    """A write carried a fence older than one the store has already accepted."""


class FencedStore:
    """An SQLite table that only takes writes whose fence is not older than the last one."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, timeout=10, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS fence (id INTEGER PRIMARY KEY, last INTEGER)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS reports (fence INTEGER, pid INTEGER, body TEXT)"
        )

    def write(self, fence: int, body: str) -> None:
        """Append a report under ``fence``; raise `StaleFence` if a newer fence wrote."""
        self.db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
        try:
            row = self.db.execute("SELECT last FROM fence WHERE id = 1").fetchone()
            if row is not None and fence < row[0]:
                raise StaleFence(f"fence {fence} is older than {row[0]}")
            self.db.execute("INSERT OR REPLACE INTO fence (id, last) VALUES (1, ?)", (fence,))
            self.db.execute(
                "INSERT INTO reports (fence, pid, body) VALUES (?, ?, ?)",
                (fence, os.getpid(), body),
            )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


def make_backend(arguments: argparse.Namespace) -> Any:
    if arguments.redis:
        from supervised_loops.leases import RedisBackend

        return RedisBackend(arguments.redis)
    if arguments.postgres:
        from supervised_loops.leases import PostgresBackend

        return PostgresBackend(arguments.postgres)
    return None  # in-process: only useful inside one process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", help="a Redis URL")
    parser.add_argument("--postgres", help="a PostgreSQL DSN")
    parser.add_argument("--db", required=True, help="the SQLite file of the fenced store")
    parser.add_argument("--ttl", type=float, default=3.0)
    parser.add_argument("--name", default="fenced-report", help="the lease's name")
    arguments = parser.parse_args()
    store = FencedStore(arguments.db)
    lease = Lease(
        name=arguments.name,
        backend=make_backend(arguments),
        settings=LeaseSettings(ttl=arguments.ttl),
    )

    @loop(seconds=0.5, lease=lease)
    async def report() -> None:
        held = report.lease
        assert held is not None  # set once the loop runs with a lease
        fence = held.fence or 0
        try:
            store.write(fence, f"report by {held.holder}")
        except StaleFence as refused:
            print(f"write refused: {refused}", flush=True)
            return
        print(f"fence {fence}: report written", flush=True)

    run(report)


if __name__ == "__main__":
    main()
