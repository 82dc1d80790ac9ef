"""No actor runs outside its tree: direct starts under a stopped supervisor are refused.

A ``Restart`` message to a child of a stopped supervisor is refused with
``ActorNotRunning`` naming the supervisor; a direct ``start()`` of that
child (a loop, a worker, a sub-supervisor) is refused the same way, instead
of starting a run nobody stops at shutdown. Every kind × every way the
supervisor came to be stopped.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from supervised_loops import ActorNotRunning, Restart, Stop, Supervisor, loop, worker
from supervised_loops.testing import VirtualClock, virtual_time


async def nothing() -> None:
    pass


async def forever() -> None:
    await asyncio.Event().wait()


class Tree:
    """``app`` ⊃ ``ingest`` ⊃ (loop ``writer``, worker ``consumer``, ``inner`` ⊃ ``leaf``)."""

    def __init__(self) -> None:
        self.writer = loop(seconds=1, name="writer")(nothing)
        self.consumer = worker(forever, name="consumer")
        self.inner = Supervisor(loop(seconds=1, name="leaf")(nothing), name="inner")
        self.ingest = Supervisor(self.writer, self.consumer, self.inner, name="ingest")
        self.app = Supervisor(self.ingest, name="app")

    def kind(self, name: str) -> Any:
        return {"loop": self.writer, "worker": self.consumer, "sub-supervisor": self.inner}[name]

    def running(self) -> list[str]:
        actors = (self.writer, self.consumer, self.inner)
        return [actor.path for actor in actors if actor.is_running()]


async def stop_by_message(tree: Tree) -> None:
    await tree.ingest.ask(Stop())


async def stop_by_terminate_child(tree: Tree) -> None:
    await tree.app.terminate_child("ingest")


STOPS = {"stop-message": stop_by_message, "terminate_child": stop_by_terminate_child}
KINDS = ["loop", "worker", "sub-supervisor"]


async def start(actor: Any) -> None:
    started = actor.start()
    if asyncio.iscoroutine(started):
        await started


@pytest.mark.parametrize("stop", list(STOPS))
@pytest.mark.parametrize("kind", KINDS)
@virtual_time()
async def test_a_direct_start_under_a_stopped_supervisor_is_refused_naming_it(
    clock: VirtualClock, kind: str, stop: str
) -> None:
    tree = Tree()
    await tree.app.start()
    await clock.sleep(0.5)
    await STOPS[stop](tree)
    assert tree.running() == []
    actor = tree.kind(kind)
    with pytest.raises(ActorNotRunning) as caught:
        await start(actor)
    assert str(caught.value) == (
        f"actor {actor.path!r} is not running; 'start()' was not delivered: "
        "app/ingest is stopped: restart it first"
    )
    assert (caught.value.actor, caught.value.reason) == (
        actor.path,
        "app/ingest is stopped: restart it first",
    )
    await clock.sleep(0.5)
    assert tree.running() == []
    # The way back: restart the supervisor, which starts its children again.
    await tree.app.restart_child("ingest")
    assert tree.running() == ["app/ingest/writer", "app/ingest/consumer", "app/ingest/inner"]
    await tree.app.stop()
    assert tree.running() == []


@pytest.mark.parametrize("kind", KINDS)
@virtual_time()
async def test_a_direct_start_is_refused_as_a_restart_message_is(
    clock: VirtualClock, kind: str
) -> None:
    tree = Tree()
    await tree.app.start()
    await stop_by_message(tree)
    actor = tree.kind(kind)
    with pytest.raises(ActorNotRunning) as by_message:
        await actor.ask(Restart())
    with pytest.raises(ActorNotRunning) as by_call:
        await start(actor)
    assert by_call.value.reason == by_message.value.reason
    await tree.app.stop()


@virtual_time()
async def test_restart_child_of_a_stopped_supervisor_is_refused_naming_it(
    clock: VirtualClock,
) -> None:
    tree = Tree()
    await tree.app.start()
    await stop_by_message(tree)
    with pytest.raises(ActorNotRunning) as caught:
        await tree.ingest.restart_child("writer")
    assert caught.value.actor == "app/ingest"
    assert str(caught.value) == (
        "actor 'app/ingest' is not running; 'restart_child()' was not delivered"
    )
    assert tree.running() == []
    await tree.app.stop()


@virtual_time()
async def test_a_child_started_directly_while_its_supervisor_runs_is_still_accepted(
    clock: VirtualClock,
) -> None:
    tree = Tree()
    await tree.app.start()
    await tree.ingest.terminate_child("writer")
    assert not tree.writer.is_running()
    tree.writer.start()  # its supervisor runs: the run stays inside the tree
    await clock.sleep(0.5)
    assert tree.writer.is_running()
    await tree.app.stop()
    assert tree.running() == []


@virtual_time()
async def test_a_standalone_loop_starts_as_before(clock: VirtualClock) -> None:
    alone = loop(seconds=1, name="alone")(nothing)
    alone.start()
    await clock.sleep(0.5)
    assert alone.is_running()
    await alone.ask(Stop())
