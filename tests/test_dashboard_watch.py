"""Which loops the dashboard records: the ones a browser shows, for a while after, and failures.

Recording every loop would cost a service with ten thousand loops a fifth
of its iterations' CPU; the dashboard records what is looked at. These
tests pin the rules: a view gives its loops rings (and their rows carry
the charts), a folded supervisor's loops get none, a ring goes some time
after the last view that showed it unless it holds a failure, a failing
loop gets one without being shown, and closing the dashboard takes them all.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from supervised_loops import Loop, Supervisor, loop
from supervised_loops.loops import recent
from supervised_loops.service.dashboard import Dashboard, History
from supervised_loops.service.dashboard import snapshot as snapshots
from supervised_loops.service.dashboard.snapshot import Sent, View
from supervised_loops.service.dashboard.watch import KEEP_UNSEEN, Watch
from supervised_loops.testing import virtual_time


def make_loop(name: str, *, fails: bool = False) -> Loop[Any]:
    @loop(seconds=1, name=name)
    async def body() -> None:
        if fails:
            raise ValueError(f"{name} cannot")

    body.add_exception_type(ValueError)
    return body


def wide(count: int) -> Supervisor:
    return Supervisor(
        make_loop("shown"),
        Supervisor(*[make_loop(f"l{i}") for i in range(count)], name="wide"),
        name="app",
    )


def no_limits(_path: str) -> None:
    return None


def seeded(tree: Supervisor) -> History:
    """The dashboard's history of ``tree`` as it is before any event."""
    history = History()
    history.seed(tree.status())
    return history


@virtual_time()
async def test_a_view_gives_its_loops_rings_and_a_folded_supervisors_loops_none() -> None:
    tree = wide(snapshots.FOLD_ABOVE + 1)
    history = seeded(tree)
    watch = Watch()
    await tree.start()
    try:
        View(tree, history, no_limits, watch).rows()
        assert recent.of(tree.lookup("shown")) is not None
        assert all(recent.of(tree.lookup(f"wide/l{i}")) is None for i in range(3))
        assert len(watch) == 1
        View(tree, history, no_limits, watch, opened=["app/wide"]).rows()
        assert recent.of(tree.lookup("wide/l0")) is not None
        assert len(watch) == 2 + snapshots.FOLD_ABOVE
    finally:
        await tree.stop()


@virtual_time()
async def test_a_changed_loop_row_carries_its_chart_and_an_unchanged_one_nothing() -> None:
    tree = wide(2)
    history = seeded(tree)
    await tree.start()
    try:
        view = View(tree, history, no_limits, Watch())

        def ring_of(path: str) -> recent.RecentIterations | None:
            return recent.of(tree.lookup(path.removeprefix("app/")))

        sent = Sent(ring_of)
        first = sent.changes(view.rows(), full=True)["rows"]
        assert first["app/shown"]["history"]["count"] == 0  # the ring is new: empty
        await asyncio.sleep(2.5)
        later = sent.changes(view.rows(), full=True)["rows"]["app/shown"]["history"]
        assert (later["first"], later["outcomes"]) == (0, "oo")
        again = sent.changes(view.rows(), full=True)["rows"]
        assert "app/shown" not in again  # nothing ran since: nothing sent
        await asyncio.sleep(1)
        tail = sent.changes(view.rows(), full=True)["rows"]["app/shown"]["history"]
        assert (tail["first"], tail["count"], tail["outcomes"]) == (2, 3, "o")  # the new one only
        sent.forget()  # the browser lost events: whole charts again
        whole = sent.changes(view.rows(), full=True)["rows"]["app/shown"]["history"]
        assert (whole["first"], whole["outcomes"]) == (0, "ooo")
        shown = tree.lookup("shown")
        recent.detach(shown)
        recent.attach(shown).add(0.0, 0.001, 0.0, 0.0)  # a new ring: sent whole
        fresh = sent.changes(view.rows(), full=True)["rows"]["app/shown"]["history"]
        assert (fresh["first"], fresh["count"]) == (0, 1)
    finally:
        await tree.stop()


@virtual_time()
async def test_a_ring_goes_some_time_after_the_last_view_that_showed_it() -> None:
    tree = wide(1)
    history = seeded(tree)
    watch = Watch()
    await tree.start()
    try:
        inner = tree.lookup("wide/l0")
        View(tree, history, no_limits, watch, opened=["app/wide"]).rows()
        await asyncio.sleep(KEEP_UNSEEN - 1)
        watch.sweep()
        assert recent.of(inner) is not None  # still within the time it is kept
        View(tree, history, no_limits, watch, closed=["app/wide"]).rows()  # folded: not seen
        await asyncio.sleep(2)
        watch.sweep()
        assert recent.of(inner) is None
        assert recent.of(tree.lookup("shown")) is not None  # seen by that last view
        assert len(watch) == 1
    finally:
        await tree.stop()


@virtual_time()
async def test_a_ring_holding_a_failure_stays_while_the_dashboard_is_open() -> None:
    failing = make_loop("failing", fails=True)
    tree = Supervisor(failing, name="app")
    history = seeded(tree)
    watch = Watch()
    recent.start_recording()
    try:
        await tree.start()
        View(tree, history, no_limits, watch).rows()
        await asyncio.sleep(KEEP_UNSEEN + 10)
        watch.sweep()
        ring = recent.of(failing)
        assert ring is not None
        assert "ValueError: failing cannot" in (ring.traceback or "")
    finally:
        recent.stop_recording()
        await tree.stop()


async def test_the_dashboard_keeps_failures_of_loops_nobody_shows_and_drops_all_at_close() -> None:
    hidden = [make_loop(f"l{i}", fails=i == 0) for i in range(snapshots.FOLD_ABOVE + 1)]
    tree = Supervisor(Supervisor(*hidden, name="wide"), name="app")
    async with Dashboard(tree, "127.0.0.1:0", interval=0.1) as dashboard:
        assert recent.recording()
        await tree.start()
        for _ in range(100):  # its first iteration fails, a few event-loop cycles after the start
            if recent.of(hidden[0]) is not None:
                break
            await asyncio.sleep(0)
        async with (
            aiohttp.ClientSession() as session,
            session.get(dashboard.url + "api/traceback?path=app/wide/l0") as reply,
        ):
            body = json.loads(await reply.text())
        assert "ValueError: l0 cannot" in body["traceback"]
        assert recent.of(hidden[1]) is None  # folded, and it never failed
    assert not recent.recording()
    assert all(recent.of(each) is None for each in hidden)
    await tree.stop()
