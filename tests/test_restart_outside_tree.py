"""A Restart never starts a child outside its tree.

A ``Restart`` sent to a loop or worker that is not running starts it. When
the actor is a child whose supervisor is not running, or is shutting down,
that run would live outside the tree: nothing would stop it with the tree,
see it end or restart it, and the supervisor could not start it again
(it would be "already running"). Such a Restart is a dead letter, and an
asked one fails with ``ActorNotRunning``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from supervised_loops import (
    ActorNotRunning,
    Restart,
    Stop,
    Supervisor,
    dead_letters,
    loop,
    worker,
)
from supervised_loops.testing import virtual_time


def _tree() -> tuple[Supervisor, Supervisor, Any, Any]:
    @loop(seconds=1)
    async def ticker() -> None:
        pass

    @worker
    async def serving() -> None:
        await asyncio.Event().wait()

    group = Supervisor(ticker, serving, name="group")
    return Supervisor(group, name="root"), group, ticker, serving


@virtual_time()
async def test_a_restart_told_to_a_child_of_a_stopped_supervisor_is_a_dead_letter() -> None:
    root, group, ticker, serving = _tree()
    await root.start()
    await group.ask(Stop())
    before = dead_letters.count
    ticker.tell(Restart())
    serving.tell(Restart())
    await asyncio.sleep(1)
    assert not ticker.is_running()
    assert not serving.is_running()
    assert dead_letters.count == before + 2
    assert dead_letters.recent[-1].reason == "supervisor not running"
    # The supervisor can start them again: nothing runs outside the tree.
    await root.restart_child("group")
    assert ticker.is_running()
    assert serving.is_running()
    await root.stop()
    assert not ticker.is_running()
    assert not serving.is_running()


@virtual_time()
async def test_an_asked_restart_of_a_child_of_a_stopped_supervisor_fails_clearly() -> None:
    root, group, ticker, serving = _tree()
    await root.start()
    await group.ask(Stop())
    for actor in (ticker, serving):
        with pytest.raises(ActorNotRunning):
            await actor.ask(Restart())
    await root.stop()


@virtual_time()
async def test_a_restart_of_a_child_stopped_by_hand_in_a_running_tree_still_starts_it() -> None:
    root, _group, ticker, _serving = _tree()
    await root.start()
    await ticker.ask(Stop())
    assert not ticker.is_running()
    await ticker.ask(Restart())
    assert ticker.is_running()
    await root.stop()
    assert not ticker.is_running()


@virtual_time()
async def test_a_restart_during_the_supervisors_shutdown_starts_nothing() -> None:
    root, _group, ticker, _serving = _tree()
    await root.start()
    stopping = asyncio.ensure_future(root.stop())
    await asyncio.sleep(0)  # the shutdown has begun
    ticker.tell(Restart())
    await stopping
    await asyncio.sleep(1)
    assert not ticker.is_running()
    assert not root.is_running()
