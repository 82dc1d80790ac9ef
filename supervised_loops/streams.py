"""Event streams: a tree's lifecycle events as composable ``aiostream`` streams.

``actor.events()`` is a plain async iterator (see `supervised_loops.events`).
This module turns it into an `aiostream` stream and adds operators for
the questions people ask of a supervision tree: *which* events (by type, by
path), *how many per window of time*, *how fast*:

    from aiostream import pipe
    from supervised_loops import streams
    from supervised_loops.events import IterationFailed

    failures = (
        streams.events(tree)
        | streams.by_subtree.pipe("app/db")
        | streams.by_type.pipe(IterationFailed, markers=False)
        | streams.windows.pipe(60.0)
        | pipe.map(len)
    )
    async with failures.stream() as per_minute:
        async for count in per_minute:
            ...

Every operator here is an ordinary aiostream operator: call it with a source
(``streams.by_type(source, IterationFailed)``) or pipe it
(``source | streams.by_type.pipe(IterationFailed)``), and mix it freely with
aiostream's own (``pipe.map``, ``pipe.take``, ``stream.merge``, ...).

Why this module is separate, and optional: aiostream is GPL-3.0-or-later. It is
imported here and nowhere else, so the core library stays permissively
licensed; install it with ``pip install supervised-loops[streams]``. It is
also kept off the actors' hot path: publishing an event costs one append per
subscriber whatever the stream does with it.

Rules shared by every operator:

* **Loss is never silent.** A subscriber that falls behind gets an
  `EventsDropped` marker in place of the
  events it lost. Filters let markers through (the lost events might have
  been ones the filter keeps), unless told ``markers=False``; `windows`
  puts them in the batch; `rate` counts each marker as the ``count``
  events it stands for.
* **Time is the event loop's.** Windows and rates measure ``loop.time()``,
  the monotonic clock of the running event loop, so they run in virtual time
  under `supervised_loops.testing` and ignore wall-clock steps.
* **Bad arguments fail when the stream is built**, not when it is first
  iterated.
* **Cancellation ends the stream cleanly.** Cancelling the task that
  iterates a stream raises ``CancelledError`` in it, as for any awaitable;
  leaving the ``async with ... .stream()`` block then closes every operator
  and the subscription under them, so nothing keeps receiving events. No
  event is lost to the cancellation itself: a subscription cancelled while
  it waited hands the next event to its next reader.
"""

from __future__ import annotations

import asyncio
import collections
import fnmatch
import functools
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

try:
    from aiostream import operator, pipable_operator, streamcontext
except ImportError as error:  # tested by hiding aiostream (tests/test_streams.py)
    raise ImportError(
        "supervised_loops.streams needs the optional dependency aiostream: "
        "pip install supervised-loops[streams]"
    ) from error

from . import _validate
from .core.actor import Actor
from .events import Event, EventsDropped, Subscription

__all__ = [
    "by_glob",
    "by_path",
    "by_subtree",
    "by_type",
    "events",
    "rate",
    "windows",
]

T = TypeVar("T")


# -- the source ------------------------------------------------------------------


@operator
def events(source: Actor | Subscription, *, max_pending: int = 1000) -> AsyncIterator[Event]:
    """Stream the events of an actor and of everything below it.

    Given an actor (a Loop, a Supervisor, any
    `Actor`), each iteration of the stream opens its
    own subscription when it begins and closes it when it ends, so the stream
    can be iterated several times, like any aiostream stream; events published
    before an iteration begins are not part of it. To catch events from a
    precise moment (say, before starting a loop), subscribe first and pass
    the `Subscription`: the stream then
    iterates that subscription once and closes it at the end.

    The stream never ends on its own while the actor lives: an actor that
    stops may be started again. Bound it with ``pipe.take``, ``pipe.until``,
    a timeout, or by leaving the ``async with ... .stream()`` block.

    Args:
        source: the actor to observe, or a subscription already open.
        max_pending: for an actor, the events a slow consumer may fall behind
            before the oldest are dropped (see ``Actor.events``).

    Raises:
        TypeError: ``source`` is neither an actor nor a subscription.
        ValueError: ``max_pending`` is not a positive int.
    """
    if isinstance(source, Subscription):
        return _drain(source)
    _validate.instance("source", source, Actor, "an Actor or a Subscription")
    _validate.positive_int("max_pending", max_pending)
    return _subscribe_and_drain(source, max_pending)


async def _drain(subscription: Subscription) -> AsyncIterator[Event]:
    try:
        async for event in subscription:
            yield event
    finally:
        subscription.close()


async def _subscribe_and_drain(actor: Actor, max_pending: int) -> AsyncIterator[Event]:
    # Subscribing here, in the generator's body, means at the first anext():
    # aiostream builds one generator eagerly just to check the arguments, and
    # that one must not hold a subscription nobody reads. (No nested generator
    # either: closing this one would not close the inner one until the GC runs.)
    subscription = actor.events(max_pending=max_pending)
    try:
        async for event in subscription:
            yield event
    finally:
        subscription.close()


# -- filters -----------------------------------------------------------------------


async def _keep(
    source: AsyncIterable[Event], wanted: Callable[[Event], bool], markers: bool
) -> AsyncIterator[Event]:
    async with streamcontext(source) as streamer:
        async for event in streamer:
            if isinstance(event, EventsDropped):
                if markers or wanted(event):
                    yield event
            elif wanted(event):
                yield event


def _bool(name: str, value: Any) -> bool:
    return _validate.boolean(name, value)


@pipable_operator
def by_type(
    source: AsyncIterable[Event], *types: type[Event], markers: bool = True
) -> AsyncIterator[Event]:
    """Keep the events that are instances of any of ``types``.

    ``by_type(source, IterationFailed, RetryScheduled)`` keeps both kinds, in
    their order of publication. Subclasses count: ``by_type(source, Event)``
    keeps everything.

    Args:
        source: a stream of events.
        *types: one or more event classes from `supervised_loops.events`
            (or subclasses of `Event`).
        markers: let `EventsDropped` markers
            through even when their type is not listed (the default), so the
            consumer still learns that events were lost.

    Raises:
        TypeError: no type given, or one that is not an Event subclass.
    """
    if not types:
        raise TypeError("'types' must name at least one Event subclass (got none)")
    for index, kind in enumerate(types):
        if not isinstance(kind, type) or not issubclass(kind, Event):
            _validate.type_error(f"types[{index}]", "an Event subclass", kind)
    wanted = tuple(types)
    return _keep(source, lambda event: isinstance(event, wanted), _bool("markers", markers))


def _check_path(name: str, value: Any) -> str:
    path = _validate.text(name, value)
    if not path or path.startswith("/") or path.endswith("/") or "//" in path:
        _validate.value_error(
            name, "an actor path of non-empty names joined by '/', such as 'app/pair/a'", value
        )
    return path


@pipable_operator
def by_path(
    source: AsyncIterable[Event], *paths: str, markers: bool = True
) -> AsyncIterator[Event]:
    """Keep the events about exactly the actors at ``paths``.

    A path is the actor's ``path``: its name prefixed by its ancestors',
    ``"app/pair/a"`` (a standalone actor's path is its name). Events about
    the actor's children are *not* kept; use `by_subtree` for those.

    Args:
        source: a stream of events.
        *paths: one or more actor paths.
        markers: let ``EventsDropped`` markers through (the default).

    Raises:
        TypeError: no path given.
        ValueError: a path is empty, or starts, ends or is split by ``/``
            with nothing between.
    """
    if not paths:
        raise TypeError("'paths' must name at least one actor path (got none)")
    wanted = frozenset(_check_path(f"paths[{i}]", path) for i, path in enumerate(paths))
    return _keep(source, lambda event: event.path in wanted, _bool("markers", markers))


@pipable_operator
def by_subtree(
    source: AsyncIterable[Event], root: str, *, include_root: bool = True, markers: bool = True
) -> AsyncIterator[Event]:
    """Keep the events about the actor at ``root`` and every actor below it.

    Matching is by whole path segments: ``"app/pair"`` covers ``"app/pair"``
    and ``"app/pair/a"``, not ``"app/pairing"``.

    Args:
        source: a stream of events.
        root: the path of the subtree's root.
        include_root: keep the root's own events too (the default); False
            keeps only its descendants'.
        markers: let ``EventsDropped`` markers through (the default).

    Raises:
        ValueError: ``root`` is not a valid path (see `by_path`).
    """
    root = _check_path("root", root)
    prefix = root + "/"
    keep_root = _bool("include_root", include_root)

    def wanted(event: Event) -> bool:
        path = event.path
        return path.startswith(prefix) or (keep_root and path == root)

    return _keep(source, wanted, _bool("markers", markers))


@pipable_operator
def by_glob(
    source: AsyncIterable[Event], pattern: str, *, markers: bool = True
) -> AsyncIterator[Event]:
    """Keep the events whose actor path matches a glob ``pattern``, segment by segment.

    The pattern is split on ``/`` like the paths. Within one segment, ``*``
    matches any run of characters, ``?`` one character and ``[abc]`` one of
    a set (`fnmatch.fnmatchcase`, case-sensitive); none of them crosses
    a ``/``. A segment that is exactly ``**`` matches any number of segments,
    zero included. So ``"app/*"`` matches the children of ``app`` only,
    ``"app/**"`` matches ``app`` and everything below it, and ``"**/db-*"``
    matches an actor named ``db-...`` anywhere in the tree.

    Args:
        source: a stream of events.
        pattern: the glob pattern.
        markers: let ``EventsDropped`` markers through (the default).

    Raises:
        ValueError: ``pattern`` is empty or has an empty segment.
    """
    matches = _glob(_check_path("pattern", pattern))
    return _keep(source, lambda event: matches(event.path), _bool("markers", markers))


def _glob(pattern: str) -> Callable[[str], bool]:
    """Compile a segment glob into a (cached) path predicate."""
    parts = tuple(pattern.split("/"))

    def match(pat: Sequence[str], segments: Sequence[str]) -> bool:
        if not pat:
            return not segments
        head = pat[0]
        if head == "**":
            return any(match(pat[1:], segments[i:]) for i in range(len(segments) + 1))
        return (
            bool(segments)
            and fnmatch.fnmatchcase(segments[0], head)
            and match(pat[1:], segments[1:])
        )

    # A tree has few distinct paths and each is seen many times: remember them.
    @functools.lru_cache(maxsize=1024)
    def matches(path: str) -> bool:
        return match(parts, tuple(path.split("/")))

    return matches


# -- time ------------------------------------------------------------------------------


async def _next_item(streamer: AsyncIterator[T]) -> T:
    return await streamer.__anext__()


async def _settle(task: asyncio.Task[Any] | None) -> None:
    """Cancel the read still pending on the source and wait for it to finish."""
    if task is not None and not task.done():
        task.cancel()
        await asyncio.wait((task,))
    if task is not None and not task.cancelled():
        task.exception()  # retrieved: the stream is closing, nobody else will read it


@pipable_operator
def windows(
    source: AsyncIterable[Event], seconds: float, *, emit_empty: bool = False
) -> AsyncIterator[list[Event]]:
    """Batch events into consecutive windows of ``seconds`` on the event loop clock.

    The windows are fixed and back to back (tumbling), on a grid that starts
    when iteration starts: ``[t0, t0 + seconds)``, ``[t0 + seconds, t0 + 2 ×
    seconds)``, ... At the end of each window the events that arrived during
    it are yielded as one list, in arrival order. An event belongs to the
    window open when this operator receives it; an ``EventsDropped`` marker
    is put in the batch like any event.

    If the consumer takes longer than a window to handle a batch, the windows
    that opened and closed entirely while it was busy are skipped (the grid
    is kept, it does not slide), and the events that waited meanwhile go into
    the current window. When the source ends, the events of the unfinished
    window are yielded (if any) and the stream ends.

    Args:
        source: a stream of events.
        seconds: the length of a window in seconds of ``loop.time()``; > 0.
        emit_empty: also yield an empty list for a window with no event,
            e.g. to drive a per-window chart (default: windows without events
            are not yielded).

    Raises:
        TypeError: ``seconds`` is not a number; ``emit_empty`` is not a bool.
        ValueError: ``seconds`` is not finite and > 0.
    """
    length = _validate.seconds("seconds", seconds, allow_zero=False)
    return _windows(source, length, _bool("emit_empty", emit_empty))


async def _windows(
    source: AsyncIterable[Event], length: float, emit_empty: bool
) -> AsyncIterator[list[Event]]:
    event_loop = asyncio.get_running_loop()
    time = event_loop.time
    pending: asyncio.Task[Event] | None = None
    async with streamcontext(source) as streamer:
        try:
            start = time()
            tick = 1  # the window in progress ends at start + tick × length
            batch: list[Event] = []
            while True:
                end = start + tick * length
                now = time()
                if now >= end:
                    if batch or emit_empty:
                        yield batch
                        batch = []
                    # The next window is the one holding "now" (after the
                    # consumer's time): skipped windows are not emitted.
                    tick = max(tick + 1, math.floor((time() - start) / length) + 1)
                    continue
                if pending is None:
                    # The read runs in its own task and survives window
                    # boundaries: cancelling it would end a generator source.
                    pending = event_loop.create_task(_next_item(streamer))
                done, _ = await asyncio.wait((pending,), timeout=end - now)
                if done:
                    finished, pending = pending, None
                    try:
                        batch.append(finished.result())
                    except StopAsyncIteration:
                        break
            if batch:
                yield batch
        finally:
            await _settle(pending)


@pipable_operator
def rate(source: AsyncIterable[Event], seconds: float) -> AsyncIterator[float]:
    """Yield the rate of events, in events per second, over a sliding window.

    The rate is ``n / seconds`` where ``n`` is the number of events received
    in the last ``seconds`` of ``loop.time()``; an ``EventsDropped`` marker
    counts as the ``count`` events it stands for. A new value is yielded each
    time the rate changes: when an event arrives (one value per event, even
    for several events at the same instant) and when events leave the window
    (one value for all those leaving at the same instant), so an idle source
    ends on ``0.0`` after ``seconds``. The stream ends when the source ends.

    For a sampled rate instead (one value every N seconds), count
    `windows`: ``windows.pipe(N) | pipe.map(lambda batch: len(batch) / N)``
    with ``emit_empty=True``.

    Args:
        source: a stream of events.
        seconds: the length of the sliding window, in seconds; > 0.

    Raises:
        TypeError: ``seconds`` is not a number.
        ValueError: ``seconds`` is not finite and > 0.
    """
    length = _validate.seconds("seconds", seconds, allow_zero=False)
    return _rate(source, length)


async def _rate(source: AsyncIterable[Event], length: float) -> AsyncIterator[float]:
    event_loop = asyncio.get_running_loop()
    time = event_loop.time
    arrivals: collections.deque[tuple[float, int]] = collections.deque()
    in_window = 0
    pending: asyncio.Task[Event] | None = None
    async with streamcontext(source) as streamer:
        try:
            while True:
                now = time()
                expired = False
                while arrivals and arrivals[0][0] + length <= now:
                    in_window -= arrivals.popleft()[1]
                    expired = True
                if expired:
                    yield in_window / length
                    continue
                if pending is None:
                    pending = event_loop.create_task(_next_item(streamer))
                timeout = arrivals[0][0] + length - now if arrivals else None
                done, _ = await asyncio.wait((pending,), timeout=timeout)
                if not done:
                    continue
                finished, pending = pending, None
                try:
                    event = finished.result()
                except StopAsyncIteration:
                    break
                weight = event.count if isinstance(event, EventsDropped) else 1
                arrivals.append((time(), weight))
                in_window += weight
                yield in_window / length
        finally:
            await _settle(pending)
