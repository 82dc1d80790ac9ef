"""The dashboard's live stream, its place in serve() and the CLI, its snapshots."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from supervised_loops import Supervisor, instrument, loop, serve
from supervised_loops.events import ActorFailed, ActorStarted, ChildRestarted
from supervised_loops.loops import recent
from supervised_loops.messages import Stop
from supervised_loops.service import cli
from supervised_loops.service.dashboard import Dashboard, History, server
from supervised_loops.service.dashboard import snapshot as snapshots
from supervised_loops.service.dashboard.snapshot import Sent, View
from supervised_loops.service.dashboard.watch import Watch


def make_tree() -> Supervisor:
    @loop(seconds=0.05)
    async def tick() -> None:
        pass

    @loop(seconds=60)
    async def slow() -> None:
        pass

    return Supervisor(Supervisor(tick, slow, name="inner"), name="app")


class Stream:
    """A reader of the dashboard's server-sent events."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def next(self) -> tuple[str, Any]:
        kind, data = "", ""
        while True:
            line = (await self._response.content.readline()).decode()
            if line.startswith("event: "):
                kind = line[7:].strip()
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "\n" and kind:
                return kind, json.loads(data)

    async def until(self, predicate: Any, timeout: float = 5.0) -> tuple[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                kind, data = await self.next()
                if predicate(kind, data):
                    return kind, data


@pytest.fixture
async def stream() -> AsyncIterator[tuple[Supervisor, Stream]]:
    tree = make_tree()
    async with Dashboard(tree, "127.0.0.1:0", interval=0.1) as dashboard:
        await tree.start()
        async with (
            aiohttp.ClientSession() as session,
            session.get(dashboard.url + "api/events") as response,
        ):
            assert response.headers["Content-Type"] == "text/event-stream"
            yield tree, Stream(response)
    await tree.stop()


async def test_the_stream_says_hello_then_sends_the_whole_tree(
    stream: tuple[Supervisor, Stream],
) -> None:
    _tree, events = stream
    kind, hello = await events.next()
    assert kind == "hello"
    assert hello["root"] == "app"
    assert hello["control"] is False
    assert [event["path"] for event in hello["events"] if event["type"] == "ActorStarted"] == [
        "app",
        "app/inner",
        "app/inner/tick",
        "app/inner/slow",
    ]
    kind, rows = await events.next()
    assert kind == "rows"
    assert set(rows["rows"]) == {"app", "app/inner", "app/inner/tick", "app/inner/slow"}
    assert rows["rows"]["app/inner"]["children"] == ["app/inner/tick", "app/inner/slow"]
    assert rows["rows"]["app"]["intensity"] == [0, 3, 5.0]
    assert rows["rows"]["app/inner/slow"]["state"] == "sleeping"
    assert rows["rows"]["app/inner/slow"]["next"] > time.time() + 50


async def test_later_rows_messages_carry_only_what_changed(
    stream: tuple[Supervisor, Stream],
) -> None:
    _tree, events = stream
    await events.until(  # the slow loop's first iteration runs at its start
        lambda kind, data: (
            kind == "rows" and data["rows"].get("app/inner/slow", {}).get("state") == "sleeping"
        )
    )
    _kind, later = await events.until(lambda kind, data: kind == "rows" and data["rows"])
    assert "app/inner/tick" in later["rows"]  # its iteration moves
    assert "app/inner/slow" not in later["rows"]  # nothing about it changed


async def test_a_stop_reaches_the_stream_at_once_with_the_actors_new_row(
    stream: tuple[Supervisor, Stream],
) -> None:
    tree, events = stream
    await events.until(lambda kind, _data: kind == "rows")
    asked = time.monotonic()
    await tree.lookup("inner/slow").ask(Stop())
    _kind, data = await events.until(
        lambda kind, data: kind == "event" and data["event"]["type"] == "ActorEnded"
    )
    assert time.monotonic() - asked < 0.5
    assert data["event"]["path"] == "app/inner/slow"
    assert data["rows"]["app/inner/slow"]["state"] == "stopped"


async def test_a_browser_that_falls_behind_loses_its_oldest_events_and_gets_every_row_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "MAX_PENDING_EVENTS", 4)
    tree = make_tree()
    async with Dashboard(tree, "127.0.0.1:0", interval=30.0) as dashboard:
        await tree.start()
        async with (
            aiohttp.ClientSession() as session,
            session.get(dashboard.url + "api/events") as response,
        ):
            events = Stream(response)
            await events.until(lambda kind, _data: kind == "rows")
            # Ten events in one go, faster than any browser: published without
            # waiting, the browser's queue keeps the newest four.
            for index in range(10):
                tree.tell_at(f"nobody{index}", "hello")
            _kind, marker = await events.until(
                lambda kind, data: kind == "event" and data["event"]["type"] == "EventsDropped"
            )
            assert marker["event"]["count"] == 6
            # At once, not at the next period: every row it shows, as it lost track.
            kind, rows = await events.next()
            assert kind == "rows"
            assert set(rows["rows"]) == {"app", "app/inner", "app/inner/tick", "app/inner/slow"}
            _kind, first = await events.next()
            assert first["event"]["path"] == "app/nobody6"  # the oldest kept
    await tree.stop()


async def test_live_streams_are_capped_so_browsers_cannot_burden_the_actors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "MAX_STREAMS", 2)
    tree = make_tree()
    async with (
        Dashboard(tree, "127.0.0.1:0") as dashboard,
        aiohttp.ClientSession() as session,
        session.get(dashboard.url + "api/events") as first,
        session.get(dashboard.url + "api/events") as second,
    ):
        await Stream(first).next()
        await Stream(second).next()
        async with session.get(dashboard.url + "api/events") as third:
            assert third.status == 503
            assert "2 live streams are open" in await third.text()


async def test_a_browser_that_lost_events_is_sent_the_whole_tree_again() -> None:
    tree = make_tree()
    history = History()
    rows = snapshots.rows_of(tree.status(), history, lambda _path: None, lambda _path: None)
    sent = Sent(lambda _path: None)
    assert set(sent.changes(rows, full=True)["rows"]) == set(rows)
    assert sent.changes(rows, full=True)["rows"] == {}
    sent.forget()
    assert set(sent.changes(rows, full=True)["rows"]) == set(rows)
    fewer = {path: row for path, row in rows.items() if path != "app/inner/slow"}
    assert sent.changes(fewer, full=True)["removed"] == ["app/inner/slow"]


def wide_tree(width: int) -> Supervisor:
    def make(index: int) -> Any:
        @loop(seconds=60, name=f"l{index}")
        async def body() -> None:
            pass

        return body

    return Supervisor(Supervisor(*[make(i) for i in range(width)], name="wide"), name="app")


async def test_a_view_shows_a_big_supervisor_folded_without_its_loops_until_opened() -> None:
    tree = wide_tree(snapshots.FOLD_ABOVE + 1)
    history = History()
    history.seed(tree.status())
    await tree.start()
    try:
        rows = View(tree, history, lambda _path: None, Watch()).rows()
        assert set(rows) == {"app", "app/wide"}
        assert rows["app/wide"]["children"] is None
        assert rows["app/wide"]["count"] == snapshots.FOLD_ABOVE + 1
        opened = View(tree, history, lambda _path: None, Watch(), opened=["app/wide"]).rows()
        assert len(opened) == 2 + snapshots.FOLD_ABOVE + 1
        assert opened["app/wide/l0"]["kind"] == "loop"
        small = wide_tree(snapshots.FOLD_ABOVE)
        small_history = History()
        small_history.seed(small.status())
        shown = View(small, small_history, lambda _path: None, Watch()).rows()
        assert len(shown) == 2 + snapshots.FOLD_ABOVE
        closed = View(small, small_history, lambda _path: None, Watch(), closed=["app/wide"]).rows()
        assert set(closed) == {"app", "app/wide"}
    finally:
        await tree.stop()


async def test_a_views_period_grows_with_its_cost_to_keep_the_dashboards_share_small(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = make_tree()
    history = History()
    history.seed(tree.status())
    view = View(tree, history, lambda _path: None, Watch(), interval=0.05)
    view.rows()
    assert view.period == 0.05  # a small tree costs far less than 1/20 of it
    real = snapshots.row_of_status

    def slow_row(*args: Any) -> Any:
        time.sleep(0.01)
        return real(*args)

    monkeypatch.setattr(snapshots, "row_of_status", slow_row)
    view.rows()  # two loops: at least 20 ms
    assert view.period >= 0.02 * snapshots.BUDGET_FACTOR


def test_supervisor_rows_follow_their_lifecycle_events_not_their_subtrees_status() -> None:
    history = History()
    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    history.record(ActorStarted(path="app", at=at))
    history.record(ActorStarted(path="app/inner", at=at))
    history.record(ActorStarted(path="app/inner/tick", at=at))
    history.record(ChildRestarted(path="app/inner", at=at, reason="E: x"))
    history.record(ActorFailed(path="app/inner", at=at, error="E: boom"))
    record = history.actors["app/inner"]
    assert (record.state, record.restarts, record.failures, record.error) == (
        "failed",
        1,
        1,
        "E: boom",
    )
    assert list(history.children["app"]) == ["app/inner"]
    assert list(history.children["app/inner"]) == ["app/inner/tick"]
    history.forget("app/inner/tick")
    assert list(history.children["app/inner"]) == []


async def test_serve_with_a_dashboard_logs_its_address_serves_it_and_closes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "supervised_loops")
    tree = make_tree()
    seen: list[int] = []
    tasks: list[asyncio.Task[None]] = []

    def started(root: Supervisor) -> None:
        async def look() -> None:
            url = next(
                r.getMessage()[11:]
                for r in caplog.records
                if r.getMessage().startswith("dashboard: ")
            )
            async with (
                aiohttp.ClientSession() as session,
                session.get(url + "api/state") as response,
            ):
                seen.append(response.status)
                seen.append(recent.recording())
            root.tell(Stop())

        tasks.append(asyncio.ensure_future(look()))

    status = await serve(tree, handle_signals=False, dashboard="127.0.0.1:0", on_started=started)
    assert not recent.recording()  # recording stops when the dashboard closes
    assert status == 0
    assert seen == [200, True]
    url = next(
        r.getMessage()[11:] for r in caplog.records if r.getMessage().startswith("dashboard: ")
    )
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(url):
            pass


async def test_a_port_in_use_fails_the_start_and_leaves_nothing_behind() -> None:
    tree = make_tree()
    async with Dashboard(tree, "127.0.0.1:0") as first:
        port = first.url.rstrip("/").rpartition(":")[2]
        previous = instrument.install(None)
        try:
            second = Dashboard(tree, f"127.0.0.1:{port}")
            with pytest.raises(OSError, match="address already in use"):
                await second.start()
            assert instrument.current() is None  # nothing attached by the failed start
        finally:
            instrument.install(previous)
        await second.close()  # closing what never started is harmless


async def test_serve_refuses_a_public_dashboard_without_token_before_starting_the_tree() -> None:
    tree = make_tree()
    with pytest.raises(ValueError, match="needs a token"):
        await serve(tree, handle_signals=False, dashboard="0.0.0.0:0")
    assert not tree.is_running()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--dashboard", "nowhere"], "'--dashboard' must be HOST:PORT (got 'nowhere')"),
        (
            ["--dashboard-control"],
            "--dashboard-control and --dashboard-token-file need --dashboard",
        ),
        (["--dashboard", "0.0.0.0:0"], "it needs a token"),
        (
            ["--dashboard", "127.0.0.1:0", "--dashboard-control"],
            "'dashboard_control' needs a token",
        ),
        (
            ["--dashboard", "127.0.0.1:0", "--dashboard-token-file", "/nonexistent/token"],
            "cannot read the dashboard token",
        ),
    ],
)
def test_the_cli_reports_dashboard_mistakes_as_usage_errors(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"{__file__}:make_tree"
    try:
        status = cli.main(["run", "--no-control", "--no-live", *arguments, target])
    except SystemExit as exit:  # argparse's own usage errors
        status = exit.code
    assert status == 2
    assert message in capsys.readouterr().err


async def test_a_supervisor_stopping_its_children_shows_stopping_until_it_has_stopped() -> None:
    release = asyncio.Event()

    @loop(seconds=60)
    async def held() -> None:
        pass

    @held.after_loop
    async def clean_up() -> None:
        await release.wait()  # a slow clean-up: the shutdown waits for it

    inner = Supervisor(held, name="inner")
    tree = Supervisor(inner, name="app")
    async with Dashboard(tree, "127.0.0.1:0", interval=0.1) as dashboard:
        await tree.start()
        async with (
            aiohttp.ClientSession() as session,
            session.get(dashboard.url + "api/events") as response,
        ):
            events = Stream(response)
            await events.until(
                lambda kind, data: (
                    kind == "rows" and data["rows"]["app/inner"]["state"] == "running"
                )
            )
            stopping = asyncio.create_task(inner.stop())
            await events.until(
                lambda kind, data: (
                    kind == "rows" and data["rows"].get("app/inner", {}).get("state") == "stopping"
                )
            )
            assert inner.status().state.value == "stopping"  # the row says what the status says
            assert not stopping.done()
            release.set()
            await stopping
            # With the next rows, or with the event that shows it first (its
            # own, or its last child's when it had ended by then).
            await events.until(
                lambda kind, data: (
                    kind in ("rows", "event")
                    and data["rows"].get("app/inner", {}).get("state") == "stopped"
                )
            )
    await tree.stop()


async def test_a_childs_event_also_refreshes_its_supervisors_row() -> None:
    tree = make_tree()
    history = History()
    await tree.start()
    try:
        history.seed(tree.status())
        view = View(tree, history, lambda _path: None, Watch())
        assert set(view.rows()) == {"app", "app/inner", "app/inner/tick", "app/inner/slow"}
        inner = tree.lookup("inner")
        tick = tree.lookup("inner/tick")
        assert set(view.row(tick)) == {"app/inner/tick", "app/inner"}
        assert set(view.row(inner)) == {"app/inner", "app"}
        assert set(view.row(tree)) == {"app"}
    finally:
        await tree.stop()
