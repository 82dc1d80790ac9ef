"""Shutdown: reverse order, three phases per child, budgets, unkillable children.

The rules: docs/supervision.md, "Shutdown".

Each child gets ``Stop`` and its ``shutdown`` grace to finish; then
``Cancel`` and its ``cancel_timeout``; a child still running after that has
swallowed cancellation: it is reported (``Unkillable``) and left behind, and
the shutdown goes on with its siblings. A supervisor child cancelled by its
parent fits its own children's limits inside the time its parent gives it.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_supervisor_support import Journal, Probe, Recorder

from supervised_loops import Cancel, Supervisor, child, loop
from supervised_loops.events import Unkillable
from supervised_loops.testing import virtual_time


def now() -> float:
    return asyncio.get_running_loop().time()


@virtual_time()
async def test_children_stop_in_reverse_start_order_depth_first() -> None:
    journal = Journal()
    a, b, c, d = (Probe(journal, name) for name in "abcd")
    inner = Supervisor(child(b.loop), child(c.loop), name="inner")
    tree = Supervisor(child(a.loop), inner, child(d.loop), name="app")
    await tree.start()
    assert journal.take() == ["start a", "start b", "start c", "start d"]
    await tree.stop()
    assert journal.take() == ["stop d", "stop c", "stop b", "stop a"]
    assert not any(p.loop.is_running() for p in (a, b, c, d))


@virtual_time()
async def test_a_child_gets_its_grace_to_finish_the_iteration_then_is_cancelled() -> None:
    events: list[tuple[float, str]] = []

    @loop(seconds=1)
    async def slow() -> None:
        events.append((now(), "iteration"))
        await asyncio.sleep(10)
        events.append((now(), "finished"))

    @slow.after_loop
    async def after() -> None:
        events.append((now(), f"after cancelled={slow.is_being_cancelled()}"))

    tree = Supervisor(child(slow, shutdown=2.0), name="app")
    await tree.start()
    await asyncio.sleep(1)
    await tree.stop()
    assert events == [(0.0, "iteration"), (3.0, "after cancelled=True")]


@virtual_time()
async def test_a_child_that_finishes_within_its_grace_is_not_cancelled() -> None:
    events: list[tuple[float, str]] = []

    @loop(seconds=1)
    async def short() -> None:
        await asyncio.sleep(1.5)
        events.append((now(), "finished"))

    @short.after_loop
    async def after() -> None:
        events.append((now(), f"after cancelled={short.is_being_cancelled()}"))

    tree = Supervisor(child(short, shutdown=2.0), name="app")
    await tree.start()
    await asyncio.sleep(0.5)
    await tree.stop()
    assert events == [(1.5, "finished"), (1.5, "after cancelled=False")]


@virtual_time()
async def test_shutdown_none_cancels_at_once() -> None:
    @loop(seconds=1)
    async def slow() -> None:
        await asyncio.sleep(10)

    tree = Supervisor(child(slow, shutdown=None), name="app")
    await tree.start()
    await asyncio.sleep(1)
    await tree.stop()
    assert now() == 1.0


def stubborn(journal: Journal, name: str, release: asyncio.Event) -> object:
    """A loop whose body swallows cancellation until ``release`` is set."""

    @loop(seconds=1, name=name)
    async def body() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                journal.note(f"swallowed {name}")

    @body.after_loop
    async def after() -> None:
        journal.note(f"stop {name}")

    return body


@virtual_time()
async def test_a_child_that_swallows_cancellation_is_reported_and_its_siblings_still_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = Journal()
    release = asyncio.Event()
    a, c = Probe(journal, "a"), Probe(journal, "c")
    tree = Supervisor(
        child(a.loop),
        child(stubborn(journal, "b", release), shutdown=1.0, cancel_timeout=3.0),  # type: ignore[arg-type]
        child(c.loop),
        name="app",
    )
    recorder = Recorder(tree)
    await tree.start()
    await asyncio.sleep(0.5)
    journal.take()
    await tree.stop()
    assert now() == 4.5  # 1 s grace + 3 s after Cancel, then on with a
    assert journal.take() == ["stop c", "swallowed b", "stop a"]
    await recorder.close()
    assert [(e.path, e.waited) for e in recorder.of(Unkillable)] == [("app/b", 3.0)]
    assert (
        "child 'app/b' has not ended 3.000 s after Cancel (does it swallow CancelledError?); "
        "supervisor 'app' goes on without it"
    ) in caplog.messages
    release.set()  # let it end, as the test must not leave a task behind
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert "child 'app/b', reported unkillable, has ended after all" in caplog.messages


@virtual_time()
async def test_a_supervisor_child_fits_its_childrens_limits_inside_its_parents_budget() -> None:
    journal = Journal()
    release = asyncio.Event()
    inner = Supervisor(
        child(stubborn(journal, "x", release), shutdown=5.0, cancel_timeout=5.0),  # type: ignore[arg-type]
        child(stubborn(journal, "y", release), shutdown=5.0, cancel_timeout=5.0),  # type: ignore[arg-type]
        name="inner",
    )
    tree = Supervisor(child(inner, shutdown=1.0, cancel_timeout=2.0), name="app")
    recorder = Recorder(tree)
    await tree.start()
    await tree.stop()
    # Stop at 0; the parent cancels inner at 1.0 and gives it until 3.0; inner keeps
    # a tenth (0.2 s) to end, so y and x share [1.0, 2.8] and inner ends in time.
    assert now() == pytest.approx(2.8)
    await recorder.close()
    assert [(e.path, round(e.waited, 6)) for e in recorder.of(Unkillable)] == [
        ("app/inner/y", 1.8),
        ("app/inner/x", 0.0),
    ]
    assert not inner.is_running()
    release.set()
    await asyncio.sleep(0)


@virtual_time()
async def test_a_batch_flushed_in_after_loop_loses_nothing_on_shutdown() -> None:
    buffer: list[int] = []
    stored: list[int] = []
    produced = 0

    @loop(seconds=3)
    async def writer() -> None:
        stored.extend(buffer)
        buffer.clear()

    @writer.after_loop
    async def flush() -> None:
        stored.extend(buffer)
        buffer.clear()

    @loop(seconds=0.25)
    async def poller() -> None:
        nonlocal produced
        produced += 1
        buffer.append(produced)

    tree = Supervisor(child(writer), child(poller), strategy="rest_for_one", name="ingest")
    async with tree:
        await asyncio.sleep(7.9)
    assert produced == 32
    assert stored == list(range(1, 33))


@virtual_time()
async def test_stop_during_the_start_stops_what_started_and_start_returns() -> None:
    journal = Journal()
    a = Probe(journal, "a")

    @loop(seconds=1)
    async def slow_setup() -> None:
        pass

    @slow_setup.before_loop
    async def setup() -> None:
        journal.note("setup begins")
        await asyncio.sleep(10)
        journal.note("setup done")

    @slow_setup.after_loop
    async def after() -> None:
        journal.note("stop slow_setup")

    b = Probe(journal, "b")
    tree = Supervisor(child(a.loop), child(slow_setup), child(b.loop), name="app")
    starting = asyncio.ensure_future(tree.start())
    await asyncio.sleep(2)
    await tree.stop()
    await starting
    assert journal.take() == ["start a", "setup begins", "stop slow_setup", "stop a"]
    assert not b.loop.is_running()
    assert not tree.is_running()
    assert now() == 7.0  # Stop lets before_loop run on; Cancel after the 5 s default grace


@virtual_time()
async def test_cancel_skips_the_grace_and_cancels_children_in_reverse_order() -> None:
    events: list[tuple[float, str]] = []

    def slow(name: str) -> object:
        @loop(seconds=1, name=name)
        async def body() -> None:
            await asyncio.sleep(10)

        @body.after_loop
        async def after() -> None:
            events.append((now(), f"{name} cancelled={body.is_being_cancelled()}"))

        return body

    tree = Supervisor(
        child(slow("a"), shutdown=5.0),  # type: ignore[arg-type]
        child(slow("b"), shutdown=5.0),  # type: ignore[arg-type]
        name="app",
    )
    await tree.start()
    await asyncio.sleep(1)
    tree.tell(Cancel())
    with pytest.raises(asyncio.CancelledError):
        await asyncio.shield(tree.get_task())  # type: ignore[arg-type]
    assert events == [(1.0, "b cancelled=True"), (1.0, "a cancelled=True")]
    await tree.wait()  # a cancelled tree did not fail


@virtual_time()
async def test_cancel_during_the_grace_moves_the_current_child_to_cancellation() -> None:
    events: list[tuple[float, str]] = []

    @loop(seconds=1)
    async def slow() -> None:
        await asyncio.sleep(10)

    @slow.after_loop
    async def after() -> None:
        events.append((now(), f"cancelled={slow.is_being_cancelled()}"))

    tree = Supervisor(child(slow, shutdown=5.0), name="app")
    await tree.start()
    stopping = asyncio.ensure_future(tree.stop())
    await asyncio.sleep(2)
    tree.tell(Cancel())
    await stopping
    assert events == [(2.0, "cancelled=True")]


@virtual_time()
async def test_a_stray_task_cancel_shuts_the_tree_down_in_order_then_ends_cancelled() -> None:
    journal = Journal()
    a, b = Probe(journal, "a"), Probe(journal, "b")
    tree = Supervisor(child(a.loop), child(b.loop), name="app")
    await tree.start()
    task = tree.get_task()
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert journal.take()[-2:] == ["stop b", "stop a"]
    assert not a.loop.is_running()
    assert not b.loop.is_running()


@virtual_time()
async def test_a_child_failing_while_being_stopped_is_reported_to_the_supervisor_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "supervised_loops")
    failures: list[str] = []

    class Watching(Supervisor):
        async def on_child_failure(self, child: object, error: BaseException) -> None:
            failures.append(str(error))

    @loop(seconds=1)
    async def last() -> None:
        await asyncio.sleep(0.5)

    @last.after_loop
    async def broken_after() -> None:
        raise RuntimeError("flush failed")

    tree = Watching(child(last), name="app")
    await tree.start()
    await tree.stop()
    assert failures == ["flush failed"]
    assert not tree.failed()  # the supervisor was stopping it anyway
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1  # logged once, by the loop
