"""The aiostream operators over events, in virtual time.

Events are published on an ``EventHub`` at exact virtual instants by a small
publisher task, so each test knows when every event arrives; times are
multiples of 0.25 s, which floats hold exactly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import sys
from collections.abc import AsyncIterable, Sequence
from typing import Any

import pytest
from aiostream import pipe, stream

from supervised_loops import loop, streams
from supervised_loops.events import (
    ActorEnded,
    ActorFailed,
    ActorStarted,
    DeadLetter,
    Event,
    EventHub,
    EventsDropped,
    IterationFailed,
    RetryScheduled,
)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def letter(path: str, tag: str = "") -> DeadLetter:
    return DeadLetter(path=path, at=START, message=tag, reason="test")


def publish(hub: EventHub, timeline: Sequence[tuple[float, Event]], close_at: float) -> None:
    """Publish each event at its virtual time, then close the hub at ``close_at``."""

    async def run() -> None:
        event_loop = asyncio.get_running_loop()
        for when, event in timeline:
            await asyncio.sleep(when - event_loop.time())
            hub.publish(event)
        await asyncio.sleep(close_at - event_loop.time())
        hub.close()

    task = asyncio.get_running_loop().create_task(run())
    _publishers.add(task)
    task.add_done_callback(_publishers.discard)


_publishers: set[asyncio.Task[None]] = set()


async def stamped(source: AsyncIterable[Any]) -> list[tuple[float, Any]]:
    """Every item of ``source`` with the virtual time it was received at."""
    event_loop = asyncio.get_running_loop()
    return await (
        stream.iterate(source) | pipe.map(lambda item: (event_loop.time(), item)) | pipe.list()
    )


async def items(source: AsyncIterable[Any]) -> list[Any]:
    return await (stream.iterate(source) | pipe.list())


def test_importing_without_aiostream_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "aiostream", None)  # None: "import aiostream" fails
    monkeypatch.delitem(sys.modules, "supervised_loops.streams")

    with pytest.raises(ImportError, match=r"pip install supervised-loops\[streams\]$"):
        importlib.import_module("supervised_loops.streams")


def test_the_core_package_does_not_import_aiostream() -> None:
    import subprocess

    code = (
        "import sys, supervised_loops, supervised_loops.render, supervised_loops.testing; "
        "print('aiostream' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# -- the source --------------------------------------------------------------------


@pytest.mark.virtual_time(start=START)
async def test_events_of_an_actor_subscribes_per_iteration_and_closes_at_the_end() -> None:
    @loop(seconds=1, count=2)
    async def twice() -> None:
        pass

    started = streams.events(twice) | pipe.take(2)
    first = asyncio.ensure_future(items(started))
    await asyncio.sleep(0.25)  # everything that could run has run: it is subscribed
    twice.start()
    assert await first == [
        ActorStarted(path="twice", at=START + dt.timedelta(seconds=0.25)),
        ActorEnded(path="twice", at=START + dt.timedelta(seconds=1.25), cancelled=False),
    ]

    # The same stream iterated again opens a new subscription: it sees the next run only.
    second = asyncio.ensure_future(items(started))
    await asyncio.sleep(0.25)
    twice.start()
    assert await second == [
        ActorStarted(path="twice", at=START + dt.timedelta(seconds=1.5)),
        ActorEnded(path="twice", at=START + dt.timedelta(seconds=2.5), cancelled=False),
    ]
    # Both subscriptions were closed when their iteration ended: nobody listens.
    assert not twice._hub


@pytest.mark.virtual_time(start=START)
async def test_events_of_a_subscription_drains_it_and_closes_it() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    publish(hub, [(0.25, letter("a")), (0.5, letter("b"))], close_at=1.0)

    assert await stamped(streams.events(subscription)) == [(0.25, letter("a")), (0.5, letter("b"))]
    assert not hub


@pytest.mark.virtual_time(start=START)
async def test_leaving_a_stream_early_closes_its_subscription() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    publish(hub, [(0.25, letter("a")), (0.5, letter("b"))], close_at=10.0)

    assert await items(streams.events(subscription) | pipe.take(1)) == [letter("a")]
    assert not hub


@pytest.mark.virtual_time(start=START)
async def test_cancelling_the_consumer_closes_the_subscription_under_the_operators() -> None:
    @loop(seconds=1)
    async def tick() -> None:
        pass

    failures = (
        streams.events(tick) | streams.by_type.pipe(IterationFailed) | streams.windows.pipe(5)
    )
    consumer = asyncio.ensure_future(items(failures))
    await asyncio.sleep(0.25)
    assert tick._hub  # subscribed, waiting inside the window
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert not tick._hub  # nothing keeps receiving events


def test_events_refuses_what_is_not_an_actor_or_a_subscription_when_built() -> None:
    with pytest.raises(
        TypeError, match=r"^'source' must be an Actor or a Subscription \(got 42\)$"
    ):
        streams.events(42)  # type: ignore[arg-type]

    @loop(seconds=1)
    async def work() -> None:
        pass

    with pytest.raises(ValueError, match=r"^'max_pending' must be > 0 \(got 0\)$"):
        streams.events(work, max_pending=0)


# -- by type ----------------------------------------------------------------------


TYPED: list[Event] = [
    ActorStarted(path="app/a", at=START),
    IterationFailed(path="app/a", at=START, iteration=3, error="OSError: x", retried=True),
    RetryScheduled(path="app/a", at=START, iteration=3, attempt=1, delay=2.0),
    EventsDropped(path="app/a", at=START, count=7),
    ActorEnded(path="app/a", at=START),
]


@pytest.mark.virtual_time(start=START)
async def test_by_type_keeps_the_listed_types_and_lets_loss_markers_through() -> None:
    kept = streams.by_type(stream.iterate(TYPED), IterationFailed, ActorEnded)

    assert await items(kept) == [TYPED[1], TYPED[3], TYPED[4]]


@pytest.mark.virtual_time(start=START)
async def test_by_type_with_markers_false_keeps_only_the_listed_types() -> None:
    kept = stream.iterate(TYPED) | streams.by_type.pipe(RetryScheduled, markers=False)

    assert await items(kept) == [TYPED[2]]


@pytest.mark.virtual_time(start=START)
async def test_by_type_of_event_keeps_everything_and_of_events_dropped_keeps_markers() -> None:
    assert await items(streams.by_type(stream.iterate(TYPED), Event)) == TYPED
    assert await items(streams.by_type(stream.iterate(TYPED), EventsDropped, markers=False)) == [
        TYPED[3]
    ]


def test_by_type_validates_its_types_when_built() -> None:
    source = stream.iterate(TYPED)
    with pytest.raises(TypeError, match=r"^'types' must name at least one Event subclass"):
        streams.by_type(source)
    with pytest.raises(
        TypeError, match=r"^'types\[1\]' must be an Event subclass \(got <class 'int'>\)$"
    ):
        streams.by_type(source, ActorStarted, int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^'markers' must be a bool \(got 1\)$"):
        streams.by_type(source, ActorStarted, markers=1)  # type: ignore[arg-type]


# -- by path ----------------------------------------------------------------------------

PATHS = ["app", "app/pair", "app/pair/a", "app/pairing", "app/db-main", "other/db-replica"]
BY_PATH: list[Event] = [letter(path) for path in PATHS]


async def paths(source: AsyncIterable[Event]) -> list[str]:
    return [event.path for event in await items(source)]


@pytest.mark.virtual_time(start=START)
async def test_by_path_keeps_exact_paths_only_not_children() -> None:
    source = stream.iterate(BY_PATH)

    assert await paths(streams.by_path(source, "app/pair", "other/db-replica")) == [
        "app/pair",
        "other/db-replica",
    ]


@pytest.mark.virtual_time(start=START)
async def test_by_subtree_matches_whole_segments() -> None:
    source = stream.iterate(BY_PATH)

    assert await paths(source | streams.by_subtree.pipe("app/pair")) == ["app/pair", "app/pair/a"]
    assert await paths(source | streams.by_subtree.pipe("app/pair", include_root=False)) == [
        "app/pair/a"
    ]
    assert await paths(source | streams.by_subtree.pipe("app")) == PATHS[:5]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("app/*", ["app/pair", "app/pairing", "app/db-main"]),
        ("app/**", PATHS[:5]),
        ("**/db-*", ["app/db-main", "other/db-replica"]),
        ("app/pair?ng", ["app/pairing"]),
        ("*/pair/[ab]", ["app/pair/a"]),
        ("app/**/a", ["app/pair/a"]),
        ("**", PATHS),
        ("app", ["app"]),
    ],
)
@pytest.mark.virtual_time(start=START)
async def test_by_glob_matches_segment_by_segment(pattern: str, expected: list[str]) -> None:
    assert await paths(streams.by_glob(stream.iterate(BY_PATH), pattern)) == expected


@pytest.mark.virtual_time(start=START)
async def test_path_filters_let_loss_markers_through_unless_told_not_to() -> None:
    marker = EventsDropped(path="elsewhere", at=START, count=2)
    source = stream.iterate([letter("app"), marker, letter("x")])

    assert await items(streams.by_path(source, "app")) == [letter("app"), marker]
    assert await items(streams.by_subtree(source, "app", markers=False)) == [letter("app")]
    assert await items(streams.by_glob(source, "a*", markers=False)) == [letter("app")]


@pytest.mark.parametrize("bad", ["", "/app", "app/", "app//a"])
def test_path_filters_refuse_malformed_paths_when_built(bad: str) -> None:
    source = stream.iterate(BY_PATH)
    for build in (
        lambda: streams.by_path(source, bad),
        lambda: streams.by_subtree(source, bad),
        lambda: streams.by_glob(source, bad),
    ):
        with pytest.raises(
            ValueError, match=r"must be an actor path of non-empty names joined by '/'"
        ):
            build()


def test_by_path_needs_at_least_one_path() -> None:
    with pytest.raises(
        TypeError, match=r"^'paths' must name at least one actor path \(got none\)$"
    ):
        streams.by_path(stream.iterate(BY_PATH))


# -- windows ------------------------------------------------------------------------------


@pytest.mark.virtual_time(start=START)
async def test_windows_batch_events_per_period_of_the_loop_clock() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    a, b, c, d = (letter("x", tag) for tag in "abcd")
    publish(hub, [(0.25, a), (1.0, b), (2.5, c), (7.25, d)], close_at=8.5)

    # [0, 2): a, b; [2, 4): c; [4, 6): nothing, not yielded; [6, 8): d.
    assert await stamped(streams.windows(streams.events(subscription), 2.0)) == [
        (2.0, [a, b]),
        (4.0, [c]),
        (8.0, [d]),
    ]


@pytest.mark.virtual_time(start=START)
async def test_windows_with_emit_empty_yield_every_window_and_flush_the_last_partial_one() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    a, b = letter("x", "a"), letter("x", "b")
    publish(hub, [(0.5, a), (3.25, b)], close_at=3.5)

    assert await stamped(
        streams.events(subscription) | streams.windows.pipe(1.0, emit_empty=True)
    ) == [
        (1.0, [a]),
        (2.0, []),
        (3.0, []),
        (3.5, [b]),  # the source ended: the unfinished window is flushed
    ]


@pytest.mark.virtual_time(start=START)
async def test_windows_skip_the_periods_a_slow_consumer_spent_and_keep_the_grid() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    a, b, c, d = (letter("x", tag) for tag in "abcd")
    publish(hub, [(0.25, a), (0.5, b), (1.5, c), (3.5, d)], close_at=10.0)
    event_loop = asyncio.get_running_loop()
    received: list[tuple[float, list[Event]]] = []

    async with (
        streams.events(subscription) | streams.windows.pipe(1.0) | pipe.take(2)
    ).stream() as batches:
        async for batch in batches:
            received.append((event_loop.time(), batch))
            await asyncio.sleep(2.25)  # busy until 3.25 after the first batch

    # c arrived in [1, 2) while the consumer was busy; it goes to the window open
    # when the consumer came back, [3, 4), which still ends on the grid.
    assert received == [(1.0, [a, b]), (4.0, [c, d])]


@pytest.mark.virtual_time(start=START)
async def test_windows_compose_with_aiostream_operators() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    timeline = [(0.25, letter("x")), (0.5, letter("x")), (1.25, letter("x"))]
    publish(hub, timeline, close_at=2.0)

    sizes = (
        streams.events(subscription) | streams.windows.pipe(1.0, emit_empty=True) | pipe.map(len)
    )
    assert await items(sizes) == [2, 1]


@pytest.mark.virtual_time(start=START)
async def test_leaving_a_windowed_stream_early_cancels_the_pending_read_and_closes() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    publish(hub, [(0.25, letter("x"))], close_at=100.0)

    assert await stamped(
        streams.events(subscription) | streams.windows.pipe(1.0) | pipe.take(1)
    ) == [(1.0, [letter("x")])]
    assert not hub


@pytest.mark.virtual_time(start=START)
async def test_an_error_in_the_source_propagates_through_windows() -> None:
    async def broken() -> AsyncIterable[Event]:
        yield letter("x")
        await asyncio.sleep(0.5)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match=r"^source broke$"):
        await items(streams.windows(broken(), 1.0))


@pytest.mark.parametrize(
    ("seconds", "error", "message"),
    [
        (0, ValueError, r"^'seconds' must be > 0 \(got 0\)$"),
        (-1.0, ValueError, r"^'seconds' must be > 0 \(got -1.0\)$"),
        (float("nan"), ValueError, r"^'seconds' must be finite \(got nan\)$"),
        ("1", TypeError, r"^'seconds' must be a number \(got '1'\)$"),
    ],
)
def test_windows_and_rate_validate_seconds_when_built(
    seconds: Any, error: type, message: str
) -> None:
    source = stream.iterate(BY_PATH)
    with pytest.raises(error, match=message):
        streams.windows(source, seconds)
    with pytest.raises(error, match=message):
        streams.rate(source, seconds)


# -- rate ------------------------------------------------------------------------------------


@pytest.mark.virtual_time(start=START)
async def test_rate_changes_on_each_arrival_and_each_expiry_over_a_sliding_window() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    timeline = [(0.25, letter("x")), (0.5, letter("x")), (1.0, letter("x")), (3.25, letter("x"))]
    publish(hub, timeline, close_at=6.0)

    # Window of 2 s: an event counts from its arrival t until t + 2.
    assert await stamped(streams.events(subscription) | streams.rate.pipe(2.0)) == [
        (0.25, 0.5),
        (0.5, 1.0),
        (1.0, 1.5),
        (2.25, 1.0),
        (2.5, 0.5),
        (3.0, 0.0),
        (3.25, 0.5),
        (5.25, 0.0),
    ]


@pytest.mark.virtual_time(start=START)
async def test_rate_counts_a_loss_marker_as_the_events_it_stands_for() -> None:
    hub = EventHub()
    subscription = hub.subscribe(max_pending=1)

    async def burst() -> None:
        await asyncio.sleep(0.5)
        for tag in "abc":
            hub.publish(letter("x", tag))  # the reader is not scheduled in between
        await asyncio.sleep(0.5)
        hub.close()

    task = asyncio.ensure_future(burst())
    rates = await stamped(streams.events(subscription) | streams.rate.pipe(4.0))
    await task

    # EventsDropped(count=2), then c: 2 then 3 events in the last 4 s.
    assert rates == [(0.5, 0.5), (0.5, 0.75)]


# -- composition across actors ------------------------------------------------------------


@pytest.mark.virtual_time(start=START)
async def test_streams_of_several_loops_merge_and_filter_with_aiostream() -> None:
    @loop(seconds=1, count=1)
    async def alpha() -> None:
        pass

    @loop(seconds=1, count=1)
    async def beta() -> None:
        raise ValueError("no")

    @beta.error
    async def quiet(error: BaseException) -> None:
        pass

    # Subscribe before starting, so no event can slip past the merge's start-up.
    ended = (
        stream.merge(streams.events(alpha.events()), streams.events(beta.events()))
        | streams.by_type.pipe(ActorEnded, ActorFailed)
        | pipe.take(2)
    )
    alpha.start()
    beta.start()

    assert sorted(await items(ended), key=lambda event: event.path) == [
        ActorEnded(path="alpha", at=START, cancelled=False),
        ActorFailed(path="beta", at=START, error="ValueError: no"),
    ]
