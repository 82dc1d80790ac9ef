"""The demo service (examples/demo/service.py), in virtual time.

Minutes of a flaky poller, a writer flushing to SQLite, a heartbeat and a
daily report run in milliseconds; the database then shows that nothing
polled was lost or stored twice, and that the report ran at 18:00 UTC and
on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import importlib.util
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from supervised_loops import Loop, RunNow, State, Stop, Supervisor
from supervised_loops.testing import VirtualClock, virtual_time

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo" / "service.py"
BEFORE_SIX = dt.datetime(2026, 3, 10, 17, 59, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("demo_service_under_test", DEMO)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def query(database: Path, sql: str) -> list[Any]:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return db.execute(sql).fetchall()


def readings(database: Path) -> tuple[int, int, int, int]:
    """count(*), count(distinct seq), min(seq), max(seq) of the readings table."""
    (row,) = query(
        database, "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM readings"
    )
    return row  # type: ignore[no-any-return]


def loop_at(tree: Supervisor, path: str) -> Loop[Any]:
    actor = tree.lookup(path)
    assert isinstance(actor, Loop)
    return actor


@virtual_time(start=BEFORE_SIX)
async def test_minutes_of_a_flaky_source_lose_no_reading_and_store_none_twice(
    demo: ModuleType, tmp_path: Path
) -> None:
    database = tmp_path / "demo.sqlite3"
    tree = demo.make_tree(str(database), seed=7)
    poller = loop_at(tree, "ingest/poller")
    async with tree:
        await asyncio.sleep(300.25)  # five virtual minutes, past 18:00
        status = poller.status()
        assert status.failures > 0  # the source failed, and...
        assert status.restarts == 0  # ...every failure was retried in place
        assert status.last_error == "ConnectionError: source unavailable"
        polled = poller.current_loop
        assert polled > 400  # 0.5 s apart, minus the retry waits
    assert tree.status().state is State.STOPPED
    # One row per polled sequence number, from 1 to the last: the final
    # batch was flushed by the writer's after_loop when the tree stopped.
    assert readings(database) == (polled, polled, 1, polled)
    first, last = query(database, "SELECT min(taken_at), max(taken_at) FROM readings")[0]
    assert first >= "2026-03-10T17:59:00+00:00"
    assert last <= "2026-03-10T18:04:00.250000+00:00"
    # The heartbeat beats every second on the virtual clock.
    assert query(database, "SELECT id, at FROM heartbeat") == [(1, "2026-03-10T18:04:00+00:00")]


@virtual_time(start=BEFORE_SIX)
async def test_the_report_runs_at_18_utc_and_on_run_now(demo: ModuleType, tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"
    tree = demo.make_tree(str(database), seed=3)
    report = loop_at(tree, "report")
    async with tree:
        assert report.next_iteration == dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC)
        await asyncio.sleep(59.9)
        assert query(database, "SELECT * FROM reports") == []
        await asyncio.sleep(0.2)  # 18:00:00.1
        ((day, counted, mean),) = query(database, "SELECT * FROM reports")
        assert day == "2026-03-10"
        # It counted what was stored by then: at least everything polled up to
        # the writer's flush at 17:59:57 (it flushes every 3 s), and no more
        # than what is stored now.
        ((flushed_by_17_59_57,),) = query(
            database, "SELECT count(*) FROM readings WHERE taken_at <= '2026-03-10T17:59:57+00:00'"
        )
        assert 0 < flushed_by_17_59_57 <= counted <= readings(database)[0]
        assert mean is not None
        assert 10.0 < mean < 30.0  # gauss(20, 2)
        assert report.next_iteration == dt.datetime(2026, 3, 11, 18, 0, tzinfo=dt.UTC)

        await asyncio.sleep(30)
        ack = await report.ask(RunNow())
        assert ack.iteration == 2
        assert ack.next_iteration == dt.datetime(2026, 3, 11, 18, 0, tzinfo=dt.UTC)  # grid kept
        rows = query(database, "SELECT day, readings FROM reports")
        assert len(rows) == 2
        assert rows[1][0] == "2026-03-10"
        assert rows[1][1] == readings(database)[0]  # what was stored at 18:00:30
        assert rows[1][1] > counted


@virtual_time(start=BEFORE_SIX)
async def test_a_writer_stopped_by_hand_loses_nothing_either(
    demo: ModuleType, tmp_path: Path
) -> None:
    database = tmp_path / "demo.sqlite3"
    tree = demo.make_tree(str(database), seed=11)
    poller = loop_at(tree, "ingest/poller")
    async with tree:
        await asyncio.sleep(10.25)
        await tree.lookup("ingest/writer").ask(Stop())  # as `ctl stop demo/ingest/writer`
        stored = readings(database)[0]
        await asyncio.sleep(20)
        assert readings(database)[0] == stored  # nobody writes now...
        polled = poller.current_loop
    assert polled > stored  # ...but the poller went on,
    assert readings(database) == (polled, polled, 1, polled)  # and flushed when it stopped


@virtual_time(start=BEFORE_SIX)
async def test_a_second_run_continues_the_sequence_of_the_first(
    demo: ModuleType, tmp_path: Path
) -> None:
    database = tmp_path / "demo.sqlite3"
    first = demo.make_tree(str(database), seed=5)
    async with first:
        await asyncio.sleep(5.25)
    before = readings(database)
    second = demo.make_tree(str(database), seed=6)
    async with second:
        await asyncio.sleep(5.25)
        polled = loop_at(second, "ingest/poller").current_loop
    total = before[0] + polled
    assert readings(database) == (total, total, 1, total)


class Tracked(sqlite3.Connection):
    """A connection that remembers being closed."""

    closed: bool = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_building_the_tree_creates_no_database(demo: ModuleType, tmp_path: Path) -> None:
    # `supervised-loops tree` builds the tree to draw it: it must leave no file.
    demo.make_tree(str(tmp_path / "demo.sqlite3"))
    assert not (tmp_path / "demo.sqlite3").exists()


def test_the_demo_closes_its_database_when_the_tree_is_let_go_of(
    demo: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python 3.13 warns (ResourceWarning) about a connection left to the
    # garbage collector: the demo closes its own.
    opened: list[Tracked] = []
    real_connect = sqlite3.connect

    def connect(path: str) -> sqlite3.Connection:
        connection = real_connect(path, factory=Tracked)
        opened.append(connection)
        return connection

    monkeypatch.setattr(demo.sqlite3, "connect", connect)
    tree = demo.make_tree(str(tmp_path / "demo.sqlite3"))
    assert opened == []

    async def briefly(actor: Supervisor) -> None:
        async with actor:
            await asyncio.sleep(1.5)

    VirtualClock(BEFORE_SIX).run(briefly(tree))
    assert len(opened) == 1
    assert not opened[0].closed
    del tree
    gc.collect()
    assert opened[0].closed
