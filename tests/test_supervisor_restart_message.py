"""A supervisor takes Restart; nothing starts under a stopped supervisor.

* ``Restart`` to a supervisor, stopped or running, starts it again with its
  children, acknowledged once they are started (``Ack(Restart(), 0, None)``).
* ``Pause``, ``Resume``, ``ChangeInterval``, ``RunNow`` to a supervisor are
  refused with a reason an operator can act on (no programming advice).
* ``Restart`` to a child of a stopped supervisor is refused
  (``ActorNotRunning``: "<supervisor> is stopped: restart it first"): no loop
  runs outside its tree. Also through the control socket.

The rules: docs/supervision.md, "Control messages to a supervisor".
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervised_loops import (
    Ack,
    ActorNotRunning,
    ChangeInterval,
    Pause,
    Restart,
    Resume,
    RunNow,
    State,
    Stop,
    Supervisor,
    UnhandledMessage,
    child,
    dead_letters,
    loop,
    worker,
)
from supervised_loops.service.control import ControlServer
from supervised_loops.testing import virtual_time


def now() -> float:
    return asyncio.get_running_loop().time()


class Demo:
    """``demo`` → ``ingest`` → (``writer`` loop, ``reader`` worker); ``demo/clock`` beside it."""

    def __init__(self) -> None:
        self.journal: list[tuple[float, str]] = []

        @loop(seconds=10, name="writer")
        async def writer() -> None:
            pass

        @writer.after_loop
        async def flushed() -> None:
            self.journal.append((now(), "writer flushed"))

        async def read() -> None:
            await asyncio.Event().wait()

        @loop(seconds=10, name="clock")
        async def clock() -> None:
            pass

        self.writer = writer
        self.reader = worker(read, name="reader")
        self.ingest = Supervisor(child(writer), child(self.reader), name="ingest")
        self.tree = Supervisor(self.ingest, child(clock), name="demo")

    def states(self) -> dict[str, State]:
        def walk(status: Any) -> Iterator[tuple[str, State]]:
            yield status.path, status.state
            for sub in status.children:
                yield from walk(sub)

        return dict(walk(self.tree.status()))


@virtual_time()
async def test_a_stopped_sub_supervisor_is_restarted_with_its_children() -> None:
    demo = Demo()
    await demo.tree.start()
    await demo.ingest.ask(Stop())
    assert demo.states()["demo/ingest"] is State.STOPPED
    assert not demo.writer.is_running()
    ack = await demo.ingest.ask(Restart())
    assert ack == Ack(Restart(), 0, None)
    assert demo.ingest.is_running()
    assert demo.writer.is_running()
    assert demo.reader.is_running()
    assert demo.ingest.status().restarts == 1
    # Back in the tree: the ordered shutdown stops it and its children.
    await demo.tree.stop()
    assert not demo.ingest.is_running()
    assert not demo.writer.is_running()
    assert not demo.reader.is_running()
    assert demo.journal == [(0.0, "writer flushed"), (0.0, "writer flushed")]


@virtual_time()
async def test_a_running_supervisor_restarts_after_stopping_its_children_in_order() -> None:
    demo = Demo()
    await demo.tree.start()
    old = demo.ingest.get_task()
    await asyncio.sleep(5)
    ack = await demo.ingest.ask(Restart())
    assert ack == Ack(Restart(), 0, None)
    assert old is not None
    assert old.done()
    assert demo.ingest.get_task() is not old
    assert demo.journal == [(5.0, "writer flushed")]  # the old run's children stopped
    assert demo.writer.is_running()
    assert demo.writer.status().restarts == 0  # a new start of the child, not its own restart
    assert demo.ingest.status().restarts == 1
    await demo.tree.stop()


@virtual_time()
async def test_a_restart_with_arguments_is_refused_with_the_reason() -> None:
    demo = Demo()
    await demo.tree.start()
    with pytest.raises(UnhandledMessage, match="a supervisor takes no start arguments"):
        await demo.ingest.ask(Restart(("x",)))
    assert demo.ingest.is_running()
    await demo.tree.stop()


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (Pause(), "pause its loops one by one"),
        (Resume(), "resume its loops one by one"),
        (ChangeInterval(seconds=5), "change the interval of one of its loops"),
        (RunNow(), "send run-now to one of its loops"),
    ],
)
@virtual_time()
async def test_loop_messages_to_a_supervisor_are_refused_with_an_operator_reason(
    message: Any, reason: str
) -> None:
    demo = Demo()
    await demo.tree.start()
    with pytest.raises(UnhandledMessage) as caught:
        await demo.ingest.ask(message)
    text = str(caught.value)
    assert reason in text
    assert "handle_message" not in text
    assert text.startswith(f"actor 'demo/ingest' does not take {type(message).__name__}: ")
    assert demo.states()["demo/ingest/writer"] is State.SLEEPING  # nothing paused or changed
    await demo.tree.stop()


@pytest.mark.parametrize("target", ["writer", "reader"])
@virtual_time()
async def test_a_child_of_a_stopped_supervisor_is_not_restarted_by_message(target: str) -> None:
    demo = Demo()
    await demo.tree.start()
    await demo.ingest.ask(Stop())
    actor = demo.writer if target == "writer" else demo.reader
    letters = dead_letters.count
    with pytest.raises(ActorNotRunning) as caught:
        await actor.ask(Restart())
    assert caught.value.reason == "demo/ingest is stopped: restart it first"
    assert str(caught.value).endswith(": demo/ingest is stopped: restart it first")
    assert not actor.is_running()
    assert dead_letters.count == letters + 1
    # Told, not asked: a dead letter too, and still nothing runs.
    actor.tell(Restart())
    assert not actor.is_running()
    assert dead_letters.count == letters + 2
    await demo.tree.stop()


@virtual_time()
async def test_a_child_of_a_stopped_root_is_not_restarted_either() -> None:
    demo = Demo()
    await demo.tree.start()
    await demo.tree.stop()
    with pytest.raises(ActorNotRunning, match="demo/ingest is stopped: restart it first"):
        await demo.writer.ask(Restart())
    with pytest.raises(ActorNotRunning, match="demo is stopped: restart it first"):
        await demo.ingest.ask(Restart())
    assert not demo.writer.is_running()
    assert not demo.ingest.is_running()


# -- through the control socket --------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="slr-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


async def request(path: Path, payload: str) -> Any:
    import json

    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(payload.encode() + b"\n")
        await writer.drain()
        return json.loads(await reader.readline())
    finally:
        writer.close()
        await writer.wait_closed()


@virtual_time()
async def test_stop_then_restart_through_the_control_socket(short_dir: Path) -> None:
    demo = Demo()
    path = short_dir / "demo.sock"
    async with demo.tree, ControlServer(demo.tree, path):
        stopped = await request(path, '{"command": "stop", "path": "ingest"}')
        assert stopped["ok"] is True
        orphan = await request(path, '{"command": "restart", "path": "ingest/writer"}')
        assert orphan == {
            "ok": False,
            "error": {
                "type": "ActorNotRunning",
                "message": "actor 'demo/ingest/writer' is not running; Restart(args=None, "
                "kwargs=None) was not delivered: demo/ingest is stopped: restart it first",
            },
        }
        assert not demo.writer.is_running()
        paused = await request(path, '{"command": "pause", "path": "ingest"}')
        assert paused["ok"] is False
        assert paused["error"]["type"] == "UnhandledMessage"
        assert "handle_message" not in paused["error"]["message"]
        restarted = await request(path, '{"command": "restart", "path": "ingest"}')
        assert restarted["ok"] is True
        assert restarted["result"]["message"] == "Restart"
        assert demo.writer.is_running()
        assert demo.states()["demo/ingest"] is State.RUNNING


@virtual_time()
async def test_the_running_root_is_not_restarted_in_place() -> None:
    demo = Demo()
    await demo.tree.start()
    ended = asyncio.ensure_future(demo.tree.wait())
    with pytest.raises(UnhandledMessage, match="the root of a tree is not restarted in place"):
        await demo.tree.ask(Restart())
    await asyncio.sleep(1)
    assert not ended.done()
    assert demo.tree.is_running()
    await demo.tree.stop()
    await ended
